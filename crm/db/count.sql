-- crm_count(): the list's count in one statement, exact up to the cap, estimated above.
-- Its current definition (applied by migration 0002); the design, as it grew:
--
-- From the first version:
-- `where_sql` is built by crm/sql.py from registry columns only; every value arrives in
-- `args` and is referenced as ($1[n])::type, never spliced into the text. It also returns the
-- planner's size of the whole table, which sizes the page query's index walk
-- (crm/selectors/budget.py walk_budget).
--
-- Why this shape (measured at 3M contacts):
-- - An exact COUNT(*) costs 0.2-2.7 s, so counts stop at limit + 1 rows.
-- - A capped count still costs up to 1 s when the matches sit late in the scan order (a
--   two-term search read 770,000 rows to find 10,001) and 150-190 ms when a trigram bitmap is
--   built in full before LIMIT applies. So when the planner expects more than three times
--   the limit, the estimate is checked by counting matches in a 0.5% block sample (about
--   15,000 rows, a few ms); only if the sample agrees is its figure the answer.
-- - The planner's estimate alone is not trusted: it overestimates impossible combinations
--   (`created__gte=2025-01-01&last_updated__lt=2020-01-01` estimates ~150,000, matches 0),
--   and the contract is an exact count whenever at most 10,000 rows match.
--
-- Cheaper checks:
-- - No filter on a big table: the table's size, without planning an EXPLAIN first (0.1 ms of
--   a 1.6 ms first page).
-- - A block sample of about 250 blocks (7,500 rows at 3M) whatever the table's size, instead
--   of 0.5% of it: half the cost there (2-5 ms was most of a search page), and the same
--   precision on a small table, where 0.5% was a handful of blocks. It is sized from the
--   table's file, which is right even before the first ANALYZE (reltuples is then -1).
-- - The sample's figure is trusted when, less four standard errors, it still scales to more
--   than the cap, instead of "more than three times the cap". That cut at 30,000 fell in the
--   middle of real searches (`search=mull wien` matches about 31,000: its sample said 31,200
--   or 25,700 depending on which blocks it drew) and sent them to the capped count, which
--   builds the whole trigram bitmap first: 40 ms instead of 2 ms. The standard error is
--   hits / sqrt(blocks the hits came from): a sample takes whole blocks, so matches that sit
--   together (rows updated recently, a batch imported at once) count as one draw per block,
--   not one per row, and 5,000 clustered matches cannot pass for 24,000.
-- - The sample is taken whenever the planner expects 100 rows or more, not only above 30,000:
--   for a search term its guess is blind (`search=yilmaz`: 300 expected, 49,397 match).
--   Below that the capped count is an index lookup of a few rows.
-- - Above the cap, the figure comes from the sample rather than the planner's guess, unless
--   the sample's matches came from fewer than 16 blocks.
--
-- The planner's own figure and folded casts:
--
-- Measured at 3M contacts, where the count was most of a filtered page (3-6 ms of 5-8):
--
-- - `estimable`: the caller (crm/selectors/count.py) says the filter is one comparison of one column
--   that the planner reads from that column's statistics (most common values, histogram, null
--   fraction). For such a filter, when the planner expects more than three times the cap, its
--   figure is the answer: it comes from ANALYZE's 30,000-row sample, so it is at least as
--   close as our 7,500-row block sample, and it costs the EXPLAIN that was run anyway (the
--   sample cost 2-5 ms). Searches, text patterns and several filters keep the sample: there
--   the planner's guess is blind or assumes the columns are independent.
-- - Values arrive as text and were cast per row: `($1[1])::timestamptz` parses the text once
--   for every sampled row, since that cast is only stable. crm_timestamptz() and crm_date()
--   are declared immutable, so the planner folds them into constants once (a date filter's
--   sample: 6.4-7.0 ms before, 1.9-2.3 ms after). They are safe to fold: the texts are ISO 8601
--   written by crm/sql.py `_as_text`, with a UTC offset on timestamps, and every statement that
--   uses them is planned afresh in the session that runs it (plan_cache_mode and EXECUTE).
-- - The sampled matches' block numbers come from tidsend(ctid), four bytes, instead of parsing
--   the text of the ctid as a point (about 0.3 ms less per 1,000 matches).
--
-- A second sample (since drawn as fresh blocks, below):
-- A second, four times larger block sample before the capped count, when the first one
-- points to more than the cap but is too thin to trust; and the way each count was made,
-- for the Server-Timing header (`count;desc="sample 4x"`) and the tests.
--
-- Two filters or two search terms that the planner cannot size alone keep the block sample,
-- and a result of 10,000 to about 40,000 matches often fell short of its four-standard-error
-- test: `search=schmidt berlin` (26,500 matches at 3M) had 47 hits in 44 blocks, which says
-- 17,500 but only 6,950 at four standard errors below, so the capped count built both trigram
-- bitmaps and rechecked 10,001 rows (62 ms); `created__month=3&address__city=Wien` walked
-- 120,000 Viennese (0.11 s). With 1,000 blocks the same test passes (3-7 ms for the count).
-- The second sample is drawn only where the first one's own figure is above the cap, so
-- results that are small anyway go to the capped count as before.
--
-- Fresh blocks instead:
-- The larger sample is drawn in two steps of fresh blocks (REPEATABLE 1, then 2: each block
-- is drawn with the same chance, independently of the first draw), as many as the first's
-- and then twice as many, each added to the blocks before and tested again: about 1,000
-- blocks in all (a block drawn twice counts twice, as likely as the share drawn: 0.2% at
-- 3M), where the second sample re-read the first one's 250 (1,250). A first sample
-- that was only unlucky is settled by 500: `search=mull wien` (31,000 matches at 3M) had 45
-- hits in 42 blocks, which its second 250 brought to a figure that passes (count 8.8 ->
-- 5.5 ms); `search=schmidt berlin` 11.3 -> 6.1 ms. `Server-Timing` says `sample 2x` or
-- `sample 4x`.

