//! After a successful ceremony and before the code: the choice of the legal person to act
//! for (scope `eidas_legal`, R-BIND-1) and the holder's consent to the release of claims
//! (R-DATA-4). The flow keeps the authentication while it waits; the code is issued, and
//! the flow ended, only when nothing is pending.

use serde_json::json;

use super::flow::{self, LoginFlow, PendingStep};
use super::state::Authn;
use super::usable::eligible_mandates;
use super::AuthnError;
use crate::audit::AuditEvent;
use crate::domain::claims;
use crate::domain::ids::{PersonId, PersonIdentifier};
use crate::oidc::code;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::store::{Consent, StoreError};

/// What the browser does next.
#[derive(Debug)]
pub enum Next {
    /// Back to the client (`code` or `error`).
    Redirect(String),
    /// A step of the holder's (`legal_person`, `consent`).
    Step(PendingStep),
}

fn country<'a>(app: &'a Authn, client: &'a crate::domain::client::Client) -> &'a str {
    client.country.as_deref().unwrap_or(&app.config.country)
}

/// Runs the steps after the ceremony for a flow whose `authenticated` is set: waits for
/// a step the holder has to take, or issues the code and ends the flow.
pub async fn proceed(app: &Authn, mut flow: LoginFlow) -> Result<Next, AuthnError> {
    let authn = flow.authenticated.clone().ok_or(AuthnError::FlowNotFound)?;
    let client = app
        .store
        .client(&flow.request.client_id)
        .await?
        .ok_or(AuthnError::FlowNotFound)?;
    if flow.request.acts_for_legal_person() && !flow.legal_chosen {
        let choices = eligible_mandates(app.store.as_ref(), authn.person, authn.loa, app.now()).await?;
        if choices.is_empty() {
            audit(
                app,
                crate::audit::catalogue::LEGAL_NO_MANDATE,
                authn.person,
                "login".to_owned(),
                json!({"client_id": client.client_id.as_str(), "loa": authn.loa}),
            )
            .await?;
            return end_with_error(
                app,
                &flow,
                ErrorCode::AccessDenied,
                "the holder has no usable mandate to act for a legal person",
            )
            .await;
        }
        let yy = country(app, &client);
        let data = json!({
            "choices": choices.iter().map(|(_, l)| json!({
                "legal_person": l.identifier.eidas_form(yy),
                "legal_name": l.legal_name,
            })).collect::<Vec<_>>()
        });
        return wait(app, flow, "legal_person", data).await;
    }
    if !flow.consented {
        let individually = flow.request.claims.all_names();
        let requested = claims::requested_names(flow.request.scope.iter().map(String::as_str), &individually);
        let names = claims::to_release(&requested, &client.allowed_claims, authn.mandate.is_some());
        let stored = app.store.consent(authn.person, &client.client_id).await?;
        if claims::needs_consent(
            client.consent,
            flow.request.prompt.consent,
            stored.as_ref().map(|c| c.claims.as_slice()),
            &names,
        ) {
            let data = json!({ "client_name": flow.client_name, "claims": names });
            return wait(app, flow, "consent", data).await;
        }
    }
    if !flow::finish(app, &flow).await? {
        return Err(AuthnError::FlowNotFound);
    }
    let person = app
        .store
        .person(authn.person)
        .await?
        .ok_or(AuthnError::MeansNotActive)?;
    flow.pending = None;
    let to = code::issue_code(&app.oidc, &flow.request, &client, &person, authn)
        .await
        .map_err(|_| AuthnError::Unavailable)?;
    Ok(Next::Redirect(to))
}

async fn wait(app: &Authn, mut flow: LoginFlow, next: &str, data: serde_json::Value) -> Result<Next, AuthnError> {
    let step = PendingStep {
        next: next.to_owned(),
        data,
    };
    flow.pending = Some(step.clone());
    flow::save(app, &flow).await?;
    Ok(Next::Step(step))
}

/// Ends the flow with an error for the client.
pub async fn end_with_error(app: &Authn, flow: &LoginFlow, code: ErrorCode, why: &str) -> Result<Next, AuthnError> {
    if !flow::finish(app, flow).await? {
        return Err(AuthnError::FlowNotFound);
    }
    let error = OAuthError::new(code, why);
    Ok(Next::Redirect(code::error_redirect(
        &flow.request.redirect_uri,
        flow.request.state.as_deref(),
        &error,
        &app.config.issuer,
    )))
}

