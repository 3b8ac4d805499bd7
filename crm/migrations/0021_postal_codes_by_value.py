"""crm_value holds the postal codes too, by which a pattern on them is read as the codes it
matches; their trigram index goes (crm/db/words.sql, indexes.sql)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0020_names_and_places_by_value")]
    operations = [
        migrations.RunSQL(
            "DROP INDEX IF EXISTS crm_contactrow_address_city_code_fold_trgm;\n"
            + all_sql()
            + "SELECT crm_word_fill();",
            migrations.RunSQL.noop,
        )
    ]
