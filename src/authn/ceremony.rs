//! The password ceremony (LoA low) and the common end of every ceremony: achieved LoA
//! (R-SUP-2), the LoA the RP asked for (never a lower `acr`), the SSO session, the code.

use std::net::IpAddr;

use serde_json::json;

use super::flow::{self, LoginFlow};
use super::{session, throttle, AuthnError};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::domain::ids::PersonIdentifier;
use crate::domain::loa::{Amr, Loa};
use crate::domain::means::{EidMeans, MeansKind, MeansStatus};
use crate::domain::person::NaturalPerson;
use crate::domain::secret::Password;
use crate::oidc::code;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::grant::Authentication;
use crate::store::Credential;

/// Where the browser goes next, and the session cookie to set when one was created.
#[derive(Debug)]
pub struct Completed {
    /// The client's redirect URI with `code` or `error`, `state`, `iss`.
    pub redirect_to: String,
    /// A new SSO session cookie.
    pub session_cookie: Option<String>,
}

/// Request facts the ceremonies log and rate-limit on.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// Client IP.
    pub ip: IpAddr,
}

/// `POST /authn/flows/{flow}/password`.
pub async fn password(
    app: &App,
    flow: &LoginFlow,
    identifier: &str,
    password: Password,
    meta: &RequestMeta,
) -> Result<Completed, AuthnError> {
    throttle::attempt_from(app, meta.ip).await?;
    if identifier.is_empty() || identifier.len() > 128 || password.expose().len() > 1024 {
        return Err(AuthnError::BadRequest("identifier or password has a bad length".into()));
    }
    let account = identifier.trim();
    match throttle::check_account(app, account).await {
        Ok(()) => {}
        Err(locked @ AuthnError::TooManyAttempts(_)) => {
            // A refused attempt on a locked account is a failed login too (R-LOG-1, R-LOG-4).
            audit(
                app,
                crate::audit::catalogue::LOGIN_FAILURE,
                "password",
                flow,
                None,
                json!({"reason": "locked", "ip": meta.ip.to_string(), "account": crate::audit::pseudonym(account)}),
            )
            .await?;
            return Err(locked);
        }
        Err(other) => return Err(other),
    }

    let person = match account.parse::<PersonIdentifier>() {
        Ok(id) => app.store.person_by_identifier(&id).await?,
        Err(_) => None,
    };
    let mut candidates: Vec<EidMeans> = match &person {
        Some(p) => app
            .store
            .means_of_holder(p.id)
            .await?
            .into_iter()
            .filter(|m| m.kind == MeansKind::Password)
            .collect(),
        None => Vec::new(),
    };
    // Prefer an active means; otherwise check the newest one so that a correct password
    // on a suspended means is told `means-not-active`, and a wrong one is just wrong.
    candidates.sort_by_key(|m| (m.status != MeansStatus::Active, -m.valid_from));
    let chosen = candidates.into_iter().next();
    let phc = match &chosen {
        Some(m) => match app.store.credential(m.id).await? {
            Credential::PasswordHash(h) => Some(h),
            Credential::None => None,
        },
        None => None,
    };
    let verified = app.passwords.verify(phc, password).await?;
    let (Some(person), Some(means), true) = (person, chosen, verified) else {
        throttle::failed(app, account).await?;
        audit(
            app,
            crate::audit::catalogue::LOGIN_FAILURE,
            "password",
            flow,
            None,
            json!({"reason": "invalid_credentials", "ip": meta.ip.to_string(), "account": crate::audit::pseudonym(account)}),
        )
        .await?;
        return Err(AuthnError::InvalidCredentials);
    };
    let now = app.now();
    if means.check_usable(now).is_err() {
        audit(
            app,
            crate::audit::catalogue::LOGIN_FAILURE,
            "password",
            flow,
            Some(&means),
            json!({"reason": "means_not_active", "ip": meta.ip.to_string()}),
        )
        .await?;
        return Err(AuthnError::MeansNotActive);
    }
    throttle::succeeded(app, account).await?;
    complete(app, flow, &person, &means, Loa::Low, vec![Amr::Pwd], meta).await
}

/// Ends a flow after a successful ceremony that proved `ceremony` with `amr`.
pub async fn complete(
    app: &App,
    flow: &LoginFlow,
    person: &NaturalPerson,
    means: &EidMeans,
    ceremony: Loa,
    amr: Vec<Amr>,
    meta: &RequestMeta,
) -> Result<Completed, AuthnError> {
    if !flow::finish(app, flow).await? {
        return Err(AuthnError::FlowNotFound);
    }
    let client = app
        .store
        .client(&flow.request.client_id)
        .await?
        .ok_or(AuthnError::FlowNotFound)?;
    let cap = app.config.loa.caps.cap(means.kind);
    let achieved = Loa::achieved(means.loa.min(person.proofing_loa), cap, ceremony);
    let method = means.kind.as_str();
    if achieved < flow.requested_loa() {
        audit(
            app,
            crate::audit::catalogue::LOGIN_FAILURE,
            method,
            flow,
            Some(means),
            json!({"reason": "unmet_loa", "achieved": achieved, "ip": meta.ip.to_string()}),
        )
        .await?;
        let error = OAuthError::new(
            ErrorCode::UnmetAuthenticationRequirements,
            "the requested level of assurance cannot be reached",
        );
        let to = code::error_redirect(
            &flow.request.redirect_uri,
            flow.request.state.as_deref(),
            &error,
            &app.config.issuer,
        );
        return Ok(Completed {
            redirect_to: to,
            session_cookie: None,
        });
    }
    let authn = Authentication {
        person: person.id,
        means: means.id,
        auth_time: app.now(),
        loa: achieved,
        amr,
        sid: crate::random::token(),
    };
    let cookie = session::create(app, &authn).await?;
    audit(
        app,
        crate::audit::catalogue::LOGIN_SUCCESS,
        method,
        flow,
        Some(means),
        json!({"loa": achieved, "sid": authn.sid, "ip": meta.ip.to_string()}),
    )
    .await?;
    let to = code::issue_code(app, &flow.request, &client, person, authn)
        .await
        .map_err(|_| AuthnError::Unavailable)?;
    Ok(Completed {
        redirect_to: to,
        session_cookie: Some(cookie),
    })
}

async fn audit(
    app: &App,
    event: &str,
    method: &str,
    flow: &LoginFlow,
    means: Option<&EidMeans>,
    mut data: serde_json::Value,
) -> Result<(), AuthnError> {
    if let Some(obj) = data.as_object_mut() {
        obj.insert("method".into(), json!(method));
        obj.insert("client_id".into(), json!(flow.request.client_id.as_str()));
    }
    let (actor, subject) = match means {
        Some(m) => (format!("holder:{}", m.holder), format!("means:{}", m.id)),
        None => ("anonymous".to_owned(), "login".to_owned()),
    };
    app.store.append(AuditEvent::new(event, actor, subject, data)).await?;
    Ok(())
}