/// Whether an SSO answer for `request` needs a step of the holder's first: the legal
/// person to act for, or consent. `None` when the code may be issued at once.
pub async fn sso_step(
    app: &Authn,
    request: &crate::oidc::authorize::AuthRequest,
    client: &crate::domain::client::Client,
    authn: &crate::oidc::grant::Authentication,
) -> Result<Option<ErrorCode>, StoreError> {
    if request.acts_for_legal_person() {
        return Ok(Some(ErrorCode::InteractionRequired));
    }
    let individually = request.claims.all_names();
    let requested = claims::requested_names(request.scope.iter().map(String::as_str), &individually);
    let names = claims::to_release(&requested, &client.allowed_claims, false);
    let stored = app.store.consent(authn.person, &client.client_id).await?;
    if claims::needs_consent(
        client.consent,
        request.prompt.consent,
        stored.as_ref().map(|c| c.claims.as_slice()),
        &names,
    ) {
        return Ok(Some(ErrorCode::ConsentRequired));
    }
    Ok(None)
}

fn waiting_for<'a>(flow: &'a LoginFlow, step: &str) -> Result<&'a PendingStep, AuthnError> {
    match &flow.pending {
        Some(p) if p.next == step && flow.authenticated.is_some() => Ok(p),
        _ => Err(AuthnError::BadRequest(format!("the flow is not waiting for {step}"))),
    }
}

/// `POST /authn/flows/{flow}/legal_person`: the holder acts for this legal person, under
/// a mandate that is usable now at the level reached (R-BIND-1).
pub async fn choose_legal_person(app: &Authn, flow: &LoginFlow, identifier: &str) -> Result<Next, AuthnError> {
    waiting_for(flow, "legal_person")?;
    let mut flow = flow.clone();
    let Some(mut authn) = flow.authenticated.clone() else {
        return Err(AuthnError::FlowNotFound);
    };
    let wanted: PersonIdentifier = identifier
        .parse()
        .map_err(|_| AuthnError::BadRequest("legal_person is not an identifier".into()))?;
    let choices = eligible_mandates(app.store.as_ref(), authn.person, authn.loa, app.now()).await?;
    let Some((mandate, legal)) = choices.into_iter().find(|(_, l)| l.identifier == wanted) else {
        audit(
            app,
            crate::audit::catalogue::LEGAL_REFUSED,
            authn.person,
            "login".to_owned(),
            json!({"client_id": flow.request.client_id.as_str(), "reason": "no_usable_mandate"}),
        )
        .await?;
        return Err(AuthnError::BadRequest("legal_person is not among the choices".into()));
    };
    audit(
        app,
        crate::audit::catalogue::MANDATE_USED,
        authn.person,
        format!("mandate:{}", mandate.id),
        json!({"client_id": flow.request.client_id.as_str(), "legal_person": legal.id.to_string(), "loa": authn.loa}),
    )
    .await?;
    authn.mandate = Some(mandate.id);
    flow.authenticated = Some(authn);
    flow.legal_chosen = true;
    flow.pending = None;
    proceed(app, flow).await
}

/// `POST /authn/flows/{flow}/consent`: the holder approves the release of the listed
/// claims (stored, audited) or refuses it (`access_denied`, no code) (R-DATA-4).
pub async fn consent(app: &Authn, flow: &LoginFlow, approve: bool) -> Result<Next, AuthnError> {
    let step = waiting_for(flow, "consent")?;
    let Some(authn) = flow.authenticated.clone() else {
        return Err(AuthnError::FlowNotFound);
    };
    let names: Vec<String> = step
        .data
        .get("claims")
        .and_then(|c| c.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).map(str::to_owned).collect())
        .unwrap_or_default();
    let client_id = flow.request.client_id.clone();
    if !approve {
        audit(
            app,
            crate::audit::catalogue::CONSENT_REFUSED,
            authn.person,
            format!("client:{client_id}"),
            json!({"claims": names}),
        )
        .await?;
        return end_with_error(app, flow, ErrorCode::AccessDenied, "the holder refused the release").await;
    }
    let mut all = app
        .store
        .consent(authn.person, &client_id)
        .await?
        .map(|c| c.claims)
        .unwrap_or_default();
    all.extend(names.iter().cloned());
    all.sort();
    all.dedup();
    let record = Consent {
        person: authn.person,
        client_id: client_id.clone(),
        claims: all,
        granted_at: app.now(),
    };
    let event = AuditEvent::new(
        crate::audit::catalogue::CONSENT_GRANTED,
        format!("holder:{}", authn.person),
        format!("client:{client_id}"),
        json!({"claims": names}),
    );
    app.store.grant_consent(&record, event).await?;
    let mut flow = flow.clone();
    flow.consented = true;
    flow.pending = None;
    proceed(app, flow).await
}

async fn audit(
    app: &Authn,
    event: &str,
    person: PersonId,
    subject: String,
    data: serde_json::Value,
) -> Result<(), AuthnError> {
    app.store
        .append(AuditEvent::new(event, format!("holder:{person}"), subject, data))
        .await?;
    Ok(())
}
