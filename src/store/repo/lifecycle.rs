//! [`LifecycleRepo`]: lifecycle data of means, transitions, operators, proofing and
//! idempotent answers.

use async_trait::async_trait;

use super::means::Credential;
use crate::audit::{AuditEvent, AuditRecord};
use crate::domain::ids::{MeansId, PersonId};
use crate::domain::means::{EidMeans, MeansStatus};
use crate::domain::operator::Operator;
use crate::domain::person::ProofingRecord;
use crate::domain::UnixTime;
use crate::store::StoreError;

/// Lifecycle data of a means beside [`EidMeans`]: who registered and approved it, the
/// activation code state and the revocation secret (both argon2id PHC strings).
#[derive(Clone, PartialEq, Eq)]
pub struct MeansRecord {
    /// The means.
    pub means: EidMeans,
    /// The registration officer (None for imported means).
    pub registered_by: Option<PersonId>,
    /// The approving officer.
    pub approved_by: Option<PersonId>,
    /// argon2id of the activation code, while the means waits for activation.
    pub activation_code: Option<String>,
    /// When the activation code expires.
    pub activation_expires_at: Option<UnixTime>,
    /// Failed activation attempts so far.
    pub activation_attempts: i64,
    /// argon2id of the revocation secret.
    pub revocation_secret: Option<String>,
    /// Wrong revocation secrets presented so far (locks the method at a limit).
    pub revocation_failures: i64,
    /// For a renewal: the means it replaces once activated (R-RENEW-1).
    pub renews: Option<MeansId>,
}

impl std::fmt::Debug for MeansRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeansRecord")
            .field("means", &self.means)
            .field("registered_by", &self.registered_by)
            .field("approved_by", &self.approved_by)
            .field("activation_expires_at", &self.activation_expires_at)
            .field("activation_attempts", &self.activation_attempts)
            .field("revocation_failures", &self.revocation_failures)
            .field("renews", &self.renews)
            .finish_non_exhaustive()
    }
}

/// The holder's explicit acceptance of the terms of use and the security advice
/// (R-REG-1), recorded with the versions and the time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acceptance {
    /// The holder.
    pub person: PersonId,
    /// The means being activated.
    pub means: MeansId,
    /// Terms of use version.
    pub terms_version: String,
    /// Security advice version.
    pub security_advice_version: String,
    /// When.
    pub accepted_at: UnixTime,
}

/// A stored answer to an idempotent operator request (`Idempotency-Key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// The operator who sent it.
    pub operator: PersonId,
    /// The key the operator chose.
    pub key: String,
    /// SHA-256 (hex) of method, path and body: a reused key with another request is 422.
    pub request_sha256: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// JSON body of the answer.
    pub body: String,
    /// When.
    pub created_at: UnixTime,
}

/// One lifecycle transition to commit: the new status (checked against the version the
/// caller read) and whatever else changes with it, all in one transaction together with
/// the audit record and, when given, the idempotent answer.
#[derive(Clone, Debug)]
pub struct TransitionWrite {
    /// The means.
    pub id: MeansId,
    /// The version read by the caller (`Conflict` if it changed).
    pub expected_version: i64,
    /// The new status.
    pub to: MeansStatus,
    /// Approval: the approving officer.
    pub approved_by: Option<PersonId>,
    /// Approval: argon2id of the activation code and its expiry.
    pub activation_code: Option<(String, UnixTime)>,
    /// Approval: argon2id of the revocation secret.
    pub revocation_secret: Option<String>,
    /// Activation: the credential the holder set up (the code is cleared).
    pub credential: Option<Credential>,
    /// Activation: the holder's acceptance.
    pub acceptance: Option<Acceptance>,
    /// New validity period (activation, renewal).
    pub validity: Option<(UnixTime, UnixTime)>,
    /// The answer to store under an `Idempotency-Key`.
    pub idempotent: Option<IdempotentResponse>,
    /// Renewal (R-RENEW-1): the means this one replaces, retired in the same transaction.
    pub retire: Option<Retire>,
}

/// The old means of a renewal, revoked when the new one activates: checked against the
/// version the caller read (`Conflict` if it moved), with its own audit record.
#[derive(Clone, Debug)]
pub struct Retire {
    /// The old means.
    pub id: MeansId,
    /// The version read by the caller.
    pub expected_version: i64,
    /// Its new status.
    pub to: MeansStatus,
    /// Its audit record (written in the same transaction, before the main one).
    pub audit: AuditEvent,
}

