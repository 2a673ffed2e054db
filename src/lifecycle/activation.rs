//! Activation by the holder (DESIGN "Activation API", R-ISS-1..3, R-REG-1): the
//! activation code within its period and attempt limit, the holder's explicit acceptance
//! of the terms of use and security advice (versions recorded), then the credential. Only
//! after that can the means authenticate.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{codes, LifecycleError};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::domain::ids::{MeansId, PersonId, PersonIdentifier};
use crate::domain::means::proof::{ActivationAccepted, CodeVerified};
use crate::domain::means::state::{self, Command};
use crate::domain::means::{MeansKind, MeansStatus};
use crate::domain::secret::{fingerprint_hex, Password};
use crate::ephemeral::{self, StatusEvent};
use crate::store::{Acceptance, Credential, TransitionWrite};

/// How long a started activation may take.
const ACTIVATION_TTL: Duration = Duration::from_secs(1800);

/// Minimum password length (NIST 800-63B allows 8; eID means ask for more).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// A started activation, kept in the ephemeral store.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    means: MeansId,
    person: PersonId,
    identifier_code: String,
    kind: MeansKind,
    accepted: Option<(String, String)>,
}

/// The answer to `POST /activation/start`.
#[derive(Debug, Serialize)]
pub struct Started {
    /// The activation id (a bearer secret for the next steps).
    pub activation: String,
    /// Kind of the means.
    pub kind: MeansKind,
    /// The terms of use version to accept.
    pub terms_version: String,
    /// The security advice version to accept.
    pub security_advice_version: String,
}

fn key(id: &str) -> String {
    format!("activation:{}", fingerprint_hex(id))
}

/// `POST /activation/start`: checks the code; one answer for every refusal.
pub async fn start(app: &App, identifier: &str, code: &str, ip: IpAddr) -> Result<Started, LifecycleError> {
    crate::authn::throttle::attempt_from(app, ip)
        .await
        .map_err(|_| LifecycleError::TooManyAttempts)?;
    if identifier.len() > 128 || code.len() > 64 {
        return Err(LifecycleError::BadRequest("identifier or code too long".into()));
    }
    let person = match identifier.parse::<PersonIdentifier>() {
        Ok(id) => app.store.person_by_identifier(&id).await?,
        Err(_) => None,
    };
    let now = app.now();
    let mut candidates = Vec::new();
    if let Some(p) = &person {
        for m in app.store.means_of_holder(p.id).await? {
            if m.status == MeansStatus::Issued {
                if let Some(rec) = app.store.means_record(m.id).await? {
                    candidates.push(rec);
                }
            }
        }
    }
    let typed = Password::new(codes::normalise(code));
    let max = i64::from(app.config.means.activation_max_attempts);
    let mut matched = None;
    for rec in &candidates {
        let live = rec.activation_expires_at.is_some_and(|t| t > now) && rec.activation_attempts < max;
        if live && app.passwords.verify(rec.activation_code.clone(), typed.clone()).await? {
            matched = Some(rec.clone());
            break;
        }
    }
    if candidates.is_empty() {
        // Same cost whether or not the identifier exists.
        app.passwords.verify(None, typed).await?;
    }
    let (Some(person), Some(rec)) = (person, matched) else {
        for rec in &candidates {
            let audit = AuditEvent::new(
                crate::audit::catalogue::ACTIVATION_FAILED,
                format!("ip:{ip}"),
                format!("means:{}", rec.means.id),
                json!({"attempt": rec.activation_attempts + 1}),
            );
            app.store.count_activation_failure(rec.means.id, audit).await?;
        }
        return Err(LifecycleError::ActivationRefused);
    };
    let pending = Pending {
        means: rec.means.id,
        person: person.id,
        identifier_code: person.identifier.code().to_owned(),
        kind: rec.means.kind,
        accepted: None,
    };
    let activation = crate::random::token();
    ephemeral::put_json(app.ephemeral.as_ref(), &key(&activation), &pending, ACTIVATION_TTL).await?;
    let audit = AuditEvent::new(
        crate::audit::catalogue::ACTIVATION_STARTED,
        format!("holder:{}", person.id),
        format!("means:{}", rec.means.id),
        json!({}),
    );
    app.store.append(audit).await?;
    Ok(Started {
        activation,
        kind: rec.means.kind,
        terms_version: app.config.terms.terms_version.clone(),
        security_advice_version: app.config.terms.security_advice_version.clone(),
    })
}

