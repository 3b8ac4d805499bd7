"""Extended statistics of each name or place with its sort key, and a name's case-insensitive
prefix as a range of its key (crm_prefix_end()), which the planner reads from them."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0028_count_binds_lists_as_slices")]
    operations = [
        migrations.RunSQL(all_sql(), migrations.RunSQL.noop),
        # new statistics are empty until the table's next ANALYZE: the prefix's range would
        # be planned without them meanwhile
        migrations.RunSQL("ANALYZE crm_contactrow", migrations.RunSQL.noop),
    ]
