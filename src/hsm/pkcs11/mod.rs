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
//! All state that must survive a restart (keys, activation and retirement times) lives in
//! the token, so a `hsm rotate` run by the CLI is seen by running servers at their next
//! [`Pkcs11Hsm::refresh_keys`]: they publish the new key then and sign with it from its
//! recorded activation time (`hsm.publish_ahead` after the rotation; see `inventory.rs`).
//!
//! By concern: `token` (module context, token look-up, locks), `objects` (reading our
//! keys back from the token), `generate` (key generation and retirement records), `sign`
//! ([`Signer`] and [`AuditSigner`]), `seal` ([`Sealer`]), `ca` ([`CaKey`]).
//!
//! [`Signer`]: super::Signer
//! [`Sealer`]: super::Sealer
//! [`AuditSigner`]: super::AuditSigner
//! [`CaKey`]: super::CaKey

mod ca;
mod generate;
mod objects;
mod seal;
mod sign;
pub(super) mod token;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use cryptoki::slot::Slot;
use time::OffsetDateTime;

use self::generate::{generate, mark_end_date, record_activation, record_retirement};
use self::objects::{max_generation, read_keys};
use self::token::{context_with, token_lock};
use super::init;
use super::inventory::{Inventory, KeyInfo, RawKey};
use super::keys::KeyKind;
use super::pool::SessionPool;
use super::HsmError;
use crate::clock::Clock;
use crate::config::HsmConfig;

pub use self::token::{context, find_token_slot};

/// Kinds `open` generates when the token has none: the ID-token signing keys and the
/// AES key that seals stored secrets, and the audit checkpoint key (R-LOG-2).
const REQUIRED_KINDS: [KeyKind; 4] = [KeyKind::OidcEc, KeyKind::OidcRsa, KeyKind::DataWrap, KeyKind::AuditSign];

/// Longest token label PKCS#11 allows (`CK_TOKEN_INFO.label` is 32 bytes).
const MAX_TOKEN_LABEL: usize = 32;

/// When a rotated-in key starts signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// `hsm.publish_ahead` after the rotation for the JWKS kinds (`hsm rotate`); at once
    /// for the others, whose public keys relying parties do not cache.
    AfterPublishAhead,
    /// At once (`hsm rotate --now`: the active key is compromised).
    Now,
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
    publish_ahead: Duration,
    /// The clock that decides which key is active; the system clock until
    /// [`Pkcs11Hsm::use_clock`] sets one.
    clock: OnceLock<Arc<dyn Clock>>,
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
                publish_ahead: config.publish_ahead,
                clock: OnceLock::new(),
                inventory: RwLock::new(Arc::new(Inventory::default())),
                jwks: RwLock::new(Arc::new(
                    Inventory::build(Vec::new(), 0, Duration::ZERO).jwks_json().to_vec(),
                )),
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

    /// Decides which key is active by `clock` from now on (the server's clock, which tests
    /// move instead of sleeping; without it, the system clock). Set once for this handle and
    /// its clones: later calls change nothing and return `false`.
    pub fn use_clock(&self, clock: Arc<dyn Clock>) -> bool {
        self.inner.clock.set(clock).is_ok()
    }

    /// Reports every signing call's wait for a worker and its run (`/metrics` phases).
    pub fn observe_calls(&self, observer: crate::hsm::pool::CallObserver) -> bool {
        self.inner.pool.observe(observer)
    }

    /// Now, Unix seconds, by the clock in use.
    fn now(&self) -> i64 {
        match self.inner.clock.get() {
            Some(clock) => clock.now(),
            None => OffsetDateTime::now_utc().unix_timestamp(),
        }
    }

    fn now_utc(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.now()).unwrap_or_else(|_| OffsetDateTime::now_utc())
    }

    /// Every key of the token with its state now, as of the last refresh.
    pub fn list_keys(&self) -> Vec<KeyInfo> {
        self.inventory().infos(self.now())
    }

    /// Generates the next generation of `kind` inside the token and publishes it at once
    /// in this process (other processes at their next [`Pkcs11Hsm::refresh_keys`]).
    ///
    /// With [`Switch::AfterPublishAhead`] a key of a JWKS kind starts signing
    /// `hsm.publish_ahead` from now, in every process, so relying parties that cache the
    /// JWKS know it before they meet it; [`Switch::Now`] (a compromised key) and the kinds
    /// that are not in the JWKS switch at once. The keys it replaces are recorded as retired
    /// at that activation time and stay in the JWKS for `retired_key_publish` after it.
    /// Blocking (RSA-3072 generation takes a while): call it from `spawn_blocking` in async
    /// code.
    pub fn rotate(&self, kind: KeyKind, switch: Switch) -> Result<KeyInfo, HsmError> {
        let lock = token_lock(&self.inner.module, &self.inner.token_label);
        let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = self.now_utc();
        let ahead = match switch {
            Switch::AfterPublishAhead if kind.in_jwks() => self.inner.publish_ahead,
            _ => Duration::ZERO,
        };
        let active = time::Duration::try_from(ahead)
            .ok()
            .and_then(|ahead| now.checked_add(ahead))
            .ok_or_else(|| HsmError::Pkcs11("hsm.publish_ahead is out of range".into()))?;
        let label = self.inner.pool.run_blocking(|pooled| {
            let session = pooled.session();
            let keys = read_keys(session)?;
            let next = max_generation(session, kind)?
                .checked_add(1)
                .ok_or_else(|| HsmError::Pkcs11(format!("generation of {kind} overflows")))?;
            // Every older key still due to sign after `active` (the current one, and one
            // scheduled by an earlier rotation) is retired at `active`. Recorded before the
            // successor exists: if generation fails, the old key is still the highest
            // generation with its time come and stays active; the record is then ignored.
            let replaced: Vec<&str> = keys
                .iter()
                .filter(|key| key.kind == kind && key.retired_at.is_none_or(|at| at > active))
                .map(|key| key.label.as_str())
                .collect();
            for previous in &replaced {
                record_retirement(session, previous, active)?;
            }
            record_activation(session, &kind.label(next), now, active)?;
            generate(session, kind, next)?;
            for previous in &replaced {
                mark_end_date(session, previous, active);
            }
            Ok(kind.label(next))
        })?;
        tracing::info!(token = %self.inner.token_label, key = %label, active_at = %active, "rotated HSM key");
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
                    // Replaces any record left by a rotation whose generation failed.
                    let now = self.now_utc();
                    record_activation(session, &kind.label(next), now, now)?;
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
        let inventory = Inventory::build(raw, self.now(), self.inner.retired_key_publish);
        let jwks = Arc::new(inventory.jwks_json().to_vec());
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
