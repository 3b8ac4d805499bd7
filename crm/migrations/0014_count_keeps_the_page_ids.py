"""crm_count() returns the ids of the page's rows when its capped count read few matches,
which the page then reads by id instead of finding them again (crm/db/count.sql)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0013_filter_expression_statistics")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
