"""The read model `crm_contactrow`, its sync triggers and the timestamp trigger.

See crm/models.py for why the list reads from one denormalised table.
"""

from django.db import migrations

FIELDS = """
    u.id, u.first_name, u.last_name, u.gender, u.customer_id, u.phone_number, u.created,
    u.birthday, u.last_updated,
    a.id, a.street, a.street_number, a.city_code, a.city, a.country,
    r.id, r.points, r.created, r.last_activity,
    crm_search_text(u.first_name, u.last_name, u.customer_id, u.phone_number, a.street, a.city)
"""
COLUMNS = """
    id, first_name, last_name, gender, customer_id, phone_number, created, birthday,
    last_updated, address_id, address_street, address_street_number, address_city_code,
    address_city, address_country, relationship_id, relationship_points, relationship_created,
    relationship_last_activity, search_text
"""
SET_ALL = ", ".join(
    f"{c} = EXCLUDED.{c}" for c in (x.strip() for x in COLUMNS.split(",")) if c != "id"
)

FORWARD = f"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- The one definition of "searchable text": lower-cased, accents removed, fields joined by
-- a space (search terms never contain whitespace, so a term cannot match across fields).
CREATE FUNCTION crm_fold(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN lower(public.unaccent('public.unaccent'::regdictionary, value));

CREATE FUNCTION crm_search_text(VARIADIC parts text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN crm_fold(array_to_string(parts, ' '));

CREATE TABLE crm_contactrow (
    id bigint PRIMARY KEY,
    first_name varchar(100) NOT NULL,
    last_name varchar(100) NOT NULL,
    gender varchar(1) NOT NULL,
    customer_id varchar(32) NOT NULL,
    phone_number varchar(20) NOT NULL,
    created timestamptz NOT NULL,
    birthday date,
    last_updated timestamptz NOT NULL,
    address_id bigint NOT NULL,
    address_street varchar(200) NOT NULL,
    address_street_number varchar(16) NOT NULL,
    address_city_code varchar(16) NOT NULL,
    address_city varchar(100) NOT NULL,
    address_country varchar(2) NOT NULL,
    relationship_id bigint,
    relationship_points integer,
    relationship_created timestamptz,
    relationship_last_activity timestamptz,
    search_text text NOT NULL
);

-- Rebuild the read rows of the given contacts from the three source tables.
CREATE FUNCTION crm_contactrow_refresh(ids bigint[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM crm_contactrow c
     WHERE c.id = ANY(ids) AND NOT EXISTS (SELECT 1 FROM crm_appuser u WHERE u.id = c.id);
    INSERT INTO crm_contactrow ({COLUMNS})
    SELECT {FIELDS}
      FROM crm_appuser u
      JOIN crm_address a ON a.id = u.address_id
      LEFT JOIN crm_customerrelationship r ON r.appuser_id = u.id
     WHERE u.id = ANY(ids)
    ON CONFLICT (id) DO UPDATE SET {SET_ALL};
$$;

CREATE FUNCTION crm_appuser_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM crm_contactrow_refresh(ARRAY[OLD.id]);
    ELSE
        PERFORM crm_contactrow_refresh(ARRAY[NEW.id]);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION crm_address_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm_contactrow_refresh(ARRAY(
        SELECT id FROM crm_appuser WHERE address_id = NEW.id));
    RETURN NULL;
END $$;

CREATE FUNCTION crm_relationship_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM crm_contactrow_refresh(ARRAY[OLD.appuser_id]);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM crm_contactrow_refresh(ARRAY[NEW.appuser_id]);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION crm_touch_last_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_updated := now();
    RETURN NEW;
END $$;

CREATE TRIGGER crm_appuser_touch BEFORE UPDATE ON crm_appuser
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION crm_touch_last_updated();
CREATE TRIGGER crm_appuser_sync AFTER INSERT OR UPDATE OR DELETE ON crm_appuser
    FOR EACH ROW EXECUTE FUNCTION crm_appuser_sync();
CREATE TRIGGER crm_address_sync AFTER UPDATE ON crm_address
    FOR EACH ROW EXECUTE FUNCTION crm_address_sync();
CREATE TRIGGER crm_relationship_sync AFTER INSERT OR UPDATE OR DELETE ON crm_customerrelationship
    FOR EACH ROW EXECUTE FUNCTION crm_relationship_sync();
"""

BACKWARD = """
DROP TABLE crm_contactrow;
DROP TRIGGER crm_appuser_touch ON crm_appuser;
DROP TRIGGER crm_appuser_sync ON crm_appuser;
DROP TRIGGER crm_address_sync ON crm_address;
DROP TRIGGER crm_relationship_sync ON crm_customerrelationship;
DROP FUNCTION crm_appuser_sync, crm_address_sync, crm_relationship_sync,
    crm_touch_last_updated, crm_contactrow_refresh, crm_search_text, crm_fold;
"""


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
