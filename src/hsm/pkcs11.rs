//! [`Pkcs11Hsm`]: the PKCS#11 implementation of [`Signer`] and [`Sealer`] (AES-GCM under
//! `data-wrap-<n>`, R-AUTH-3) (R-AUTH-6, R-AUTH-7, R-SEC-2).
//!
//! Owns the process-wide module context (`C_Initialize` once per module path, shared by
//! every server, CLI command and test in the process), token lookup by label, key
//! generation inside the token, rotation, the inventory read back from the token, and the
//! pre-serialised JWKS. Private keys are generated with `CKA_SENSITIVE = true` and
//! `CKA_EXTRACTABLE = false` and are only ever referred to by label and `CKA_ID`; this
//! module must never create, import, wrap out or log key material or PINs.
//!
//! All state that must survive a restart (keys, retirement times) lives in the token, so
//! a `hsm rotate` run by the CLI is seen by running servers at their next
//! [`Pkcs11Hsm::refresh_keys`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cryptoki::context::{CInitializeArgs, Function, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::{Session, SessionState};
use cryptoki::slot::Slot;
use cryptoki::types::Date;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::init;
use super::keys::{Inventory, KeyInfo, KeyKind, KeyMaterial, PublicKey, RawKey};
use super::pool::{OpError, PooledSession, SessionPool};
use super::{HsmError, Kid, Sealer, Signer};
use crate::config::HsmConfig;
use crate::domain::client::SigningAlg;

/// Kinds `open` generates when the token has none: the ID-token signing keys and the
/// AES key that seals stored secrets, and the audit checkpoint key (R-LOG-2).
const REQUIRED_KINDS: [KeyKind; 4] = [KeyKind::OidcEc, KeyKind::OidcRsa, KeyKind::DataWrap, KeyKind::AuditSign];

/// Format byte of a sealed value.
const SEALED_V1: u8 = 1;
/// AES-GCM IV length (96 bits).
const GCM_IV: usize = 12;
/// Header: format byte, key generation, IV.
const SEALED_HEADER: usize = 1 + 4 + GCM_IV;

/// `CKA_APPLICATION` of the data objects that record when a key was rotated out.
const RETIREMENT_APPLICATION: &[u8] = b"eidgate-key-retirement";

/// Longest token label PKCS#11 allows (`CK_TOKEN_INFO.label` is 32 bytes).
const MAX_TOKEN_LABEL: usize = 32;

/// Loaded modules: `Pkcs11` finalises the library when its last clone drops, so the
/// process keeps one per module path for its whole life.
static CONTEXTS: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

/// Per-token lock for key generation and rotation in this process.
static TOKEN_LOCKS: Mutex<Vec<(String, Arc<Mutex<()>>)>> = Mutex::new(Vec::new());

/// The process-wide context of `module`: loaded and `C_Initialize`d on first use
/// (`CKR_CRYPTOKI_ALREADY_INITIALIZED` is tolerated), then shared. Anything else in the
/// process that needs the same module (the card stand-in, tests) must use this rather
/// than `Pkcs11::new`: dropping a second context would `C_Finalize` the shared library.
pub fn context(module: &Path) -> Result<Pkcs11, HsmError> {
    context_with(module, || Ok(()))
}

/// Like [`context`], but runs `before_load` under the lock when the module is not loaded
/// yet (to set `SOFTHSM2_CONF` before SoftHSM reads it).
fn context_with(module: &Path, before_load: impl FnOnce() -> Result<(), HsmError>) -> Result<Pkcs11, HsmError> {
    let key = module.canonicalize().unwrap_or_else(|_| module.to_owned());
    let mut contexts = CONTEXTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, context)) = contexts.iter().find(|(path, _)| *path == key) {
        return Ok(context.clone());
    }
    before_load()?;
    let context = Pkcs11::new(&key)
        .map_err(|e| HsmError::Unavailable(format!("cannot load PKCS#11 module {}: {e}", key.display())))?;
    match context.initialize(CInitializeArgs::OsThreads) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(HsmError::Unavailable(format!("C_Initialize: {e}"))),
    }
    contexts.push((key, context.clone()));
    Ok(context)
}

