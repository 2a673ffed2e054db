//! The session pool: owned PKCS#11 sessions, logged in as user, each used by one blocking
//! task at a time (R-AUTH-6, R-SEC-2; DESIGN "Authentication and LoA" performance notes).
//!
//! - `sessions` (0 = one per core) are opened at start; opening a session per signature
//!   halves throughput on SoftHSM.
//! - A semaphore bounds operations in flight (`max_in_flight`, 0 = `sessions`). When it is
//!   above `sessions` (a network HSM with milliseconds of latency), the pool grows lazily
//!   to `max_in_flight` sessions: one is opened only when every existing one is busy.
//! - Every call runs inside `tokio::task::spawn_blocking`: a signature never blocks the
//!   async runtime. `cryptoki::Session` is `Send` but not `Sync`, so a session is moved
//!   into the task and back; no two threads ever use one session at once.
//! - A call that fails because the session or its login is gone (handle invalid, closed,
//!   device removed or in error, token absent, user not logged in, stale key handle) is
//!   retried once on a freshly opened and logged-in session; after that it fails closed
//!   with [`HsmError::SessionLost`]. There is never a software fallback.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tokio::sync::Semaphore;

use super::HsmError;

/// Why an operation on a session failed.
#[derive(Debug)]
pub(crate) enum OpError {
    /// A PKCS#11 call failed.
    Pkcs11(Pkcs11Error),
    /// No key object with this label (and `CKA_ID`); may be a logged-out session.
    KeyNotFound(String),
    /// Anything else, passed through unchanged.
    Hsm(HsmError),
}

impl From<Pkcs11Error> for OpError {
    fn from(e: Pkcs11Error) -> Self {
        OpError::Pkcs11(e)
    }
}

impl From<HsmError> for OpError {
    fn from(e: HsmError) -> Self {
        OpError::Hsm(e)
    }
}

impl OpError {
    /// Whether a fresh session may cure it. A missing key counts: private objects are
    /// invisible to a session whose login was lost.
    fn is_session_level(&self) -> bool {
        match self {
            OpError::Pkcs11(Pkcs11Error::Pkcs11(rv, _)) => is_session_level(*rv),
            OpError::KeyNotFound(_) => true,
            _ => false,
        }
    }

    fn into_hsm(self) -> HsmError {
        match self {
            OpError::Pkcs11(e) => HsmError::Pkcs11(e.to_string()),
            OpError::KeyNotFound(label) => HsmError::KeyNotFound(label),
            OpError::Hsm(e) => e,
        }
    }
}

/// Return values after which the session (or its login, or the handles found through it)
/// cannot be trusted any more.
fn is_session_level(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::DeviceError
            | RvError::DeviceRemoved
            | RvError::KeyHandleInvalid
            | RvError::ObjectHandleInvalid
            | RvError::SessionClosed
            | RvError::SessionHandleInvalid
            | RvError::TokenNotPresent
            | RvError::UserNotLoggedIn
    )
}

/// One owned session and the key handles found through it. Handles are cached per
/// session and dropped with it: after a re-login a token may hand out new ones.
pub(crate) struct PooledSession {
    session: Session,
    keys: HashMap<String, (Vec<u8>, ObjectHandle)>,
}

impl PooledSession {
    /// The session, for any PKCS#11 call.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The private (or secret) key object labelled `label` with `CKA_ID` `id`, cached.
    pub fn key(&mut self, class: ObjectClass, label: &str, id: &[u8]) -> Result<ObjectHandle, OpError> {
        if let Some((cached_id, handle)) = self.keys.get(label) {
            if cached_id == id {
                return Ok(*handle);
            }
        }
        let found = self.session.find_objects(&[
            Attribute::Token(true),
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ])?;
        let handle = *found.first().ok_or_else(|| OpError::KeyNotFound(label.to_owned()))?;
        self.keys.insert(label.to_owned(), (id.to_vec(), handle));
        Ok(handle)
    }
}

/// The pool. Cheap to clone; clones share sessions and the in-flight bound.
#[derive(Clone)]
pub(crate) struct SessionPool {
    inner: Arc<PoolInner>,
    permits: Arc<Semaphore>,
}

struct PoolInner {
    context: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    idle: Mutex<Vec<PooledSession>>,
    /// Most sessions kept (`max(sessions, max_in_flight)`).
    capacity: usize,
    reopened: AtomicU64,
}

