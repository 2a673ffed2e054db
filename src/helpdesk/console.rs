//! The helpdesk console's login (issue 24; DESIGN "Operators' tokens"): the page at
//! `/helpdesk` runs the ordinary code flow with PKCE against this provider as the built-in
//! confidential client `eidgate-helpdesk` (`operator_console`, `minimum_acr` at the
//! operator assurance level). The page keeps the PKCE verifier and the `state`; this
//! server redeems the code for the client (nobody knows the client's secret, so no one
//! else can), checks that the person is an operator whose login meets the assurance
//! rules, and hands the page only the access token. The refresh token stays in an
//! `HttpOnly` cookie the page's script cannot read; the page trades it for a new access
//! token before the old one expires, until the refresh grant's absolute lifetime (12 h
//! from the login) or the operator assurance's `max_auth_age` ends the session.
//!
//! Who could abuse it: a stranger with a stolen code lacks the verifier (PKCE) and a
//! browser whose `Origin` is the issuer; a holder who is not an operator gets a refusal and
//! the tokens just issued are revoked; a code of another client is refused
//! (`invalid_grant`, the grant names its client); a replayed refresh cookie revokes the
//! whole grant (rotation, [`crate::oidc::token`]).

use crate::admin::auth::{authenticate, OperatorAuthError};
use crate::admin::builtin::{helpdesk_redirect_uri, HELPDESK_CLIENT};
use crate::admin::state::Admin;
use crate::domain::client::Client;
use crate::domain::ids::ClientId;
use crate::oidc::error::OAuthError;
use crate::oidc::token::{exchange, TokenRequest, TokenResponse};

/// Name of the cookie holding the console's refresh token (scoped to the session routes).
pub const REFRESH_COOKIE: &str = "eidgate_helpdesk";

/// What the console session hands out. `Debug` redacts the tokens.
pub struct ConsoleSession {
    /// The operator's access token for `/helpdesk/v1`, held by the page.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The rotating refresh token, for the `HttpOnly` cookie only.
    pub refresh_token: Option<String>,
    /// The operator's roles (from the server's operator record).
    pub roles: Vec<String>,
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"[redacted]")
            .field("roles", &self.roles)
            .finish()
    }
}

/// Why a console session is not opened or renewed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The code or refresh token is invalid, expired, replayed or another client's; or
    /// the verifier does not match (log in again).
    #[error("the login could not be completed: {0}")]
    Grant(OAuthError),
    /// A valid login of someone who may not use the console, or whose login is too weak
    /// or too old; the tokens just issued are revoked.
    #[error("operator refused: {0}")]
    Operator(OperatorAuthError),
}

async fn console_client(app: &Admin) -> Result<std::sync::Arc<Client>, ConsoleError> {
    let id: ClientId = HELPDESK_CLIENT
        .parse()
        .map_err(|_| ConsoleError::Grant(OAuthError::invalid_grant()))?;
    match app.store.client(&id).await {
        Ok(Some(client)) => Ok(client),
        Ok(None) => Err(ConsoleError::Grant(OAuthError::invalid_grant())),
        Err(e) => Err(ConsoleError::Grant(OAuthError::dependency(e))),
    }
}

/// Opens a session: redeems `code` (issued to the console client for the page's
/// redirect URI) with the page's PKCE `verifier`, then checks the operator.
pub async fn open(app: &Admin, code: String, verifier: String) -> Result<ConsoleSession, ConsoleError> {
    let client = console_client(app).await?;
    let request = TokenRequest::AuthorizationCode {
        code,
        redirect_uri: Some(helpdesk_redirect_uri(&app.config.issuer)),
        verifier: Some(verifier),
    };
    let tokens = exchange(&app.oidc, &client, request, None)
        .await
        .map_err(ConsoleError::Grant)?;
    operator_session(app, &client, tokens).await
}

/// Renews a session with the refresh token from the cookie (which rotates).
pub async fn renew(app: &Admin, refresh_token: String) -> Result<ConsoleSession, ConsoleError> {
    let client = console_client(app).await?;
    let request = TokenRequest::RefreshToken {
        refresh_token,
        scope: None,
    };
    let tokens = exchange(&app.oidc, &client, request, None)
        .await
        .map_err(ConsoleError::Grant)?;
    operator_session(app, &client, tokens).await
}

/// Ends a session: revokes the refresh token's grant and the access token (RFC 7009),
/// and records the logout (of the operator, when the access token still names one).
pub async fn close(app: &Admin, refresh_token: Option<&str>, access_token: Option<&str>) -> Result<(), ConsoleError> {
    let client = console_client(app).await?;
    let who = match access_token {
        Some(token) => crate::oidc::userinfo::validate_access_token(&app.oidc, token)
            .await
            .ok()
            .filter(|grant| grant.client_id == client.client_id),
        None => None,
    };
    for token in [refresh_token, access_token].into_iter().flatten() {
        crate::oidc::introspect::revoke(&app.oidc, &client, token)
            .await
            .map_err(ConsoleError::Grant)?;
    }
    let (actor, details) = match &who {
        Some(grant) => (
            format!("operator:{}", grant.authn.person),
            serde_json::json!({"sid": grant.authn.sid, "client_id": HELPDESK_CLIENT}),
        ),
        None => (
            "helpdesk-console".to_owned(),
            serde_json::json!({"client_id": HELPDESK_CLIENT}),
        ),
    };
    let event = crate::audit::AuditEvent::new(
        crate::audit::catalogue::LOGOUT,
        actor,
        format!("client:{HELPDESK_CLIENT}"),
        details,
    );
    app.store
        .append(event)
        .await
        .map_err(|e| ConsoleError::Grant(OAuthError::dependency(e)))?;
    Ok(())
}

/// The operator behind fresh `tokens`; anyone else's tokens are revoked at once.
async fn operator_session(app: &Admin, client: &Client, tokens: TokenResponse) -> Result<ConsoleSession, ConsoleError> {
    match authenticate(app, Some(&tokens.access_token)).await {
        Ok(operator) => Ok(ConsoleSession {
            access_token: tokens.access_token,
            expires_in: tokens.expires_in,
            refresh_token: tokens.refresh_token,
            roles: operator.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        }),
        Err(refused) => {
            for token in [tokens.refresh_token.as_deref(), Some(tokens.access_token.as_str())]
                .into_iter()
                .flatten()
            {
                if let Err(e) = crate::oidc::introspect::revoke(&app.oidc, client, token).await {
                    tracing::warn!(error = %e, "tokens of a refused console login not revoked");
                }
            }
            Err(ConsoleError::Operator(refused))
        }
    }
}
