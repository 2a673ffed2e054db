-- eidgate schema, version 3 (PostgreSQL): the password + TOTP means (R-MEANS-2, R-AUTH-4/5).
-- Column names are identical in migrations/sqlite/0003_totp.sql.
-- The TOTP seed itself is in `means.credential`, sealed with AES-GCM under the HSM
-- `data-wrap` key (never in clear, R-AUTH-3, R-SEC-2).

-- The last TOTP time step accepted for the means: a code of this step or an earlier one
-- is never accepted again (replay, R-AUTH-5). NULL: none used yet.
ALTER TABLE means ADD COLUMN totp_last_step BIGINT;

-- Consecutive failed attempts per factor (R-AUTH-4, NIST 800-63B 5.2.2): the means is
-- locked (suspended) at the configured limit; reset on success and on (re)activation.
ALTER TABLE means ADD COLUMN password_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE means ADD COLUMN otp_failures BIGINT NOT NULL DEFAULT 0;
