"""crm_value, the distinct values of the searched names and places, by which crm_count()
counts a search of one term without visiting the table (crm/db/words.sql, count.sql): filled
from the rows there are (crm_word_fill() adds only the words and values not yet known)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0017_sort_keys_by_trigger")]
    operations = [migrations.RunSQL(all_sql() + "SELECT crm_word_fill();", migrations.RunSQL.noop)]
