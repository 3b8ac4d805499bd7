"""The trigram indexes of the folded names and places give way to crm_value and statistics of
the same folds (crm/db/indexes.sql says why); ANALYZE fills the new statistics at once."""

from django.db import migrations

from crm.db import all_sql

DROPPED = ", ".join(
    f"crm_contactrow_{column}_fold_trgm"
    for column in ("first_name", "last_name", "address_street", "address_city")
)


class Migration(migrations.Migration):
    dependencies = [("crm", "0019_count_draws_fresh_blocks")]
    operations = [
        migrations.RunSQL(
            f"DROP INDEX IF EXISTS {DROPPED};\n" + all_sql() + "ANALYZE crm_contactrow;",
            migrations.RunSQL.noop,
        )
    ]
