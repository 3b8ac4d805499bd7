"""crm_word, the words of names and places that a search which finds (almost) nothing is
offered instead (crm/db/words.sql), filled from the read model once."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0008_sort_keys")]
    operations = [migrations.RunSQL(all_sql() + "SELECT crm_word_fill();", migrations.RunSQL.noop)]
