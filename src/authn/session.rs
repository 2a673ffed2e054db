//! The SSO session: after a login, the browser holds a random session cookie; the
//! session (its `sid`, the authentication and its level) lives in the ephemeral store
//! under the cookie's SHA-256, bounded by the level's maximum age.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::AuthnError;
use crate::app::App;
use crate::domain::loa::Loa;
use crate::domain::secret::fingerprint_hex;
use crate::domain::UnixTime;
use crate::ephemeral;
use crate::oidc::grant::Authentication;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "eidgate_session";

/// An SSO session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SsoSession {
    /// The authentication (carries `sid`).
    pub authn: Authentication,
    /// Hard expiry.
    pub exp: UnixTime,
}

fn key(cookie: &str) -> String {
    format!("sess:{}", fingerprint_hex(cookie))
}

/// Longest session for a level (NIST 800-63B re-authentication bounds).
pub fn max_age(app: &App, loa: Loa) -> Duration {
    let s = &app.config.session;
    match loa {
        Loa::Low => s.max_age_low,
        Loa::Substantial => s.max_age_substantial,
        Loa::High => s.max_age_high,
    }
}

/// Creates a session; returns the cookie value.
pub async fn create(app: &App, authn: &Authentication) -> Result<String, AuthnError> {
    let cookie = crate::random::token();
    let ttl = max_age(app, authn.loa);
    let session = SsoSession {
        authn: authn.clone(),
        exp: authn.auth_time + crate::oidc::token::secs(ttl),
    };
    ephemeral::put_json(app.ephemeral.as_ref(), &key(&cookie), &session, ttl).await?;
    Ok(cookie)
}

/// Loads a live session.
pub async fn load(app: &App, cookie: &str) -> Result<Option<SsoSession>, AuthnError> {
    if cookie.len() != 43 {
        return Ok(None);
    }
    let session: Option<SsoSession> = ephemeral::decode(app.ephemeral.get(&key(cookie)).await?);
    Ok(session.filter(|s| s.exp > app.now()))
}

/// Ends a session.
pub async fn end(app: &App, cookie: &str) -> Result<Option<SsoSession>, AuthnError> {
    Ok(ephemeral::decode(app.ephemeral.take(&key(cookie)).await?))
}
