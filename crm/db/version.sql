-- The read model's version: a number that changes whenever crm_contactrow may have changed,
-- so that a list result counted once can be served again while it has not (crm/selectors/
-- results.py keeps the sorted ids of a counted result for the pages that follow).
--
-- Every statement that writes crm_contactrow (the triggers of contactrow_sync.sql, a repair,
-- hand-written SQL) bumps the sequence after its rows are written, holding a shared advisory
-- lock until its transaction ends (crm_contactrow_changed()). A reader asks for the version
-- with the lock taken exclusively for an instant (crm_contactrow_settled_version()): it gets
-- NULL while any writer is in flight. Otherwise every writer that bumped the sequence up to
-- the version it read has committed or rolled back, so a count whose snapshot is taken after
-- it sees all of their rows; and any write it cannot see bumps the sequence past that
-- version. A result is therefore current exactly while the sequence's last value is still
-- the version it was counted at (crm_contactrow_version's last_value, read without a lock).
-- A sequence is not transactional: a writer that rolls back leaves its bump, which only
-- costs a recount. Writers take the shared lock together, without waiting for each other.
--
-- The seed writes with the triggers off and bumps the version itself (crm/seeding.py).
CREATE SEQUENCE IF NOT EXISTS crm_contactrow_version;

-- 7 363 872: the lock's key, in PostgreSQL's one advisory lock space per database ("crm" on
-- a phone keypad).
CREATE OR REPLACE FUNCTION crm_contactrow_changed() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(7363872);
    PERFORM nextval('crm_contactrow_version');
END $$;

CREATE OR REPLACE FUNCTION crm_contactrow_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm_contactrow_changed();
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS crm_contactrow_written ON crm_contactrow;
CREATE TRIGGER crm_contactrow_written AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON crm_contactrow FOR EACH STATEMENT EXECUTE FUNCTION crm_contactrow_written();

-- The version, or NULL while a writer of crm_contactrow is in flight (see above). Called in
-- a transaction of its own (autocommit): the lock is held to the transaction's end, and a
-- lock held for a session could outlive an error and stop every writer.
CREATE OR REPLACE FUNCTION crm_contactrow_settled_version() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    IF pg_try_advisory_xact_lock(7363872) THEN
        RETURN (SELECT last_value FROM crm_contactrow_version);
    END IF;
    RETURN NULL;
END $$;
