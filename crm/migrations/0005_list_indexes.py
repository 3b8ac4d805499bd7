"""Indexes behind the list API's queries on the read model (see crm/selectors.py).

- (column, id) for every sortable column: `ORDER BY column, id LIMIT n` and each keyset
  branch (`column = v AND id > x`, `column > v`) is one index range scan, in both
  directions for `column DESC, id DESC`.
- (column DESC, id) for the columns with large groups of ties: the order is always
  `..., id ASC`, which a backward scan of (column, id) cannot give; without it a descending
  sort by gender or country re-sorts groups of up to a million rows.
- trigram GIN on search_text: `search` terms are substrings anywhere in six fields.
- trigram GIN on upper(first_name) / upper(last_name): `icontains` on a name (dropped again
  in 0008: never chosen by the planner).
"""

from django.db import migrations

SORTABLE = [
    "first_name", "last_name", "gender", "customer_id", "phone_number", "created", "birthday",
    "last_updated", "address_id", "address_street", "address_street_number",
    "address_city_code", "address_city", "address_country", "relationship_id",
    "relationship_points", "relationship_created", "relationship_last_activity",
]
TIED = [
    "first_name", "last_name", "gender", "address_street", "address_street_number",
    "address_city_code", "address_city", "address_country", "relationship_points",
]
TRIGRAM = {
    "crm_contactrow_search_trgm": "search_text gin_trgm_ops",
    "crm_contactrow_first_name_trgm": "upper(first_name) gin_trgm_ops",
    "crm_contactrow_last_name_trgm": "upper(last_name) gin_trgm_ops",
}

FORWARD = (
    [f"CREATE INDEX crm_contactrow_{c}_id ON crm_contactrow ({c}, id)" for c in SORTABLE]
    + [f"CREATE INDEX crm_contactrow_{c}_desc_id ON crm_contactrow ({c} DESC, id)" for c in TIED]
    + [f"CREATE INDEX {name} ON crm_contactrow USING gin ({expr})" for name, expr in TRIGRAM.items()]
)
BACKWARD = (
    [f"DROP INDEX crm_contactrow_{c}_id" for c in SORTABLE]
    + [f"DROP INDEX crm_contactrow_{c}_desc_id" for c in TIED]
    + [f"DROP INDEX {name}" for name in TRIGRAM]
)


class Migration(migrations.Migration):
    dependencies = [("crm", "0004_api_token")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
