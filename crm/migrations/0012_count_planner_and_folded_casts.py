"""crm_count(): the planner's own figure for one filter it can estimate; cheaper samples.

Measured at 3M contacts, where the count was most of a filtered page (3-6 ms of 5-8):

- `estimable`: the caller (crm/selectors.py) says the filter is one comparison of one column
  that the planner reads from that column's statistics (most common values, histogram, null
  fraction). For such a filter, when the planner expects more than three times the cap, its
  figure is the answer: it comes from ANALYZE's 30,000-row sample, so it is at least as
  close as our 7,500-row block sample, and it costs the EXPLAIN that was run anyway (the
  sample cost 2-5 ms). Searches, text patterns and several filters keep the sample: there
  the planner's guess is blind or assumes the columns are independent.
- Values arrive as text and were cast per row: `($1[1])::timestamptz` parses the text once
  for every sampled row, since that cast is only stable. crm_timestamptz() and crm_date()
  are declared immutable, so the planner folds them into constants once (a date filter's
  sample: 6.4-7.0 ms before, 1.9-2.3 ms after). They are safe to fold: the texts are ISO 8601
  written by crm/sql.py `_as_text`, with a UTC offset on timestamps, and every statement that
  uses them is planned afresh in the session that runs it (plan_cache_mode and EXECUTE).
- The sampled matches' block numbers come from tidsend(ctid), four bytes, instead of parsing
  the text of the ctid as a point (about 0.3 ms less per 1,000 matches).
"""

from django.db import migrations

CASTS = """
CREATE FUNCTION crm_timestamptz(value text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT value::timestamptz';
CREATE FUNCTION crm_date(value text) RETURNS date
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT value::date';
"""

FORWARD = """
DROP FUNCTION crm_count(text, text[], integer);
CREATE FUNCTION crm_count(where_sql text, args text[], cap integer, estimable boolean)
RETURNS TABLE (n bigint, exact boolean, total bigint) LANGUAGE plpgsql AS $$
DECLARE
    plan json;
    estimate bigint;
    percent float8;
    hits bigint;
    blocks bigint;  -- distinct blocks among the sampled matches
    sample_sql text := 'SELECT count(*), count(DISTINCT substr(tidsend(ctid), 1, 4)) '
                       || 'FROM crm_contactrow TABLESAMPLE SYSTEM ($2) REPEATABLE (0) '
                       || 'WHERE ' || where_sql;
BEGIN
    SELECT greatest(reltuples, 0)::bigint INTO total
      FROM pg_class WHERE oid = 'crm_contactrow'::regclass;
    IF cap IS NULL THEN
        EXECUTE 'SELECT count(*) FROM crm_contactrow WHERE ' || where_sql INTO n USING args;
        exact := true;
        RETURN NEXT;
        RETURN;
    END IF;
    IF where_sql = 'TRUE' AND total > 3 * cap THEN  -- no filter: the table's own size
        n := total;
        exact := false;
        RETURN NEXT;
        RETURN;
    END IF;
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM crm_contactrow WHERE ' || where_sql
       INTO plan USING args;
    estimate := (plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint;
    IF estimable AND estimate > 3 * cap THEN  -- one column's statistics: the planner knows
        n := estimate;
        exact := false;
        RETURN NEXT;
        RETURN;
    END IF;
    percent := least(100, 100 * 250 / greatest(1, pg_relation_size('crm_contactrow')
                                                  / current_setting('block_size')::int)::float8);
    IF estimate >= cap / 100 THEN
        EXECUTE sample_sql INTO hits, blocks USING args, percent;
        IF blocks > 0 AND hits * (1 - 4 / sqrt(blocks)) * 100 / percent > cap THEN
            n := round(hits * 100 / percent);
            exact := false;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    EXECUTE 'SELECT count(*) FROM (SELECT 1 FROM crm_contactrow WHERE ' || where_sql
         || ' LIMIT ' || (cap + 1) || ') s' INTO n USING args;
    exact := n <= cap;
    IF NOT exact THEN  -- more than the cap after all: the sample's figure, if it says more
        IF hits IS NULL THEN
            EXECUTE sample_sql INTO hits, blocks USING args, percent;
        END IF;
        -- matches from a handful of blocks say little: then the planner's guess
        n := greatest(cap + 1, CASE WHEN blocks >= 16 THEN round(hits * 100 / percent)
                                    ELSE estimate END);
    END IF;
    RETURN NEXT;
END $$;
"""

BACKWARD = """
DROP FUNCTION crm_count(text, text[], integer, boolean);
DROP FUNCTION crm_timestamptz(text);
DROP FUNCTION crm_date(text);
"""


def _previous_count() -> str:
    from importlib import import_module

    return import_module("crm.migrations.0010_count_cheaper_checks").FORWARD.replace(
        "CREATE OR REPLACE FUNCTION", "CREATE FUNCTION"
    )


class Migration(migrations.Migration):
    dependencies = [("crm", "0011_drop_desc_indexes")]
    operations = [migrations.RunSQL(CASTS + FORWARD, BACKWARD + _previous_count())]
