-- eidgate schema, version 2 (SQLite): the means lifecycle (R-ISS-2/3, R-LIFE-1..4), the
-- holder's acceptances (R-REG-1), proofing facts (R-REG-3/4), operators and their roles
-- (R-SEC-3) and the answers to idempotent helpdesk requests.
-- Table and column names are identical in migrations/postgres/0002_lifecycle.sql.
-- Secrets are stored only as argon2id PHC strings made by the caller (R-SEC-2).

-- Who registered and approved a means (four-eyes, R-ISS-3); the activation code and the
-- revocation secret (argon2id PHC) with their attempt counters. NULL for imported means
-- and once a code is used.
ALTER TABLE means ADD COLUMN registered_by TEXT REFERENCES persons (id);
ALTER TABLE means ADD COLUMN approved_by TEXT REFERENCES persons (id);
ALTER TABLE means ADD COLUMN activation_code TEXT;
ALTER TABLE means ADD COLUMN activation_expires_at INTEGER;
ALTER TABLE means ADD COLUMN activation_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE means ADD COLUMN revocation_secret TEXT;
ALTER TABLE means ADD COLUMN revocation_failures INTEGER NOT NULL DEFAULT 0;

-- The expiry sweep: issued means whose activation code ran out, active means whose
-- validity ended (one partial index per arm of the sweep's OR).
CREATE INDEX means_issued_activation_expiry ON means (activation_expires_at) WHERE status = 'issued';
CREATE INDEX means_active_validity_expiry ON means (valid_until) WHERE status = 'active';

-- Operators (R-SEC-3): a person with roles, comma-separated role names, sorted.
CREATE TABLE operators (
    person_id  TEXT    NOT NULL PRIMARY KEY REFERENCES persons (id),
    roles      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The holder's explicit acceptance of the terms of use and security advice, with the
-- versions and the time (R-REG-1, R-ISS-3). `id` orders them.
CREATE TABLE acceptances (
    id                      INTEGER NOT NULL PRIMARY KEY,
    person_id               TEXT    NOT NULL REFERENCES persons (id),
    means_id                TEXT    NOT NULL REFERENCES means (id),
    terms_version           TEXT    NOT NULL,
    security_advice_version TEXT    NOT NULL,
    accepted_at             INTEGER NOT NULL
);
CREATE INDEX acceptances_person_id ON acceptances (person_id, id);

-- How an identity was proofed, as facts (R-REG-3, R-REG-4): the serde form of
-- `domain::person::ProofingRecord`. `id` orders them.
CREATE TABLE proofing_records (
    id         INTEGER NOT NULL PRIMARY KEY,
    person_id  TEXT    NOT NULL REFERENCES persons (id),
    record     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX proofing_records_person_id ON proofing_records (person_id, id);

-- Answers to operator requests sent with an `Idempotency-Key`: a retry gets the same
-- answer. `request_sha256` catches a key reused for another request.
-- `operator_id` is deliberately no foreign key: a failed insert must mean only "this key
-- was used" (Conflict), and the row is a cached answer, not a record (the audit log is).
CREATE TABLE idempotency (
    operator_id    TEXT    NOT NULL,
    idem_key       TEXT    NOT NULL,
    request_sha256 TEXT    NOT NULL,
    status         INTEGER NOT NULL,
    body           TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (operator_id, idem_key)
);

-- A subject's history (helpdesk "history", holder's own events), in chain order.
CREATE INDEX audit_log_subject_seq ON audit_log (subject, seq);
