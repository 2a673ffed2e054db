//! The session pool: owned PKCS#11 sessions, logged in as user, each owned by one
//! dedicated worker thread (R-AUTH-6, R-SEC-2; DESIGN "Authentication and LoA"
//! performance notes).
//!
//! - `sessions` (0 = one per core) are opened at start; opening a session per signature
//!   halves throughput on SoftHSM.
//! - `max(sessions, max_in_flight)` worker threads (named `eidgate-hsm-<n>`) take calls
//!   from one queue; each owns one session, so no two threads ever use one session at
//!   once (`cryptoki::Session` is `Send` but not `Sync`). Workers beyond `sessions` (a
//!   network HSM with milliseconds of latency wants more calls in flight than cores)
//!   open their session at their first call. A signature never blocks the async runtime.
//! - Why not `spawn_blocking` behind a semaphore: every signature then costs three
//!   cross-thread wake-ups (permit, blocking thread, result) and leaves the token idle
//!   between them; measured on SoftHSM that was 40% of the raw `C_Sign` rate lost
//!   (`benches/token_vs_hsm.rs`). A worker that finds the queue non-empty takes the next
//!   call without sleeping; the only wake-up left is the caller's.
//! - The queue is bounded (`MAX_QUEUED_PER_WORKER` per worker): beyond it a call fails
//!   at once with [`HsmError::Unavailable`] (503) instead of queueing without end. A call
//!   whose caller stopped waiting is skipped by the worker.
//! - Start-up and administrative calls (`run_blocking`: inventory, rotation, CA
//!   certificates, CRLs) use sessions of their own on the calling thread.
//! - A call that fails because the session or its login is gone (handle invalid, closed,
//!   device removed or in error, token absent, user not logged in, stale key handle) is
//!   retried once on a freshly opened and logged-in session; after that it fails closed
//!   with [`HsmError::SessionLost`]. There is never a software fallback.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tokio::sync::oneshot;

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

/// Calls allowed to wait in the queue per worker before new ones are refused.
const MAX_QUEUED_PER_WORKER: usize = 256;

/// A queued call: runs on the worker's session slot (opened on demand).
type Job = Box<dyn FnOnce(&PoolInner, &mut Option<PooledSession>) + Send>;

/// The pool. Cheap to clone; clones share the workers. When the last clone is dropped
/// the workers finish the queued calls, close their sessions and exit.
#[derive(Clone)]
pub(crate) struct SessionPool {
    handle: Arc<PoolHandle>,
}

/// Owner of the workers' lifetime: its drop closes the queue and waits until every
/// worker has run the calls still queued and closed its session. Without the wait a
/// process could go on to `exit` (SoftHSM's and OpenSSL's static destructors) while a
/// worker is still inside `C_CloseSession`, which crashes the process at its very end.
struct PoolHandle {
    inner: Arc<PoolInner>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        self.inner.lock_queue().closed = true;
        self.inner.ready.notify_all();
        let me = std::thread::current().id();
        for thread in self.threads.drain(..) {
            // A call that held the last handle itself cannot wait for its own worker.
            if thread.thread().id() != me && thread.join().is_err() {
                tracing::error!("an HSM worker thread panicked");
            }
        }
    }
}

struct Queue {
    jobs: VecDeque<Job>,
    /// Workers waiting on `ready`.
    idle: usize,
    closed: bool,
}

struct PoolInner {
    context: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    queue: Mutex<Queue>,
    ready: Condvar,
    workers: usize,
    /// Sessions of `run_blocking` callers (start-up and administrative calls).
    spare: Mutex<Vec<PooledSession>>,
    reopened: AtomicU64,
    observer: OnceLock<CallObserver>,
}

/// Told after each queued call how long it waited for a worker and how long it ran
/// (`/metrics` phases `hsm_queue` and `hsm_call`, issue 22).
pub type CallObserver = Arc<dyn Fn(Duration, Duration) + Send + Sync>;

impl fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionPool")
            .field("slot", &self.handle.inner.slot.id())
            .field("workers", &self.handle.inner.workers)
            .finish_non_exhaustive()
    }
}

