//! Single sign-on: whether a live SSO session satisfies an authorization request (level,
//! age, `prompt`, `max_age`, `id_token_hint`, the means still usable, the LoA caps in
//! force), and what it can do for it: the code at once, or the holder's step first.

use super::session;
use super::state::Authn;
use crate::domain::client::Client;
use crate::oidc::authorize::AuthRequest;
use crate::oidc::error::{AuthorizeError, ErrorCode, OAuthError};

/// What an SSO session can do for an authorization request.
pub enum Sso {
    /// Nothing: the holder must log in.
    None,
    /// The code, at once.
    Code(String),
    /// The authentication holds, but the holder must take a step first (consent, legal
    /// person); with the error for `prompt=none`.
    Steps(crate::oidc::grant::Authentication, ErrorCode),
}

pub async fn from_session(
    app: &Authn,
    request: &AuthRequest,
    client: &Client,
    cookie: Option<&str>,
) -> Result<Sso, AuthorizeError> {
    match session_authentication(app, request, client, cookie).await? {
        None => Ok(Sso::None),
        Some((authn, person)) => {
            let step = super::release::sso_step(app, request, client, &authn)
                .await
                .map_err(|e| request.error(e.into()))?;
            if let Some(code) = step {
                return Ok(Sso::Steps(authn, code));
            }
            let redirect = crate::oidc::code::issue_sso_code(&app.oidc, request, client, &person, authn)
                .await
                .map_err(|e| request.error(e))?;
            Ok(Sso::Code(redirect))
        }
    }
}

/// The authentication of a live SSO session that satisfies the request (level, age,
/// means still usable, `id_token_hint`), marked used.
pub async fn session_authentication(
    app: &Authn,
    request: &AuthRequest,
    client: &Client,
    cookie: Option<&str>,
) -> Result<Option<(crate::oidc::grant::Authentication, crate::domain::person::NaturalPerson)>, AuthorizeError> {
    let Some(cookie) = cookie else { return Ok(None) };
    if request.prompt.login {
        return Ok(None);
    }
    let unavailable = |_| request.error(OAuthError::unavailable());
    let Some(s) = session::load(app, cookie).await.map_err(unavailable)? else {
        return Ok(None);
    };
    let now = app.now();
    if let Some(max_age) = request.max_age {
        // OIDC Core §3.1.2.1: "max_age=0 is equivalent to prompt=login". Times are whole
        // seconds, so an authentication within the same second must not satisfy it.
        if max_age == 0 || now - s.authn.auth_time > i64::try_from(max_age).unwrap_or(i64::MAX) {
            return Ok(None);
        }
    }
    if request.requested_loa.is_some_and(|r| r > s.authn.loa) {
        return Ok(None);
    }
    if crate::authn::usable::ensure_means_usable(app.store.as_ref(), &s.authn, now)
        .await
        .is_err()
    {
        return Ok(None);
    }
    // A cap lowered since the login (R-SUP-2) ends the session's use for SSO: the holder
    // logs in again and gets the level in force now.
    let caps = app.caps.in_force().await.map_err(|e| request.error(e.into()))?;
    let kind = app
        .store
        .means(s.authn.means)
        .await
        .map_err(|e| request.error(e.into()))?
        .map(|m| m.kind);
    if kind.is_none_or(|k| caps.cap(k) < s.authn.loa) {
        return Ok(None);
    }
    let Some(person) = app
        .store
        .person(s.authn.person)
        .await
        .map_err(|e| request.error(e.into()))?
    else {
        return Ok(None);
    };
    if let Some(hint) = &request.id_token_hint {
        let expected = crate::oidc::subject::subject(client, &person, &app.config.country);
        if crate::oidc::logout::hint_subject(&app.oidc, hint).as_deref() != Some(expected.as_str()) {
            return Ok(None);
        }
    }
    session::touch(app, cookie, &s).await.map_err(unavailable)?;
    Ok(Some((s.authn, person)))
}
