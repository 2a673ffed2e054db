-- Notices to holders (R-OPS-4): e.g. that their means is known to be compromised. A
-- notice not sent within 7 days raises an alert.
CREATE TABLE notices (
    id         TEXT    NOT NULL PRIMARY KEY,
    person_id  TEXT    NOT NULL REFERENCES persons (id),
    means_id   TEXT    NOT NULL REFERENCES means (id),
    kind       TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER
);
CREATE INDEX notices_pending ON notices (created_at) WHERE sent_at IS NULL;
