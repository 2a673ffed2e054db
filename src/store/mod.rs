//! The durable store port (R-AUTH-3): clients, persons, means and their credentials,
//! refresh-token grants, the audit chain, and the lifecycle data of means (R-ISS-2/3,
//! R-LIFE-1..4: transitions, activation codes, revocation secrets, idempotent answers),
//! operators (R-SEC-3), acceptances (R-REG-1) and proofing records (R-REG-3/4). SQLite (embedded default, WAL,
//! `synchronous=FULL`) and PostgreSQL (`synchronous_commit=on`) through sqlx.
//!
//! One implementation ([`sql::SqlStore`]) serves both backends with the same SQL text
//! (`$1` placeholders work on both), over `sqlx::Any`; the few differences (pragmas,
//! migrations folder) are switched on [`Backend`]. This is simpler than two copies of
//! every query and is proven by one contract test run against both databases.
//!
//! Every write that changes state appends its audit record **in the same transaction**
//! (R-LOG-1/2): if the record cannot be written, the change is not made.

use async_trait::async_trait;

use crate::audit::{AuditEvent, AuditRecord, Checkpoint, CheckpointKind};
use crate::domain::client::Client;
use crate::domain::ids::{ClientId, GrantId, LegalPersonId, MandateId, MeansId, PersonId, PersonIdentifier};
use crate::domain::means::{EidMeans, MeansStatus};
use crate::domain::operator::Operator;
use crate::domain::person::{NaturalPerson, ProofingRecord};
use crate::domain::UnixTime;

mod audit;
pub mod cached;
mod connect;
mod fido;
mod legal;
mod lifecycle;
mod operator_tokens;
mod rows;
mod smartcard;
pub mod snapshot;
mod sod;
pub mod sql;
mod state;

pub use sod::{Approval, SodRepo};
pub use sql::SqlStore;

/// Errors of the store. `Unavailable` means fail closed (503).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Nothing with that key.
    #[error("not found")]
    NotFound,
    /// A uniqueness constraint or an optimistic-version check failed.
    #[error("conflict")]
    Conflict,
    /// The database is unreachable or failed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored row does not decode into a domain value (corruption or bad migration).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Which SQL engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

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

/// A refresh token as stored: only its SHA-256 fingerprint, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshRecord {
    /// Hex SHA-256 of the token.
    pub token_sha256: String,
    /// The grant (one authorization code) it belongs to; revoked together.
    pub grant_id: GrantId,
    /// The client it is bound to.
    pub client_id: ClientId,
    /// The holder.
    pub person_id: PersonId,
    /// The means that authenticated; checked at every refresh (R-AUTH-1).
    pub means_id: MeansId,
    /// Everything else the token endpoint needs to issue tokens again (scope, acr, amr,
    /// auth_time, sid, claims request), as JSON.
    pub grant_data: serde_json::Value,
    /// Issued at.
    pub created_at: UnixTime,
    /// Expires at.
    pub expires_at: UnixTime,
}

/// Result of consuming a refresh token for rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was live: it is now used and `new` is stored in its place.
    Rotated(RefreshRecord),
    /// The token had been used already: the whole grant is now revoked (reuse detection).
    Reused(GrantId),
    /// Unknown, expired or revoked.
    Invalid,
}

/// Relying parties.
#[async_trait]
pub trait ClientRepo: Send + Sync {
    /// A client by id.
    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
    /// Inserts or replaces a client; audited.
    async fn upsert_client(&self, client: &Client, audit: AuditEvent) -> Result<(), StoreError>;
}

