"""crm_count(): the list's count in one statement, exact when small, estimated when large."""

from django.db import migrations

FORWARD = """
-- where_sql is built by crm/sql.py from registry columns only; every value arrives in
-- args and is referenced as ($1[n])::type, never spliced into the text.
CREATE FUNCTION crm_count(where_sql text, args text[], cap integer)
RETURNS TABLE (n bigint, exact boolean) LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    IF cap IS NULL THEN
        EXECUTE 'SELECT count(*) FROM crm_contactrow WHERE ' || where_sql INTO n USING args;
        exact := true;
        RETURN NEXT;
        RETURN;
    END IF;
    -- Counting stops at cap + 1 rows, so a broad filter costs a bounded scan.
    EXECUTE 'SELECT count(*) FROM (SELECT 1 FROM crm_contactrow WHERE ' || where_sql
         || ' LIMIT ' || (cap + 1) || ') s' INTO n USING args;
    exact := n <= cap;
    IF NOT exact THEN
        EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM crm_contactrow WHERE ' || where_sql
           INTO plan USING args;
        n := greatest(cap + 1, (plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint);
    END IF;
    RETURN NEXT;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_contactrow_sync")]
    operations = [migrations.RunSQL(FORWARD, "DROP FUNCTION crm_count(text, text[], integer)")]
