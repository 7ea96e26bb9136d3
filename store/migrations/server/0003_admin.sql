-- Supervisors' admin API (issue 5): audit log, machine-binding indexes and
-- the blind search index of machine models.

-- Append-only audit log. Each entry is chained to the previous one:
-- hash = sha256(prev_hash || canonical entry), see store/audit.go.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,          -- user name, "cli", "demo", ...
    actor_role  TEXT NOT NULL DEFAULT '',
    via         TEXT NOT NULL DEFAULT '', -- api | cli | demo | internal
    ip          TEXT NOT NULL DEFAULT '',
    tenant_id   INTEGER NOT NULL DEFAULT 0, -- tenant the change concerns; 0: global
    action      TEXT NOT NULL,          -- e.g. machine_binding.block, key.revoke, user.create
    object_type TEXT NOT NULL DEFAULT '',
    object_id   TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '{}', -- canonical JSON; never a full key or a plain serial number
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Distinct machine models, sealed; model_hash is their keyed hash. There are
-- few of them (hundreds), so a search term is matched against the decrypted
-- models in memory and turned into model ids: a blind index that never
-- stores a model or a serial number in the clear.
CREATE TABLE machine_models (
    id         INTEGER PRIMARY KEY,
    model_hash TEXT NOT NULL UNIQUE,
    model_enc  BLOB NOT NULL
);

ALTER TABLE machines ADD COLUMN model_ref INTEGER REFERENCES machine_models (id);
CREATE INDEX machines_model_pending ON machines (id) WHERE model_ref IS NULL;

-- Machine bindings (machines with an activated key), listed per tenant or
-- across tenants, ordered by last or first seen; status and last_seen_at are
-- covered so that the status filters and the counts never read the table.
-- machines_bind_tenant is the narrow one the plain counts scan.
CREATE INDEX machines_bind_tenant ON machines (tenant_id) WHERE key_ref IS NOT NULL;
CREATE INDEX machines_bind_last_t ON machines (tenant_id, last_seen_at, id, status) WHERE key_ref IS NOT NULL;
CREATE INDEX machines_bind_first_t ON machines (tenant_id, first_seen_at, id, status, last_seen_at) WHERE key_ref IS NOT NULL;
CREATE INDEX machines_bind_last ON machines (last_seen_at, id, status) WHERE key_ref IS NOT NULL;
CREATE INDEX machines_bind_first ON machines (first_seen_at, id, status, last_seen_at) WHERE key_ref IS NOT NULL;
-- A model search reads this index only (filters and orderings covered).
CREATE INDEX machines_bind_model ON machines (model_ref, tenant_id, last_seen_at, first_seen_at, status) WHERE key_ref IS NOT NULL;
-- status leads so that status = 'blocked' is an index search, not a scan.
CREATE INDEX machines_bind_status ON machines (status, tenant_id, last_seen_at) WHERE key_ref IS NOT NULL;

-- Report filters.
CREATE INDEX reports_machine_received ON reports (machine_id, received_at);
CREATE INDEX reports_operator_received ON reports (operator, received_at);
CREATE INDEX reports_station_received ON reports (station_id, received_at);
