-- crm_points_add(): one points change (POST /crm/appusers/<id>/points, crm/services.py), in
-- one call. Returns the new balance, or NULL when the contact does not exist or the change
-- is refused (the caller says which).
--
-- - The contact's row is locked FOR KEY SHARE: that waits for a delete of the contact (and
--   holds it off), but not for a PATCH, so points and edits do not queue on each other.
-- - The balance changes by the delta only while it stays within 0..2147483647, in one
--   statement: the relationship's row lock makes concurrent changes queue, and each applies
--   its delta to the balance the one before it left, so no increment is lost. A contact
--   without a relationship gets one on its first gain.
-- - The change is appended to the ledger crm_pointschange with its reason and balance.
-- - One call is one statement, so one round trip and no BEGIN/COMMIT of its own (four
--   statements in a transaction before). Measured at 3M contacts, in process: 1.8 ms a
--   change either way, of which the read model's row (its trigger rewrites the row, and a
--   changed indexed column means an entry in each of its 34 indexes) takes about 1.4 ms;
--   the same change with the trigger disabled took 0.4 ms.
CREATE OR REPLACE FUNCTION crm_points_add(p_contact bigint, p_delta integer, p_reason text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    new_balance integer;
BEGIN
    PERFORM 1 FROM crm_appuser WHERE id = p_contact FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF p_delta > 0 THEN
        INSERT INTO crm_customerrelationship AS r (appuser_id, points, created, last_activity)
        VALUES (p_contact, p_delta, now(), now())
        ON CONFLICT (appuser_id) DO UPDATE
           SET points = r.points + EXCLUDED.points, last_activity = now()
         WHERE r.points::bigint + EXCLUDED.points <= 2147483647
        RETURNING points INTO new_balance;
    ELSE
        UPDATE crm_customerrelationship SET points = points + p_delta, last_activity = now()
         WHERE appuser_id = p_contact AND points + p_delta >= 0
        RETURNING points INTO new_balance;
    END IF;
    IF new_balance IS NOT NULL THEN
        INSERT INTO crm_pointschange (appuser_id, delta, reason, balance, created)
        VALUES (p_contact, p_delta, p_reason, new_balance, now());
    END IF;
    RETURN new_balance;
END $$;
