//! Password change of a `totp` means by its holder (R-AUTH-3, R-AUTH-4, R-MEANS-2): only
//! with both factors proven again (the current password and a fresh one-time code, each
//! with its own failure counter, back-off and lock), and the new password under the same
//! rules as at activation. The seed stays as it is: a new TOTP app is enrolled only
//! through a renewal, i.e. a new means resting on this one (R-RENEW-1).

use serde_json::json;

use super::ceremony::{verify_code, verify_password_factor, RequestMeta};
use super::state::Authn;
use super::totp;
use super::{throttle, AuthnError};
use crate::audit::AuditEvent;
use crate::domain::ids::{MeansId, PersonId};
use crate::domain::means::{MeansKind, MeansStatus};
use crate::domain::secret::Password;
use crate::ephemeral::StatusEvent;
use crate::store::{Credential, TransitionWrite};

/// The holder's request.
#[derive(Debug)]
pub struct PasswordChange {
    /// The password in force.
    pub current_password: Password,
    /// A fresh code from the enrolled app.
    pub code: Password,
    /// The new password.
    pub new_password: Password,
}

/// Changes the password of `holder`'s active `totp` means `means`. The new password's
/// rules are checked first, so that a refused password does not spend a code.
pub async fn change_password(
    app: &Authn,
    holder: PersonId,
    means: MeansId,
    change: PasswordChange,
    meta: &RequestMeta,
) -> Result<(), AuthnError> {
    throttle::attempt_global(&app.throttle).await?;
    throttle::attempt_from(&app.throttle, meta.ip).await?;
    let m = app.store.means(means).await?.ok_or(AuthnError::MeansNotActive)?;
    if m.holder != holder || m.kind != MeansKind::Totp || m.check_usable(app.now()).is_err() {
        return Err(AuthnError::MeansNotActive);
    }
    let person = app.store.person(holder).await?.ok_or(AuthnError::MeansNotActive)?;
    totp::check_new_password(&change.new_password, person.identifier.code())
        .map_err(|rule| AuthnError::BadRequest(rule.to_string()))?;
    if change.code.expose().len() > 16 {
        return Err(AuthnError::BadRequest("code too long".into()));
    }
    verify_password_factor(app, &m, change.current_password, meta).await?;
    verify_code(app, None, &m, change.code.expose(), meta).await?;

    let Credential::PasswordTotp {
        sealed_seed,
        password_phc: current,
    } = app.store.credential(m.id).await?
    else {
        return Err(AuthnError::MeansNotActive);
    };
    // Operators: none of the last passwords again, and the change restarts the expiry
    // clock (R-SEC-4).
    let operator = super::operator_password::is_operator(app, holder).await?;
    if operator {
        super::operator_password::refuse_reuse(app, holder, &m, current, &change.new_password, meta).await?;
    }
    let password_phc = app.passwords.hash(change.new_password.clone()).await?;
    let phc_for_history = password_phc.clone();
    let mut write = TransitionWrite::status(m.id, m.version, MeansStatus::Active);
    write.credential = Some(Credential::PasswordTotp {
        password_phc,
        sealed_seed,
    });
    let audit = AuditEvent::new(
        crate::audit::catalogue::MEANS_PASSWORD_CHANGED,
        format!("holder:{holder}"),
        format!("means:{}", m.id),
        json!({"ip": meta.ip.to_string()}),
    );
    app.store.commit_transition(&write, audit).await?;
    if operator {
        app.store.record_password(m.id, &phc_for_history, app.now()).await?;
    }
    if let Err(e) = app.ephemeral.publish(&StatusEvent::MeansChanged { means: m.id }).await {
        tracing::warn!(error = %e, "status event not published");
    }
    Ok(())
}
