-- Signed checkpoints and prune anchors of the audit chain (R-LOG-2, R-LOG-6), and the
-- cursors of the jobs that read the chain (external sink, alerts: R-LOG-4).
-- `kind` is `checkpoint` (the chain up to `seq` ends in `hash`) or `prune` (records up to
-- `seq` were destroyed after retention; the chain continues from `hash`). The signature is
-- ES256 (r || s) by the HSM `audit-sign` key `kid` over `audit::signed_message`.
CREATE TABLE audit_checkpoints (
    kind      TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    hash      BLOB    NOT NULL CHECK (length(hash) = 32),
    time      INTEGER NOT NULL,
    kid       TEXT    NOT NULL,
    signature BLOB    NOT NULL,
    PRIMARY KEY (kind, seq)
);

CREATE TABLE audit_cursors (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
);

-- Retention (R-LOG-6): records may be deleted only up to the newest prune anchor, which
-- the application signs before it deletes; everything after it stays append-only.
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq > (SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints WHERE kind = 'prune')
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
