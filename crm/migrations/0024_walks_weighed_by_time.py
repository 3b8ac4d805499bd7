"""crm_count()'s path_cost weighs a scan of the table by the time of its rows
(crm/db/count.sql says why)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0023_search_term_tested_last")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
