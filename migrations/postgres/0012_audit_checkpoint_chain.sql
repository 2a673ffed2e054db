-- The signed chain of checkpoints (R-LOG-2, R-SEC-6; issue 17). Each checkpoint and prune
-- anchor signed from now on also signs the record count and the previous checkpoint's
-- seq and digest (`audit::chained_message`); `chain_pos` is its place in that chain and
-- is unique, so two instances signing at once cannot fork it (the second insert conflicts).
-- Rows signed before this migration keep NULLs and their format-1 signatures.
ALTER TABLE audit_checkpoints ADD COLUMN chain_pos BIGINT;
ALTER TABLE audit_checkpoints ADD COLUMN records BIGINT;
ALTER TABLE audit_checkpoints ADD COLUMN prev_seq BIGINT;
ALTER TABLE audit_checkpoints ADD COLUMN prev_digest BYTEA CHECK (prev_digest IS NULL OR octet_length(prev_digest) = 32);
CREATE UNIQUE INDEX audit_checkpoints_chain_pos ON audit_checkpoints (chain_pos);

-- Checkpoints are evidence too: append-only, like the records.
CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only';
END
$$;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();