-- Whether a block sample's `hits` (from `blocks` distinct blocks, of `percent` of the table)
-- say more than `cap` matches even four standard errors below their figure.
CREATE OR REPLACE FUNCTION crm_sample_above(hits bigint, blocks bigint, percent float8, cap integer)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT blocks > 0 AND hits * (1 - 4 / sqrt(blocks)) * 100 / percent > cap
$$;

-- The page's ids, from a capped count that read few matches:
-- A capped count that finds at most `keep` matches has read every one of them, and the page
-- of so few matches would read them all again to sort them (crm/selectors/plan.py collects:
-- a search's trigram bitmap built twice, `address__street__iendswith=ße&phone_number__
-- endswith=42&search=warszawa warszawa` 0.6 s for the count and 0.6 for the page at 3M). So
-- the count keeps each match's `page_columns` (its id and sort keys), and if they are few,
-- `page_ids_sql` sorts them (a SELECT of the page's ids from them, as `m`), whose result
-- `page_ids` the page reads by id (crm/selectors/count.py, pages.py). Only the sort keys
-- are kept: with the whole rows, a count of more than `keep` matches, which keeps none,
-- took 39 ms instead of 13. Like `where_sql`, both are built by crm/sql.py from registry
-- columns, their values in `args`.
DROP FUNCTION IF EXISTS crm_count(text, text[], integer, boolean);
--
-- The cost of the filter's own path:
-- Every answer after the planner's EXPLAIN also returns its cost of reading every match by
-- the filter's own access path (`path_cost`, in the planner's units; NULL where no EXPLAIN
-- ran): what the page's fallback pays when a walk of the sort key's index comes up short,
-- so the page may walk as far as that cost buys (crm/selectors/budget.py walk_budget).
DROP FUNCTION IF EXISTS crm_count(text, text[], integer, boolean, text, text, integer, integer,
                                  integer);
-- (the result's columns changed: CREATE OR REPLACE cannot change them)
DROP FUNCTION IF EXISTS crm_count(text, text[], integer, boolean, text, text, integer);
--
-- The caller's estimate:
-- A search term's estimate comes from its searched fields' statistics (crm/selectors/
-- count.py), not from an EXPLAIN of `where_sql`, which is blind to it. The caller passes it
-- as `known` (with `estimable`). A trusted estimate (`estimable`: one column's statistics,
-- or a search term's fields') of at most the cap goes to the capped
-- count without a block sample: the sample could only confirm that the matches are few
-- (at 3M, `search=Strauss`, 6,812 matches: 7 ms for a sample of 250 blocks and often 30
-- more for the second, four times larger, before the capped count's 20). A trusted estimate
-- that falls short reads the cap + 1 matches and then takes the sample for its figure.
--
-- A trusted estimate near the cap:
-- A trusted estimate of up to three times the cap goes to the capped count without a block
-- sample too, and one that finds more than the cap answers with that estimate (at least
-- cap + 1), not a sample's. Those samples could not say more than the estimate (7,500 rows
-- against the 30,000 of ANALYZE's) nor spare the capped count, which alone tells whether at
-- most the cap match; up to three draws of the sample cost more than the count itself. At
-- 3M, `address__city=Innsbruck` (14,737 contacts, 13,998 expected): three samples of 5, 5
-- and 8 ms, then the capped count's 5 (index only); now the count's 5 ms alone.
--
-- The page's columns without the table:
-- A filter the index answers alone but for a condition it tests on each entry (an index
-- only scan with a filter: `last_updated__gt=2026-05-05&last_updated__month=2`, the month of
-- each timestamp after May) read the table for every entry once the page's columns were
-- kept, those the filter rejects too: no match among 678,000 entries, 0.83 s instead of the
-- index's 0.24 at 3M. Such a count reads the matches' ids from the index (every b-tree has
-- `id`), and the few it keeps read their columns by id.
--
-- A search's count by value:
-- For a search of one term and nothing else, the caller also passes `count_sql`, a count of
-- its matches that reads the rows of the names and places whose values hold the term by
-- their (column, id) indexes, without the table (crm/sql.py search_count_sql, crm_value in
-- words.sql). Where the capped count (or the sample) would run, and for `count=exact`, it is
-- the answer, exact at any size: at 3M `search=strauss` (6,812 matches) took 48 ms on
-- PostgreSQL 15 by the capped count, which visits each match's block, and about 3 by value.
-- It is NULL for a term it cannot count, which then takes the other ways.
DROP FUNCTION IF EXISTS crm_count(text, text[], integer, boolean, text, text, integer, bigint);
CREATE OR REPLACE FUNCTION crm_count(
    where_sql text, args text[], cap integer, estimable boolean,
    page_columns text DEFAULT NULL, page_ids_sql text DEFAULT NULL, keep integer DEFAULT 0,
    known bigint DEFAULT NULL, count_sql text DEFAULT NULL)
RETURNS TABLE (n bigint, exact boolean, total bigint, method text, page_ids bigint[],
               path_cost float8)
LANGUAGE plpgsql AS $$
DECLARE
    plan json;
    estimate bigint;
    percent float8;
    hits bigint;
    blocks bigint;  -- distinct blocks among the sampled matches
    unknown boolean;  -- whether count_sql read only some of the matches
    more_hits bigint;  -- of a further sample
    more_blocks bigint;
    startup float8;
    cost float8;  -- the plan's cost of reading all the matches, past its startup
    -- The most a capped count may cost, in the planner's units (the cost rule below). Of 150
    -- capped counts of the random survey at 3M (PostgreSQL 15), every one over 150 ms cost
    -- more than 60,000 (a scan of the table: 130,000-145,000), and none under 40,000 took over
    -- 100 ms. A trigram bitmap's recheck costs more time than units (0.25-0.45 ms a unit).
    budget CONSTANT float8 := 40000;
    ids bigint[];
    sample_sql text := 'SELECT count(*), count(DISTINCT substr(tidsend(ctid), 1, 4)) '
                       || 'FROM crm_contactrow TABLESAMPLE SYSTEM ($2) REPEATABLE ($3) '
                       || 'WHERE ' || where_sql;
BEGIN
    SELECT greatest(reltuples, 0)::bigint INTO total
      FROM pg_class WHERE oid = 'crm_contactrow'::regclass;
    IF count_sql IS NOT NULL THEN  -- no row, or more rows than it read: n stays NULL
        EXECUTE count_sql INTO n, unknown USING args;
        IF unknown THEN
            n := NULL;
        END IF;
    END IF;
    IF cap IS NULL THEN
        IF n IS NULL THEN
            EXECUTE 'SELECT count(*) FROM crm_contactrow WHERE ' || where_sql INTO n USING args;
        END IF;
        RETURN QUERY SELECT n, true, total, 'exact', NULL::bigint[], NULL::float8;
        RETURN;
    END IF;
    IF where_sql = 'TRUE' AND total > 3 * cap THEN  -- no filter: the table's own size
        RETURN QUERY SELECT total, false, total, 'table', NULL::bigint[], NULL::float8;
        RETURN;
    END IF;
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM crm_contactrow WHERE ' || where_sql
       INTO plan USING args;
    estimate := coalesce(known, (plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint);
    startup := (plan -> 0 -> 'Plan' ->> 'Startup Cost')::float8;
    cost := (plan -> 0 -> 'Plan' ->> 'Total Cost')::float8 - startup;
    IF estimable AND estimate > 3 * cap THEN  -- one column's statistics: the planner knows
        RETURN QUERY SELECT estimate, false, total, 'planner', NULL::bigint[], startup + cost;
        RETURN;
    END IF;
    IF n IS NOT NULL THEN  -- counted by value
        RETURN QUERY SELECT n, n <= cap, total, 'values', NULL::bigint[], startup + cost;
        RETURN;
    END IF;
    percent := least(100, 100 * 250 / greatest(1, pg_relation_size('crm_contactrow')
                                                  / current_setting('block_size')::int)::float8);
    -- Sampled too when reading every match would cost more than the budget, whatever the
    -- planner expects: its guess for an expression it has no statistics on is a default
    -- (`extract(day ...) = 11` 0.5%, `upper(phone_number) LIKE '+%'` 0.5% again), and for
    -- `phone_number__istartswith=+&relationship__created__day=11&gender__isnull=false` it
    -- expected fewer than 100 rows where 60,000 match: the capped count read 300,000 rows
    -- to find 10,001 (88 ms at 3M), where the sample says more than the cap in 3.
    IF (estimate >= cap / 100 AND NOT estimable) OR startup + cost > budget THEN
        EXECUTE sample_sql INTO hits, blocks USING args, percent, 0;
        IF crm_sample_above(hits, blocks, percent, cap) THEN
            RETURN QUERY SELECT round(hits * 100 / percent)::bigint, false, total, 'sample',
                                NULL::bigint[], startup + cost;
            RETURN;
        END IF;
        FOR draw IN 1..2 LOOP  -- promising but thin: as many blocks again, then twice as many
            EXIT WHEN NOT (hits * 100 / percent > cap AND percent < 25);
            EXECUTE sample_sql INTO more_hits, more_blocks USING args, percent, draw;
            hits := hits + more_hits;
            blocks := blocks + more_blocks;
            percent := 2 * percent;
            IF crm_sample_above(hits, blocks, percent, cap) THEN
                RETURN QUERY SELECT round(hits * 100 / percent)::bigint, false, total,
                                    'sample ' || 2 ^ draw || 'x', NULL::bigint[], startup + cost;
                RETURN;
            END IF;
        END LOOP;
    END IF;
    -- The cost rule: the capped count reads its matches until the cap, so its cost is the
    -- plan's share for cap + 1 of the matches expected by the sample (drawn above whenever
    -- the whole plan costs more than the budget). Past the budget it would scan: a rare
    -- match of a filter no index narrows (`address__city_code__icontains=1085&birthday__gte=
    -- 1979-05-18`: 370 ms at 3M, 1.8 s for others in the random survey). Then the figure is
    -- the block sample's (the planner's guess is blind to search terms and patterns).
    IF hits IS NOT NULL
       AND startup + cost * least(1, (cap + 1) / greatest(hits * 100 / percent, 1)) > budget THEN
        RETURN QUERY SELECT round(hits * 100 / percent)::bigint, false, total, 'bounded',
                            NULL::bigint[], startup + cost;
        RETURN;
    END IF;
    IF page_columns IS NULL THEN
        EXECUTE 'SELECT count(*) FROM (SELECT 1 FROM crm_contactrow WHERE ' || where_sql
             || ' LIMIT ' || (cap + 1) || ') s' INTO n USING args;
    ELSIF jsonb_path_exists(plan::jsonb, ('strict $.**?(@."Node Type" == "Index Only Scan"'
                                          || ' && exists (@."Filter"))')::jsonpath) THEN
        -- the matches' ids from the index alone, then the kept columns of a few by id
        EXECUTE 'SELECT array_agg(id) FROM (SELECT id FROM crm_contactrow WHERE ' || where_sql
             || ' LIMIT ' || (cap + 1) || ') s' INTO ids USING args;
        n := coalesce(cardinality(ids), 0);
        IF n <= keep THEN
            EXECUTE 'WITH m AS MATERIALIZED (SELECT ' || page_columns || ' FROM crm_contactrow '
                 || 'WHERE id = ANY ($2)) SELECT (' || page_ids_sql || ')' INTO ids
              USING args, ids;
        ELSE  -- too many to keep: no page's ids
            ids := NULL;
        END IF;
    ELSE  -- the matches kept, and sorted only if they are few
        EXECUTE 'WITH m AS MATERIALIZED (SELECT ' || page_columns || ' FROM crm_contactrow '
             || 'WHERE ' || where_sql || ' LIMIT ' || (cap + 1) || ') '
             || 'SELECT c.n, CASE WHEN c.n <= ' || keep || ' THEN (' || page_ids_sql
             || ') END FROM (SELECT count(*) AS n FROM m) c' INTO n, ids USING args;
    END IF;
    exact := n <= cap;
    IF NOT exact AND estimable AND hits IS NULL THEN  -- the trusted estimate, past the cap
        n := greatest(cap + 1, estimate);
    ELSIF NOT exact THEN  -- more than the cap after all: the sample's figure, if it says more
        IF hits IS NULL THEN
            EXECUTE sample_sql INTO hits, blocks USING args, percent, 0;
        END IF;
        -- matches from a handful of blocks say little: then the planner's guess
        n := greatest(cap + 1, CASE WHEN blocks >= 16 THEN round(hits * 100 / percent)
                                    ELSE estimate END);
    END IF;
    RETURN QUERY SELECT n, exact, total, 'capped', CASE WHEN exact THEN ids END, startup + cost;
END $$;
