"""The read model's sort keys are plain columns kept by a trigger instead of generated
columns, so that the seed can write them from its few distinct names (crm/db/schema.sql,
which drops the expressions: no rewrite of the table, every stored key kept). A database
from before migration 0008 got the columns from a later migration's all_sql() as plain
columns, empty: they are filled here."""

from django.db import migrations

from crm.db import all_sql

FILL_EMPTY_KEYS = """
UPDATE crm_contactrow SET first_name_key = crm_sort_key(first_name),
       last_name_key = crm_sort_key(last_name),
       address_street_key = crm_sort_key(address_street),
       address_city_key = crm_sort_key(address_city)
 WHERE first_name_key IS NULL OR last_name_key IS NULL OR address_street_key IS NULL
       OR address_city_key IS NULL;
"""


class Migration(migrations.Migration):
    dependencies = [("crm", "0016_count_trusts_a_known_estimate")]
    operations = [migrations.RunSQL(all_sql() + FILL_EMPTY_KEYS, migrations.RunSQL.noop)]
