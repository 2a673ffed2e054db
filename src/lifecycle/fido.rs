//! Activation of a `fido` means (DESIGN "Activation API", R-ISS-2, R-ISS-3, R-MEANS-3,
//! R-MEANS-4): after the activation code and the holder's explicit acceptance, the
//! holder's authenticator creates a credential (user verification required) that is bound
//! to this means. The attestation is checked against the allow list and recorded with
//! the means (format, AAGUID, trust path, trusted level).
//!
//! The credential row is written first, then the means becomes `active` in its own
//! transaction: a failure in between leaves a credential on a means that is still
//! `issued`, which cannot log in and is replaced by the next activation.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::activation::{self, Pending};
use super::state::Lifecycle;
use super::LifecycleError;
use crate::audit::AuditEvent;
use crate::authn::webauthn::{Relying, WebauthnError};
use crate::domain::ids::MeansId;
use crate::domain::means::MeansKind;
use crate::domain::secret::fingerprint_hex;
use crate::ephemeral;
use crate::store::{Credential, FidoCredentialRecord};

/// The registration ceremony in the ephemeral store (single use).
#[derive(Serialize, Deserialize)]
struct Ceremony {
    state: String,
    user_handle: String,
}

fn key(activation: &str) -> String {
    format!("webauthn:reg:{}", fingerprint_hex(activation))
}

fn fido_pending(pending: &Pending) -> Result<(), LifecycleError> {
    if pending.kind != MeansKind::Fido {
        return Err(LifecycleError::Unprocessable(
            "this activation does not take an authenticator step".into(),
        ));
    }
    Ok(())
}

/// `POST /activation/{id}/webauthn/start`: `PublicKeyCredentialCreationOptions` for the
/// holder's authenticator (UV required, resident key preferred, direct attestation).
pub async fn start(app: &Lifecycle, activation_id: &str) -> Result<serde_json::Value, LifecycleError> {
    let pending = activation::load(app, activation_id).await?;
    fido_pending(&pending)?;
    activation::accepted(&pending)?;
    let person = app
        .store
        .person(pending.person)
        .await?
        .ok_or(LifecycleError::NotFound)?;
    let user_handle = Relying::new_user_handle();
    let display = format!("{} {}", person.given_name, person.family_name);
    let started = app
        .webauthn
        .start_registration(&user_handle, &person.identifier.to_string(), display.trim(), &[])
        .map_err(|e| {
            tracing::error!(error = %e, "WebAuthn creation options");
            LifecycleError::Unavailable
        })?;
    let ceremony = Ceremony {
        state: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&started.state),
        user_handle,
    };
    ephemeral::put_json(
        app.ephemeral.as_ref(),
        &key(activation_id),
        &ceremony,
        app.config.webauthn.challenge_ttl,
    )
    .await?;
    Ok(json!({ "publicKey": started.options }))
}

/// `POST /activation/{id}/webauthn/finish`: verifies the new credential (challenge single
/// use), records it with its attestation, and activates the means.
pub async fn finish(app: &Lifecycle, activation_id: &str, response: &[u8]) -> Result<MeansId, LifecycleError> {
    let pending = activation::load(app, activation_id).await?;
    fido_pending(&pending)?;
    let terms = activation::accepted(&pending)?;
    let Some(ceremony) = ephemeral::decode::<Ceremony>(app.ephemeral.take(&key(activation_id)).await?) else {
        return Err(LifecycleError::Unprocessable(
            "start the authenticator step first (or again: it expired)".into(),
        ));
    };
    let state = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&ceremony.state)
        .map_err(|_| LifecycleError::Unavailable)?;
    let now = app.now();
    let created = match app.webauthn.finish_registration(&state, response, now) {
        Ok(c) => c,
        Err(e) => return Err(failed(app, activation_id, &pending, &e).await?),
    };
    if created.user_handle != ceremony.user_handle {
        return Err(failed(app, activation_id, &pending, &WebauthnError::Failed("user handle")).await?);
    }
    if let Some(existing) = app.store.fido_by_credential_id(&created.credential_id).await? {
        if existing.means != pending.means {
            return Err(failed(
                app,
                activation_id,
                &pending,
                &WebauthnError::Failed("credential already registered"),
            )
            .await?);
        }
    }
    let attestation = serde_json::to_string(&created.attestation).map_err(|_| LifecycleError::Unavailable)?;
    let record = FidoCredentialRecord {
        means: pending.means,
        credential_id: created.credential_id.clone(),
        user_handle: created.user_handle.clone(),
        static_state: created.static_state.clone(),
        dynamic_state: created.dynamic_state.clone(),
        attestation,
        created_at: now,
        last_used_at: None,
    };
    let audit = AuditEvent::new(
        crate::audit::catalogue::FIDO_CREDENTIAL_REGISTERED,
        format!("holder:{}", pending.person),
        format!("means:{}", pending.means),
        json!({
            "format": created.attestation.format,
            "aaguid": created.attestation.aaguid,
            "attestation": created.attestation.kind,
            "trust_path": created.attestation.trust_path,
            "trusted_loa": created.attestation.trusted_loa,
            "backup_eligible": created.backup_eligible,
        }),
    );
    app.store.save_fido_credential(&record, audit).await?;
    activation::finish(app, activation_id, &pending, terms, Credential::None).await?;
    Ok(pending.means)
}

/// A failed registration: audited with the precise reason, counted against the
/// activation's attempts; the holder gets a short reason they can act on.
async fn failed(
    app: &Lifecycle,
    activation_id: &str,
    pending: &Pending,
    e: &WebauthnError,
) -> Result<LifecycleError, LifecycleError> {
    let attempts = app
        .ephemeral
        .hit(
            &format!("activation-webauthn:{}", fingerprint_hex(activation_id)),
            activation::ACTIVATION_TTL,
        )
        .await?;
    let audit = AuditEvent::new(
        crate::audit::catalogue::FIDO_REGISTRATION_FAILED,
        format!("holder:{}", pending.person),
        format!("means:{}", pending.means),
        json!({"reason": e.to_string(), "attempt": attempts}),
    );
    app.store.append(audit).await?;
    if attempts >= u64::from(app.config.means.activation_max_attempts) {
        app.ephemeral.delete(&activation::key(activation_id)).await?;
    }
    Ok(match e {
        WebauthnError::UserNotVerified => LifecycleError::Unprocessable(
            "the authenticator did not verify you (PIN or biometrics): use one that can".into(),
        ),
        WebauthnError::Malformed(_) => LifecycleError::BadRequest("the authenticator's answer is malformed".into()),
        _ => LifecycleError::Unprocessable("the authenticator's answer could not be verified".into()),
    })
}
