"""The statistics of each name and place with its sort key, now with its upper() too (crm/db/
indexes.sql), which a case-insensitive prefix compares as a range (crm/sql.py)."""

from django.db import migrations

from crm.db import all_sql

NAMES = ("first_name", "last_name", "address_street", "address_city")


class Migration(migrations.Migration):
    dependencies = [("crm", "0032_bounded_fallback")]
    operations = [
        # CREATE STATISTICS IF NOT EXISTS keeps an object's old columns
        migrations.RunSQL(
            "DROP STATISTICS IF EXISTS "
            + ", ".join(f"crm_contactrow_{name}_keys" for name in NAMES),
            migrations.RunSQL.noop,
        ),
        migrations.RunSQL(all_sql(), migrations.RunSQL.noop),
        # a new statistics object is empty until the table's next ANALYZE
        migrations.RunSQL("ANALYZE crm_contactrow", migrations.RunSQL.noop),
    ]
