"""Dictionary order for names and places: the generated sort key columns and crm_sort_key()
(crm/db/schema.sql), and the order indexes on them instead of on the plain names
(crm/db/indexes.sql)."""

from django.db import migrations

from crm.db import all_sql

REPLACED = [
    "crm_contactrow_last_name_first_name_id",
    "crm_contactrow_address_country_city_id",
    "crm_contactrow_city_phone_id",
    "crm_contactrow_city_city_code_id",
    "crm_contactrow_gender_first_name_id",
]


class Migration(migrations.Migration):
    dependencies = [("crm", "0007_search_spellings")]
    operations = [
        migrations.RunSQL(
            "".join(f"DROP INDEX IF EXISTS {name};\n" for name in REPLACED) + all_sql(),
            migrations.RunSQL.noop,
        )
    ]
