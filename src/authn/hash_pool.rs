//! argon2id on worker threads of its own (issue 22): `workers` threads (named
//! `eidgate-argon2-<n>`, started at the first call) take calls from one queue. A worker
//! that finishes takes the next call at once, with the 19 MiB of argon2 memory it keeps
//! between calls, so that under load the workers never wait for the async runtime to hand
//! them work and never allocate and clear their memory again. A worker that has had
//! nothing to do for [`IDLE_RELEASE`] gives its memory back, so an idle server holds none.
//!
//! Admission (what the semaphores did before): a call not started by its deadline is
//! answered [`HashError::Busy`] (503) without running; at most `workers × 256` calls wait;
//! calls for browsers without a device cookie ("untrusted") run on at most `workers − 1`
//! workers at once (at least one), so that a guessing flood always leaves a worker to the
//! holders' known browsers (issue 19). A call whose caller stopped waiting is skipped.
//!
//! Must not: run argon2 on the async runtime, or hold the queue's lock while hashing.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, PasswordHasher as _, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::domain::secret::Password;
use crate::monitor::phases::{Phase, Phases};

/// OWASP (2023) minimum for argon2id: m = 19 MiB, t = 2, p = 1.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Iterations.
pub const ITERATIONS: u32 = 2;
/// Parallelism.
pub const PARALLELISM: u32 = 1;

/// Errors of the hashing pool.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashError {
    /// Every worker stayed busy past the deadline (answer 503).
    #[error("password hashing is overloaded")]
    Busy,
    /// The stored hash is not a valid PHC string.
    #[error("stored password hash is malformed")]
    Malformed,
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's documented ranges.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password, blocking: the `eidgate import` command calls it directly; the
/// server only through the bounded pool (`PasswordVerifier::hash`).
pub fn hash(password: &Password) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| HashError::Malformed)
}

/// A worker idle this long frees its argon2 memory.
pub const IDLE_RELEASE: Duration = Duration::from_secs(30);
/// Calls that may wait per worker.
const QUEUED_PER_WORKER: usize = 256;

/// argon2 memory kept between calls (grown to the largest parameters seen).
#[derive(Default)]
pub struct Memory(Vec<Block>);

impl Memory {
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            self.0 = vec![Block::default(); count];
        }
        &mut self.0[..count]
    }
}

/// Verifies `password` against the PHC string `phc` with `memory` (argon2 fills every block
/// before it reads it, so memory from an earlier call needs no clearing). The comparison
/// is constant-time (`password_hash::Output`).
pub fn verify_with(memory: &mut Memory, phc: &str, password: &Password) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|_| HashError::Malformed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|_| HashError::Malformed)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|_| HashError::Malformed)?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(|_| HashError::Malformed)?;
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return Err(HashError::Malformed);
    };
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes).map_err(|_| HashError::Malformed)?;
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = out.get_mut(..expected.len()).ok_or(HashError::Malformed)?;
    let blocks = memory.blocks(params.block_count());
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.expose().as_bytes(), salt, out, blocks)
        .map_err(|_| HashError::Malformed)?;
    let computed = Output::new(out).map_err(|_| HashError::Malformed)?;
    Ok(computed == expected)
}

/// What a call asks.
pub(super) enum Work {
    /// Verify against a PHC string.
    Verify { phc: String, password: Password },
    /// Hash a new password.
    Hash { password: Password },
}

/// What a call answers.
pub(super) enum Answer {
    Verified(bool),
    Hashed(String),
}

struct Job {
    untrusted: bool,
    queued: Instant,
    deadline: Instant,
    work: Work,
    reply: oneshot::Sender<Result<Answer, HashError>>,
}

struct Queue {
    jobs: VecDeque<Job>,
    untrusted_running: usize,
    started: usize,
    idle: usize,
    closed: bool,
}

struct Inner {
    queue: Mutex<Queue>,
    ready: Condvar,
    workers: usize,
    untrusted_limit: usize,
    phases: OnceLock<Arc<Phases>>,
}

/// The workers; they stop when the last handle is dropped.
pub(super) struct HashPool {
    inner: Arc<Inner>,
}

impl Drop for HashPool {
    fn drop(&mut self) {
        self.inner.lock().closed = true;
        self.inner.ready.notify_all();
    }
}