impl TransitionWrite {
    /// A plain status change.
    pub fn status(id: MeansId, expected_version: i64, to: MeansStatus) -> Self {
        Self {
            id,
            expected_version,
            to,
            approved_by: None,
            activation_code: None,
            revocation_secret: None,
            credential: None,
            acceptance: None,
            validity: None,
            idempotent: None,
            retire: None,
        }
    }
}

/// Lifecycle, operators and idempotency.
#[async_trait]
pub trait LifecycleRepo: Send + Sync {
    /// A means with its lifecycle data.
    async fn means_record(&self, id: MeansId) -> Result<Option<MeansRecord>, StoreError>;
    /// Inserts an application (status `applied`, no credential) registered by `officer`; audited.
    async fn insert_application(
        &self,
        means: &EidMeans,
        officer: PersonId,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;
    /// Inserts an imported means with its credential and, when given, the argon2id PHC
    /// string of its revocation secret, in one transaction; audited.
    async fn insert_imported_means(
        &self,
        means: &EidMeans,
        credential: &Credential,
        revocation_secret: Option<&str>,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;
    /// As [`LifecycleRepo::insert_application`], for a renewal of the valid means `renews`
    /// (retired when the new one activates, R-RENEW-1).
    async fn insert_renewal(
        &self,
        means: &EidMeans,
        officer: PersonId,
        renews: MeansId,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;
    /// Commits a transition (see [`TransitionWrite`]): `Conflict` when the version moved,
    /// `NotFound` for an unknown id. When the new status is not `active`, every refresh
    /// token of the means is revoked in the same transaction (R-LIFE-4). An idempotent
    /// answer whose (operator, key) exists already is `Conflict` and nothing is changed.
    async fn commit_transition(&self, write: &TransitionWrite, audit: AuditEvent) -> Result<EidMeans, StoreError>;
    /// Counts one failed activation attempt atomically; returns the new count; audited.
    /// Not a transition: the version stays. `NotFound` for an unknown id.
    async fn count_activation_failure(&self, id: MeansId, audit: AuditEvent) -> Result<i64, StoreError>;
    /// Counts one wrong revocation secret atomically; returns the new count; audited.
    async fn count_revocation_failure(&self, id: MeansId, audit: AuditEvent) -> Result<i64, StoreError>;
    /// The stored answer for (operator, key), if any.
    async fn idempotent_response(
        &self,
        operator: PersonId,
        key: &str,
    ) -> Result<Option<IdempotentResponse>, StoreError>;
    /// Stores an answer that changed nothing (e.g. a 409 or 403), so a retry gets it again.
    async fn store_idempotent_response(&self, response: &IdempotentResponse) -> Result<(), StoreError>;
    /// An operator by person.
    async fn operator(&self, person: PersonId) -> Result<Option<Operator>, StoreError>;
    /// Inserts or replaces an operator's roles (empty roles removes the operator; `NotFound`
    /// if there is none to remove, and then nothing is recorded); audited.
    async fn set_operator(&self, operator: &Operator, audit: AuditEvent) -> Result<(), StoreError>;
    /// Records how a person's identity was proofed; audited.
    async fn insert_proofing(
        &self,
        person: PersonId,
        record: &ProofingRecord,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;
    /// Proofing records of a person, oldest first.
    async fn proofing_records(&self, person: PersonId) -> Result<Vec<ProofingRecord>, StoreError>;
    /// Acceptances recorded for a person, oldest first.
    async fn acceptances(&self, person: PersonId) -> Result<Vec<Acceptance>, StoreError>;
    /// Audit records whose subject is `subject` (e.g. `means:<id>`), oldest first, at most `limit`.
    async fn audit_by_subject(&self, subject: &str, limit: i64) -> Result<Vec<AuditRecord>, StoreError>;
    /// Means whose status is `issued` and activation code expired, or `active` or `suspended` and
    /// validity ended, at `now` (for the expiry sweep), at most `limit`, in no particular
    /// order (each one swept leaves the set, so the sweep calls again until none is left).
    async fn due_for_expiry(&self, now: UnixTime, limit: i64) -> Result<Vec<EidMeans>, StoreError>;
}
