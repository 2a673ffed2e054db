-- eidgate schema, version 12 (sqlite): separation of duties (R-SEC-3, R-SEC-4).
-- Two-person actions: a helpdesk request that a security officer approves or rejects.
CREATE TABLE approvals (
    id             TEXT    NOT NULL PRIMARY KEY,
    means_id       TEXT    NOT NULL REFERENCES means (id),
    command        TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    evidence_ref   TEXT    NOT NULL,
    requested_by   TEXT    NOT NULL REFERENCES persons (id),
    requested_at   INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    decided_by     TEXT    REFERENCES persons (id),
    decided_at     INTEGER
);
CREATE INDEX approvals_state ON approvals (state, requested_at);

-- Operator password history: argon2 PHC strings only (R-SEC-4: expiry, no reuse).
CREATE TABLE operator_passwords (
    means_id       TEXT    NOT NULL REFERENCES means (id),
    password_phc   TEXT    NOT NULL,
    set_at         INTEGER NOT NULL
);
CREATE INDEX operator_passwords_means ON operator_passwords (means_id, set_at);
