"""crm_count() with its cost rule (crm/db/count.sql): a capped count that would cost more
than the budget, a scan for a rare match, answers the block sample's estimate instead."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0005_gin_pending_list")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