async fn load(app: &App, activation: &str) -> Result<Pending, LifecycleError> {
    if activation.len() != 43 {
        return Err(LifecycleError::NotFound);
    }
    ephemeral::decode(app.ephemeral.get(&key(activation)).await?).ok_or(LifecycleError::NotFound)
}

/// `POST /activation/{id}/accept`: the holder's explicit act (R-REG-1, R-ISS-3). The
/// versions must be the ones in force.
pub async fn accept(app: &App, activation: &str, terms: &str, advice: &str) -> Result<(), LifecycleError> {
    let mut pending = load(app, activation).await?;
    if terms != app.config.terms.terms_version || advice != app.config.terms.security_advice_version {
        return Err(LifecycleError::Unprocessable(
            "accept the terms and security advice versions in force".into(),
        ));
    }
    pending.accepted = Some((terms.to_owned(), advice.to_owned()));
    ephemeral::put_json(app.ephemeral.as_ref(), &key(activation), &pending, ACTIVATION_TTL).await?;
    Ok(())
}

/// Password rules: long enough, not the identifier.
pub fn check_password(password: &Password, identifier_code: &str) -> Result<(), LifecycleError> {
    let p = password.expose();
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(LifecycleError::Unprocessable(format!(
            "the password needs at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if p.len() > 1024 {
        return Err(LifecycleError::BadRequest("password too long".into()));
    }
    if !identifier_code.is_empty() && p.contains(identifier_code) {
        return Err(LifecycleError::Unprocessable(
            "the password must not contain the personal identifier".into(),
        ));
    }
    Ok(())
}

/// `POST /activation/{id}/password` for a `password` means: sets the password and makes
/// the means `active`. Returns the means id.
pub async fn set_password(app: &App, activation: &str, password: Password) -> Result<MeansId, LifecycleError> {
    let pending = load(app, activation).await?;
    if pending.kind != MeansKind::Password {
        return Err(LifecycleError::Unprocessable(
            "this activation does not take a password step".into(),
        ));
    }
    let Some((terms, advice)) = pending.accepted.clone() else {
        return Err(LifecycleError::Unprocessable(
            "accept the terms of use and the security advice first".into(),
        ));
    };
    check_password(&password, &pending.identifier_code)?;
    let phc = crate::authn::password::hash(&password)?;
    finish(
        app,
        activation,
        &pending,
        (terms, advice),
        Credential::PasswordHash(phc),
    )
    .await?;
    Ok(pending.means)
}

async fn finish(
    app: &App,
    activation: &str,
    pending: &Pending,
    (terms, advice): (String, String),
    credential: Credential,
) -> Result<(), LifecycleError> {
    // Single use: a second finish of the same activation finds nothing.
    if app.ephemeral.take(&key(activation)).await?.is_none() {
        return Err(LifecycleError::NotFound);
    }
    let rec = app
        .store
        .means_record(pending.means)
        .await?
        .ok_or(LifecycleError::NotFound)?;
    let now = app.now();
    if rec.activation_expires_at.is_none_or(|t| t <= now) {
        return Err(LifecycleError::ActivationRefused);
    }
    let proof = ActivationAccepted::new(CodeVerified::after_check(), terms.clone(), advice.clone());
    let to = state::apply(rec.means.status, &Command::Activate(proof))?;
    let mut write = TransitionWrite::status(rec.means.id, rec.means.version, to);
    write.credential = Some(credential);
    write.acceptance = Some(Acceptance {
        person: pending.person,
        means: pending.means,
        terms_version: terms.clone(),
        security_advice_version: advice.clone(),
        accepted_at: now,
    });
    write.validity = Some((now, now + crate::oidc::token::secs(app.config.means.validity)));
    let audit = AuditEvent::new(
        crate::audit::catalogue::MEANS_ACTIVATED,
        format!("holder:{}", pending.person),
        format!("means:{}", pending.means),
        json!({"terms_version": terms, "security_advice_version": advice, "credential": "set"}),
    );
    app.store.commit_transition(&write, audit).await?;
    if let Err(e) = app
        .ephemeral
        .publish(&StatusEvent::MeansChanged { means: pending.means })
        .await
    {
        tracing::warn!(error = %e, "status event not published");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_auth_3_password_rules() {
        assert!(check_password(&Password::new("short".into()), "123").is_err());
        assert!(check_password(&Password::new("abc38001085718xyz".into()), "38001085718").is_err());
        assert!(check_password(&Password::new("correct horse battery".into()), "38001085718").is_ok());
    }
}
