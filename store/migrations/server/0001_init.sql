-- KeyStation sync server: key pools, machines, users, reports.
-- Times are TEXT in UTC, fixed width (2006-01-02T15:04:05.000000Z), so they
-- sort and compare as strings on SQLite and PostgreSQL alike.

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
INSERT INTO tenants (id, name, created_at) VALUES (1, 'default', '1970-01-01T00:00:00.000000Z');

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('super-admin', 'tenant-admin', 'operator')),
    tenant_id     INTEGER NOT NULL REFERENCES tenants (id),
    disabled      INTEGER NOT NULL DEFAULT 0,
    demo          INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE editions (
    id         INTEGER PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    patterns   TEXT NOT NULL, -- JSON array of lower-case substrings
    low_stock  INTEGER NOT NULL DEFAULT 50,
    created_at TEXT NOT NULL
);
INSERT INTO editions (slug, name, patterns, low_stock, created_at) VALUES
    ('home', 'Home', '["home"]', 50, '1970-01-01T00:00:00.000000Z'),
    ('pro',  'Pro',  '["pro"]',  50, '1970-01-01T00:00:00.000000Z');

CREATE TABLE stations (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    tenant_id  INTEGER NOT NULL DEFAULT 1 REFERENCES tenants (id),
    created_at TEXT NOT NULL
);

-- A machine is a PC: serial number + model. Both are sealed; fingerprint is
-- their keyed hash, used for lookups. hardware_summary and os_info are the
-- plain summaries supervisors list (seed 001); the details are sealed.
CREATE TABLE machines (
    id               INTEGER PRIMARY KEY,
    tenant_id        INTEGER NOT NULL DEFAULT 1 REFERENCES tenants (id),
    fingerprint      TEXT NOT NULL UNIQUE,
    sn_hash          TEXT NOT NULL,
    identity_enc     BLOB NOT NULL,
    hardware_enc     BLOB,
    hardware_summary TEXT,
    os_info          TEXT,
    last_ip          TEXT,
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'blocked')),
    block_reason     TEXT,
    burnt            INTEGER NOT NULL DEFAULT 0,
    key_ref          INTEGER, -- the key activated on it (seed 001 "license")
    activated_at     TEXT,
    first_seen_at    TEXT NOT NULL,
    last_seen_at     TEXT NOT NULL
);
CREATE INDEX machines_sn_hash ON machines (sn_hash);
CREATE INDEX machines_last_seen ON machines (tenant_id, last_seen_at);
CREATE INDEX machines_first_seen ON machines (tenant_id, first_seen_at);

-- Product keys: sealed value, keyed hash for lookups, never the plain key.
CREATE TABLE product_keys (
    id         INTEGER PRIMARY KEY,
    key_id     INTEGER NOT NULL UNIQUE, -- the 13-digit Product Key ID
    key_hash   TEXT NOT NULL UNIQUE,
    key_enc    BLOB NOT NULL,
    edition_id INTEGER NOT NULL REFERENCES editions (id),
    tenant_id  INTEGER NOT NULL DEFAULT 1 REFERENCES tenants (id),
    state      TEXT NOT NULL CHECK (state IN ('available', 'leased', 'assigned', 'activated', 'failed', 'revoked')),
    station_id INTEGER REFERENCES stations (id),
    machine_id INTEGER REFERENCES machines (id),
    source     TEXT NOT NULL DEFAULT '',
    demo       INTEGER NOT NULL DEFAULT 0,
    review     INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX product_keys_pick ON product_keys (tenant_id, edition_id, state, id);
CREATE INDEX product_keys_machine ON product_keys (machine_id, state);
CREATE INDEX product_keys_station ON product_keys (station_id, state);

-- Every state change of a key, written in the same transaction as the change.
-- Append-only: the triggers refuse updates and deletes.
CREATE TABLE key_history (
    id             INTEGER PRIMARY KEY,
    key_ref        INTEGER NOT NULL REFERENCES product_keys (id),
    from_state     TEXT NOT NULL, -- '' when the key is new
    to_state       TEXT NOT NULL,
    reason         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    machine_id     INTEGER REFERENCES machines (id),
    station_id     INTEGER REFERENCES stations (id),
    report_uuid    TEXT,
    result_message TEXT, -- verbatim from the activation service
    result_code    TEXT, -- raw error code, verbatim
    hresult        TEXT,
    review         INTEGER NOT NULL DEFAULT 0,
    at             TEXT NOT NULL
);
CREATE INDEX key_history_key ON key_history (key_ref, id);
CREATE TRIGGER key_history_no_update BEFORE UPDATE ON key_history
BEGIN
    SELECT RAISE(ABORT, 'key_history is append-only');
END;
CREATE TRIGGER key_history_no_delete BEFORE DELETE ON key_history
BEGIN
    SELECT RAISE(ABORT, 'key_history is append-only');
END;

-- Activation reports, applied at most once each by uuid.
CREATE TABLE reports (
    id             INTEGER PRIMARY KEY,
    uuid           TEXT NOT NULL UNIQUE,
    key_ref        INTEGER REFERENCES product_keys (id),
    key_id         INTEGER NOT NULL,
    machine_id     INTEGER REFERENCES machines (id),
    station_id     INTEGER REFERENCES stations (id),
    operator       TEXT NOT NULL DEFAULT '',
    edition        TEXT NOT NULL DEFAULT '',
    os_version     TEXT NOT NULL DEFAULT '',
    success        INTEGER NOT NULL,
    result_message TEXT NOT NULL,
    result_code    TEXT NOT NULL DEFAULT '',
    fault_class    TEXT NOT NULL DEFAULT '',
    hresult        TEXT NOT NULL DEFAULT '',
    outcome        TEXT NOT NULL, -- applied | conflict
    simulated      INTEGER NOT NULL DEFAULT 0,
    reported_at    TEXT NOT NULL,
    received_at    TEXT NOT NULL
);
CREATE INDEX reports_received ON reports (received_at);
CREATE INDEX reports_key ON reports (key_ref);
