"""The trigram indexes of crm_word and crm_value without GIN's pending list (crm/db/words.sql
says why): what an earlier fill left there merged now, and both tables analysed."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0021_postal_codes_by_value")]
    operations = [
        migrations.RunSQL(
            all_sql()
            + "SELECT gin_clean_pending_list('crm_word_folded_trgm'::regclass),"
            " gin_clean_pending_list('crm_value_folded_trgm'::regclass);"
            "ANALYZE crm_word, crm_value;",
            migrations.RunSQL.noop,
        )
    ]
