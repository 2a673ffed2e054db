-- Access tokens of the operators' console, kept in SQL beside the ephemeral store so the
-- helpdesk API keeps working while Redis is down (R-LIFE-1, R-OPS-1). Only a SHA-256 of
-- the token is stored; rows are deleted when they expire or their grant is revoked.
CREATE TABLE operator_tokens (
    token_sha256 TEXT    NOT NULL PRIMARY KEY,
    grant_id     TEXT    NOT NULL,
    grant_data   TEXT    NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX operator_tokens_grant ON operator_tokens (grant_id);
CREATE INDEX operator_tokens_expiry ON operator_tokens (expires_at);