/// Persons.
#[async_trait]
pub trait PersonRepo: Send + Sync {
    /// A person by id.
    async fn person(&self, id: PersonId) -> Result<Option<NaturalPerson>, StoreError>;
    /// A person by national identifier.
    async fn person_by_identifier(&self, identifier: &PersonIdentifier) -> Result<Option<NaturalPerson>, StoreError>;
    /// Inserts a person (`Conflict` if the identifier exists); audited.
    async fn insert_person(&self, person: &NaturalPerson, audit: AuditEvent) -> Result<(), StoreError>;
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

/// Refresh-token grants (durable; access tokens and codes are ephemeral).
#[async_trait]
pub trait GrantRepo: Send + Sync {
    /// Stores a new refresh token.
    async fn insert_refresh(&self, record: &RefreshRecord) -> Result<(), StoreError>;
    /// Atomically consumes `token_sha256` (if live, unused, unexpired at `now` and bound
    /// to `client`) and stores `replacement` in the same grant. A used token revokes the
    /// whole grant. A token of another client is `Invalid` and changes nothing.
    async fn rotate_refresh(
        &self,
        token_sha256: &str,
        client: &ClientId,
        now: UnixTime,
        replacement: &RefreshRecord,
    ) -> Result<RefreshOutcome, StoreError>;
    /// A live refresh token by fingerprint (for introspection).
    async fn refresh(&self, token_sha256: &str, now: UnixTime) -> Result<Option<RefreshRecord>, StoreError>;
    /// Revokes every refresh token of a grant. Returns how many were live.
    async fn revoke_grant(&self, grant: GrantId) -> Result<u64, StoreError>;
}

/// The audit chain.
#[async_trait]
pub trait AuditRepo: Send + Sync {
    /// Appends an event on its own (for events not tied to another change).
    async fn append(&self, event: AuditEvent) -> Result<i64, StoreError>;
    /// Records with `seq` in `[from, from + limit)`, in order.
    async fn audit_records(&self, from: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError>;
    /// Up to `limit` records with `seq > after`, in `seq` order (keyset paging that
    /// steps over gaps, for verification and the sink).
    async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError>;
    /// The chain head `(seq, hash)` as the writers left it (`(0, GENESIS)` when empty).
    async fn audit_head(&self) -> Result<(i64, [u8; 32]), StoreError>;
    /// Stores a signed checkpoint or prune anchor (R-LOG-2, R-LOG-6). Not itself a
    /// chained record: it signs the chain. `Conflict` if one of that kind and seq, or one at
    /// that chain position, exists (another instance signed first).
    async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError>;
    /// Every checkpoint and anchor, ordered by `seq` (anchors before checkpoints at a tie).
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;
    /// The newest checkpoint or anchor of `kind` (one indexed row, for the periodic jobs).
    async fn last_checkpoint(&self, kind: CheckpointKind) -> Result<Option<Checkpoint>, StoreError>;
    /// The newest checkpoint or anchor of the signed chain (highest `chain_pos`).
    async fn chain_tip(&self) -> Result<Option<Checkpoint>, StoreError>;
    /// The first checkpoint (kind `checkpoint`) at or after `seq`: the one covering it.
    async fn checkpoint_covering(&self, seq: i64) -> Result<Option<Checkpoint>, StoreError>;
    /// Checkpoints and anchors with `after < seq <= up_to`, ordered like [`Self::checkpoints`].
    async fn checkpoints_in(&self, after: i64, up_to: i64) -> Result<Vec<Checkpoint>, StoreError>;
    /// A job's cursor (last `seq` it processed), 0 when never set.
    async fn audit_cursor(&self, name: &str) -> Result<i64, StoreError>;
    /// Moves a job's cursor.
    async fn set_audit_cursor(&self, name: &str, value: i64) -> Result<(), StoreError>;
    /// Destroys the records with `seq <= up_to` (R-LOG-6). The database refuses unless a
    /// prune anchor at `up_to` or later is stored; on SQLite the pages are overwritten
    /// (`secure_delete`). Returns how many records were deleted.
    async fn prune_audit(&self, up_to: i64) -> Result<u64, StoreError>;
}

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

/// Operator access tokens kept durably (R-LIFE-1, R-OPS-1): the helpdesk keeps working
/// while the ephemeral store is down. Keys are SHA-256 fingerprints, never tokens.
#[async_trait]
pub trait OperatorTokenRepo: Send + Sync {
    /// Records an operator's access token (its fingerprint) with the grant as JSON.
    async fn insert_operator_token(
        &self,
        token_sha256: &str,
        grant: GrantId,
        grant_data: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError>;
    /// The grant JSON of an unexpired operator token; expired rows are deleted here.
    async fn operator_token(&self, token_sha256: &str, now: UnixTime) -> Result<Option<String>, StoreError>;
    /// Deletes every operator token of `grant` (revocation).
    async fn revoke_operator_tokens(&self, grant: GrantId) -> Result<u64, StoreError>;
}

/// Provider-wide state (R-SUP-3).
#[async_trait]
pub trait ProviderStateRepo: Send + Sync {
    /// A provider flag, e.g. `termination`.
    async fn provider_state(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Sets a provider flag; audited.
    async fn set_provider_state(&self, name: &str, value: &str, audit: AuditEvent) -> Result<(), StoreError>;
    /// Means not yet in a final state (applied, issued, active, suspended), at most `limit`.
    async fn means_not_final(&self, limit: i64) -> Result<Vec<EidMeans>, StoreError>;
}

/// A notice to a holder (R-OPS-4).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Notice {
    /// Id.
    pub id: String,
    /// The holder.
    pub person: PersonId,
    /// The means concerned.
    pub means: MeansId,
    /// e.g. `compromised`.
    pub kind: String,
    /// Why.
    pub reason: String,
    /// Queued at.
    pub created_at: UnixTime,
    /// Sent at.
    pub sent_at: Option<UnixTime>,
}

/// Notices to holders.
#[async_trait]
pub trait NoticeRepo: Send + Sync {
    /// Queues a notice; audited.
    async fn insert_notice(&self, notice: &Notice, audit: AuditEvent) -> Result<(), StoreError>;
    /// Marks a notice sent; audited. `NotFound` if unknown or already sent.
    async fn mark_notice_sent(&self, id: &str, at: UnixTime, audit: AuditEvent) -> Result<(), StoreError>;
    /// Pending notices queued at or before `before`, oldest first.
    async fn pending_notices(&self, before: UnixTime, limit: i64) -> Result<Vec<Notice>, StoreError>;
}

/// A stored incident record (R-OPS-2); `record` is the classification and its draft.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IncidentRecord {
    /// Id.
    pub id: String,
    /// The affected service.
    pub service: String,
    /// Start, UTC seconds.
    pub started_at: UnixTime,
    /// End, UTC seconds.
    pub ended_at: UnixTime,
    /// Classification, share affected and notification draft (JSON).
    pub record: serde_json::Value,
}

/// Incident records.
#[async_trait]
pub trait IncidentRepo: Send + Sync {
    /// Stores an incident record; audited.
    async fn insert_incident(&self, incident: &IncidentRecord, audit: AuditEvent) -> Result<(), StoreError>;
    /// The newest incident records, at most `limit`.
    async fn incidents(&self, limit: i64) -> Result<Vec<IncidentRecord>, StoreError>;
}

/// A holder's consent to release a set of claims to one client (R-DATA-4).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Consent {
    /// The holder.
    pub person: PersonId,
    /// The client.
    pub client_id: ClientId,
    /// The claim names consented to, sorted.
    pub claims: Vec<String>,
    /// When.
    pub granted_at: UnixTime,
}

/// Consents, legal persons and mandates (R-DATA-4, R-REG-5, R-BIND-1).
#[async_trait]
pub trait LegalRepo: Send + Sync {
    /// The holder's consent for a client.
    async fn consent(&self, person: PersonId, client: &ClientId) -> Result<Option<Consent>, StoreError>;
    /// Every consent of a holder.
    async fn consents_of(&self, person: PersonId) -> Result<Vec<Consent>, StoreError>;
    /// Records (or replaces) a consent, audited.
    async fn grant_consent(&self, consent: &Consent, audit: AuditEvent) -> Result<(), StoreError>;
    /// Withdraws a consent, audited; false when there was none. Every live refresh token
    /// of the holder at that client is revoked in the same transaction (R-DATA-4: the
    /// withdrawn claims stop flowing at once).
    async fn revoke_consent(&self, person: PersonId, client: &ClientId, audit: AuditEvent) -> Result<bool, StoreError>;
    /// Records a legal person (`Conflict` when the identifier exists).
    async fn insert_legal_person(
        &self,
        legal: &crate::domain::legal::LegalPerson,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;
    /// A legal person by id.
    async fn legal_person(&self, id: LegalPersonId) -> Result<Option<crate::domain::legal::LegalPerson>, StoreError>;
    /// A legal person by its unique identifier.
    async fn legal_person_by_identifier(
        &self,
        identifier: &PersonIdentifier,
    ) -> Result<Option<crate::domain::legal::LegalPerson>, StoreError>;
    /// Records a mandate.
    async fn insert_mandate(
        &self,
        mandate: &crate::domain::legal::Mandate,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;
    /// A mandate by id.
    async fn mandate(&self, id: MandateId) -> Result<Option<crate::domain::legal::Mandate>, StoreError>;
    /// The mandates of a representative.
    async fn mandates_of_person(&self, person: PersonId) -> Result<Vec<crate::domain::legal::Mandate>, StoreError>;
    /// The mandates for a legal person.
    async fn mandates_of_legal_person(
        &self,
        legal: LegalPersonId,
    ) -> Result<Vec<crate::domain::legal::Mandate>, StoreError>;
    /// Changes a mandate's state if it still has `version` (`Conflict` otherwise).
    async fn set_mandate_status(
        &self,
        id: MandateId,
        version: i64,
        status: crate::domain::legal::MandateStatus,
        audit: AuditEvent,
    ) -> Result<crate::domain::legal::Mandate, StoreError>;
}

/// A smartcard authentication certificate bound to a `smartcard` means (issue 4,
/// R-MEANS-3): issued by our CA from the card's CSR, or imported from a trusted external CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardCertificate {
    /// Hex SHA-256 of the certificate DER (the lookup key at login).
    pub certificate_sha256: String,
    /// The means it belongs to.
    pub means: MeansId,
    /// Hex SHA-256 of the issuer Name DER (our CA or an external one).
    pub issuer_sha256: String,
    /// Serial number, lower-case hex of the DER integer content.
    pub serial: String,
    /// The certificate DER.
    pub der: Vec<u8>,
    /// Validity start, UTC seconds.
    pub not_before: UnixTime,
    /// Validity end, UTC seconds.
    pub not_after: UnixTime,
}

/// A certificate of one issuer whose means is no longer usable: what a CRL lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawnCertificate {
    /// Serial number, lower-case hex.
    pub serial: String,
    /// The state of its means (`suspended`, `revoked`, `expired`).
    pub status: MeansStatus,
    /// When the means last changed state, UTC seconds.
    pub since: UnixTime,
    /// Validity end of the certificate.
    pub not_after: UnixTime,
}

/// Smartcard certificates and CRL numbers (issue 4).
#[async_trait]
pub trait SmartcardRepo: Send + Sync {
    /// Records a certificate; audited. `Conflict` when its serial (per issuer) or the
    /// certificate itself is recorded already.
    async fn insert_card_certificate(&self, cert: &CardCertificate, audit: AuditEvent) -> Result<(), StoreError>;
    /// A certificate by the hex SHA-256 of its DER.
    async fn card_certificate(&self, certificate_sha256: &str) -> Result<Option<CardCertificate>, StoreError>;
    /// The certificates of a means, newest first.
    async fn card_certificates_of(&self, means: MeansId) -> Result<Vec<CardCertificate>, StoreError>;
    /// Unexpired (at `now`) certificates of `issuer_sha256` whose means is suspended,
    /// revoked or expired.
    async fn withdrawn_card_certificates(
        &self,
        issuer_sha256: &str,
        now: UnixTime,
    ) -> Result<Vec<WithdrawnCertificate>, StoreError>;
    /// The next CRL number of an issuer (1, 2, ...), durable.
    async fn next_crl_number(&self, issuer_sha256: &str) -> Result<i64, StoreError>;
}

/// The WebAuthn credential of a `fido` means as stored (public data only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FidoCredentialRecord {
    /// The means it is bound to.
    pub means: MeansId,
    /// base64url credential id.
    pub credential_id: String,
    /// base64url user handle.
    pub user_handle: String,
    /// base64url of the static state (public key).
    pub static_state: String,
    /// base64url of the dynamic state (UV, backup, counter).
    pub dynamic_state: String,
    /// JSON attestation result (format, AAGUID, trust path, trusted LoA).
    pub attestation: String,
    /// Registered at.
    pub created_at: UnixTime,
    /// Last successful login.
    pub last_used_at: Option<UnixTime>,
}

