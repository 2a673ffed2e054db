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
//!
//! The repository traits, one per file with the values each stores, are in `repo/` and
//! re-exported here; [`Store`] composes them and [`sql::SqlStore`] implements them all.

use async_trait::async_trait;

mod audit;
pub mod cached;
mod connect;
mod fido;
mod legal;
mod lifecycle;
mod operator_tokens;
mod repo;
mod rows;
mod smartcard;
pub mod snapshot;
mod sod;
pub mod sql;
mod state;

pub use repo::audit::AuditRepo;
pub use repo::client::ClientRepo;
pub use repo::fido::{FidoCredentialRecord, FidoRepo};
pub use repo::grant::{GrantRepo, RefreshOutcome, RefreshRecord};
pub use repo::incident::{IncidentRecord, IncidentRepo};
pub use repo::legal::{Consent, LegalRepo};
pub use repo::lifecycle::{Acceptance, IdempotentResponse, LifecycleRepo, MeansRecord, Retire, TransitionWrite};
pub use repo::means::{AuthFactor, Credential, MeansRepo};
pub use repo::notice::{Notice, NoticeRepo};
pub use repo::operator_token::OperatorTokenRepo;
pub use repo::person::PersonRepo;
pub use repo::provider_state::ProviderStateRepo;
pub use repo::smartcard::{CardCertificate, SmartcardRepo, WithdrawnCertificate};
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
