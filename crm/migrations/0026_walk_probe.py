"""A long walk's second step, taken only where a block sample expects it to find its page
(crm_walk_on(), crm/db/walk.sql)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0025_count_trusts_an_estimate_near_the_cap")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
