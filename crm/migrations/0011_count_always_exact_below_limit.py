"""crm_count() checks a large estimate against a 0.5% sample before trusting it.

0006 answered with the planner's estimate alone when it exceeded three times the limit.
That broke the contract (exact whenever at most 10,000 rows match) where the planner
overestimates, e.g. `created__gte=2025-01-01&last_updated__lt=2020-01-01` (impossible, since
last_updated >= created; the independence assumption estimates ~150,000). A capped count
instead costs up to 1 s at 3M contacts when the matches sit late in the scan order (a
two-term search: 770,000 rows read to find 10,001). So a large estimate is checked by
counting matches in a 0.5% block sample (about 15,000 rows at 3M, a few ms): only if the sample
also implies more than three times the limit is the sample's figure the answer; otherwise
the capped count decides, and stays exact below the limit.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION crm_count(where_sql text, args text[], cap integer)
RETURNS TABLE (n bigint, exact boolean, total bigint) LANGUAGE plpgsql AS $$
DECLARE
    plan json;
    estimate bigint;
BEGIN
    SELECT greatest(reltuples, 0)::bigint INTO total
      FROM pg_class WHERE oid = 'crm_contactrow'::regclass;
    IF cap IS NULL THEN
        EXECUTE 'SELECT count(*) FROM crm_contactrow WHERE ' || where_sql INTO n USING args;
        exact := true;
        RETURN NEXT;
        RETURN;
    END IF;
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM crm_contactrow WHERE ' || where_sql
       INTO plan USING args;
    estimate := (plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint;
    IF where_sql = 'TRUE' AND total > 3 * cap THEN  -- no filter: the table's own size
        n := total;
        exact := false;
        RETURN NEXT;
        RETURN;
    END IF;
    IF estimate > 3 * cap THEN
        EXECUTE 'SELECT 200 * count(*) FROM crm_contactrow TABLESAMPLE SYSTEM (0.5) '
             || 'REPEATABLE (0) WHERE ' || where_sql INTO n USING args;
        IF n > 3 * cap THEN
            exact := false;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    EXECUTE 'SELECT count(*) FROM (SELECT 1 FROM crm_contactrow WHERE ' || where_sql
         || ' LIMIT ' || (cap + 1) || ') s' INTO n USING args;
    exact := n <= cap;
    IF NOT exact THEN
        n := greatest(cap + 1, estimate);
    END IF;
    RETURN NEXT;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("crm", "0010_upper_text_statistics")]
    operations = [migrations.RunSQL(FORWARD)]