/// FIDO2 credentials (issue 5).
#[async_trait]
pub trait FidoRepo: Send + Sync {
    /// The credential with this (base64url) id.
    async fn fido_by_credential_id(&self, credential_id: &str) -> Result<Option<FidoCredentialRecord>, StoreError>;
    /// The credential of a means.
    async fn fido_of_means(&self, means: MeansId) -> Result<Option<FidoCredentialRecord>, StoreError>;
    /// Stores (or replaces) the credential of a means; audited.
    async fn save_fido_credential(&self, record: &FidoCredentialRecord, audit: AuditEvent) -> Result<(), StoreError>;
    /// Moves the dynamic state (counter) from `previous` to `next`; `false` when another
    /// login moved it first.
    async fn update_fido_state(
        &self,
        means: MeansId,
        previous: &str,
        next: &str,
        used_at: UnixTime,
    ) -> Result<bool, StoreError>;
}

/// The whole durable store.
#[async_trait]
pub trait Store:
    ClientRepo
    + PersonRepo
    + MeansRepo
    + GrantRepo
    + AuditRepo
    + LifecycleRepo
    + ProviderStateRepo
    + OperatorTokenRepo
    + NoticeRepo
    + IncidentRepo
    + LegalRepo
    + SmartcardRepo
    + FidoRepo
    + SodRepo
{
    /// Which engine.
    fn backend(&self) -> Backend;
    /// Cheap liveness query (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}
