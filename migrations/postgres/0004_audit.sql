-- Signed checkpoints and prune anchors of the audit chain (R-LOG-2, R-LOG-6), and the
-- cursors of the jobs that read the chain (external sink, alerts: R-LOG-4).
-- `kind` is `checkpoint` (the chain up to `seq` ends in `hash`) or `prune` (records up to
-- `seq` were destroyed after retention; the chain continues from `hash`). The signature is
-- ES256 (r || s) by the HSM `audit-sign` key `kid` over `audit::signed_message`.
CREATE TABLE audit_checkpoints (
    kind      TEXT   NOT NULL,
    seq       BIGINT NOT NULL,
    hash      BYTEA  NOT NULL CHECK (octet_length(hash) = 32),
    time      BIGINT NOT NULL,
    kid       TEXT   NOT NULL,
    signature BYTEA  NOT NULL,
    PRIMARY KEY (kind, seq)
);

CREATE TABLE audit_cursors (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);

-- Retention (R-LOG-6): records may be deleted only up to the newest prune anchor, which
-- the application signs before it deletes; everything after it stays append-only.
CREATE FUNCTION audit_log_prune_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.seq <= (SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints WHERE kind = 'prune') THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
DROP TRIGGER audit_log_no_delete ON audit_log;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_prune_only();
