-- crm_walk_on(): the second step of a long walk of a sort key's index, whose first step fell
-- short of its page (crm/selectors/budget.py Probe, strategies.first_rows): the rows of
-- `walk_sql`, the walk to its budget, or none where a block sample says the walk would not
-- find its page in time, and the fallback is left to read the matches alone.
--
-- A function, so that none of it is planned unless the first step falls short: planned in
-- the page's statement, the second walk and the sample cost every walk of more than
-- PROBE_FROM rows 0.25 ms of planning (a second scan node of the read table and its
-- indexes), a quarter to four in ten requests of the random survey. Its statements'
-- values arrive in `args`, referenced as ($1[n])::type like crm_count()'s.
--
-- `range_sql` counts the rows of the walk's range up to `near` + 1: a range the first step
-- read whole (a cursor's branch of a few rows) has no more rows, and no sample is drawn for
-- it (a sample reads its blocks whatever the range: 3 ms at 3M). `sample_sql` counts, in a
-- block sample of the walk's range in the walk's order, the sampled matches, the position of
-- the first of them (1-based) and the sampled rows. From them: `gap`, the sample's rows per
-- match from its first match on, which is the table's too; and the rows before its first
-- match, which stand for `scale` times as many of the table's, once they are more than
-- `min_gaps` gaps (the first sampled match falls about a gap in by chance, and rarely four).
-- The walk goes on if it expects its `wanted` matches within `budget` rows, or if fewer than
-- `min_hits` matches were sampled, which say too little (budget.py PROBE_HITS, PROBE_GAPS).
--
-- No sample where the first step found `near_hits` rows, half the page or more (`min_found`):
-- the matches lie as densely as it found them right where the walk goes on, so it expects
-- the rest within as many rows again, inside its budget (budget.py walk_probe gives at least
-- twice the first step). A sample tests the query on about 7,500 rows: at 3M `search=mull
-- wien`'s tier 2 found 16 of its 26 in the first step's 2,000 rows, and its sample took
-- 10-14 ms of a 3 ms walk on.
--
-- PARALLEL RESTRICTED: it runs in the leader, and the rest of the page's statement may still
-- be planned with workers. Left at PostgreSQL's default (unsafe) it made every statement
-- that calls it a serial one, the fallback's scan of the table included, whose workers
-- config/settings.py allows for exactly that: at 3M `phone_number__istartswith=+4&last_
-- updated__month=4&ordering=-relationship__created,phone_number` scanned the table for its
-- 174,000 matches in 1.5 s in one process, 0.43 s with two workers.
CREATE OR REPLACE FUNCTION crm_walk_on(
    range_sql text, sample_sql text, walk_sql text, args text[], near integer, near_hits bigint,
    min_found integer, wanted integer, budget bigint, scale float8, min_hits integer,
    min_gaps integer)
RETURNS SETOF crm_contactrow LANGUAGE plpgsql STABLE PARALLEL RESTRICTED AS $$
DECLARE
    walked bigint;
    hits bigint;
    first bigint;
    sampled bigint;
    gap float8;
BEGIN
    EXECUTE range_sql INTO walked USING args;
    IF walked <= near THEN  -- the first step read the whole range: there is no more
        RETURN;
    END IF;
    IF near_hits >= min_found THEN  -- the first step's rows tell where the rest lie
        RETURN QUERY EXECUTE walk_sql USING args;
        RETURN;
    END IF;
    EXECUTE sample_sql INTO hits, first, sampled USING args;
    IF hits >= min_hits THEN
        gap := (sampled - first + 1)::float8 / hits;
        IF greatest(first - 1 - min_gaps * gap, 0) * scale + wanted * gap > budget THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY EXECUTE walk_sql USING args;
END $$;

-- crm_bitmap_ids(): the ids that `ids_sql` returns, planned without index scans or a scan
-- of the table, so by bitmaps: the fallback of a walk bounded by a probe (crm/selectors/
-- ranges.py RowRanges._bound), whose bound on the sort key (`id <= T`) and the filter's
-- own range (`address_id > X`) the planner takes for independent. It expects a third of the
-- table from each and walked the id index through every row below T, 1.1 million at 3M
-- (0.38 s), where the BRIN indexes of both (crm/db/indexes.sql), ANDed, leave the few block
-- ranges that hold both (94 ms; 0.7 s for the unbounded fallback). A function, so that the
-- settings hold for its statement alone; its values arrive in `args` as crm_walk_on()'s.
CREATE OR REPLACE FUNCTION crm_bitmap_ids(ids_sql text, args text[])
RETURNS SETOF bigint LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET enable_indexscan = off SET enable_indexonlyscan = off SET enable_seqscan = off AS $$
BEGIN
    RETURN QUERY EXECUTE ids_sql USING args;
END $$;