impl HashPool {
    /// `workers` threads at most (at least one).
    pub(super) fn new(workers: usize) -> Self {
        let workers = workers.max(1);
        Self {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    untrusted_running: 0,
                    started: 0,
                    idle: 0,
                    closed: false,
                }),
                ready: Condvar::new(),
                workers,
                untrusted_limit: workers.saturating_sub(1).max(1),
                phases: OnceLock::new(),
            }),
        }
    }

    /// Reports each call's wait and its argon2 time (once).
    pub(super) fn observe(&self, phases: Arc<Phases>) {
        let _ = self.inner.phases.set(phases);
    }

    /// Queues `work`; answers `Busy` when the queue is full or the call could not start
    /// within `deadline`.
    pub(super) async fn run(&self, untrusted: bool, deadline: Duration, work: Work) -> Result<Answer, HashError> {
        let (reply, answer) = oneshot::channel();
        let now = Instant::now();
        {
            let mut queue = self.inner.lock();
            if queue.closed || queue.jobs.len() >= self.inner.workers * QUEUED_PER_WORKER {
                tracing::warn!(queued = queue.jobs.len(), "argon2 queue full: call refused");
                return Err(HashError::Busy);
            }
            queue.jobs.push_back(Job {
                untrusted,
                queued: now,
                deadline: now + deadline,
                work,
                reply,
            });
            if queue.idle > 0 {
                self.inner.ready.notify_one();
            } else if queue.started < self.inner.workers {
                let n = queue.started;
                let inner = Arc::clone(&self.inner);
                let spawned = std::thread::Builder::new()
                    .name(format!("eidgate-argon2-{n}"))
                    .spawn(move || inner.work());
                match spawned {
                    Ok(_) => queue.started += 1,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start an argon2 worker thread");
                        if queue.started == 0 {
                            // Nobody would ever take the call: refuse it now.
                            queue.jobs.pop_back();
                            return Err(HashError::Busy);
                        }
                    }
                }
            }
        }
        answer.await.map_err(|_| HashError::Busy)?
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next job this worker may take: the first one, unless it is untrusted and the
    /// untrusted share is in use, then the first trusted one.
    fn take(&self, queue: &mut Queue) -> Option<Job> {
        let share_free = queue.untrusted_running < self.untrusted_limit;
        let at = queue.jobs.iter().position(|j| !j.untrusted || share_free)?;
        let job = queue.jobs.remove(at)?;
        if job.untrusted {
            queue.untrusted_running += 1;
        }
        Some(job)
    }

    fn work(&self) {
        let mut memory = Memory::default();
        loop {
            let job = {
                let mut queue = self.lock();
                loop {
                    if let Some(job) = self.take(&mut queue) {
                        break job;
                    }
                    if queue.closed {
                        queue.started -= 1;
                        return;
                    }
                    queue.idle += 1;
                    let (woken, waited) = self
                        .ready
                        .wait_timeout(queue, IDLE_RELEASE)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    queue = woken;
                    queue.idle -= 1;
                    if waited.timed_out() {
                        memory = Memory::default();
                    }
                }
            };
            let untrusted = job.untrusted;
            // A panicking call must not take the worker with it (its reply is dropped,
            // so its caller gets `Busy`).
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_job(&mut memory, job)));
            if ran.is_err() {
                tracing::error!("an argon2 call panicked");
                memory = Memory::default();
            }
            if untrusted {
                let mut queue = self.lock();
                queue.untrusted_running -= 1;
                if !queue.jobs.is_empty() && queue.idle > 0 {
                    self.ready.notify_one();
                }
            }
        }
    }

    fn run_job(&self, memory: &mut Memory, job: Job) {
        if job.reply.is_closed() {
            return; // the caller stopped waiting
        }
        let started = Instant::now();
        if let Some(phases) = self.phases.get() {
            phases.observe(Phase::PasswordQueue, started.duration_since(job.queued));
        }
        if started >= job.deadline {
            let _ = job.reply.send(Err(HashError::Busy));
            return;
        }
        let answer = match job.work {
            Work::Verify { phc, password } => verify_with(memory, &phc, &password).map(Answer::Verified),
            Work::Hash { password } => hash(&password).map(Answer::Hashed),
        };
        if let Some(phases) = self.phases.get() {
            phases.observe(Phase::Argon2, started.elapsed());
        }
        let _ = job.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(untrusted: bool) -> (Job, oneshot::Receiver<Result<Answer, HashError>>) {
        let (reply, rx) = oneshot::channel();
        let now = Instant::now();
        let password = Password::new("x".into());
        let job = Job {
            untrusted,
            queued: now,
            deadline: now + Duration::from_secs(5),
            work: Work::Hash { password },
            reply,
        };
        (job, rx)
    }

    #[test]
    fn r_auth_4_issue_19_untrusted_calls_never_take_the_last_worker() {
        let pool = HashPool::new(2);
        let mut queue = pool.inner.lock();
        let mut receivers = Vec::new();
        for untrusted in [true, true, false] {
            let (j, rx) = job(untrusted);
            queue.jobs.push_back(j);
            receivers.push(rx);
        }
        // The first untrusted call takes the share (one of two workers)...
        assert!(pool.inner.take(&mut queue).is_some_and(|j| j.untrusted));
        // ...so the next worker skips the second untrusted call for the trusted one.
        assert!(pool.inner.take(&mut queue).is_some_and(|j| !j.untrusted));
        assert!(pool.inner.take(&mut queue).is_none(), "the share is in use");
        queue.untrusted_running -= 1;
        assert!(pool.inner.take(&mut queue).is_some_and(|j| j.untrusted));
    }

    #[tokio::test]
    async fn a_call_not_started_by_its_deadline_is_busy_and_the_pool_goes_on() {
        let pool = HashPool::new(1);
        let work = |p: &str| Work::Hash {
            password: Password::new(p.into()),
        };
        assert!(matches!(
            pool.run(false, Duration::ZERO, work("a")).await,
            Err(HashError::Busy)
        ));
        assert!(matches!(
            pool.run(false, Duration::from_secs(30), work("b")).await,
            Ok(Answer::Hashed(_))
        ));
    }

    #[test]
    fn r_auth_3_memory_kept_between_calls_verifies_hashes_of_any_parameters() {
        let mut memory = Memory::default();
        let right = Password::new("correct horse battery".into());
        let ours = hash(&right).unwrap();
        let salt = argon2::password_hash::SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let smaller = {
            use argon2::password_hash::PasswordHasher as _;
            let params = Params::new(8 * 1024, 1, 1, None).unwrap();
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(right.expose().as_bytes(), &salt)
                .unwrap()
                .to_string()
        };
        for phc in [&ours, &smaller, &ours] {
            assert!(verify_with(&mut memory, phc, &right).unwrap(), "{phc}");
            assert!(!verify_with(&mut memory, phc, &Password::new("wrong".into())).unwrap());
        }
        assert_eq!(
            verify_with(&mut memory, "$argon2id$garbage", &right),
            Err(HashError::Malformed)
        );
    }
}
