"""crm_count() also returns the planner's cost of reading every match by the filter's own
access path, which bounds how far the page walks a sort key's index (crm/db/count.sql)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0014_count_keeps_the_page_ids")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
