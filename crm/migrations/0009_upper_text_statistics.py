"""Statistics on upper(column) for the text columns `icontains` is used on.

Without them the planner guesses a fixed LIKE selectivity for `upper(last_name) LIKE
'%MÜL%'` (24,000 rows at 3M instead of 368,000), so crm_count() ran a 250-560 ms capped count
instead of answering with the estimate (0008 dropped the indexes that used to provide them).
"""

from django.db import migrations

COLUMNS = ("first_name", "last_name", "address_street", "address_city")
FORWARD = [
    f"CREATE STATISTICS crm_contactrow_upper_{c} ON (upper({c})) FROM crm_contactrow"
    for c in COLUMNS
]
BACKWARD = [f"DROP STATISTICS crm_contactrow_upper_{c}" for c in COLUMNS]


class Migration(migrations.Migration):
    dependencies = [("crm", "0008_drop_name_trigram_indexes")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