/// The slot holding the initialised token labelled `label`. The slot list is read anew on
/// every call, so a token created after the module was loaded is found.
pub fn find_token_slot(context: &Pkcs11, label: &str) -> Result<Option<Slot>, HsmError> {
    let slots = context
        .get_slots_with_token()
        .map_err(|e| HsmError::Unavailable(format!("C_GetSlotList: {e}")))?;
    for slot in slots {
        match context.get_token_info(slot) {
            Ok(info) if info.token_initialized() && info.label().trim_end() == label => return Ok(Some(slot)),
            Ok(_) => {}
            Err(Pkcs11Error::Pkcs11(RvError::TokenNotPresent | RvError::SlotIdInvalid, _)) => {}
            Err(e) => return Err(HsmError::Unavailable(format!("C_GetTokenInfo: {e}"))),
        }
    }
    Ok(None)
}

fn token_lock(module: &Path, label: &str) -> Arc<Mutex<()>> {
    let key = format!("{}\u{0}{label}", module.display());
    let mut locks = TOKEN_LOCKS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, lock)) = locks.iter().find(|(k, _)| *k == key) {
        return Arc::clone(lock);
    }
    let lock = Arc::new(Mutex::new(()));
    locks.push((key, Arc::clone(&lock)));
    lock
}

/// eidgate's keys in a PKCS#11 token, used through a pool of logged-in sessions.
/// Cheap to clone; clones share the pool and the published key set.
#[derive(Clone)]
pub struct Pkcs11Hsm {
    inner: Arc<HsmInner>,
}

struct HsmInner {
    module: PathBuf,
    token_label: String,
    pool: SessionPool,
    retired_key_publish: Duration,
    /// Swapped whole on refresh; readers clone the `Arc` and never wait on the token.
    inventory: RwLock<Arc<Inventory>>,
    jwks: RwLock<Arc<Vec<u8>>>,
    /// Labels of the keys `open` generated, until the caller audits them (R-LOG-1).
    generated: Mutex<Vec<String>>,
}

