-- FIDO2 / WebAuthn credentials of `fido` means (issue 5, R-MEANS-3, R-AUTH-4/5).
-- Column names are identical in both engines. One credential per means, bound to it at
-- activation. Public data only: the private key never leaves the authenticator.
CREATE TABLE fido_credentials (
    means_id      TEXT    NOT NULL PRIMARY KEY REFERENCES means (id),
    -- base64url of the credential id (unique: an assertion names its credential).
    credential_id TEXT    NOT NULL UNIQUE,
    -- base64url of the WebAuthn user handle (64 random bytes, per means).
    user_handle   TEXT    NOT NULL,
    -- base64url of webauthn_rp StaticState (public key, static extensions).
    static_state  TEXT    NOT NULL,
    -- base64url of webauthn_rp DynamicState (UV, backup state, sign counter).
    dynamic_state TEXT    NOT NULL,
    -- JSON: attestation format, AAGUID, kind, trust path, trusted LoA.
    attestation   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
