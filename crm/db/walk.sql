-- crm_walk_ahead(): whether a walk of a sort key's index that fell short of its page in its
-- first step goes on to its budget (crm/selectors/budget.py Probe, strategies.first_rows).
--
-- `sample_sql` counts, in a block sample of the walk's range in the walk's order, the
-- sampled matches, the position of the first of them (1-based) and the sampled rows; its
-- values arrive in `args`, referenced as ($1[n])::type like crm_count()'s. From them: `gap`,
-- the sample's rows per match from its first match on, which is the table's too; and the
-- rows before its first match, which stand for `scale` times as many of the table's, less
-- the matches the sample skipped there (about a gap's worth of its rows). The walk goes on
-- if it expects its `wanted` matches within `budget` rows, or if fewer than `min_hits`
-- matches were sampled, which say too little.
--
-- A function, not a subquery of the page's statement: the sample is planned only when the
-- first step falls short. As a subquery it was planned on every walk of more than
-- PROBE_FROM rows, 0.4 ms of planning on four in ten requests of the random survey.
-- STABLE, so that the planner may evaluate it once, as the gating condition it is.
CREATE OR REPLACE FUNCTION crm_walk_ahead(
    sample_sql text, args text[], wanted integer, budget bigint, scale float8, min_hits integer)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
DECLARE
    hits bigint;
    first bigint;
    sampled bigint;
    gap float8;
BEGIN
    EXECUTE sample_sql INTO hits, first, sampled USING args;
    IF hits < min_hits THEN
        RETURN true;
    END IF;
    gap := (sampled - first + 1)::float8 / hits;
    RETURN greatest(first - 1 - gap, 0) * scale + wanted * gap <= budget;
END $$;
