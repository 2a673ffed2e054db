//! [`MeansRepo`]: eID means, their stored credentials and per-factor failure counters.

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::domain::ids::{MeansId, PersonId};
use crate::domain::means::{EidMeans, MeansStatus};
use crate::store::StoreError;

/// The stored credential of a means.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// argon2id PHC string of a password.
    PasswordHash(String),
    /// A `totp` means (R-MEANS-2): the password's argon2id PHC string and the TOTP seed
    /// sealed under the HSM `data-wrap` key with the means id as AAD (R-AUTH-3, R-AUTH-6).
    PasswordTotp {
        /// argon2id PHC string of the password.
        password_phc: String,
        /// Output of [`crate::hsm::Sealer::seal`]; never the seed itself.
        sealed_seed: Vec<u8>,
    },
    /// No credential yet (issued, not activated).
    None,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::PasswordHash(_) => f.write_str("PasswordHash([redacted])"),
            Credential::PasswordTotp { .. } => f.write_str("PasswordTotp([redacted])"),
            Credential::None => f.write_str("None"),
        }
    }
}

/// eID means and their credentials.
#[async_trait]
pub trait MeansRepo: Send + Sync {
    /// A means by id.
    async fn means(&self, id: MeansId) -> Result<Option<EidMeans>, StoreError>;
    /// All means of a holder, newest first.
    async fn means_of_holder(&self, holder: PersonId) -> Result<Vec<EidMeans>, StoreError>;
    /// The stored credential of a means.
    async fn credential(&self, id: MeansId) -> Result<Credential, StoreError>;
    /// Inserts a means with its credential; audited.
    async fn insert_means(
        &self,
        means: &EidMeans,
        credential: &Credential,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;
    /// Sets the status if the stored version is `expected_version` (else `Conflict`),
    /// bumps the version; audited. When the new status is not `active`, every refresh
    /// token of the means is revoked in the same transaction (R-LIFE-4).
    async fn set_status(
        &self,
        id: MeansId,
        expected_version: i64,
        status: MeansStatus,
        audit: AuditEvent,
    ) -> Result<EidMeans, StoreError>;
    /// Records that TOTP time step `step` was used by means `id`, atomically and only if
    /// it is later than the last one used (R-AUTH-4, R-AUTH-5: a code is accepted once).
    /// `false`: the step (or a later one) was already used.
    async fn use_totp_step(&self, id: MeansId, step: i64) -> Result<bool, StoreError>;
    /// Adds one failure to the counter of `factor` of means `id` and returns the new
    /// count (durable: the hard lock counts failures over any period, R-AUTH-4).
    async fn count_auth_failure(&self, id: MeansId, factor: AuthFactor) -> Result<i64, StoreError>;
    /// Resets the failure counter of `factor` after a success.
    async fn clear_auth_failures(&self, id: MeansId, factor: AuthFactor) -> Result<(), StoreError>;
}

/// A factor of a multi-factor means with its own durable failure counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFactor {
    /// The password (knowledge).
    Password,
    /// The one-time code (possession).
    Otp,
}
