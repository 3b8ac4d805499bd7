-- The read model crm_contactrow follows every committed write to the three source tables.
-- This file is the current definition of its triggers (crm/db/__init__.py).
--
-- Why column-wise: each trigger writes only the columns that come from its own table, from
-- its own NEW row, with a plain UPDATE of the read row. Two transactions that write
-- different tables of one contact at once then cannot lose each other's change: the second
-- UPDATE of the read row waits for the first to commit and, under READ COMMITTED, applies
-- its SET to the row as the first left it. The former design rebuilt the whole read row
-- from a join that could not see the other transaction's uncommitted change, and the last
-- upsert won with stale columns (tests/test_readmodel_concurrency.py: 2 of 3 rounds wrong).
-- Serialising whole-row rebuilds per contact instead would make each writer wait, before
-- its commit, for locks that another writer of the same contact holds until its own commit:
-- two writers of one contact across two tables deadlock. Column-wise needs no extra lock.
--
-- search_text mixes the contact's and the address's columns. Each trigger computes it from
-- its own new values and the read row's other columns, which the UPDATE reads from the
-- latest committed version of the row (EvalPlanQual), so it is as current as the row.
--
-- Where a trigger must copy another table's values (a new contact, or a contact moved to
-- another address) it reads that address FOR SHARE: that waits for an uncommitted change of
-- the address to commit and returns the committed values, and an address change that comes
-- later waits for this transaction and then finds this contact under its address.
-- Under REPEATABLE READ or SERIALIZABLE, the same races end in a serialisation failure
-- (40001) for one of the two transactions, never in a stale row.

-- Copy of one contact's columns that are not its relationship's (used on INSERT and when a
-- contact moves to another address).
CREATE OR REPLACE FUNCTION crm_contactrow_put(u crm_appuser) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    a crm_address;
BEGIN
    SELECT * INTO STRICT a FROM crm_address WHERE id = u.address_id FOR SHARE;
    INSERT INTO crm_contactrow (
        id, first_name, last_name, gender, customer_id, phone_number, created, birthday,
        last_updated, address_id, address_street, address_street_number, address_city_code,
        address_city, address_country, relationship_id, relationship_points,
        relationship_created, relationship_last_activity, search_text)
    SELECT u.id, u.first_name, u.last_name, u.gender, u.customer_id, u.phone_number,
           u.created, u.birthday, u.last_updated, a.id, a.street, a.street_number,
           a.city_code, a.city, a.country, r.id, r.points, r.created, r.last_activity,
           crm_search_text(u.first_name, u.last_name, u.customer_id, u.phone_number,
                           a.street, a.city)
      FROM (SELECT 1) one
      LEFT JOIN crm_customerrelationship r ON r.appuser_id = u.id
    ON CONFLICT (id) DO UPDATE SET
        first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
        gender = EXCLUDED.gender, customer_id = EXCLUDED.customer_id,
        phone_number = EXCLUDED.phone_number, created = EXCLUDED.created,
        birthday = EXCLUDED.birthday, last_updated = EXCLUDED.last_updated,
        address_id = EXCLUDED.address_id, address_street = EXCLUDED.address_street,
        address_street_number = EXCLUDED.address_street_number,
        address_city_code = EXCLUDED.address_city_code,
        address_city = EXCLUDED.address_city, address_country = EXCLUDED.address_country,
        search_text = EXCLUDED.search_text,  -- the relationship's columns are its trigger's
        -- (EXCLUDED holds the keys the insert's trigger computed, schema.sql)
        first_name_key = EXCLUDED.first_name_key, last_name_key = EXCLUDED.last_name_key,
        address_street_key = EXCLUDED.address_street_key,
        address_city_key = EXCLUDED.address_city_key;
END $$;

CREATE OR REPLACE FUNCTION crm_appuser_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.id <> OLD.id) THEN
        DELETE FROM crm_contactrow WHERE id = OLD.id;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.id <> OLD.id OR NEW.address_id <> OLD.address_id THEN
        PERFORM crm_contactrow_put(NEW);
        RETURN NULL;
    END IF;
    UPDATE crm_contactrow SET
        first_name = NEW.first_name, last_name = NEW.last_name, gender = NEW.gender,
        customer_id = NEW.customer_id, phone_number = NEW.phone_number,
        created = NEW.created, birthday = NEW.birthday, last_updated = NEW.last_updated,
        search_text = crm_search_text(NEW.first_name, NEW.last_name, NEW.customer_id,
                                      NEW.phone_number, address_street, address_city)
     WHERE id = NEW.id;
    IF NOT FOUND THEN  -- a read row lost outside the triggers: this write restores it
        PERFORM crm_contactrow_put(NEW);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION crm_address_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE crm_contactrow SET
        address_id = NEW.id, address_street = NEW.street,
        address_street_number = NEW.street_number, address_city_code = NEW.city_code,
        address_city = NEW.city, address_country = NEW.country,
        search_text = crm_search_text(first_name, last_name, customer_id, phone_number,
                                      NEW.street, NEW.city)
     WHERE address_id = OLD.id;  -- the (address_id, id) index of the list finds them
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION crm_relationship_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.appuser_id <> OLD.appuser_id) THEN
        UPDATE crm_contactrow SET
            relationship_id = NULL, relationship_points = NULL, relationship_created = NULL,
            relationship_last_activity = NULL
         WHERE id = OLD.appuser_id AND relationship_id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE crm_contactrow SET
            relationship_id = NEW.id, relationship_points = NEW.points,
            relationship_created = NEW.created, relationship_last_activity = NEW.last_activity
         WHERE id = NEW.appuser_id;
    END IF;
    RETURN NULL;
