-- eidgate schema, version 1 (SQLite).
-- Table and column names are identical in migrations/postgres/0001_init.sql: one SQL text
-- in src/store/sql.rs serves both engines. Times are Unix seconds (UTC), ids are uuid
-- text, JSON is stored as text (kept byte-for-byte, so audit hashes re-verify).

-- Relying parties: the whole `domain::client::Client` serde form in `config`.
CREATE TABLE clients (
    client_id  TEXT    NOT NULL PRIMARY KEY,
    config     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Natural persons with the eIDAS minimum data set; optional attributes as JSON.
CREATE TABLE persons (
    id                 TEXT    NOT NULL PRIMARY KEY,
    identifier_country TEXT    NOT NULL,
    identifier_code    TEXT    NOT NULL,
    given_name         TEXT    NOT NULL,
    family_name        TEXT    NOT NULL,
    birthdate          TEXT    NOT NULL,
    proofing_loa       TEXT    NOT NULL,
    attributes         TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    UNIQUE (identifier_country, identifier_code)
);

-- eID means. `credential` holds only what the caller stored (an argon2 PHC string for
-- password means), never a secret in clear (R-AUTH-3).
CREATE TABLE means (
    id          TEXT    NOT NULL PRIMARY KEY,
    holder_id   TEXT    NOT NULL REFERENCES persons (id),
    kind        TEXT    NOT NULL,
    loa         TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    valid_from  INTEGER NOT NULL,
    valid_until INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    credential  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX means_holder_id ON means (holder_id);

-- Refresh tokens, by SHA-256 fingerprint only. Revoked per grant (reuse) and per means
-- (suspension, revocation: R-LIFE-4).
CREATE TABLE refresh_tokens (
    token_sha256 TEXT    NOT NULL PRIMARY KEY,
    grant_id     TEXT    NOT NULL,
    client_id    TEXT    NOT NULL,
    person_id    TEXT    NOT NULL REFERENCES persons (id),
    means_id     TEXT    NOT NULL REFERENCES means (id),
    grant_data   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_means_id ON refresh_tokens (means_id);

-- The hash-chained audit log (R-LOG-1, R-LOG-2): append-only.
CREATE TABLE audit_log (
    seq        INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 1),
    time       INTEGER NOT NULL,
    event_type TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    prev_hash  BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash       BLOB    NOT NULL CHECK (length(hash) = 32)
);

-- Append-only: the application never updates or deletes audit records. (A tamper test
-- must drop these triggers first, as an attacker with database access would.)
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- The chain head: one row, locked first by every audited transaction so the chain
-- stays gap-free under concurrent writers.
CREATE TABLE audit_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB    NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));
