//! The FIDO2 login (DESIGN "FIDO2 login", R-AUTH-4, R-AUTH-5, R-MEANS-2, R-MEANS-3,
//! R-MEANS-4): `/authn/flows/{flow}/webauthn/start|finish`.
//!
//! - `start` without an identifier asks for a discoverable credential (username-less);
//!   with one, the credentials of the holder's active FIDO means are listed
//!   (identifier-first). An identifier without any (unknown, or no active FIDO means)
//!   gets a decoy list derived from the identifier with the server secret: stable, so the
//!   answer does not tell whether the identifier exists.
//! - The ceremony state (challenge) is kept per flow in the ephemeral store and taken
//!   atomically by `finish`: a challenge is used once, a replay finds nothing.
//! - `finish` verifies the assertion (UV required, RP ID, origin, signature, counter,
//!   backup eligibility) before it says anything about the means' state; then the means
//!   must be `active` (R-AUTH-1). A counter that does not increase suspends the means at
//!   once (committed with an `authn.counter_regression` audit record, which raises the
//!   `fido_counter_regression` security alert), and the holder is told to contact the
//!   helpdesk.
//! - amr and the ceremony's level follow the attestation recorded at activation
//!   ([`super::webauthn::proof_of`]).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ceremony::{self, Completed, RequestMeta};
use super::flow::LoginFlow;
use super::state::Authn;
use super::webauthn::{self, LoginKind, StoredCredential, WebauthnError};
use super::{throttle, AuthnError};
use crate::audit::AuditEvent;
use crate::domain::means::{EidMeans, MeansKind, MeansStatus};
use crate::domain::secret::fingerprint_hex;
use crate::ephemeral;
use crate::store::FidoCredentialRecord;

/// The login ceremony in the ephemeral store.
#[derive(Serialize, Deserialize)]
struct Ceremony {
    kind: LoginKind,
    state: String,
}

fn key(flow: &LoginFlow) -> String {
    format!("webauthn:login:{}", fingerprint_hex(&flow.id))
}

/// `POST /authn/flows/{flow}/webauthn/start`.
pub async fn start(
    app: &Authn,
    flow: &LoginFlow,
    identifier: Option<&str>,
    meta: &RequestMeta,
) -> Result<serde_json::Value, AuthnError> {
    throttle::attempt_global(&app.throttle).await?;
    throttle::attempt_from(&app.throttle, meta.ip).await?;
    let mut credentials = Vec::new();
    if let Some(identifier) = identifier.map(str::trim).filter(|i| !i.is_empty()) {
        if identifier.len() > 128 {
            return Err(AuthnError::BadRequest("identifier too long".into()));
        }
        let canon = throttle::canonical(identifier, &app.config.country);
        let person = match &canon.identifier {
            Some(id) => app.store.person_by_identifier(id).await?,
            None => None,
        };
        if let Some(person) = person {
            // Only credentials of active means: a revoked or suspended one would tell
            // that the identifier exists (issue 19).
            for means in app.store.means_of_holder(person.id).await? {
                if means.kind == MeansKind::Fido && means.check_usable(app.now()).is_ok() {
                    if let Some(rec) = app.store.fido_of_means(means.id).await? {
                        credentials.push(rec.credential_id);
                    }
                }
            }
        }
        if credentials.is_empty() {
            // Nobody holds this identifier, or not with an active FIDO means: a decoy
            // list, stable for the identifier, so that the answer looks like a holder's.
            credentials = app.login_keys.decoy_credentials(&canon.key);
        }
    }
    let (kind, started) = app.webauthn.start_login(&credentials).map_err(|e| {
        tracing::error!(error = %e, "WebAuthn request options");
        AuthnError::Unavailable
    })?;
    let ceremony = Ceremony {
        kind,
        state: base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &started.state),
    };
    ephemeral::put_json(
        app.ephemeral.as_ref(),
        &key(flow),
        &ceremony,
        app.config.webauthn.challenge_ttl,
    )
    .await?;
    Ok(json!({ "publicKey": started.options }))
}

