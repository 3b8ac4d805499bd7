"""crm_case_variant: for every character that PostgreSQL's upper() maps to the same
character as another, all of them (`i` -> {I, i, ı}, `Ü` -> {Ü, ü}), as this database's
ctype sees them; a character not in the table has no variant but itself.

A case-insensitive prefix (`last_name__istartswith=mü`, `__iexact`) is no range of the
column's index, so a page sorted by that column walked the index from its start, past every
name before the M's (1-2.8 s at 3M). Its case variants (`MÜ`, `Mü`, `mÜ`, `mü`) are ranges,
read one after another in sort order (crm/case_variants.py). The table is computed here, by
the same upper() that the filter uses, so that no variant can be missed (0.4 s, once).
"""

from django.db import migrations

FORWARD = """
SET LOCAL statement_timeout = 0;  -- the app's per-request limit (STATEMENT_TIMEOUT_MS)
CREATE TABLE crm_case_variant (char text PRIMARY KEY, variants text[] NOT NULL);
WITH same_upper AS (
    SELECT array_agg(chr(c) ORDER BY c) AS variants
      FROM generate_series(1, 1114111) c
     WHERE c NOT BETWEEN 55296 AND 57343  -- surrogates are no characters
     GROUP BY upper(chr(c)) HAVING count(*) > 1
)
INSERT INTO crm_case_variant SELECT char, variants FROM same_upper, unnest(variants) char;
"""


class Migration(migrations.Migration):
    dependencies = [("crm", "0013_name_order_index")]
    operations = [migrations.RunSQL(FORWARD, "DROP TABLE crm_case_variant")]
