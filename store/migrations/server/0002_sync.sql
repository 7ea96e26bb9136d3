-- Station enrolment, credentials, leases and the sync protocol.

ALTER TABLE stations ADD COLUMN credential_hash TEXT;
ALTER TABLE stations ADD COLUMN hostname TEXT NOT NULL DEFAULT '';
ALTER TABLE stations ADD COLUMN revoked_at TEXT;
ALTER TABLE stations ADD COLUMN last_sync_at TEXT;
ALTER TABLE stations ADD COLUMN last_ip TEXT;
ALTER TABLE stations ADD COLUMN clock_skew_ms INTEGER;
ALTER TABLE stations ADD COLUMN backlog INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stations ADD COLUMN buffer TEXT NOT NULL DEFAULT '{}';  -- unused leased keys per edition, as the station reported them
ALTER TABLE stations ADD COLUMN targets TEXT NOT NULL DEFAULT '{}'; -- buffer levels the station asked for
ALTER TABLE stations ADD COLUMN demo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stations ADD COLUMN file_key_enc BLOB; -- sealed key of the station's USB sync files

-- Tokens a supervisor creates to enrol stations; only their hash is kept.
CREATE TABLE enrol_tokens (
    id         INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL DEFAULT '',
    tenant_id  INTEGER NOT NULL DEFAULT 1 REFERENCES tenants (id),
    uses_left  INTEGER NOT NULL,
    expires_at TEXT NOT NULL,
    demo       INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- A grant is re-sent until the station acknowledges it.
ALTER TABLE product_keys ADD COLUMN lease_acked INTEGER NOT NULL DEFAULT 0;
CREATE INDEX product_keys_station_edition ON product_keys (station_id, state, edition_id);

ALTER TABLE reports ADD COLUMN conflict_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE reports ADD COLUMN provenance TEXT NOT NULL DEFAULT '';
CREATE INDEX reports_station ON reports (station_id, outcome);
CREATE INDEX key_history_station ON key_history (station_id, reason);
