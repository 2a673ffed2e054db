//! Signing with the token's keys: [`Signer`] (ID tokens, JWKS) and [`AuditSigner`]
//! (audit checkpoints), by the mechanism of each JWS algorithm.

use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cryptoki::context::Function;
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectClass;
use cryptoki::session::SessionState;
use sha2::{Digest, Sha256};

use super::Pkcs11Hsm;
use crate::domain::client::SigningAlg;
use crate::hsm::keys::{KeyKind, PublicKey};
use crate::hsm::pool::{OpError, PooledSession};
use crate::hsm::{AuditPublicKey, AuditSigner, HsmError, Kid, Signer};

impl Pkcs11Hsm {
    /// The `kid` [`Signer::sign`] would return for `alg` now. A JWS header carries the kid
    /// inside the signed bytes, so callers build the header with this value and, if `sign`
    /// returns a different kid (a rotation in between), build and sign again.
    pub fn active_kid(&self, alg: SigningAlg) -> Option<Kid> {
        self.inventory()
            .active(kind_for(alg), self.now())
            .and_then(|entry| entry.kid.clone())
    }

    /// Signs with the active key of `kind` by `alg`'s mechanism.
    async fn sign_kind(&self, kind: KeyKind, alg: SigningAlg, message: &[u8]) -> Result<(Kid, Vec<u8>), HsmError> {
        // The worker finds the key's label and id in the same inventory snapshot, shared
        // rather than copied (issue 22).
        let inventory = self.inventory();
        let now = self.now();
        let kid = {
            let entry = inventory
                .active(kind, now)
                .ok_or_else(|| HsmError::KeyNotFound(kind.prefix().to_owned()))?;
            entry
                .kid
                .clone()
                .ok_or_else(|| HsmError::KeyNotFound(entry.label.clone()))?
        };
        // ES256: CKM_ECDSA signs a digest we compute; the RSA mechanisms hash in the token.
        let data = match alg {
            SigningAlg::ES256 => SignInput::Digest(Sha256::digest(message).into()),
            SigningAlg::PS256 | SigningAlg::RS256 => SignInput::Message(message.to_vec()),
        };
        let signature = self
            .inner
            .pool
            .run(move |pooled: &mut PooledSession| {
                let entry = inventory
                    .active(kind, now)
                    .ok_or_else(|| OpError::Hsm(HsmError::KeyNotFound(kind.prefix().to_owned())))?;
                let key = pooled.key(ObjectClass::PRIVATE_KEY, &entry.label, &entry.id)?;
                Ok(pooled.session().sign(&mechanism(alg), key, data.bytes())?)
            })
            .await?;
        if alg == SigningAlg::ES256 && signature.len() != 64 {
            return Err(HsmError::Pkcs11(format!(
                "ECDSA P-256 signature of {} bytes, expected r||s of 64",
                signature.len()
            )));
        }
        Ok((kid, signature))
    }
}

/// What is handed to the token: a digest we made (on the stack), or the message itself.
enum SignInput {
    Digest([u8; 32]),
    Message(Vec<u8>),
}

impl SignInput {
    fn bytes(&self) -> &[u8] {
        match self {
            SignInput::Digest(digest) => digest,
            SignInput::Message(message) => message,
        }
    }
}

#[async_trait]
impl AuditSigner for Pkcs11Hsm {
    async fn sign_audit(&self, message: &[u8]) -> Result<(Kid, Vec<u8>), HsmError> {
        self.sign_kind(KeyKind::AuditSign, SigningAlg::ES256, message).await
    }

    fn audit_keys(&self) -> Vec<AuditPublicKey> {
        self.inventory()
            .public_keys(KeyKind::AuditSign)
            .into_iter()
            .filter_map(|(kid, public)| match public {
                PublicKey::Ec { x, y, .. } => Some(AuditPublicKey {
                    kid: kid.0,
                    x: URL_SAFE_NO_PAD.encode(x),
                    y: URL_SAFE_NO_PAD.encode(y),
                }),
                PublicKey::Rsa { .. } => None,
            })
            .collect()
    }
}

#[async_trait]
impl Signer for Pkcs11Hsm {
    async fn sign(&self, alg: SigningAlg, message: &[u8]) -> Result<(Kid, Vec<u8>), HsmError> {
        self.sign_kind(kind_for(alg), alg, message).await
    }

    fn active_kid(&self, alg: SigningAlg) -> Result<Kid, HsmError> {
        Pkcs11Hsm::active_kid(self, alg).ok_or_else(|| HsmError::KeyNotFound(kind_for(alg).prefix().to_owned()))
    }

    fn jwks_json(&self) -> Arc<Vec<u8>> {
        Arc::clone(&self.inner.jwks.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    async fn check(&self) -> Result<(), HsmError> {
        self.inner
            .pool
            .run(|pooled| {
                let info = pooled.session().get_session_info()?;
                match info.session_state() {
                    SessionState::RoUser | SessionState::RwUser => Ok(()),
                    // Reported as a session-level failure so the pool logs in again.
                    _ => Err(OpError::Pkcs11(Pkcs11Error::Pkcs11(
                        RvError::UserNotLoggedIn,
                        Function::GetSessionInfo,
                    ))),
                }
            })
            .await
    }
}

fn kind_for(alg: SigningAlg) -> KeyKind {
    match alg {
        SigningAlg::ES256 => KeyKind::OidcEc,
        SigningAlg::PS256 | SigningAlg::RS256 => KeyKind::OidcRsa,
    }
}

/// The PKCS#11 mechanism of a JWS algorithm. Built per call: `Mechanism` is not `Send`.
fn mechanism(alg: SigningAlg) -> Mechanism<'static> {
    match alg {
        SigningAlg::ES256 => Mechanism::Ecdsa,
        SigningAlg::PS256 => Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
            hash_alg: MechanismType::SHA256,
            mgf: PkcsMgfType::MGF1_SHA256,
            s_len: 32u64.into(),
        }),
        SigningAlg::RS256 => Mechanism::Sha256RsaPkcs,
    }
}
