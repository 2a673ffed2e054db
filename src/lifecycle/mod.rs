//! The eID means lifecycle as a service (DESIGN "eID means and lifecycle", R-ISS-*,
//! R-LIFE-*, R-RENEW-*): applications, four-eyes approval, activation, suspension,
//! revocation, reactivation, expiry. Every transition goes through
//! [`crate::domain::means::state::apply`], is committed in one transaction with its audit
//! record, and is then published so that every instance drops cached state at once.

pub mod activation;
pub mod actor;
pub mod approvals;
pub mod change;
pub mod codes;
pub mod fido;
pub mod http;
pub mod issue;
pub mod registry;
pub mod service;
pub mod state;
pub mod status;
pub mod view;

use crate::domain::means::state::TransitionError;

/// Errors of the lifecycle services (mapped to problem+json in the `http.rs` files).
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// Unknown means, person or activation (or not visible to this caller).
    #[error("not found")]
    NotFound,
    /// The caller lacks the role, or acts on their own means.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Missing or wrong caller verification (logged and counted).
    #[error("verification failed: {0}")]
    Verification(&'static str),
    /// The state machine refuses the command (409).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The change conflicts with the current state (409), e.g. a duplicate record or a
    /// transition of a mandate that its state does not allow.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request is well-formed but not acceptable (422), e.g. a LoA above the cap.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// Malformed input (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Activation code wrong, expired or out of attempts (one answer for all, 401/403).
    #[error("activation refused")]
    ActivationRefused,
    /// Too many attempts (429).
    #[error("too many attempts")]
    TooManyAttempts,
    /// The provider is terminating: no new issuance (503).
    #[error("issuance has stopped")]
    IssuanceStopped,
    /// A dependency is down: nothing was changed (503).
    #[error("temporarily unavailable")]
    Unavailable,
    /// A dependency failed: nothing was changed (503); the cause is kept and logged once,
    /// at the edge.
    #[error("a dependency failed")]
    Dependency(#[source] crate::domain::cause::Cause),
}

impl From<crate::store::StoreError> for LifecycleError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::NotFound => LifecycleError::NotFound,
            other => LifecycleError::Dependency(crate::domain::cause::Cause::new(other)),
        }
    }
}

impl From<crate::ephemeral::EphemeralError> for LifecycleError {
    fn from(e: crate::ephemeral::EphemeralError) -> Self {
        LifecycleError::Dependency(crate::domain::cause::Cause::new(e))
    }
}

impl From<crate::hsm::HsmError> for LifecycleError {
    fn from(e: crate::hsm::HsmError) -> Self {
        LifecycleError::Dependency(crate::domain::cause::Cause::new(e))
    }
}

impl From<crate::authn::totp::TotpError> for LifecycleError {
    fn from(e: crate::authn::totp::TotpError) -> Self {
        LifecycleError::Dependency(crate::domain::cause::Cause::new(e))
    }
}

impl From<crate::authn::password::HashError> for LifecycleError {
    fn from(e: crate::authn::password::HashError) -> Self {
        LifecycleError::Dependency(crate::domain::cause::Cause::new(e))
    }
}
