-- Operators who signed in at this station while it was online: a bcrypt
-- verifier of the password, so the same operator can sign in while the
-- station is offline until expires_at. A sign-in the server refuses deletes
-- the row.
CREATE TABLE operator_verifiers (
    username     TEXT PRIMARY KEY,
    verifier     TEXT NOT NULL,
    role         TEXT NOT NULL DEFAULT '',
    tenant_id    INTEGER NOT NULL DEFAULT 0,
    signed_in_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
