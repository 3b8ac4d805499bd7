"""The read model's sort keys are plain columns kept by a trigger instead of generated
columns, so that the seed can write them from its few distinct names (crm/db/schema.sql).
Dropping the expression keeps every stored key: no rewrite of the table."""

from django.db import migrations

from crm.db import all_sql

KEYS = ("first_name_key", "last_name_key", "address_street_key", "address_city_key")


class Migration(migrations.Migration):
    dependencies = [("crm", "0016_count_trusts_a_known_estimate")]
    operations = [
        migrations.RunSQL(
            "".join(
                f"ALTER TABLE crm_contactrow ALTER COLUMN {key} DROP EXPRESSION IF EXISTS;\n"
                for key in KEYS
            )
            + all_sql(),
            migrations.RunSQL.noop,
        )
    ]
