//! The login flow: one authorization request waiting for the holder to authenticate,
//! kept in the ephemeral store and bound to the browser that started it by a cookie
//! (a flow used without its cookie is refused).

use serde::{Deserialize, Serialize};

use super::state::Authn;
use super::AuthnError;
use crate::domain::loa::Loa;
use crate::domain::secret::{ct_eq, fingerprint, fingerprint_hex};
use crate::domain::UnixTime;
use crate::ephemeral;
use crate::oidc::authorize::AuthRequest;

/// Name of the cookie binding flows to a browser.
pub const BROWSER_COOKIE: &str = "eidgate_browser";

/// A pending login.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginFlow {
    /// Flow id (random, 256 bits).
    pub id: String,
    /// The validated authorization request.
    pub request: AuthRequest,
    /// Client display name.
    pub client_name: String,
    /// SHA-256 of the browser cookie.
    pub browser: String,
    /// Expiry.
    pub exp: UnixTime,
    /// The first factor of a two-step ceremony, once proven (password + TOTP): the
    /// second step is only open after it, for this means.
    #[serde(default)]
    pub first_factor: Option<FirstFactor>,
    /// An operator's expired password was proven: the flow waits for a new one (R-SEC-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_change: Option<FirstFactor>,
    /// The holder has authenticated; the flow waits for the steps after the ceremony
    /// (choice of legal person, consent) before the code is issued.
    #[serde(default)]
    pub authenticated: Option<crate::oidc::grant::Authentication>,
    /// The legal-person step is done (a mandate is in `authenticated`).
    #[serde(default)]
    pub legal_chosen: bool,
    /// The holder consented to the release in this flow.
    #[serde(default)]
    pub consented: bool,
    /// The step the flow waits for (`legal_person`, `consent`) and what the page shows.
    #[serde(default)]
    pub pending: Option<PendingStep>,
    /// The open-flows counter of the address that opened the flow (issue 19), given back
    /// when the flow ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_from: Option<String>,
}

/// A step after the ceremony that the holder still has to take.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PendingStep {
    /// `legal_person` or `consent`.
    pub next: String,
    /// What the page needs (choices, claims).
    pub data: serde_json::Value,
}

/// A proven first factor waiting for the second (R-MEANS-2).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FirstFactor {
    /// The holder.
    pub person: crate::domain::ids::PersonId,
    /// The means whose password was verified.
    pub means: crate::domain::ids::MeansId,
}

impl LoginFlow {
    /// The level the holder must reach.
    pub fn requested_loa(&self) -> Loa {
        self.request.requested_loa.unwrap_or(Loa::Low)
    }
}

fn key(id: &str) -> String {
    format!("flow:{}", fingerprint_hex(id))
}

/// The largest stored login flow (issue 19): a flood of valid `/authorize` requests must
/// not fill the ephemeral store with large values.
pub const MAX_FLOW_BYTES: usize = 2048;

fn address_key(ip: std::net::IpAddr) -> String {
    let block = super::throttle::address_block(ip);
    format!("flows:addr:{}", &fingerprint_hex(&block)[..32])
}

/// Starts a flow for `request`, bound to `browser_cookie`, opened from `ip`. Refused with
/// 429 when the address (IPv6: its /64) has `login.flows_per_address` flows open (a flow
/// is open until it ends, or, abandoned, until no flow was opened from the address for a
/// flow's lifetime), or when the store holds as many flows as it may (memory store);
/// `BadRequest` when the flow would exceed [`MAX_FLOW_BYTES`].
pub async fn start(
    app: &Authn,
    mut request: AuthRequest,
    client_name: String,
    browser_cookie: &str,
    ip: std::net::IpAddr,
) -> Result<LoginFlow, AuthnError> {
    let ttl = app.config.tokens.flow_ttl;
    // Checked at `/authorize` already; not needed again.
    request.id_token_hint = None;
    let flow = LoginFlow {
        id: crate::random::token(),
        request,
        client_name,
        browser: hex::encode(fingerprint(browser_cookie)),
        exp: app.now() + crate::domain::secs(ttl),
        first_factor: None,
        password_change: None,
        authenticated: None,
        legal_chosen: false,
        consented: false,
        pending: None,
        opened_from: Some(address_key(ip)),
    };
    let bytes = serde_json::to_vec(&flow).map_err(|_| AuthnError::Unavailable)?;
    if bytes.len() > MAX_FLOW_BYTES {
        return Err(AuthnError::BadRequest("the authorization request is too large".into()));
    }
    let counter = address_key(ip);
    let open = app.ephemeral.adjust(&counter, 1, ttl).await?;
    let cap = i64::try_from(app.config.login.flows_per_address).unwrap_or(i64::MAX);
    if open > cap {
        app.ephemeral.adjust(&counter, -1, ttl).await?;
        tracing::warn!(address = %super::throttle::address_block(ip), "open login flows per address exceeded");
        return Err(AuthnError::TooManyAttempts(60));
    }
    if !app.ephemeral.put_bounded(&key(&flow.id), &bytes, ttl).await? {
        app.ephemeral.adjust(&counter, -1, ttl).await?;
        tracing::warn!("alert: the ephemeral store holds as many login flows as it may");
        return Err(AuthnError::TooManyAttempts(60));
    }
    Ok(flow)
}

/// Loads a flow for a request from `browser_cookie`.
pub async fn load(app: &Authn, id: &str, browser_cookie: Option<&str>) -> Result<LoginFlow, AuthnError> {
    if id.len() != 43 {
        return Err(AuthnError::FlowNotFound);
    }
    let flow: LoginFlow = ephemeral::decode(app.ephemeral.get(&key(id)).await?).ok_or(AuthnError::FlowNotFound)?;
    let cookie = browser_cookie.ok_or(AuthnError::FlowNotFound)?;
    let presented = hex::encode(fingerprint(cookie));
    if !ct_eq(presented.as_bytes(), flow.browser.as_bytes()) || flow.exp <= app.now() {
        return Err(AuthnError::FlowNotFound);
    }
    Ok(flow)
}

/// Stores a changed flow (a proven first factor) for the rest of its lifetime.
pub async fn save(app: &Authn, flow: &LoginFlow) -> Result<(), AuthnError> {
    let left = u64::try_from(flow.exp - app.now()).unwrap_or(0);
    if left == 0 {
        return Err(AuthnError::FlowNotFound);
    }
    let bytes = serde_json::to_vec(flow).map_err(|_| AuthnError::Unavailable)?;
    // Replacing a stored flow never meets the store's cap; a flow that expired meanwhile
    // is gone.
    if !app
        .ephemeral
        .put_bounded(&key(&flow.id), &bytes, std::time::Duration::from_secs(left))
        .await?
    {
        return Err(AuthnError::FlowNotFound);
    }
    Ok(())
}

/// Ends a flow (single use: a finished flow cannot be finished again).
pub async fn finish(app: &Authn, flow: &LoginFlow) -> Result<bool, AuthnError> {
    let ended = app.ephemeral.take(&key(&flow.id)).await?.is_some();
    if let (true, Some(counter)) = (ended, &flow.opened_from) {
        app.ephemeral.adjust(counter, -1, app.config.tokens.flow_ttl).await?;
    }
    Ok(ended)
}

/// Request facts the ceremonies log and rate-limit on.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// Client IP.
    pub ip: std::net::IpAddr,
}
