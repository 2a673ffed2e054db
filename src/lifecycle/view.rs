//! What the lifecycle services share: a means as the APIs show it, the status commands,
//! idempotency, and small checks every path uses.

use serde::Serialize;

use super::state::Lifecycle;
use super::LifecycleError;
use crate::domain::ids::MeansId;
use crate::domain::loa::Loa;
use crate::domain::means::{EidMeans, MeansKind, MeansStatus};
use crate::domain::UnixTime;
use crate::store::{MeansRecord, StoreError};

/// Kinds whose activation this version implements; applications for others are refused.
pub const ISSUABLE: [MeansKind; 4] = [
    MeansKind::Fido,
    MeansKind::Password,
    MeansKind::Smartcard,
    MeansKind::Totp,
];

/// Wrong revocation secrets before the method is locked for a means.
pub const REVOCATION_SECRET_LIMIT: i64 = 5;

/// A means as the APIs show it.
#[derive(Clone, Debug, Serialize)]
pub struct MeansView {
    /// Id.
    pub id: MeansId,
    /// State.
    pub state: MeansStatus,
    /// Kind.
    pub kind: MeansKind,
    /// Assigned LoA.
    pub loa: Loa,
    /// Validity start (UTC seconds).
    pub valid_from: UnixTime,
    /// Validity end (UTC seconds).
    pub valid_until: UnixTime,
    /// Version (optimistic concurrency).
    pub version: i64,
}

impl From<&EidMeans> for MeansView {
    fn from(m: &EidMeans) -> Self {
        Self {
            id: m.id,
            state: m.status,
            kind: m.kind,
            loa: m.loa,
            valid_from: m.valid_from,
            valid_until: m.valid_until,
            version: m.version,
        }
    }
}

/// After a committed status change: marks the means' older access tokens dead and tells
/// every instance to drop cached state (see [`super::change`]; for changes committed
/// elsewhere, e.g. the login lock).
pub(crate) async fn publish(app: &Lifecycle, means: MeansId) {
    app.changes().published(means).await;
}

pub(crate) async fn record(app: &Lifecycle, id: MeansId) -> Result<MeansRecord, LifecycleError> {
    app.store.means_record(id).await?.ok_or(LifecycleError::NotFound)
}

/// R-LOG-5: a free-text field an operator or caller fills holds facts (a reason, a
/// reference to a document), never a document copy, a photo or a biometric template.
pub(crate) fn free_text(field: &str, value: &str, max_chars: usize) -> Result<(), LifecycleError> {
    crate::domain::record_text::check_free_text(value, max_chars)
        .map_err(|e| LifecycleError::BadRequest(format!("{field}: {e}")))
}

pub(crate) fn conflict_as_retry(e: StoreError) -> LifecycleError {
    match e {
        StoreError::Conflict => LifecycleError::Unprocessable("the means changed concurrently; read it again".into()),
        other => other.into(),
    }
}

/// A helpdesk or self-service status command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusCommand {
    /// Reactivate a suspended means (R-LIFE-3).
    Reactivate,
    /// Revoke (final).
    Revoke,
    /// Suspend.
    Suspend,
}

impl StatusCommand {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCommand::Reactivate => "reactivate",
            StatusCommand::Revoke => "revoke",
            StatusCommand::Suspend => "suspend",
        }
    }
}

/// The idempotency of an operator request: key and request fingerprint.
#[derive(Clone, Debug)]
pub struct Idempotency {
    /// The operator.
    pub operator: crate::domain::ids::PersonId,
    /// The `Idempotency-Key`.
    pub key: String,
    /// SHA-256 of method, path and body.
    pub request_sha256: String,
    /// How the transport answers a refusal (status and body), stored so that a repeated
    /// key gets the same answer. The service never shapes HTTP answers itself.
    pub refusal: fn(&super::LifecycleError) -> (u16, String),
    /// How the transport answers an outcome (its status), stored with the body.
    pub status_of: fn(&Answer) -> u16,
}

/// The outcome of a status change, typed; the transport decides how it is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The change was made: the means as it is now (JSON).
    Changed(String),
    /// A second person must approve first (JSON naming the open approval).
    AwaitingApproval(String),
    /// A repeated `Idempotency-Key`: the answer stored the first time, as the transport
    /// rendered it then.
    Replayed {
        /// As rendered by [`Idempotency::status_of`] or [`Idempotency::refusal`].
        status: u16,
        /// JSON.
        body: String,
    },
}

impl Answer {
    /// The JSON body.
    pub fn body(&self) -> &str {
        match self {
            Answer::Changed(b) | Answer::AwaitingApproval(b) | Answer::Replayed { body: b, .. } => b,
        }
    }
}
