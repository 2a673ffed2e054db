//! The HSM port: every private key eidgate uses lives in a PKCS#11 token and is used
//! only through it (R-AUTH-6, R-SEC-2). This is the only module that imports `cryptoki`.
//!
//! - [`Signer`]: signs JWS payloads with the active key of an algorithm; publishes JWKS.
//! - [`Sealer`]: AES-GCM in the token under `data-wrap-<n>` for stored secrets.
//! - `pkcs11`: module loading, `C_Initialize` once, login, key lookup by label.
//! - `pool`: owned sessions used inside `spawn_blocking`, reopened when lost.
//! - `keys`: labels (`oidc-sign-<n>`, `oidc-sign-rsa-<n>`), kid = JWK thumbprint, JWKs.
//! - `inventory`: key rollover: which key signs when, which keys are published (JWKS).
//! - `init`: creation of the embedded SoftHSM token under the data dir.
//!
//! There is never a software-key fallback: if the HSM cannot sign, the caller fails
//! closed with 503.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::client::SigningAlg;

/// A key id as published in the JWKS (`kid` = RFC 7638 JWK thumbprint).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Kid(pub String);

/// Errors of the HSM port. `SessionLost` and `Unavailable` mean fail closed (503).
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The session broke and could not be reopened.
    #[error("HSM session lost")]
    SessionLost,
    /// The module, slot or token is not reachable.
    #[error("HSM unavailable: {0}")]
    Unavailable(String),
    /// No key for this label or algorithm.
    #[error("HSM key not found: {0}")]
    KeyNotFound(String),
    /// Token initialisation failed.
    #[error("HSM token initialisation failed: {0}")]
    Init(String),
    /// Any other PKCS#11 failure.
    #[error("PKCS#11 error: {0}")]
    Pkcs11(String),
}

/// Signs with keys it never reveals (rustls `SigningKey` shape).
#[async_trait]
pub trait Signer: Send + Sync {
    /// Hashes `message` with SHA-256 and signs it in the HSM with the active key for
    /// `alg`. ES256 returns `r || s` (64 bytes), as JWS wants; RS256/PS256 the RSA
    /// signature. Runs off the async runtime.
    async fn sign(&self, alg: SigningAlg, message: &[u8]) -> Result<(Kid, Vec<u8>), HsmError>;

    /// The kid of the key `sign` would use now for `alg` (goes into the JWS header
    /// before signing; if a rotation races, `sign` reports the kid it really used).
    fn active_kid(&self, alg: SigningAlg) -> Result<Kid, HsmError>;

    /// The published JWKS (keys published ahead of their activation, the active ones and
    /// recently replaced ones), pre-serialised.
    fn jwks_json(&self) -> Arc<Vec<u8>>;

    /// Checks that the token answers (for `/readyz`).
    async fn check(&self) -> Result<(), HsmError>;
}

/// Encrypts small secrets (TOTP seeds) under the active `data-wrap-<n>` AES-256 key with
/// AES-GCM inside the token (R-AUTH-3, R-AUTH-6, R-SEC-2). The key never leaves the HSM.
///
/// A sealed value is `0x01 || generation (u32 BE) || IV (12 random bytes) || ciphertext
/// and tag`; the caller's `aad` (e.g. the means id) binds it to its owner, so a sealed
/// value copied to another row does not open.
#[async_trait]
pub trait Sealer: Send + Sync {
    /// Seals `plaintext` bound to `aad`.
    async fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, HsmError>;
    /// Opens a sealed value; any tampering, another `aad` or an unknown key fails.
    async fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, HsmError>;
}

/// A public EC P-256 `audit-sign` key as JWK members (base64url), published so that
/// checkpoints and exported bundles can be verified without the HSM (R-LOG-2).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditPublicKey {
    /// JWK thumbprint.
    pub kid: String,
    /// X coordinate.
    pub x: String,
    /// Y coordinate.
    pub y: String,
}

/// Signs audit checkpoints with the HSM `audit-sign` key (R-LOG-2).
#[async_trait]
pub trait AuditSigner: Send + Sync {
    /// ES256 signature (`r || s`) of `message` by the active `audit-sign` key.
    async fn sign_audit(&self, message: &[u8]) -> Result<(Kid, Vec<u8>), HsmError>;
    /// Every `audit-sign` public key of the token (active and retired: old checkpoints
    /// stay verifiable after a rotation).
    fn audit_keys(&self) -> Vec<AuditPublicKey>;
}

/// The issuing CA key `ca-<n>` (EC P-384) of smartcard authentication certificates
/// (issue 4, R-MEANS-3, R-AUTH-6): generated in the token, used only through it, with
/// its X.509 certificate kept beside it as a `CKO_CERTIFICATE` object of the same label.
///
/// The methods block on the token: call them from `spawn_blocking` in async code
/// (certificate and CRL encoders call `sign` synchronously).
pub trait CaKey: Send + Sync {
    /// Label and SEC1 uncompressed point (`04 || x || y`, 97 bytes) of the active `ca` key.
    fn ca_public_key(&self) -> Result<(String, Vec<u8>), HsmError>;
    /// CKM_ECDSA over SHA-384 of `message` by the key `label`: `r || s`, 96 bytes.
    fn sign_ca_blocking(&self, label: &str, message: &[u8]) -> Result<Vec<u8>, HsmError>;
    /// The DER of the certificate stored under `label`, if any.
    fn ca_certificate_blocking(&self, label: &str) -> Result<Option<Vec<u8>>, HsmError>;
    /// Stores `der` (subject Name DER `subject`) as the certificate of `label`.
    fn store_ca_certificate_blocking(&self, label: &str, subject: &[u8], der: &[u8]) -> Result<(), HsmError>;
}

pub mod card;
pub mod init;
pub mod inventory;
pub mod keys;
pub mod pkcs11;
pub mod pool;

pub use inventory::{KeyInfo, KeyState};
pub use keys::KeyKind;
pub use pkcs11::{Pkcs11Hsm, Switch};
