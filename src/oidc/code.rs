//! The end of the authorization endpoint: a code (or an error) sent back to the client's
//! redirect URI with `state` and `iss` (RFC 9207).

use super::authorize::AuthRequest;
use super::error::OAuthError;
use super::grant::{self, Authentication, CodeGrant};
use super::state::Oidc;
use super::subject::subject;
use crate::domain::client::Client;
use crate::domain::person::NaturalPerson;
use crate::ephemeral;

/// Issues a single-use authorization code for `request` and returns the redirect.
pub async fn issue_code(
    app: &Oidc,
    request: &AuthRequest,
    client: &Client,
    person: &NaturalPerson,
    authn: Authentication,
) -> Result<String, OAuthError> {
    let code = crate::random::token();
    let ttl = super::profile::code_ttl(client, app.config.tokens.code_ttl);
    let grant = CodeGrant {
        client_id: client.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        sub: subject(client, person, &app.config.country),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scope: request.scope.clone(),
        claims: request.claims.clone(),
        authn,
        exp: app.now() + super::token::secs(ttl),
    };
    ephemeral::put_json(app.ephemeral.as_ref(), &grant::code_key(&code), &grant, ttl).await?;
    Ok(redirect(
        &request.redirect_uri,
        &[("code", Some(&code)), ("state", request.state.as_deref())],
        &app.config.issuer,
    ))
}

/// The `login.sso` record (R-LOG-1 "logins", R-SUP-4): the SSO session `authn` answered an
/// authorization request of `client` without a ceremony.
pub fn sso_event(client: &Client, authn: &Authentication) -> crate::audit::AuditEvent {
    crate::audit::AuditEvent::new(
        crate::audit::catalogue::LOGIN_SSO,
        format!("holder:{}", authn.person),
        format!("means:{}", authn.means),
        serde_json::json!({
            "client_id": client.client_id.as_str(),
            "acr": authn.loa,
            "amr": authn.amr,
            "sid": authn.sid,
            "means": authn.means.to_string(),
        }),
    )
}

/// Answers `request` from the SSO session: `login.sso` is recorded first and the code is
/// issued only once the record is in the log (the code lives in the ephemeral store, so the
/// two cannot share a database transaction; this order means no code ever exists without
/// its record, and a failed record issues none).
pub async fn issue_sso_code(
    app: &Oidc,
    request: &AuthRequest,
    client: &Client,
    person: &NaturalPerson,
    authn: Authentication,
) -> Result<String, OAuthError> {
    app.store.append(sso_event(client, &authn)).await?;
    issue_code(app, request, client, person, authn).await
}

/// The error redirect for a trusted redirect URI.
pub fn error_redirect(redirect_uri: &str, state: Option<&str>, error: &OAuthError, issuer: &str) -> String {
    redirect(
        redirect_uri,
        &[
            ("error", Some(error.code.as_str())),
            ("error_description", error.description.as_deref()),
            ("state", state),
        ],
        issuer,
    )
}

fn redirect(base: &str, params: &[(&str, Option<&str>)], issuer: &str) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
                q.append_pair("iss", issuer);
            }
            url.to_string()
        }
        // Registered redirect URIs were validated as absolute URLs at registration.
        Err(_) => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::error::ErrorCode;

    #[test]
    fn error_redirects_keep_existing_query_and_add_iss() {
        let e = OAuthError::new(ErrorCode::AccessDenied, "no");
        let r = error_redirect("https://rp.example/cb?x=1", Some("st"), &e, "https://op.example");
        assert_eq!(
            r,
            "https://rp.example/cb?x=1&error=access_denied&error_description=no&state=st&iss=https%3A%2F%2Fop.example"
        );
    }
}