END $$;

-- What each read row must hold: the source tables joined (manage.py check_readmodel
-- compares the two, crm_contactrow_refresh() copies from it).
DROP VIEW IF EXISTS crm_contactrow_source;
CREATE VIEW crm_contactrow_source AS
SELECT u.id, u.first_name, u.last_name, u.gender, u.customer_id, u.phone_number, u.created,
       u.birthday, u.last_updated, a.id AS address_id, a.street AS address_street,
       a.street_number AS address_street_number, a.city_code AS address_city_code,
       a.city AS address_city, a.country AS address_country, r.id AS relationship_id,
       r.points AS relationship_points, r.created AS relationship_created,
       r.last_activity AS relationship_last_activity,
       -- crm_search_text() inlined: the call costs 16 us a row, so a check of 3M rows
       -- spent 50 s in it (check_readmodel's test proves the two agree)
       lower(public.unaccent('public.unaccent'::regdictionary, concat_ws(' ', u.first_name,
             u.last_name, u.customer_id, u.phone_number, a.street, a.city))) AS search_text
  FROM crm_appuser u
  JOIN crm_address a ON a.id = u.address_id
  LEFT JOIN crm_customerrelationship r ON r.appuser_id = u.id;

-- Rebuild the read rows of the given contacts from the source tables (manage.py
-- check_readmodel --repair). The source rows are locked first (FOR SHARE waits for any
-- uncommitted writer of them, and holds off new ones until this transaction ends), so the
-- rebuild copies committed values that cannot change under it; the statement after the
-- locks takes a fresh snapshot that sees them.
CREATE OR REPLACE FUNCTION crm_contactrow_refresh(ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM crm_appuser u JOIN crm_address a ON a.id = u.address_id
     WHERE u.id = ANY(ids) ORDER BY u.id FOR SHARE;
    PERFORM 1 FROM crm_customerrelationship WHERE appuser_id = ANY(ids)
     ORDER BY appuser_id FOR SHARE;
    DELETE FROM crm_contactrow c
     WHERE c.id = ANY(ids) AND NOT EXISTS (SELECT 1 FROM crm_appuser u WHERE u.id = c.id);
    INSERT INTO crm_contactrow (
        id, first_name, last_name, gender, customer_id, phone_number, created, birthday,
        last_updated, address_id, address_street, address_street_number, address_city_code,
        address_city, address_country, relationship_id, relationship_points,
        relationship_created, relationship_last_activity, search_text)
    SELECT id, first_name, last_name, gender, customer_id, phone_number, created, birthday,
        last_updated, address_id, address_street, address_street_number, address_city_code,
        address_city, address_country, relationship_id, relationship_points,
        relationship_created, relationship_last_activity, search_text
      FROM crm_contactrow_source WHERE id = ANY(ids)
    ON CONFLICT (id) DO UPDATE SET
        first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
        gender = EXCLUDED.gender, customer_id = EXCLUDED.customer_id,
        phone_number = EXCLUDED.phone_number, created = EXCLUDED.created,
        birthday = EXCLUDED.birthday, last_updated = EXCLUDED.last_updated,
        address_id = EXCLUDED.address_id, address_street = EXCLUDED.address_street,
        address_street_number = EXCLUDED.address_street_number,
        address_city_code = EXCLUDED.address_city_code,
        address_city = EXCLUDED.address_city, address_country = EXCLUDED.address_country,
        relationship_id = EXCLUDED.relationship_id,
        relationship_points = EXCLUDED.relationship_points,
        relationship_created = EXCLUDED.relationship_created,
        relationship_last_activity = EXCLUDED.relationship_last_activity,
        search_text = EXCLUDED.search_text,
        -- (EXCLUDED holds the keys the insert's trigger computed, schema.sql)
        first_name_key = EXCLUDED.first_name_key, last_name_key = EXCLUDED.last_name_key,
        address_street_key = EXCLUDED.address_street_key,
        address_city_key = EXCLUDED.address_city_key;
END $$;

CREATE OR REPLACE FUNCTION crm_touch_last_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_updated := now();
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS crm_appuser_touch ON crm_appuser;
CREATE TRIGGER crm_appuser_touch BEFORE UPDATE ON crm_appuser
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION crm_touch_last_updated();
DROP TRIGGER IF EXISTS crm_appuser_sync ON crm_appuser;
CREATE CONSTRAINT TRIGGER crm_appuser_sync AFTER INSERT OR UPDATE OR DELETE ON crm_appuser
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION crm_appuser_sync();
DROP TRIGGER IF EXISTS crm_address_sync ON crm_address;
CREATE CONSTRAINT TRIGGER crm_address_sync AFTER UPDATE ON crm_address
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION crm_address_sync();
DROP TRIGGER IF EXISTS crm_relationship_sync ON crm_customerrelationship;
CREATE CONSTRAINT TRIGGER crm_relationship_sync AFTER INSERT OR UPDATE OR DELETE
    ON crm_customerrelationship DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION crm_relationship_sync();