impl fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionPool")
            .field("slot", &self.inner.slot.id())
            .field("capacity", &self.inner.capacity)
            .field("in_flight_available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl SessionPool {
    /// Opens `sessions` sessions on `slot` and logs in with `pin` (blocking). A wrong PIN
    /// or an absent token fails here, at start-up.
    pub fn open(
        context: Pkcs11,
        slot: Slot,
        pin: AuthPin,
        sessions: usize,
        max_in_flight: usize,
    ) -> Result<SessionPool, HsmError> {
        let sessions = sessions.max(1);
        let max_in_flight = max_in_flight.max(1);
        let inner = PoolInner {
            context,
            slot,
            pin,
            idle: Mutex::new(Vec::with_capacity(sessions.max(max_in_flight))),
            capacity: sessions.max(max_in_flight),
            reopened: AtomicU64::new(0),
        };
        let mut opened = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            opened.push(inner.open_session().map_err(|e| match e {
                OpError::Pkcs11(e) => HsmError::Unavailable(format!("cannot open a logged-in HSM session: {e}")),
                other => other.into_hsm(),
            })?);
        }
        *inner.lock_idle() = opened;
        Ok(SessionPool {
            inner: Arc::new(inner),
            permits: Arc::new(Semaphore::new(max_in_flight)),
        })
    }

    /// Runs `op` on a pooled session inside `spawn_blocking`, at most `max_in_flight` at
    /// once, with one retry on a fresh session after a session-level failure.
    pub async fn run<T, F>(&self, op: F) -> Result<T, HsmError>
    where
        T: Send + 'static,
        F: FnMut(&mut PooledSession) -> Result<T, OpError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| HsmError::Unavailable("HSM pool closed".into()))?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // Held until the PKCS#11 call returns, even if the caller stopped waiting.
            let _permit = permit;
            inner.run_blocking(op)
        })
        .await
        .map_err(|e| HsmError::Unavailable(format!("HSM task failed: {e}")))?
    }

    /// Like [`SessionPool::run`] on the calling thread, without the in-flight bound: for
    /// start-up and administrative calls (inventory, rotation) made from blocking code.
    pub fn run_blocking<T>(&self, op: impl FnMut(&mut PooledSession) -> Result<T, OpError>) -> Result<T, HsmError> {
        self.inner.run_blocking(op)
    }

    /// Logs the token out for every session of this process (`C_Logout` is token-wide),
    /// which invalidates their login state and private key handles at once; see
    /// `Pkcs11Hsm::close_all_sessions_for_fault_test`.
    pub fn break_sessions(&self) -> Result<(), HsmError> {
        let session = self
            .inner
            .context
            .open_ro_session(self.inner.slot)
            .map_err(|e| HsmError::Pkcs11(e.to_string()))?;
        match session.logout() {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserNotLoggedIn, _)) => Ok(()),
            Err(e) => Err(HsmError::Pkcs11(e.to_string())),
        }
    }

    /// How many times a broken session was replaced.
    pub fn reopened(&self) -> u64 {
        self.inner.reopened.load(Ordering::Relaxed)
    }

    /// Slot of the token.
    pub fn slot(&self) -> Slot {
        self.inner.slot
    }
}

impl PoolInner {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<PooledSession>> {
        // The vector stays consistent even if a holder panicked: push/pop only.
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open_session(&self) -> Result<PooledSession, OpError> {
        let session = self.context.open_rw_session(self.slot)?;
        // Login state is per token for the whole process: a new session of a logged-in
        // token is logged in already.
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(PooledSession {
            session,
            keys: HashMap::new(),
        })
    }

    fn checkout(&self) -> Result<PooledSession, OpError> {
        let idle = self.lock_idle().pop();
        match idle {
            Some(session) => Ok(session),
            None => self.open_session(),
        }
    }

    fn checkin(&self, session: PooledSession) {
        let mut idle = self.lock_idle();
        if idle.len() < self.capacity {
            idle.push(session);
        }
        // else: dropped here, which closes it.
    }

    fn run_blocking<T>(&self, mut op: impl FnMut(&mut PooledSession) -> Result<T, OpError>) -> Result<T, HsmError> {
        let first = match self.checkout() {
            Ok(mut session) => match op(&mut session) {
                Ok(value) => {
                    self.checkin(session);
                    return Ok(value);
                }
                Err(e) if e.is_session_level() => {
                    drop(session);
                    e
                }
                Err(e) => {
                    self.checkin(session);
                    return Err(e.into_hsm());
                }
            },
            Err(e) if e.is_session_level() => e,
            Err(e) => return Err(e.into_hsm()),
        };
        tracing::warn!(error = ?first, slot = self.slot.id(), "HSM session failed; reopening");
        self.reopened.fetch_add(1, Ordering::Relaxed);
        let mut session = self.open_session().map_err(|e| {
            tracing::error!(error = ?e, "HSM session could not be reopened");
            HsmError::SessionLost
        })?;
        match op(&mut session) {
            Ok(value) => {
                self.checkin(session);
                Ok(value)
            }
            Err(OpError::KeyNotFound(label)) => {
                // The fresh session is logged in, so the key is really absent.
                self.checkin(session);
                Err(HsmError::KeyNotFound(label))
            }
            Err(e) if e.is_session_level() => {
                tracing::error!(error = ?e, "HSM call failed again on a fresh session");
                Err(HsmError::SessionLost)
            }
            Err(e) => {
                self.checkin(session);
                Err(e.into_hsm())
            }
        }
    }
}
