"""Trigram indexes for substring filters (`contains`, `icontains`, `endswith`, `iendswith`)
on the text fields where a pattern of three characters or more can narrow the rows.

Without them a substring that few contacts have was a scan of the whole table, once for the
count and once for the page: `last_name__icontains=zzq` 1.4 s, `customer_id__icontains=99999`
2.7 s, `phone_number__endswith=12345` 2.0 s at 3M contacts. 0008 had dropped the name
indexes because the planner never chose them for a frequent substring (it walks the (name,
id) b-tree and filters, which stays the plan for those); for a rare one it is the only fast
path. They index upper(column), the expression of the case-insensitive lookups
(crm/sql.py); the case-sensitive ones add that condition as a redundant index path.
Gender and country (one or two characters) and street numbers get none: a pattern that
short has no trigram to look up.
"""

from django.db import migrations

COLUMNS = [
    "first_name",
    "last_name",
    "customer_id",
    "phone_number",
    "address_street",
    "address_city_code",
    "address_city",
]


def _sql(template: str) -> str:
    return "SET LOCAL statement_timeout = 0;" + "".join(template.format(c=c) for c in COLUMNS)


class Migration(migrations.Migration):
    dependencies = [("crm", "0015_birthday_month_day_index")]
    operations = [
        migrations.RunSQL(
            _sql("CREATE INDEX crm_contactrow_{c}_trgm ON crm_contactrow "
                 "USING gin (upper({c}) gin_trgm_ops);"),  # fmt: skip
            _sql("DROP INDEX crm_contactrow_{c}_trgm;"),
        )
    ]
