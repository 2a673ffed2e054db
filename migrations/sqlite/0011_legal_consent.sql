-- Consents to the release of claims (R-DATA-4), legal persons (R-REG-5, R-DATA-2) and
-- mandates binding a natural person to a legal person (R-BIND-1).
CREATE TABLE consents (
    person_id  TEXT    NOT NULL REFERENCES persons (id),
    client_id  TEXT    NOT NULL,
    claims     TEXT    NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (person_id, client_id)
);

CREATE TABLE legal_persons (
    id                 TEXT    NOT NULL PRIMARY KEY,
    identifier         TEXT    NOT NULL UNIQUE,
    legal_name         TEXT    NOT NULL,
    legal_form         TEXT    NOT NULL,
    attributes         TEXT    NOT NULL,
    register_source    TEXT    NOT NULL,
    register_reference TEXT    NOT NULL,
    checked_by         TEXT    NOT NULL,
    created_at         INTEGER NOT NULL
);

CREATE TABLE mandates (
    id                 TEXT    NOT NULL PRIMARY KEY,
    legal_person_id    TEXT    NOT NULL REFERENCES legal_persons (id),
    person_id          TEXT    NOT NULL REFERENCES persons (id),
    loa                TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    valid_from         INTEGER NOT NULL,
    valid_until        INTEGER NOT NULL,
    delegated_from     TEXT    REFERENCES mandates (id),
    delegated_by       TEXT    REFERENCES persons (id),
    verification       TEXT    NOT NULL,
    version            INTEGER NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX mandates_person ON mandates (person_id);
CREATE INDEX mandates_legal_person ON mandates (legal_person_id);
