-- The signed chain of checkpoints (R-LOG-2, R-SEC-6; issue 17). Each checkpoint and prune
-- anchor signed from now on also signs the record count and the previous checkpoint's
-- seq and digest (`audit::chained_message`); `chain_pos` is its place in that chain and
-- is unique, so two instances signing at once cannot fork it (the second insert conflicts).
-- Rows signed before this migration keep NULLs and their format-1 signatures.
ALTER TABLE audit_checkpoints ADD COLUMN chain_pos INTEGER;
ALTER TABLE audit_checkpoints ADD COLUMN records INTEGER;
ALTER TABLE audit_checkpoints ADD COLUMN prev_seq INTEGER;
ALTER TABLE audit_checkpoints ADD COLUMN prev_digest BLOB CHECK (prev_digest IS NULL OR length(prev_digest) = 32);
CREATE UNIQUE INDEX audit_checkpoints_chain_pos ON audit_checkpoints (chain_pos);

-- Checkpoints are evidence too: append-only, like the records.
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
