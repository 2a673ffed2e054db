//! The durable store port (R-AUTH-3): clients, persons, means and their credentials,
//! refresh-token grants, and the audit chain. SQLite (embedded default, WAL,
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

use crate::audit::{AuditEvent, AuditRecord};
use crate::domain::client::Client;
use crate::domain::ids::{ClientId, GrantId, MeansId, PersonId, PersonIdentifier};
use crate::domain::means::{EidMeans, MeansStatus};
use crate::domain::person::NaturalPerson;
use crate::domain::UnixTime;

pub mod cached;
mod rows;
pub mod sql;

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
    /// No credential yet (issued, not activated).
    None,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::PasswordHash(_) => f.write_str("PasswordHash([redacted])"),
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
}

/// The whole durable store.
#[async_trait]
pub trait Store: ClientRepo + PersonRepo + MeansRepo + GrantRepo + AuditRepo {
    /// Which engine.
    fn backend(&self) -> Backend;
    /// Cheap liveness query (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}
