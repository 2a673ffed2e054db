-- Renewal (R-RENEW-1): the valid means an application renews. When the new means is
-- activated, this one is revoked with reason `renewed` in the same transaction.
ALTER TABLE means ADD COLUMN renews TEXT;
-- The expiry sweep also takes suspended means whose validity ended.
CREATE INDEX means_suspended_validity_expiry ON means (valid_until) WHERE status = 'suspended';
