"""crm_count(): a second, four times larger block sample before the capped count, when the
first one points to more than the cap but is too thin to trust; and the way each count
was made, for the Server-Timing header (`count;desc="sample 4x"`) and the tests.

Two filters or two search terms that the planner cannot size alone keep the block sample,
and a result of 10,000 to about 40,000 matches often fell short of its four-standard-error
test: `search=schmidt berlin` (26,500 matches at 3M) had 47 hits in 44 blocks, which says
17,500 but only 6,950 at four standard errors below, so the capped count built both trigram
bitmaps and rechecked 10,001 rows (62 ms); `created__month=3&address__city=Wien` walked
120,000 Viennese (0.11 s). With 1,000 blocks the same test passes (3-7 ms for the count).
The second sample is drawn only where the first one's own figure is above the cap, so
results that are small anyway go to the capped count as before.
"""

from importlib import import_module

from django.db import migrations

FORWARD = """
DROP FUNCTION crm_count(text, text[], integer, boolean);
CREATE FUNCTION crm_count(where_sql text, args text[], cap integer, estimable boolean)
RETURNS TABLE (n bigint, exact boolean, total bigint, method text) LANGUAGE plpgsql AS $$
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
        RETURN QUERY SELECT n, true, total, 'exact';
        RETURN;
    END IF;
    IF where_sql = 'TRUE' AND total > 3 * cap THEN  -- no filter: the table's own size
        RETURN QUERY SELECT total, false, total, 'table';
        RETURN;
    END IF;
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM crm_contactrow WHERE ' || where_sql
       INTO plan USING args;
    estimate := (plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint;
    IF estimable AND estimate > 3 * cap THEN  -- one column's statistics: the planner knows
        RETURN QUERY SELECT estimate, false, total, 'planner';
        RETURN;
    END IF;
    percent := least(100, 100 * 250 / greatest(1, pg_relation_size('crm_contactrow')
                                                  / current_setting('block_size')::int)::float8);
    IF estimate >= cap / 100 THEN
        EXECUTE sample_sql INTO hits, blocks USING args, percent;
        IF blocks > 0 AND hits * (1 - 4 / sqrt(blocks)) * 100 / percent > cap THEN
            RETURN QUERY SELECT round(hits * 100 / percent)::bigint, false, total, 'sample';
            RETURN;
        END IF;
        IF hits * 100 / percent > cap AND percent < 25 THEN  -- promising but thin: 4x
            percent := 4 * percent;
            EXECUTE sample_sql INTO hits, blocks USING args, percent;
            IF blocks > 0 AND hits * (1 - 4 / sqrt(blocks)) * 100 / percent > cap THEN
                RETURN QUERY SELECT round(hits * 100 / percent)::bigint, false, total,
                                    'sample 4x';
                RETURN;
            END IF;
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
    RETURN QUERY SELECT n, exact, total, 'capped';
END $$;
"""


def _previous() -> str:
    return import_module("crm.migrations.0012_count_planner_and_folded_casts").FORWARD.replace(
        "DROP FUNCTION crm_count(text, text[], integer);",
        "DROP FUNCTION crm_count(text, text[], integer, boolean);",
    )


class Migration(migrations.Migration):
    dependencies = [("crm", "0019_gender_first_name_index")]
    operations = [migrations.RunSQL(FORWARD, _previous())]
