//! Activation by the holder (DESIGN "Activation API", R-ISS-2, R-ISS-3, R-REG-1): the
//! activation code within its period and attempt limit, the holder's explicit acceptance
//! of the terms of use and security advice (versions recorded), then the credential. Only
//! after that can the means authenticate.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::state::Lifecycle;
use super::{codes, LifecycleError};
use crate::audit::AuditEvent;
use crate::authn::totp::{self, PasswordRule, TotpSeed};
use crate::domain::ids::{MeansId, PersonId};
use crate::domain::means::proof::{ActivationAccepted, CodeVerified};
use crate::domain::means::state::{self, Command};
use crate::domain::means::{MeansKind, MeansStatus};
use crate::domain::secret::{fingerprint_hex, Password};
use crate::ephemeral;
use crate::store::{Acceptance, Credential, Retire, StoreError, TransitionWrite};

/// How long a started activation may take.
pub(crate) const ACTIVATION_TTL: Duration = Duration::from_secs(1800);

/// Minimum password length (NIST 800-63B allows 8; eID means ask for more).
pub const MIN_PASSWORD_CHARS: usize = totp::MIN_PASSWORD_CHARS;

/// A started activation, kept in the ephemeral store. For a `totp` means it gathers the
/// password hash and the sealed seed (never the seed in clear) until a code confirms the
/// enrolment.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) means: MeansId,
    pub(crate) person: PersonId,
    pub(crate) identifier_code: String,
    pub(crate) kind: MeansKind,
    pub(crate) accepted: Option<(String, String)>,
    #[serde(default)]
    password_phc: Option<String>,
    #[serde(default)]
    sealed_seed: Option<Vec<u8>>,
}

/// What `POST /activation/{id}/password` led to.
#[derive(Debug)]
pub enum PasswordSet {
    /// A `password` means is now active.
    Active(MeansId),
    /// A `totp` means: enrol the app next (`GET /activation/{id}/totp`).
    TotpNext,
}

/// The enrolment data of `GET /activation/{id}/totp`: shown to the holder only.
#[derive(Serialize)]
pub struct TotpEnrolment {
    /// `otpauth://totp/...` with the seed in base32.
    pub otpauth_uri: String,
    /// The same URI as an SVG QR code.
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment([redacted])")
    }
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

pub(crate) fn key(id: &str) -> String {
    format!("activation:{}", fingerprint_hex(id))
}

