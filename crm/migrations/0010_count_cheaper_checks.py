"""crm_count(), cheaper checks (the rest as in 0003, whose docstring explains the shape):

- No filter on a big table: the table's size, without planning an EXPLAIN first (0.1 ms of
  a 1.6 ms first page).
- A block sample of about 250 blocks (7,500 rows at 3M) whatever the table's size, instead
  of 0.5% of it: half the cost there (2-5 ms was most of a search page), and the same
  precision on a small table, where 0.5% was a handful of blocks. It is sized from the
  table's file, which is right even before the first ANALYZE (reltuples is then -1).
- The sample's figure is trusted when, less four standard errors, it still scales to more
  than the cap, instead of "more than three times the cap". That cut at 30,000 fell in the
  middle of real searches (`search=mull wien` matches about 31,000: its sample said 31,200
  or 25,700 depending on which blocks it drew) and sent them to the capped count, which
  builds the whole trigram bitmap first: 40 ms instead of 2 ms. The standard error is
  hits / sqrt(blocks the hits came from): a sample takes whole blocks, so matches that sit
  together (rows updated recently, a batch imported at once) count as one draw per block,
  not one per row, and 5,000 clustered matches cannot pass for 24,000.
- The sample is taken whenever the planner expects 100 rows or more, not only above 30,000:
  for a search term its guess is blind (`search=yilmaz`: 300 expected, 49,397 match).
  Below that the capped count is an index lookup of a few rows.
- Above the cap, the figure comes from the sample rather than the planner's guess, unless
  the sample's matches came from fewer than 16 blocks.
"""

import importlib

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION crm_count(where_sql text, args text[], cap integer)
RETURNS TABLE (n bigint, exact boolean, total bigint) LANGUAGE plpgsql AS $$
DECLARE
    plan json;
    estimate bigint;
    percent float8;
    hits bigint;
    blocks bigint;  -- distinct blocks among the sampled matches
    sample_sql text := 'SELECT count(*), count(DISTINCT (ctid::text::point)[0]) '
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

BACKWARD = importlib.import_module("crm.migrations.0003_count_function").FORWARD.replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"
)


class Migration(migrations.Migration):
    dependencies = [("crm", "0009_upper_text_statistics")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
