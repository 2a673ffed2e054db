//! The SSO session: after a login, the browser holds a random session cookie; the
//! session (its `sid`, the authentication and its level) lives in the ephemeral store
//! under the cookie's SHA-256, bounded by the level's maximum age.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::state::Authn;
use super::AuthnError;
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
    /// Last time the session was used (authentication or SSO): the idle bound counts
    /// from here.
    #[serde(default)]
    pub last_seen: UnixTime,
}

fn key(cookie: &str) -> String {
    format!("sess:{}", fingerprint_hex(cookie))
}

/// Longest session for a level (NIST 800-63B re-authentication bounds).
pub fn max_age(app: &Authn, loa: Loa) -> Duration {
    let s = &app.config.session;
    match loa {
        Loa::Low => s.max_age_low,
        Loa::Substantial => s.max_age_substantial,
        Loa::High => s.max_age_high,
    }
}

/// Longest idle time for a level (NIST 800-63B: substantial 30 min, high 15 min).
pub fn idle(app: &Authn, loa: Loa) -> Duration {
    let s = &app.config.session;
    match loa {
        Loa::Low => s.idle_low,
        Loa::Substantial => s.idle_substantial,
        Loa::High => s.idle_high,
    }
}

/// Creates a session; returns the cookie value.
pub async fn create(app: &Authn, authn: &Authentication) -> Result<String, AuthnError> {
    let cookie = crate::random::token();
    let ttl = max_age(app, authn.loa);
    let session = SsoSession {
        authn: authn.clone(),
        exp: authn.auth_time + crate::domain::secs(ttl),
        last_seen: authn.auth_time,
    };
    ephemeral::put_json(app.ephemeral.as_ref(), &key(&cookie), &session, ttl).await?;
    Ok(cookie)
}

/// Loads a live session: within its level's maximum age and idle bound. A session whose
/// level has lapsed is no session (`prompt=none` gets `login_required`).
pub async fn load(app: &Authn, cookie: &str) -> Result<Option<SsoSession>, AuthnError> {
    if cookie.len() != 43 {
        return Ok(None);
    }
    let session: Option<SsoSession> = ephemeral::decode(app.ephemeral.get(&key(cookie)).await?);
    let now = app.now();
    Ok(session.filter(|s| {
        let idle_limit = crate::domain::secs(idle(app, s.authn.loa));
        s.exp > now && now - s.last_seen.max(s.authn.auth_time) < idle_limit
    }))
}

/// Marks a session used now (an SSO answer), for the rest of its lifetime.
pub async fn touch(app: &Authn, cookie: &str, session: &SsoSession) -> Result<(), AuthnError> {
    let now = app.now();
    let left = u64::try_from(session.exp - now).unwrap_or(0);
    if left == 0 {
        return Ok(());
    }
    let mut fresh = session.clone();
    fresh.last_seen = now;
    ephemeral::put_json(app.ephemeral.as_ref(), &key(cookie), &fresh, Duration::from_secs(left)).await?;
    Ok(())
}

/// Ends a session.
pub async fn end(app: &Authn, cookie: &str) -> Result<Option<SsoSession>, AuthnError> {
    Ok(ephemeral::decode(app.ephemeral.take(&key(cookie)).await?))
}
