//! Login ceremonies and what they share: the login flow bound to a browser, the SSO
//! session, the validity check of a means at every use (R-AUTH-1), and the end of a
//! flow (achieved LoA, code issue, redirect).

pub mod attestation;
pub mod ceremony;
pub mod device;
pub mod fido;
pub mod flow;
pub mod hash_pool;
pub mod http;
pub mod operator_password;
pub mod password;
pub mod password_change;
pub mod release;
pub mod session;
pub mod sso;
pub mod state;
pub mod throttle;
pub mod totp;
pub mod usable;
pub mod webauthn;

/// Errors of the ceremonies (mapped to problem+json in `http.rs`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthnError {
    /// The login flow is unknown, expired, or used without its browser cookie.
    #[error("login flow not found")]
    FlowNotFound,
    /// Wrong identifier or credential (one answer for both).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The means exists but is not active (no detail about which state).
    #[error("means not active")]
    MeansNotActive,
    /// Too many attempts; retry after this many seconds.
    #[error("too many attempts")]
    TooManyAttempts(u64),
    /// Password attempts from browsers without a device cookie for this person stopped
    /// after too many consecutive failures (until a success from a known browser or a
    /// helpdesk reset; the means itself stays usable).
    #[error("unknown device locked")]
    UnknownDeviceLocked,
    /// Malformed input.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A dependency is down: fail closed.
    #[error("temporarily unavailable")]
    Unavailable,
    /// A dependency failed; the cause is kept and logged once, at the edge (fail closed).
    #[error("a dependency failed")]
    Dependency(#[source] crate::domain::cause::Cause),
}

impl From<crate::store::StoreError> for AuthnError {
    fn from(e: crate::store::StoreError) -> Self {
        AuthnError::Dependency(crate::domain::cause::Cause::new(e))
    }
}

impl From<crate::ephemeral::EphemeralError> for AuthnError {
    fn from(e: crate::ephemeral::EphemeralError) -> Self {
        AuthnError::Dependency(crate::domain::cause::Cause::new(e))
    }
}

impl From<crate::hsm::HsmError> for AuthnError {
    fn from(e: crate::hsm::HsmError) -> Self {
        AuthnError::Dependency(crate::domain::cause::Cause::new(e))
    }
}

impl From<totp::TotpError> for AuthnError {
    fn from(e: totp::TotpError) -> Self {
        AuthnError::Dependency(crate::domain::cause::Cause::new(e))
    }
}

impl From<password::HashError> for AuthnError {
    fn from(e: password::HashError) -> Self {
        AuthnError::Dependency(crate::domain::cause::Cause::new(e))
    }
}
