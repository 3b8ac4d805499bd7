-- crm_readafter: each user's last write position on the primary, for read-your-writes with
-- replicas (crm/replicas.py). Unlogged: written after every API write, so it writes no WAL
-- of its own; only the primary reads it (a replica cannot read an unlogged table), and a
-- crash that empties it only lets a user's next reads come from a replica that may lag.
CREATE UNLOGGED TABLE IF NOT EXISTS crm_readafter (
    user_id integer PRIMARY KEY,
    lsn pg_lsn NOT NULL
);