impl fmt::Debug for Pkcs11Hsm {
    /// Module, token and pool shape only; the PIN is never part of it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Hsm")
            .field("module", &self.inner.module)
            .field("token_label", &self.inner.token_label)
            .field("pool", &self.inner.pool)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Hsm {
    /// Opens the token `config.token_label` (blocking; call it from `spawn_blocking` in
    /// async code). With `auto_init` (the embedded SoftHSM default) it first points
    /// `SOFTHSM2_CONF` at `{data_dir}/softhsm/softhsm2.conf` unless the variable is set,
    /// creates the token with random PINs when it does not exist, and in every case
    /// generates `oidc-sign-1` (EC P-256) and `oidc-sign-rsa-1` (RSA-3072) and `audit-sign-1` (EC P-256, R-LOG-2) inside the token
    /// when the token has no key of that kind. The user PIN comes from `pin_env`
    /// (`EIDGATE_HSM_PIN`), else from `pin_file`.
    pub fn open(config: &HsmConfig, data_dir: &Path) -> Result<Pkcs11Hsm, HsmError> {
        let label = config.token_label.as_str();
        if label.is_empty() || label.len() > MAX_TOKEN_LABEL {
            return Err(HsmError::Unavailable(format!(
                "hsm.token_label must be 1 to {MAX_TOKEN_LABEL} bytes"
            )));
        }
        let embedded = config.auto_init && init::is_softhsm(&config.module);
        let context = context_with(&config.module, || {
            if embedded {
                init::prepare_embedded_softhsm(data_dir)?;
            }
            Ok(())
        })?;

        let configured_pin = init::configured_pin(config, data_dir)?;
        let (slot, pin) = match find_token_slot(&context, label)? {
            Some(slot) => {
                let pin = configured_pin.ok_or_else(|| {
                    HsmError::Unavailable(format!(
                        "no user PIN for token {label}: set EIDGATE_HSM_PIN or hsm.pin_file"
                    ))
                })?;
                (slot, pin)
            }
            None if config.auto_init => init::create_token(&context, config, data_dir, configured_pin)?,
            None => return Err(HsmError::Unavailable(format!("no initialised token labelled {label}"))),
        };

        let sessions = if config.sessions == 0 {
            crate::config::Config::cores()
        } else {
            config.sessions
        };
        let max_in_flight = if config.max_in_flight == 0 {
            sessions
        } else {
            config.max_in_flight
        };
        let pool = SessionPool::open(context, slot, pin, sessions, max_in_flight)?;
        let hsm = Pkcs11Hsm {
            inner: Arc::new(HsmInner {
                module: config.module.clone(),
                token_label: label.to_owned(),
                pool,
                retired_key_publish: config.retired_key_publish,
                inventory: RwLock::new(Arc::new(Inventory::default())),
                jwks: RwLock::new(Arc::new(Inventory::default().jwks_json())),
                generated: Mutex::new(Vec::new()),
            }),
        };
        hsm.ensure_keys(&REQUIRED_KINDS)?;
        hsm.refresh_keys_blocking()?;
        Ok(hsm)
    }

    /// The labels of the keys [`Pkcs11Hsm::open`] generated, once (the caller records
    /// them in the audit log: key management, R-LOG-1).
    pub fn take_generated(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .inner
                .generated
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// Label of the token.
    pub fn token_label(&self) -> &str {
        &self.inner.token_label
    }

    /// Slot of the token (for tools and tests that open their own session through
    /// [`context`]).
    pub fn slot(&self) -> Slot {
        self.inner.pool.slot()
    }

    /// Every key of the token with its state, as of the last refresh.
    pub fn list_keys(&self) -> Vec<KeyInfo> {
        self.inventory().infos()
    }

    /// The `kid` [`Signer::sign`] would return for `alg` now. A JWS header carries the kid
    /// inside the signed bytes, so callers build the header with this value and, if `sign`
    /// returns a different kid (a rotation in between), build and sign again.
    pub fn active_kid(&self, alg: SigningAlg) -> Option<Kid> {
        self.inventory()
            .active(kind_for(alg))
            .and_then(|entry| entry.info.kid.clone())
    }

    /// Generates the next generation of `kind` inside the token; it becomes active at once
    /// in this process (other processes see it at their next [`Pkcs11Hsm::refresh_keys`]).
    /// The previous key is recorded as retired now and stays in the JWKS for
    /// `retired_key_publish`. Blocking (RSA-3072 generation takes a while): call it from
    /// `spawn_blocking` in async code.
    pub fn rotate(&self, kind: KeyKind) -> Result<KeyInfo, HsmError> {
        let lock = token_lock(&self.inner.module, &self.inner.token_label);
        let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let label = self.inner.pool.run_blocking(|pooled| {
            let session = pooled.session();
            let keys = read_keys(session)?;
            let previous = keys
                .iter()
                .filter(|key| key.kind == kind)
                .max_by_key(|key| key.generation)
                .map(|key| key.label.clone());
            let next = max_generation(session, kind)?
                .checked_add(1)
                .ok_or_else(|| HsmError::Pkcs11(format!("generation of {kind} overflows")))?;
            let now = OffsetDateTime::now_utc();
            // Recorded before the successor exists: if generation fails, the old key is
            // still the highest generation and stays active; the record is then ignored.
            if let Some(previous) = &previous {
                record_retirement(session, previous, now)?;
            }
            generate(session, kind, next)?;
            if let Some(previous) = &previous {
                mark_end_date(session, previous, now);
            }
            Ok(kind.label(next))
        })?;
        tracing::info!(token = %self.inner.token_label, key = %label, "rotated HSM key");
        self.refresh_keys_blocking()?;
        self.list_keys()
            .into_iter()
            .find(|info| info.label == label)
            .ok_or(HsmError::KeyNotFound(label))
    }

    /// Re-reads the key inventory from the token (picks up a rotation made by another
    /// process) and re-decides which retired keys are still published. The lead's server
    /// calls it every `hsm.key_refresh`. On failure the previous key set stays in use.
    pub async fn refresh_keys(&self) -> Result<(), HsmError> {
        let raw = self.inner.pool.run(|pooled| read_keys(pooled.session())).await?;
        self.install(raw);
        Ok(())
    }

    /// [`Pkcs11Hsm::refresh_keys`] on the calling thread (blocking).
    pub fn refresh_keys_blocking(&self) -> Result<(), HsmError> {
        let raw = self.inner.pool.run_blocking(|pooled| read_keys(pooled.session()))?;
        self.install(raw);
        Ok(())
    }

    /// Breaks every session of this token in this process, for fault tests: `C_Logout`,
    /// which PKCS#11 defines as token-wide, drops the login state of all sessions and
    /// invalidates the private key handles found through them, as a token reset or
    /// `C_CloseAllSessions` would. (cryptoki 0.10 has no safe `C_CloseAllSessions`, and
    /// this crate forbids `unsafe`.) The next call on each pooled session fails and must
    /// be retried on a reopened, logged-in session.
    #[doc(hidden)]
    pub fn close_all_sessions_for_fault_test(&self) {
        if let Err(e) = self.inner.pool.break_sessions() {
            tracing::warn!(error = %e, "fault injection failed");
        }
    }

    /// How many broken sessions the pool has replaced (for fault tests and metrics).
    #[doc(hidden)]
    pub fn session_reopens(&self) -> u64 {
        self.inner.pool.reopened()
    }

    /// Generates generation 1 of `kind` inside the token when it has no key of that kind
    /// (the issuing CA key `ca-1` when smartcard issuance starts), reported by
    /// [`Pkcs11Hsm::take_generated`] for the audit log. Blocking.
    pub fn ensure_kind(&self, kind: KeyKind) -> Result<(), HsmError> {
        self.ensure_keys(&[kind])?;
        self.refresh_keys_blocking()
    }

    fn ensure_keys(&self, kinds: &[KeyKind]) -> Result<(), HsmError> {
        let lock = token_lock(&self.inner.module, &self.inner.token_label);
        let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.inner.pool.run_blocking(|pooled| {
            let session = pooled.session();
            let keys = read_keys(session)?;
            for kind in kinds {
                if !keys.iter().any(|key| key.kind == *kind) {
                    let next = max_generation(session, *kind)? + 1;
                    generate(session, *kind, next)?;
                    tracing::info!(token = %self.inner.token_label, key = %kind.label(next), "generated HSM key");
                    self.inner
                        .generated
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .push(kind.label(next));
                }
            }
            Ok(())
        })
    }

    fn install(&self, raw: Vec<RawKey>) {
        let inventory = Inventory::build(raw, OffsetDateTime::now_utc(), self.inner.retired_key_publish);
        let jwks = Arc::new(inventory.jwks_json());
        *self
            .inner
            .inventory
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(inventory);
        *self.inner.jwks.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = jwks;
    }

    fn inventory(&self) -> Arc<Inventory> {
        // Poisoning cannot leave a half-written Arc behind; keep serving.
        Arc::clone(
            &self
                .inner
                .inventory
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

impl Pkcs11Hsm {
    /// Signs with the active key of `kind` by `alg`'s mechanism.
    async fn sign_kind(&self, kind: KeyKind, alg: SigningAlg, message: &[u8]) -> Result<(Kid, Vec<u8>), HsmError> {
        let (label, id, kid) = {
            let inventory = self.inventory();
            let entry = inventory
                .active(kind)
                .ok_or_else(|| HsmError::KeyNotFound(kind.prefix().to_owned()))?;
            let kid = entry
                .info
                .kid
                .clone()
                .ok_or_else(|| HsmError::KeyNotFound(entry.info.label.clone()))?;
            (entry.info.label.clone(), entry.id.clone(), kid)
        };
        // ES256: CKM_ECDSA signs a digest we compute; the RSA mechanisms hash in the token.
        let data = match alg {
            SigningAlg::ES256 => Sha256::digest(message).to_vec(),
            SigningAlg::PS256 | SigningAlg::RS256 => message.to_vec(),
        };
        let signature = self
            .inner
            .pool
            .run(move |pooled: &mut PooledSession| {
                let key = pooled.key(ObjectClass::PRIVATE_KEY, &label, &id)?;
                Ok(pooled.session().sign(&mechanism(alg), key, &data)?)
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

#[async_trait]
impl crate::hsm::AuditSigner for Pkcs11Hsm {
    async fn sign_audit(&self, message: &[u8]) -> Result<(Kid, Vec<u8>), HsmError> {
        self.sign_kind(KeyKind::AuditSign, SigningAlg::ES256, message).await
    }

    fn audit_keys(&self) -> Vec<crate::hsm::AuditPublicKey> {
        self.inventory()
            .public_keys(KeyKind::AuditSign)
            .into_iter()
            .filter_map(|(kid, public)| match public {
                PublicKey::Ec { x, y, .. } => Some(crate::hsm::AuditPublicKey {
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

impl Pkcs11Hsm {
    /// Label and `CKA_ID` of the `data-wrap` key of `generation` (`None`: the active one).
    fn wrap_key(&self, generation: Option<u32>) -> Result<(u32, String, Vec<u8>), HsmError> {
        let inventory = self.inventory();
        let entry = match generation {
            None => inventory.active(KeyKind::DataWrap),
            Some(g) => inventory.find(&KeyKind::DataWrap.label(g)),
        }
        .ok_or_else(|| HsmError::KeyNotFound(KeyKind::DataWrap.prefix().to_owned()))?;
        let (_, generation) =
            KeyKind::parse_label(&entry.info.label).ok_or_else(|| HsmError::KeyNotFound(entry.info.label.clone()))?;
        Ok((generation, entry.info.label.clone(), entry.id.clone()))
    }
}

#[async_trait]
impl Sealer for Pkcs11Hsm {
    async fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, HsmError> {
        let (generation, label, id) = self.wrap_key(None)?;
        let iv = crate::random::bytes::<GCM_IV>();
        let data = zeroize::Zeroizing::new(plaintext.to_vec());
        let aad = aad.to_vec();
        let ciphertext = self
            .inner
            .pool
            .run(move |pooled: &mut PooledSession| {
                let key = pooled.key(ObjectClass::SECRET_KEY, &label, &id)?;
                let mut iv = iv;
                let params = GcmParams::new(&mut iv, &aad, 128u64.into())?;
                Ok(pooled.session().encrypt(&Mechanism::AesGcm(params), key, &data)?)
            })
            .await?;
        let mut sealed = Vec::with_capacity(SEALED_HEADER + ciphertext.len());
        sealed.push(SEALED_V1);
        sealed.extend_from_slice(&generation.to_be_bytes());
        sealed.extend_from_slice(&iv);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    async fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, HsmError> {
        if sealed.len() < SEALED_HEADER + 16 || sealed[0] != SEALED_V1 {
            return Err(HsmError::Pkcs11("sealed value is malformed".into()));
        }
        let mut generation = [0u8; 4];
        generation.copy_from_slice(&sealed[1..5]);
        let (_, label, id) = self.wrap_key(Some(u32::from_be_bytes(generation)))?;
        let mut iv = [0u8; GCM_IV];
        iv.copy_from_slice(&sealed[5..SEALED_HEADER]);
        let ciphertext = sealed[SEALED_HEADER..].to_vec();
        let aad = aad.to_vec();
        self.inner
            .pool
            .run(move |pooled: &mut PooledSession| {
                let key = pooled.key(ObjectClass::SECRET_KEY, &label, &id)?;
                let mut iv = iv;
                let params = GcmParams::new(&mut iv, &aad, 128u64.into())?;
                Ok(zeroize::Zeroizing::new(pooled.session().decrypt(
                    &Mechanism::AesGcm(params),
                    key,
                    &ciphertext,
                )?))
            })
            .await
    }
}

impl crate::hsm::CaKey for Pkcs11Hsm {
    fn ca_public_key(&self) -> Result<(String, Vec<u8>), HsmError> {
        let inventory = self.inventory();
        let entry = inventory
            .active(KeyKind::Ca)
            .ok_or_else(|| HsmError::KeyNotFound(KeyKind::Ca.prefix().to_owned()))?;
        match &entry.public {
            Some(PublicKey::Ec { x, y, .. }) => {
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                Ok((entry.info.label.clone(), point))
            }
            _ => Err(HsmError::KeyNotFound(entry.info.label.clone())),
        }
    }

    fn sign_ca_blocking(&self, label: &str, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        let id = self
            .inventory()
            .find(label)
            .filter(|entry| entry.info.kind == KeyKind::Ca)
            .map(|entry| entry.id.clone())
            .ok_or_else(|| HsmError::KeyNotFound(label.to_owned()))?;
        // CKM_ECDSA signs the digest we compute: SHA-384 for a P-384 CA (RFC 5758 §3.2).
        let digest = sha2::Sha384::digest(message).to_vec();
        let signature = self.inner.pool.run_blocking(|pooled| {
            let key = pooled.key(ObjectClass::PRIVATE_KEY, label, &id)?;
            Ok(pooled.session().sign(&Mechanism::Ecdsa, key, &digest)?)
        })?;
        if signature.len() != 96 {
            return Err(HsmError::Pkcs11(format!(
                "ECDSA P-384 signature of {} bytes, expected r||s of 96",
                signature.len()
            )));
        }
        Ok(signature)
    }

    fn ca_certificate_blocking(&self, label: &str) -> Result<Option<Vec<u8>>, HsmError> {
        let label = label.to_owned();
        self.inner.pool.run_blocking(|pooled| {
            let session = pooled.session();
            let found = session.find_objects(&[
                Attribute::Token(true),
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Label(label.as_bytes().to_vec()),
            ])?;
            let Some(handle) = found.first() else {
                return Ok(None);
            };
            let attributes = session.get_attributes(*handle, &[AttributeType::Value])?;
            Ok(attribute_bytes(&attributes, AttributeType::Value))
        })
    }

    fn store_ca_certificate_blocking(&self, label: &str, subject: &[u8], der: &[u8]) -> Result<(), HsmError> {
        let lock = token_lock(&self.inner.module, &self.inner.token_label);
        let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let id = self
            .inventory()
            .find(label)
            .map(|entry| entry.id.clone())
            .ok_or_else(|| HsmError::KeyNotFound(label.to_owned()))?;
        self.inner.pool.run_blocking(|pooled| {
            let session = pooled.session();
            let existing = session.find_objects(&[
                Attribute::Token(true),
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Label(label.as_bytes().to_vec()),
            ])?;
            if !existing.is_empty() {
                // Another process stored it first; the first one stays.
                return Ok(());
            }
            session.create_object(&[
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.clone()),
                Attribute::Subject(subject.to_vec()),
                Attribute::Value(der.to_vec()),
            ])?;
            Ok(())
        })
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

fn attribute_bytes(attributes: &[Attribute], wanted: AttributeType) -> Option<Vec<u8>> {
    attributes.iter().find_map(|attribute| match (attribute, wanted) {
        (Attribute::Label(v), AttributeType::Label)
        | (Attribute::Id(v), AttributeType::Id)
        | (Attribute::Value(v), AttributeType::Value)
        | (Attribute::EcPoint(v), AttributeType::EcPoint)
        | (Attribute::Modulus(v), AttributeType::Modulus)
        | (Attribute::PublicExponent(v), AttributeType::PublicExponent) => Some(v.clone()),
        _ => None,
    })
}

/// A token object whose label is one of ours.
struct LabelledObject {
    kind: KeyKind,
    generation: u32,
    label: String,
    id: Vec<u8>,
}

/// Label and `CKA_ID` of every token object of `class` whose label is one of ours.
fn labelled_objects(session: &Session, class: ObjectClass) -> Result<Vec<LabelledObject>, OpError> {
    let mut found = Vec::new();
    for handle in session.find_objects(&[Attribute::Token(true), Attribute::Class(class)])? {
        let attributes = session.get_attributes(handle, &[AttributeType::Label, AttributeType::Id])?;
        let Some(label) = attribute_bytes(&attributes, AttributeType::Label).and_then(|l| String::from_utf8(l).ok())
        else {
            continue;
        };
        let Some((kind, generation)) = KeyKind::parse_label(&label) else {
            continue;
        };
        let id = attribute_bytes(&attributes, AttributeType::Id).unwrap_or_default();
        found.push(LabelledObject {
            kind,
            generation,
            label,
            id,
        });
    }
    Ok(found)
}

/// Every key of ours in the token: private or secret objects, with the matching public
/// object (same label and `CKA_ID`) and the retirement record.
fn read_keys(session: &Session) -> Result<Vec<RawKey>, OpError> {
    let retirements = read_retirements(session)?;
    let mut keys = Vec::new();
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::SECRET_KEY] {
        for LabelledObject {
            kind,
            generation,
            label,
            id,
        } in labelled_objects(session, class)?
        {
            let public = match (kind.material(), class == ObjectClass::SECRET_KEY) {
                (KeyMaterial::Aes256, true) => None,
                (KeyMaterial::Ec(_) | KeyMaterial::Rsa3072, false) => read_public(session, kind, &label, &id)?,
                _ => continue, // a label of ours on the wrong kind of object
            };
            let retired_at = retirements.iter().find(|(l, _)| *l == label).map(|(_, at)| *at);
            keys.push(RawKey {
                label,
                kind,
                generation,
                id,
                public,
                retired_at,
            });
        }
    }
    Ok(keys)
}

fn read_public(session: &Session, kind: KeyKind, label: &str, id: &[u8]) -> Result<Option<PublicKey>, OpError> {
    let found = session.find_objects(&[
        Attribute::Token(true),
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ])?;
    let Some(handle) = found.first() else {
        tracing::warn!(key = label, "HSM key has no public key object; not published");
        return Ok(None);
    };
    let parsed = match kind.material() {
        KeyMaterial::Ec(curve) => {
            let attributes = session.get_attributes(*handle, &[AttributeType::EcPoint])?;
            attribute_bytes(&attributes, AttributeType::EcPoint)
                .ok_or_else(|| HsmError::Pkcs11("no CKA_EC_POINT".into()))
                .and_then(|point| PublicKey::from_ec_point(curve, &point))
        }
        KeyMaterial::Rsa3072 => {
            let attributes =
                session.get_attributes(*handle, &[AttributeType::Modulus, AttributeType::PublicExponent])?;
            match (
                attribute_bytes(&attributes, AttributeType::Modulus),
                attribute_bytes(&attributes, AttributeType::PublicExponent),
            ) {
                (Some(n), Some(e)) => PublicKey::from_rsa(&n, &e),
                _ => Err(HsmError::Pkcs11("no CKA_MODULUS or CKA_PUBLIC_EXPONENT".into())),
            }
        }
        KeyMaterial::Aes256 => return Ok(None),
    };
    match parsed {
        Ok(public) => Ok(Some(public)),
        Err(e) => {
            tracing::warn!(key = label, error = %e, "unreadable public key; not published");
            Ok(None)
        }
    }
}

/// The highest generation of `kind` on any object (so a new label never collides, even
/// with a half-generated pair).
fn max_generation(session: &Session, kind: KeyKind) -> Result<u32, OpError> {
    let mut max = 0;
    for class in [
        ObjectClass::PRIVATE_KEY,
        ObjectClass::PUBLIC_KEY,
        ObjectClass::SECRET_KEY,
    ] {
        for object in labelled_objects(session, class)? {
            if object.kind == kind {
                max = max.max(object.generation);
            }
        }
    }
    Ok(max)
}

/// Retirement records: `CKO_DATA` objects of our application, label = key label,
/// value = Unix seconds in ASCII decimal.
fn read_retirements(session: &Session) -> Result<Vec<(String, OffsetDateTime)>, OpError> {
    let mut records = Vec::new();
    for handle in session.find_objects(&retirement_template(None))? {
        let attributes = session.get_attributes(handle, &[AttributeType::Label, AttributeType::Value])?;
        let label = attribute_bytes(&attributes, AttributeType::Label).and_then(|l| String::from_utf8(l).ok());
        let at = attribute_bytes(&attributes, AttributeType::Value)
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok());
        if let (Some(label), Some(at)) = (label, at) {
            records.push((label, at));
        }
    }
    Ok(records)
}

fn retirement_template(label: Option<&str>) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Token(true),
        Attribute::Class(ObjectClass::DATA),
        Attribute::Application(RETIREMENT_APPLICATION.to_vec()),
    ];
    if let Some(label) = label {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    template
}

/// Replaces the retirement record of `label` with `at`. Private, so only a logged-in
/// user can change when a key leaves the JWKS.
fn record_retirement(session: &Session, label: &str, at: OffsetDateTime) -> Result<(), OpError> {
    for old in session.find_objects(&retirement_template(Some(label)))? {
        session.destroy_object(old)?;
    }
    let mut template = retirement_template(Some(label));
    template.extend([
        Attribute::Private(true),
        Attribute::Value(at.unix_timestamp().to_string().into_bytes()),
    ]);
    session.create_object(&template)?;
    Ok(())
}

/// Sets `CKA_END_DATE` on the objects of a rotated-out key, for operators' tools. Best
/// effort: the retirement record is what eidgate reads.
fn mark_end_date(session: &Session, label: &str, at: OffsetDateTime) {
    let objects = session.find_objects(&[Attribute::Token(true), Attribute::Label(label.as_bytes().to_vec())]);
    for handle in objects.unwrap_or_default() {
        if let Err(e) = session.update_attributes(handle, &[Attribute::EndDate(ck_date(at))]) {
            tracing::debug!(key = label, error = %e, "CKA_END_DATE not set");
        }
    }
}

fn ck_date(at: OffsetDateTime) -> Date {
    let digits = |value: u32, width: usize| format!("{value:0width$}").into_bytes();
    let year = digits(u32::try_from(at.year()).unwrap_or(0), 4);
    let month = digits(u32::from(u8::from(at.month())), 2);
    let day = digits(u32::from(at.day()), 2);
    match (
        <[u8; 4]>::try_from(year),
        <[u8; 2]>::try_from(month),
        <[u8; 2]>::try_from(day),
    ) {
        (Ok(y), Ok(m), Ok(d)) => Date::new(y, m, d),
        _ => Date::new_empty(),
    }
}

/// Generates generation `generation` of `kind` inside the token: private or secret parts
/// sensitive, never extractable, private to the logged-in user.
fn generate(session: &Session, kind: KeyKind, generation: u32) -> Result<(), OpError> {
    let label = kind.label(generation).into_bytes();
    let id = crate::random::bytes::<16>().to_vec();
    let start = Attribute::StartDate(ck_date(OffsetDateTime::now_utc()));
    let secret_attributes = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Label(label.clone()),
        Attribute::Id(id.clone()),
        start.clone(),
    ];
    let public_attributes = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Label(label),
        Attribute::Id(id),
        start,
    ];
    match kind.material() {
        KeyMaterial::Aes256 => {
            let mut template = secret_attributes.to_vec();
            template.extend([
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32u64.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Sign(false),
                Attribute::Derive(false),
            ]);
            session.generate_key(&Mechanism::AesKeyGen, &template)?;
        }
        KeyMaterial::Ec(curve) => {
            let mut public = public_attributes.to_vec();
            public.push(Attribute::EcParams(curve.ec_params().to_vec()));
            let mut private = secret_attributes.to_vec();
            private.extend([Attribute::Sign(true), Attribute::Derive(false)]);
            session.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)?;
        }
        KeyMaterial::Rsa3072 => {
            let mut public = public_attributes.to_vec();
            public.extend([
                Attribute::Encrypt(false),
                Attribute::Wrap(false),
                Attribute::ModulusBits(3072u64.into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ]);
            let mut private = secret_attributes.to_vec();
            private.extend([
                Attribute::Sign(true),
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
            ]);
            session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)?;
        }
    }
    Ok(())
}
