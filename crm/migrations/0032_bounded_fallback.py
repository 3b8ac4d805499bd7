"""BRIN indexes of the columns that follow the table's order, and crm_bitmap_ids() (crm/db/
walk.sql), for the fallback of a walk bounded by a probe (crm/selectors/ranges.py)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0031_walk_on_without_sample")]
    operations = [
        migrations.RunSQL(all_sql(), migrations.RunSQL.noop),
        # the indexes' expressions have no statistics until the table's next ANALYZE, and
        # without them the planner sees no use in ANDing the two ranges' bitmaps
        migrations.RunSQL("ANALYZE crm_contactrow", migrations.RunSQL.noop),
    ]