impl SessionPool {
    /// Opens `sessions` sessions on `slot`, logs in with `pin` (blocking) and starts
    /// `max(sessions, max_in_flight)` workers. A wrong PIN or an absent token fails here,
    /// at start-up.
    pub fn open(
        context: Pkcs11,
        slot: Slot,
        pin: AuthPin,
        sessions: usize,
        max_in_flight: usize,
    ) -> Result<SessionPool, HsmError> {
        let sessions = sessions.max(1);
        let workers = sessions.max(max_in_flight);
        let inner = Arc::new(PoolInner {
            context,
            slot,
            pin,
            queue: Mutex::new(Queue {
                jobs: VecDeque::with_capacity(workers * 4),
                idle: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            workers,
            spare: Mutex::new(Vec::new()),
            reopened: AtomicU64::new(0),
            observer: OnceLock::new(),
        });
        let mut opened = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            opened.push(inner.open_session().map_err(|e| match e {
                OpError::Pkcs11(e) => HsmError::Unavailable(format!("cannot open a logged-in HSM session: {e}")),
                other => other.into_hsm(),
            })?);
        }
        // The handle exists before the first worker, so a failed start closes and joins
        // the ones already running.
        let mut handle = PoolHandle {
            inner: Arc::clone(&inner),
            threads: Vec::with_capacity(workers),
        };
        for n in 0..workers {
            let session = opened.pop();
            let inner = Arc::clone(&inner);
            let thread = std::thread::Builder::new()
                .name(format!("eidgate-hsm-{n}"))
                .spawn(move || inner.work(session))
                .map_err(|e| HsmError::Unavailable(format!("cannot start an HSM worker thread: {e}")))?;
            handle.threads.push(thread);
        }
        Ok(SessionPool {
            handle: Arc::new(handle),
        })
    }

    /// Runs `op` on a worker's session, with one retry on a fresh session after a
    /// session-level failure.
    pub async fn run<T, F>(&self, op: F) -> Result<T, HsmError>
    where
        T: Send + 'static,
        F: FnMut(&mut PooledSession) -> Result<T, OpError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let queued = Instant::now();
        let job: Job = Box::new(move |inner: &PoolInner, slot: &mut Option<PooledSession>| {
            if tx.is_closed() {
                return; // the caller stopped waiting: spare the token
            }
            let started = Instant::now();
            let result = inner.run_on(slot, op);
            if let Some(observe) = inner.observer.get() {
                observe(started.duration_since(queued), started.elapsed());
            }
            let _ = tx.send(result);
        });
        let inner = &self.handle.inner;
        {
            let mut queue = inner.lock_queue();
            if queue.closed {
                return Err(HsmError::Unavailable("HSM pool closed".into()));
            }
            if queue.jobs.len() >= inner.workers * MAX_QUEUED_PER_WORKER {
                tracing::warn!(queued = queue.jobs.len(), "HSM queue full: call refused");
                return Err(HsmError::Unavailable("HSM queue full".into()));
            }
            queue.jobs.push_back(job);
            if queue.idle > 0 {
                inner.ready.notify_one();
            }
        }
        rx.await
            .map_err(|_| HsmError::Unavailable("HSM worker stopped".into()))?
    }

    /// Sets who is told the queue wait and run time of every [`SessionPool::run`] call
    /// (once; later calls change nothing and return `false`).
    pub fn observe(&self, observer: CallObserver) -> bool {
        self.handle.inner.observer.set(observer).is_ok()
    }

    /// Like [`SessionPool::run`] on the calling thread, on a session of its own: for
    /// start-up and administrative calls (inventory, rotation, CA) made from blocking code.
    pub fn run_blocking<T>(&self, op: impl FnMut(&mut PooledSession) -> Result<T, OpError>) -> Result<T, HsmError> {
        let inner = &self.handle.inner;
        let mut slot = inner.lock_spare().pop();
        let result = inner.run_on(&mut slot, op);
        if let Some(session) = slot {
            let mut spare = inner.lock_spare();
            if spare.len() < inner.workers {
                spare.push(session);
            }
        }
        result
    }

    /// Logs the token out for every session of this process (`C_Logout` is token-wide),
    /// which invalidates their login state and private key handles at once; see
    /// `Pkcs11Hsm::close_all_sessions_for_fault_test`.
    pub fn break_sessions(&self) -> Result<(), HsmError> {
        let inner = &self.handle.inner;
        let session = inner
            .context
            .open_ro_session(inner.slot)
            .map_err(|e| HsmError::Pkcs11(e.to_string()))?;
        match session.logout() {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserNotLoggedIn, _)) => Ok(()),
            Err(e) => Err(HsmError::Pkcs11(e.to_string())),
        }
    }

    /// How many times a broken session was replaced.
    pub fn reopened(&self) -> u64 {
        self.handle.inner.reopened.load(Ordering::Relaxed)
    }

    /// Slot of the token.
    pub fn slot(&self) -> Slot {
        self.handle.inner.slot
    }
}

impl PoolInner {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        // The queue stays consistent even if a holder panicked: push/pop only.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_spare(&self) -> std::sync::MutexGuard<'_, Vec<PooledSession>> {
        self.spare.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A worker: takes calls until the pool is dropped and the queue is empty.
    fn work(&self, mut session: Option<PooledSession>) {
        loop {
            let job = {
                let mut queue = self.lock_queue();
                loop {
                    if let Some(job) = queue.jobs.pop_front() {
                        break job;
                    }
                    if queue.closed {
                        return;
                    }
                    queue.idle += 1;
                    queue = self.ready.wait(queue).unwrap_or_else(|poisoned| poisoned.into_inner());
                    queue.idle -= 1;
                }
            };
            // A panicking call must not take the worker (and its queue share) with it;
            // its session is dropped, as its state is unknown.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(self, &mut session)));
            if ran.is_err() {
                tracing::error!(slot = self.slot.id(), "HSM call panicked; its session is closed");
                session = None;
            }
        }
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

    /// Runs `op` on the session in `slot` (opened if empty); after a session-level
    /// failure the session is replaced and `op` tried once more. A session that failed
    /// that way is never kept.
    fn run_on<T>(
        &self,
        slot: &mut Option<PooledSession>,
        mut op: impl FnMut(&mut PooledSession) -> Result<T, OpError>,
    ) -> Result<T, HsmError> {
        let first = match slot.take().map_or_else(|| self.open_session(), Ok) {
            Ok(mut session) => match op(&mut session) {
                Ok(value) => {
                    *slot = Some(session);
                    return Ok(value);
                }
                Err(e) if e.is_session_level() => e,
                Err(e) => {
                    *slot = Some(session);
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
                *slot = Some(session);
                Ok(value)
            }
            Err(OpError::KeyNotFound(label)) => {
                // The fresh session is logged in, so the key is really absent.
                *slot = Some(session);
                Err(HsmError::KeyNotFound(label))
            }
            Err(e) if e.is_session_level() => {
                tracing::error!(error = ?e, "HSM call failed again on a fresh session");
                Err(HsmError::SessionLost)
            }
            Err(e) => {
                *slot = Some(session);
                Err(e.into_hsm())
            }
        }
    }
}
