//! Password hashing and verification with argon2id (R-AUTH-3, R-SEC-4) on a bounded pool.
//!
//! argon2id costs ~20 ms of CPU per hash, so verifications run off the async runtime on
//! workers of their own ([`super::hash_pool`]), at most `workers` at once, and a request
//! that cannot start within the deadline gets 503 instead of queueing for ever: a login
//! flood cannot starve the token endpoint.
//! Unknown identifiers are verified against a dummy hash so that the failure path takes
//! the same time whether the account exists or not.

use std::sync::Arc;
use std::time::Duration;

use super::hash_pool::{Answer, HashPool, Work};
use crate::domain::secret::Password;
use crate::monitor::phases::Phases;

pub use super::hash_pool::{hash, HashError, ITERATIONS, MEMORY_KIB, PARALLELISM};

/// A hash no password matches, with the configured parameters, made without running
/// argon2 (issue 22: a hash at start-up left its 19 MiB resident in an idle server):
/// random salt and output, so verifying against it costs exactly what a real one costs.
fn dummy_hash() -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    format!(
        "$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}${}${}",
        b64.encode(crate::random::bytes::<16>()),
        b64.encode(crate::random::bytes::<32>())
    )
}

/// Verifies `password` against `phc`, blocking: the `eidgate import` command compares an
/// item with the means already present (argon2 verification is constant-time).
pub fn verify_blocking(phc: &str, password: &Password) -> bool {
    super::hash_pool::verify_with(&mut super::hash_pool::Memory::default(), phc, password).unwrap_or(false)
}

/// The bounded verification pool ([`super::hash_pool`]).
#[derive(Clone)]
pub struct PasswordVerifier {
    pool: Arc<HashPool>,
    deadline: Duration,
    dummy: Arc<String>,
}

impl PasswordVerifier {
    /// A pool of `workers` (0 = number of cores) with a queue deadline.
    pub fn new(workers: usize, deadline: Duration) -> Result<Self, HashError> {
        let workers = if workers == 0 {
            crate::config::Config::cores()
        } else {
            workers
        };
        Ok(Self {
            pool: Arc::new(HashPool::new(workers)),
            deadline,
            dummy: Arc::new(dummy_hash()),
        })
    }

    /// Reports each call's wait for a worker and its argon2 time (`/metrics`).
    pub fn with_phases(self, phases: Arc<Phases>) -> Self {
        self.pool.observe(phases);
        self
    }

    /// Hashes `password` on the pool (activation, password change, codes): never on the
    /// async runtime, at most `workers` at once, 503 past the deadline.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        match self.pool.run(false, self.deadline, Work::Hash { password }).await? {
            Answer::Hashed(phc) => Ok(phc),
            Answer::Verified(_) => Err(HashError::Busy),
        }
    }

    /// Verifies `password` for a browser without a device cookie: like
    /// [`PasswordVerifier::verify`], within the untrusted share of the workers.
    pub async fn verify_untrusted(&self, phc: Option<String>, password: Password) -> Result<bool, HashError> {
        self.verify_as(true, phc, password).await
    }

    /// Verifies `password` against `phc` (or the dummy hash when `None`, which always
    /// fails but costs the same).
    pub async fn verify(&self, phc: Option<String>, password: Password) -> Result<bool, HashError> {
        self.verify_as(false, phc, password).await
    }

    async fn verify_as(&self, untrusted: bool, phc: Option<String>, password: Password) -> Result<bool, HashError> {
        let real = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy.as_ref().clone());
        match self
            .pool
            .run(untrusted, self.deadline, Work::Verify { phc, password })
            .await?
        {
            Answer::Verified(ok) => Ok(ok && real),
            Answer::Hashed(_) => Err(HashError::Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHash;

    #[test]
    fn r_auth_3_the_dummy_hash_has_the_real_parameters_and_matches_nothing() {
        let dummy = dummy_hash();
        let real = hash(&Password::new("correct horse battery".into())).unwrap();
        let (d, r) = (PasswordHash::new(&dummy).unwrap(), PasswordHash::new(&real).unwrap());
        assert_eq!(d.algorithm, r.algorithm);
        assert_eq!(d.version, r.version);
        assert_eq!(d.params, r.params);
        assert_eq!(d.salt.unwrap().len(), r.salt.unwrap().len());
        assert_eq!(d.hash.unwrap().len(), r.hash.unwrap().len());
        assert!(!verify_blocking(&dummy, &Password::new("correct horse battery".into())));
        assert!(!verify_blocking(&dummy, &Password::new(String::new())));
        assert_ne!(dummy, dummy_hash(), "random salt and output");
    }

    #[tokio::test]
    async fn r_auth_3_argon2id_hashes_verify_and_are_salted() {
        let p = Password::new("correct horse battery".into());
        let h1 = hash(&p).unwrap();
        let h2 = hash(&p).unwrap();
        assert!(h1.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_ne!(h1, h2);
        let v = PasswordVerifier::new(1, Duration::from_secs(5)).unwrap();
        assert!(v.verify(Some(h1.clone()), p.clone()).await.unwrap());
        assert!(!v.verify(Some(h1), Password::new("wrong".into())).await.unwrap());
        assert!(!v.verify(None, p.clone()).await.unwrap());
        assert!(!v.verify_untrusted(None, p.clone()).await.unwrap());
        let pooled = v.hash(p.clone()).await.unwrap();
        assert!(v.verify(Some(pooled), p).await.unwrap());
    }
}
