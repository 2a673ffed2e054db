-- Incident records (R-OPS-2): detected from the server's own availability figures, or
-- entered by an operator; each classified against the significant-incident thresholds.
CREATE TABLE incidents (
    id               TEXT    NOT NULL PRIMARY KEY,
    service          TEXT    NOT NULL,
    started_at       BIGINT NOT NULL,
    ended_at         BIGINT NOT NULL,
    record           TEXT    NOT NULL
);
CREATE INDEX incidents_started ON incidents (started_at);
