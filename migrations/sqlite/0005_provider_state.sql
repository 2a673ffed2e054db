-- Provider-wide state (R-SUP-3): e.g. "termination" = the time issuance was stopped.
CREATE TABLE provider_state (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
