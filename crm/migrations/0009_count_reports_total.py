"""crm_count() also returns the planner's size of the whole table, which the page query
uses to size its walk of the sort index (crm/selectors.py walk_budget)."""

from django.db import migrations

FORWARD = """
DROP FUNCTION crm_count(text, text[], integer);
CREATE FUNCTION crm_count(where_sql text, args text[], cap integer)
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
    -- Three times the limit leaves room for the planner's usual error; below that, count.
    IF estimate > 3 * cap THEN
        n := estimate;
        exact := false;
        RETURN NEXT;
        RETURN;
    END IF;
    -- Counting stops at cap + 1 rows, so a broad filter costs a bounded scan.
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
    dependencies = [("crm", "0008_drop_name_trigram_indexes")]
    operations = [migrations.RunSQL(FORWARD)]
