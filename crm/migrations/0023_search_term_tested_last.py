"""crm_holds(): a search term tested row by row after the cheaper filters
(crm/db/schema.sql says why)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0022_word_indexes_without_pending_list")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
