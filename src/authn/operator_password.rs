//! Operator passwords (R-SEC-4): valid at most `[operators] password_max_age` (30 days),
//! and none of the last `[operators] password_history` (12) may be set again. An operator
//! whose password expired proves it once more in the password step and is then led to a
//! change step (`{"next": "password_change"}`, `POST /authn/flows/{flow}/password_change`
//! with `{"new_password"}`) before the login goes on. Holders' passwords are not
//! subject to these rules.

use serde_json::json;

use super::flow::{self, FirstFactor, LoginFlow, RequestMeta};
use super::state::Authn;
use super::AuthnError;
use crate::audit::AuditEvent;
use crate::domain::ids::PersonId;
use crate::domain::means::{EidMeans, MeansKind};
use crate::domain::secret::Password;
use crate::store::{Credential, TransitionWrite};

/// Whether `person` is an operator (holds any role).
pub async fn is_operator(app: &Authn, person: PersonId) -> Result<bool, AuthnError> {
    Ok(app.store.operator(person).await?.is_some_and(|o| !o.roles.is_empty()))
}

/// Whether the password of operator `person`'s means `means` is older than allowed: since
/// its last change, or since the means became valid when it never changed.
pub async fn expired(app: &Authn, person: PersonId, means: &EidMeans) -> Result<bool, AuthnError> {
    if !is_operator(app, person).await? {
        return Ok(false);
    }
    let set_at = app
        .store
        .password_history(means.id, 1)
        .await?
        .first()
        .map(|(_, at)| *at)
        .unwrap_or(means.valid_from);
    let max_age = i64::try_from(app.config.operators.password_max_age.as_secs()).unwrap_or(i64::MAX);
    Ok(app.now().saturating_sub(set_at) > max_age)
}

async fn audit(app: &Authn, person: PersonId, means: &EidMeans, event: &str, data: serde_json::Value) {
    let record = AuditEvent::new(event, format!("operator:{person}"), format!("means:{}", means.id), data);
    if let Err(e) = app.store.append(record).await {
        tracing::warn!(error = %e, "operator password event not audited");
    }
}

/// Refuses `new_password` when it is the current password (`current`, a PHC string) or one
/// of the last `password_history` of operator `person`'s means (audited). Also puts the
/// current password into the history at the first change.
pub async fn refuse_reuse(
    app: &Authn,
    person: PersonId,
    means: &EidMeans,
    current: String,
    new_password: &Password,
    meta: &RequestMeta,
) -> Result<(), AuthnError> {
    let keep = i64::try_from(app.config.operators.password_history).unwrap_or(12);
    let history = app.store.password_history(means.id, keep).await?;
    if history.is_empty() {
        // The first change: the password set at activation or import joins the history.
        app.store.record_password(means.id, &current, means.valid_from).await?;
    }
    let mut earlier = vec![current];
    earlier.extend(history.into_iter().map(|(phc, _)| phc));
    for phc in earlier {
        if app.passwords.verify(Some(phc), new_password.clone()).await? {
            audit(
                app,
                person,
                means,
                crate::audit::catalogue::OPERATOR_PASSWORD_REFUSED,
                json!({"reason": "reused", "ip": meta.ip.to_string()}),
            )
            .await;
            return Err(AuthnError::BadRequest(format!(
                "the password was used before: none of the last {keep} may be reused"
            )));
        }
    }
    Ok(())
}

/// The password was right but expired: the flow waits for a new one.
pub async fn require_change(
    app: &Authn,
    flow: &LoginFlow,
    person: PersonId,
    means: &EidMeans,
    meta: &RequestMeta,
) -> Result<(), AuthnError> {
    audit(
        app,
        person,
        means,
        crate::audit::catalogue::OPERATOR_PASSWORD_REFUSED,
        json!({"reason": "expired", "ip": meta.ip.to_string()}),
    )
    .await;
    let mut waiting = flow.clone();
    waiting.first_factor = None;
    waiting.password_change = Some(FirstFactor {
        person,
        means: means.id,
    });
    flow::save(app, &waiting).await
}

/// `POST /authn/flows/{flow}/password_change`: sets the new password (the activation
/// rules, and none of the last `password_history`), then the login goes on: done for a
/// `password` means, the TOTP step for a `totp` means.
pub async fn change(
    app: &Authn,
    flow: &LoginFlow,
    new_password: Password,
    meta: &RequestMeta,
) -> Result<PasswordChanged, AuthnError> {
    let Some(pending) = flow.password_change.clone() else {
        return Err(AuthnError::BadRequest(
            "no password change is pending in this login".into(),
        ));
    };
    let means = app
        .store
        .means(pending.means)
        .await?
        .ok_or(AuthnError::MeansNotActive)?;
    if means.holder != pending.person || means.check_usable(app.now()).is_err() {
        return Err(AuthnError::MeansNotActive);
    }
    let person = app
        .store
        .person(pending.person)
        .await?
        .ok_or(AuthnError::MeansNotActive)?;
    super::totp::check_new_password(&new_password, person.identifier.code())
        .map_err(|rule| AuthnError::BadRequest(rule.to_string()))?;
    let credential = app.store.credential(means.id).await?;
    let current = match &credential {
        Credential::PasswordHash(h) => h.clone(),
        Credential::PasswordTotp { password_phc, .. } => password_phc.clone(),
        _ => return Err(AuthnError::MeansNotActive),
    };
    refuse_reuse(app, person.id, &means, current, &new_password, meta).await?;
    let phc = app.passwords.hash(new_password.clone()).await?;
    let mut write = TransitionWrite::status(means.id, means.version, means.status);
    write.credential = Some(match credential {
        Credential::PasswordTotp { sealed_seed, .. } => Credential::PasswordTotp {
            password_phc: phc.clone(),
            sealed_seed,
        },
        _ => Credential::PasswordHash(phc.clone()),
    });
    let event = AuditEvent::new(
        crate::audit::catalogue::OPERATOR_PASSWORD_CHANGED,
        format!("operator:{}", person.id),
        format!("means:{}", means.id),
        json!({"ip": meta.ip.to_string(), "reason": "expired"}),
    );
    let updated = app.store.commit_transition(&write, event).await?;
    app.store.record_password(means.id, &phc, app.now()).await?;
    let mut next = flow.clone();
    next.password_change = None;
    if updated.kind == MeansKind::Totp {
        next.first_factor = Some(pending);
        flow::save(app, &next).await?;
        return Ok(PasswordChanged::Totp);
    }
    flow::save(app, &next).await?;
    Ok(PasswordChanged::Complete {
        flow: Box::new(next),
        person: Box::new(person),
        means: Box::new(updated),
    })
}

/// What follows a changed operator password.
#[derive(Debug)]
pub enum PasswordChanged {
    /// The TOTP step (a `totp` means).
    Totp,
    /// The login completes with the password (a `password` means).
    Complete {
        /// The flow, saved.
        flow: Box<LoginFlow>,
        /// The operator.
        person: Box<crate::domain::person::NaturalPerson>,
        /// The means, with its new password.
        means: Box<EidMeans>,
    },
}