/// `POST /activation/start`: checks the code; one answer for every refusal.
pub async fn start(app: &Lifecycle, identifier: &str, code: &str, ip: IpAddr) -> Result<Started, LifecycleError> {
    crate::authn::throttle::attempt_from(&app.throttle, ip)
        .await
        .map_err(|_| LifecycleError::TooManyAttempts)?;
    if identifier.len() > 128 || code.len() > 64 {
        return Err(LifecycleError::BadRequest("identifier or code too long".into()));
    }
    // `XX/YY/code`, `XX:code` or the bare personal code (the provider's country implied).
    let person = match crate::authn::throttle::canonical(identifier, &app.config.country).identifier {
        Some(id) => app.store.person_by_identifier(&id).await?,
        None => None,
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
        password_phc: None,
        sealed_seed: None,
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

pub(crate) async fn load(app: &Lifecycle, activation: &str) -> Result<Pending, LifecycleError> {
    if activation.len() != 43 {
        return Err(LifecycleError::NotFound);
    }
    ephemeral::decode(app.ephemeral.get(&key(activation)).await?).ok_or(LifecycleError::NotFound)
}

/// `POST /activation/{id}/accept`: the holder's explicit act (R-REG-1, R-ISS-3). The
/// versions must be the ones in force.
pub async fn accept(app: &Lifecycle, activation: &str, terms: &str, advice: &str) -> Result<(), LifecycleError> {
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

/// Password rules: long enough, not the identifier, not a common password
/// ([`totp::check_new_password`]).
pub fn check_password(password: &Password, identifier_code: &str) -> Result<(), LifecycleError> {
    match totp::check_new_password(password, identifier_code) {
        Ok(()) => Ok(()),
        Err(PasswordRule::TooLong) => Err(LifecycleError::BadRequest("password too long".into())),
        Err(rule) => Err(LifecycleError::Unprocessable(rule.to_string())),
    }
}

pub(crate) fn accepted(pending: &Pending) -> Result<(String, String), LifecycleError> {
    pending
        .accepted
        .clone()
        .ok_or_else(|| LifecycleError::Unprocessable("accept the terms of use and the security advice first".into()))
}

/// `POST /activation/{id}/password`: for a `password` means sets the password and makes
/// the means `active`; for a `totp` means keeps the password's hash until the app is
/// enrolled and confirmed.
pub async fn set_password(
    app: &Lifecycle,
    activation: &str,
    password: Password,
) -> Result<PasswordSet, LifecycleError> {
    let mut pending = load(app, activation).await?;
    if !matches!(pending.kind, MeansKind::Password | MeansKind::Totp) {
        return Err(LifecycleError::Unprocessable(
            "this activation does not take a password step".into(),
        ));
    }
    let (terms, advice) = accepted(&pending)?;
    check_password(&password, &pending.identifier_code)?;
    let phc = app.passwords.hash(password.clone()).await?;
    if pending.kind == MeansKind::Totp {
        pending.password_phc = Some(phc);
        ephemeral::put_json(app.ephemeral.as_ref(), &key(activation), &pending, ACTIVATION_TTL).await?;
        return Ok(PasswordSet::TotpNext);
    }
    finish(
        app,
        activation,
        &pending,
        (terms, advice),
        Credential::PasswordHash(phc),
    )
    .await?;
    Ok(PasswordSet::Active(pending.means))
}

/// `GET /activation/{id}/totp`: after the password, a fresh 160-bit seed (generated on
/// the first call, sealed in the HSM at once and kept sealed; later calls show the same
/// one) as an `otpauth://` URI and an SVG QR code (R-ISS-2).
pub async fn totp_enrolment(app: &Lifecycle, activation: &str) -> Result<TotpEnrolment, LifecycleError> {
    let mut pending = load(app, activation).await?;
    if pending.kind != MeansKind::Totp {
        return Err(LifecycleError::Unprocessable(
            "this activation does not take a TOTP step".into(),
        ));
    }
    accepted(&pending)?;
    if pending.password_phc.is_none() {
        return Err(LifecycleError::Unprocessable("set the password first".into()));
    }
    let aad = pending.means.to_string();
    let seed = match &pending.sealed_seed {
        Some(sealed) => TotpSeed::from_bytes(app.sealer.open(sealed, aad.as_bytes()).await?)?,
        None => {
            let seed = TotpSeed::generate();
            pending.sealed_seed = Some(app.sealer.seal(seed.expose(), aad.as_bytes()).await?);
            ephemeral::put_json(app.ephemeral.as_ref(), &key(activation), &pending, ACTIVATION_TTL).await?;
            seed
        }
    };
    let uri = seed.otpauth_uri(&app.config.totp_issuer(), &pending.identifier_code)?;
    let qr_svg = totp::qr_svg(&uri)?;
    Ok(TotpEnrolment {
        otpauth_uri: uri,
        qr_svg,
    })
}

/// `POST /activation/{id}/totp/confirm`: the means becomes `active` only with a valid
/// code from the enrolled app (proof that the holder holds the seed). The code's step is
/// recorded as used, so it cannot log in afterwards. Wrong codes count against the
/// activation's attempt budget.
pub async fn confirm_totp(app: &Lifecycle, activation: &str, code: &str) -> Result<MeansId, LifecycleError> {
    let pending = load(app, activation).await?;
    if pending.kind != MeansKind::Totp {
        return Err(LifecycleError::Unprocessable(
            "this activation does not take a TOTP step".into(),
        ));
    }
    let terms = accepted(&pending)?;
    let (Some(phc), Some(sealed)) = (pending.password_phc.clone(), pending.sealed_seed.clone()) else {
        return Err(LifecycleError::Unprocessable(
            "set the password and enrol the app first".into(),
        ));
    };
    if code.len() > 16 {
        return Err(LifecycleError::BadRequest("code too long".into()));
    }
    let step = {
        let seed = TotpSeed::from_bytes(app.sealer.open(&sealed, pending.means.to_string().as_bytes()).await?)?;
        seed.matching_step(code, app.now())?
    };
    let Some(step) = step else {
        let attempts = app
            .ephemeral
            .hit(
                &format!("activation-totp:{}", fingerprint_hex(activation)),
                ACTIVATION_TTL,
            )
            .await?;
        let audit = AuditEvent::new(
            crate::audit::catalogue::ACTIVATION_TOTP_FAILED,
            format!("holder:{}", pending.person),
            format!("means:{}", pending.means),
            json!({"attempt": attempts}),
        );
        app.store.append(audit).await?;
        if attempts >= u64::from(app.config.means.activation_max_attempts) {
            // The activation is spent; the holder starts again with the code.
            app.ephemeral.delete(&key(activation)).await?;
        }
        return Err(LifecycleError::ActivationRefused);
    };
    // Marked before the means becomes active, so the confirming code never logs in.
    app.store.use_totp_step(pending.means, step).await?;
    finish(
        app,
        activation,
        &pending,
        terms,
        Credential::PasswordTotp {
            password_phc: phc,
            sealed_seed: sealed,
        },
    )
    .await?;
    Ok(pending.means)
}

/// The smartcard steps (`/activation/{id}/smartcard/...`, issue 4): the means and the
/// holder of a started `smartcard` activation whose terms were accepted.
pub(crate) async fn smartcard_pending(
    app: &Lifecycle,
    activation: &str,
) -> Result<(MeansId, PersonId), LifecycleError> {
    let pending = load(app, activation).await?;
    if pending.kind != MeansKind::Smartcard {
        return Err(LifecycleError::Unprocessable(
            "this activation does not take a smartcard step".into(),
        ));
    }
    accepted(&pending)?;
    Ok((pending.means, pending.person))
}

/// Ends a `smartcard` activation once the card proved possession of the key of the
/// means' certificate (R-ISS-2, R-ISS-3): the means becomes `active`. The certificate
/// itself is recorded with the means since issuance.
pub(crate) async fn finish_smartcard(app: &Lifecycle, activation: &str) -> Result<MeansId, LifecycleError> {
    let pending = load(app, activation).await?;
    if pending.kind != MeansKind::Smartcard {
        return Err(LifecycleError::NotFound);
    }
    let terms = accepted(&pending)?;
    finish(app, activation, &pending, terms, Credential::None).await?;
    Ok(pending.means)
}

pub(crate) async fn finish(
    app: &Lifecycle,
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
    let changes = app.changes();
    let mut write = TransitionWrite::status(rec.means.id, rec.means.version, to);
    write.credential = Some(credential);
    write.acceptance = Some(Acceptance {
        person: pending.person,
        means: pending.means,
        terms_version: terms.clone(),
        security_advice_version: advice.clone(),
        accepted_at: now,
    });
    write.validity = Some((now, now + crate::domain::secs(app.config.means.validity)));
    let audit = AuditEvent::new(
        crate::audit::catalogue::MEANS_ACTIVATED,
        format!("holder:{}", pending.person),
        format!("means:{}", pending.means),
        json!({"terms_version": terms, "security_advice_version": advice, "credential": "set"}),
    );
    // A renewal retires the means it rests on in the same transaction (R-RENEW-1); when
    // that one changes meanwhile, read it again.
    for _ in 0..16 {
        write.retire = match rec.renews {
            Some(old) => retirement(app, old, pending.means).await?,
            None => None,
        };
        match changes.commit(&write, audit.clone()).await {
            Err(StoreError::Conflict) if write.retire.is_some() => continue,
            other => {
                other?;
                return Ok(());
            }
        }
    }
    Err(LifecycleError::Unavailable)
}

/// The revocation (reason `renewed`) of the renewed means `old`, if it is not final yet.
async fn retirement(app: &Lifecycle, old: MeansId, new: MeansId) -> Result<Option<Retire>, LifecycleError> {
    let Some(old) = app.store.means_record(old).await?.map(|r| r.means) else {
        return Ok(None);
    };
    let Ok(to) = state::apply(old.status, &Command::Revoke) else {
        return Ok(None);
    };
    Ok(Some(Retire {
        id: old.id,
        expected_version: old.version,
        to,
        audit: AuditEvent::new(
            crate::audit::catalogue::MEANS_REVOKED,
            format!("holder:{}", old.holder),
            format!("means:{}", old.id),
            json!({"reason": "renewed", "renewed_by": new, "from": old.status, "to": to}),
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_auth_3_password_rules() {
        assert!(check_password(&Password::new("short".into()), "123").is_err());
        assert!(check_password(&Password::new("abc38001085718xyz".into()), "38001085718").is_err());
        assert!(check_password(&Password::new("correct horse battery".into()), "38001085718").is_ok());
        assert!(check_password(&Password::new("Password123!".into()), "38001085718").is_err());
    }
}
