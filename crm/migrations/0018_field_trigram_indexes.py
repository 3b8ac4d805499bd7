"""A trigram index on the folded text of each searched field, for a search sorted by one of
them (crm/selectors.py `_split_search`).

`search=müller&ordering=last_name` took 0.49 s at 3M contacts: search_text's trigram index
gives all 373,000 rows that contain `muller` in any of six fields, in no order, and the
walk of the last-name index met no Müller before the middle of the alphabet. The page is now
two parts: the rows whose sort key contains a term, read group by group of equal keys from
the key's own index, and the rest, whose terms are all in other fields, which these indexes
find (for `müller`, none: 0.2 ms). About 3-5 s of the seed each at 3M, 44-80 MB.
"""

from django.db import migrations

COLUMNS = [
    "first_name", "last_name", "customer_id", "phone_number", "address_street", "address_city",
]


class Migration(migrations.Migration):
    dependencies = [("crm", "0017_address_hierarchy_order_indexes")]
    operations = [
        migrations.RunSQL(
            "SET LOCAL statement_timeout = 0;"  # the app's per-request limit
            f"CREATE INDEX crm_contactrow_{column}_fold_trgm ON crm_contactrow "
            f"USING gin (crm_fold({column}) gin_trgm_ops)",
            f"DROP INDEX crm_contactrow_{column}_fold_trgm",
        )
        for column in COLUMNS
    ] + [
        # statistics of the indexed expressions, which the planner reads for these patterns
        migrations.RunSQL("ANALYZE crm_contactrow", migrations.RunSQL.noop)
    ]