/// `POST /authn/flows/{flow}/webauthn/finish` with the `PublicKeyCredential` JSON.
pub async fn finish(
    app: &Authn,
    flow: &LoginFlow,
    response: &[u8],
    meta: &RequestMeta,
) -> Result<Completed, AuthnError> {
    throttle::attempt_global(&app.throttle).await?;
    throttle::attempt_from(&app.throttle, meta.ip).await?;
    // Single use: whatever happens next, this challenge is gone.
    let Some(ceremony) = ephemeral::decode::<Ceremony>(app.ephemeral.take(&key(flow)).await?) else {
        failure(app, flow, None, "challenge_unknown_or_used", meta).await?;
        return Err(AuthnError::InvalidCredentials);
    };
    let state = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &ceremony.state)
        .map_err(|_| AuthnError::Unavailable)?;
    let (credential_id, _) = match webauthn::assertion_ids(response) {
        Ok(ids) => ids,
        Err(e) => {
            failure(app, flow, None, &e.to_string(), meta).await?;
            return Err(AuthnError::BadRequest("malformed credential".into()));
        }
    };
    let Some(rec) = app.store.fido_by_credential_id(&credential_id).await? else {
        failure(app, flow, None, "unknown_credential", meta).await?;
        return Err(AuthnError::InvalidCredentials);
    };
    let means = app.store.means(rec.means).await?.ok_or(AuthnError::MeansNotActive)?;
    let stored = StoredCredential {
        credential_id: rec.credential_id.clone(),
        user_handle: rec.user_handle.clone(),
        static_state: rec.static_state.clone(),
        dynamic_state: rec.dynamic_state.clone(),
    };
    let asserted = match app.webauthn.finish_login(ceremony.kind, &state, response, &stored) {
        Ok(a) => a,
        Err(WebauthnError::CounterRegression) => {
            counter_regression(app, flow, &means, meta).await?;
            return Err(AuthnError::MeansNotActive);
        }
        Err(e) => {
            let reason = match &e {
                WebauthnError::UserNotVerified => "user_not_verified".to_owned(),
                other => other.to_string(),
            };
            failure(app, flow, Some(&means), &reason, meta).await?;
            return Err(AuthnError::InvalidCredentials);
        }
    };
    // R-AUTH-1: only now, after the holder proved possession, the means' state counts.
    if means.kind != MeansKind::Fido || means.check_usable(app.now()).is_err() {
        failure(app, flow, Some(&means), "means_not_active", meta).await?;
        return Err(AuthnError::MeansNotActive);
    }
    if asserted.dynamic_state != rec.dynamic_state
        && !app
            .store
            .update_fido_state(means.id, &rec.dynamic_state, &asserted.dynamic_state, app.now())
            .await?
    {
        // Another login moved the counter from the same value at the same time: one of
        // the two is a replay or a clone; this one loses.
        failure(app, flow, Some(&means), "concurrent_counter_update", meta).await?;
        return Err(AuthnError::InvalidCredentials);
    }
    let person = app
        .store
        .person(means.holder)
        .await?
        .ok_or(AuthnError::MeansNotActive)?;
    let attestation = attestation_of(&rec);
    let (ceiling, amr) = webauthn::proof_of(attestation.as_ref());
    ceremony::complete(app, flow, &person, &means, ceiling, amr, meta).await
}

fn attestation_of(rec: &FidoCredentialRecord) -> Option<super::attestation::AttestationResult> {
    match serde_json::from_str(&rec.attestation) {
        Ok(a) => Some(a),
        Err(e) => {
            // Fail towards the lower level: an unreadable record is not a trusted one.
            tracing::warn!(means = %rec.means, error = %e, "stored attestation unreadable");
            None
        }
    }
}

/// The signature verified but the counter went back or stood still: the key exists twice.
/// The means is suspended (durable before the answer, R-LIFE-4) with an
/// `authn.counter_regression` audit record that raises the security alert (R-LOG-4).
async fn counter_regression(
    app: &Authn,
    flow: &LoginFlow,
    means: &EidMeans,
    meta: &RequestMeta,
) -> Result<(), AuthnError> {
    tracing::warn!(means = %means.id, "alert: FIDO signature counter regression, means suspended");
    let event = AuditEvent::new(
        crate::audit::catalogue::AUTHN_COUNTER_REGRESSION,
        "system",
        format!("means:{}", means.id),
        json!({
            "holder": means.holder.to_string(),
            "client_id": flow.request.client_id.as_str(),
            "ip": meta.ip.to_string(),
            "action": "suspended",
        }),
    );
    let current = app.store.means_record(means.id).await?.map(|r| r.means);
    match current {
        Some(current) if current.status == MeansStatus::Active => {
            match app
                .store
                .set_status(current.id, current.version, MeansStatus::Suspended, event)
                .await
            {
                Ok(_) => crate::lifecycle::service::publish(&app.lifecycle, means.id).await,
                Err(crate::store::StoreError::Conflict) => {
                    tracing::warn!(means = %means.id, "means changed while being suspended for a counter regression");
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Not active (already suspended): still record the regression and its alert.
        _ => {
            app.store.append(event).await?;
        }
    }
    failure(app, flow, Some(means), "counter_regression", meta).await
}

async fn failure(
    app: &Authn,
    flow: &LoginFlow,
    means: Option<&EidMeans>,
    reason: &str,
    meta: &RequestMeta,
) -> Result<(), AuthnError> {
    let (actor, subject) = match means {
        Some(m) => (format!("holder:{}", m.holder), format!("means:{}", m.id)),
        None => ("anonymous".to_owned(), "login".to_owned()),
    };
    let event = AuditEvent::new(
        crate::audit::catalogue::LOGIN_FAILURE,
        actor,
        subject,
        json!({
            "method": "fido",
            "reason": reason,
            "client_id": flow.request.client_id.as_str(),
            "ip": meta.ip.to_string(),
        }),
    );
    app.store.append(event).await?;
    Ok(())
}
