-- KeyStation station: the offline key buffer, the report outbox, sync state
-- and an event log. Times are TEXT in UTC, fixed width, so they sort as
-- strings. Keys and hardware are sealed (seal.Box); lookups use keyed hashes.

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- USB key lists imported in batch mode; a file is imported once (sha256).
CREATE TABLE key_sources (
    id          INTEGER PRIMARY KEY,
    file_name   TEXT NOT NULL,
    path        TEXT NOT NULL DEFAULT '',
    sha256      TEXT NOT NULL UNIQUE,
    lines       INTEGER NOT NULL DEFAULT 0,
    imported    INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0,
    imported_at TEXT NOT NULL
);

-- Keys the station holds: leased from the server or read from a USB list.
-- machine_fp is the keyed hash of the machine (model + serial number, upper
-- case, trimmed) the key is assigned to; machine_enc its sealed identity.
CREATE TABLE keys (
    id          INTEGER PRIMARY KEY,
    key_id      INTEGER NOT NULL UNIQUE,
    key_hash    TEXT NOT NULL UNIQUE,
    key_enc     BLOB NOT NULL,
    edition     TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('lease', 'usb')),
    source_ref  INTEGER REFERENCES key_sources (id),
    source_line INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL CHECK (state IN ('available', 'assigned', 'activated', 'failed', 'revoked', 'released')),
    machine_fp  TEXT,
    machine_enc BLOB,
    acked       INTEGER NOT NULL DEFAULT 1, -- lease grants: 0 until the server got our ack
    review      INTEGER NOT NULL DEFAULT 0,
    received_at TEXT NOT NULL,
    assigned_at TEXT,
    updated_at  TEXT NOT NULL
);
CREATE INDEX keys_pick ON keys (edition, state, source, id);
CREATE INDEX keys_pick_list ON keys (edition, state, source_ref, id);
CREATE INDEX keys_state ON keys (state, source);
CREATE INDEX keys_machine ON keys (machine_fp, state);
CREATE INDEX keys_unacked ON keys (acked) WHERE acked = 0;

-- Reports waiting for (or delivered to) the server, in seq order. body_enc is
-- the sealed JSON of the keystation.SyncReport.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid            TEXT NOT NULL UNIQUE,
    key_ref         INTEGER NOT NULL REFERENCES keys (id),
    key_id          INTEGER NOT NULL,
    edition         TEXT NOT NULL,
    machine_fp      TEXT NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('activated', 'key-fault', 'pc-fault')),
    result_code_raw TEXT NOT NULL DEFAULT '',
    simulated       INTEGER NOT NULL DEFAULT 0,
    body_enc        BLOB NOT NULL,
    body_size       INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    last_error      TEXT,
    sent_at         TEXT,
    result_status   TEXT NOT NULL DEFAULT '', -- '' (waiting) | applied | duplicate | conflict | rejected
    result_code     TEXT NOT NULL DEFAULT '',
    result_message  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL AND result_status <> 'rejected';
CREATE INDEX outbox_key ON outbox (key_ref);

-- What happened on this station; never holds a full product key.
CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL,
    data    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_at ON events (at);
