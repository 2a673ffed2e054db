//! The password ceremony (LoA low), password + TOTP (LoA substantial, R-MEANS-2,
//! R-AUTH-4, R-AUTH-5) and the common end of every ceremony: achieved LoA
//! (R-SUP-2), the LoA the RP asked for (never a lower `acr`), the SSO session, the code.

use serde_json::json;

use super::flow::{self, FirstFactor, LoginFlow};
use super::state::Authn;
use super::totp::TotpSeed;
use super::{session, throttle, AuthnError};
use crate::audit::AuditEvent;
use crate::domain::ids::MeansId;
use crate::domain::loa::{Amr, Loa};
use crate::domain::means::{EidMeans, MeansKind, MeansStatus};
use crate::domain::person::NaturalPerson;
use crate::domain::secret::Password;
use crate::oidc::error::ErrorCode;
use crate::oidc::grant::Authentication;
use crate::store::{AuthFactor, Credential};

/// Where the browser goes next, and the session cookie to set when one was created.
#[derive(Debug)]
pub struct Completed {
    /// Back to the client's redirect URI (`code` or `error`, `state`, `iss`), or a step
    /// after the ceremony (legal person, consent).
    pub next: super::release::Next,
    /// A new SSO session cookie.
    pub session_cookie: Option<String>,
    /// The rotated device cookie after a password login (issue 19).
    pub device_cookie: Option<String>,
}

pub use super::flow::RequestMeta;

/// The answer of a step that does not end the flow, or the end of the flow.
#[derive(Debug)]
pub enum Step {
    /// The next step the holder must take (`"totp"`).
    Next(&'static str),
    /// The flow ended.
    Done(Completed),
}

/// `POST /authn/flows/{flow}/password`: the whole ceremony for a `password` means (LoA
/// low); the first factor for a `totp` means, after which the flow waits for the code.
/// Which means: when more than low is requested, a `totp` means over a `password` one
/// (which would end with `unmet_authentication_requirements`), then an active one; at
/// low, an active means over any other, then a `password` one.
///
/// The attempt is reserved before the password is verified (issue 19): on the browser's
/// own key when its device cookie (`device`) is valid for the chosen means, else on the
/// canonical person id, whether anyone holds it or not, so that a known and an unknown
/// identifier meet the same limits and answers.
pub async fn password(
    app: &Authn,
    flow: &LoginFlow,
    identifier: &str,
    password: Password,
    meta: &RequestMeta,
    device: Option<&str>,
) -> Result<Step, AuthnError> {
    if identifier.trim().is_empty() || identifier.len() > 128 || password.expose().len() > 1024 {
        return Err(AuthnError::BadRequest("identifier or password has a bad length".into()));
    }
    let canon = throttle::canonical(identifier, &app.config.country);
    let account = crate::audit::pseudonym(&canon.key);
    let person = match &canon.identifier {
        Some(id) => app.store.person_by_identifier(id).await?,
        None => None,
    };
    let chosen = match &person {
        Some(p) => choose(app.store.means_of_holder(p.id).await?, flow.requested_loa()),
        None => None,
    };
    let now = app.now();
    let known = chosen
        .as_ref()
        .and_then(|m| app.login_keys.known(device, m.id, now).map(|d| (m.id, d.id)));
    if let Err(refused) = throttle::reserve_password(
        &app.throttle,
        meta.ip,
        &canon.key,
        known.as_ref().map(|(m, d)| (*m, d.as_str())),
    )
    .await
    {
        let reason = match refused {
            AuthnError::TooManyAttempts(_) => "throttled",
            AuthnError::UnknownDeviceLocked => "unknown_device_locked",
            _ => return Err(refused),
        };
        // A refused attempt is a failed login too (R-LOG-1, R-LOG-4).
        audit(
            app,
            crate::audit::catalogue::LOGIN_FAILURE,
            "password",
            Some(flow),
            None,
            json!({"reason": reason, "ip": meta.ip.to_string(), "account": account, "known_device": known.is_some()}),
        )
        .await?;
        return Err(refused);
    }
    let phc = match &chosen {
        Some(m) => match app.store.credential(m.id).await? {
            Credential::PasswordHash(h) if m.kind == MeansKind::Password => Some(h),
            Credential::PasswordTotp { password_phc, .. } if m.kind == MeansKind::Totp => Some(password_phc),
            _ => None,
        },
        None => None,
    };
    let verified = if known.is_some() {
        app.passwords.verify(phc, password).await?
    } else {
        app.passwords.verify_untrusted(phc, password).await?
    };
    let (Some(person), Some(means), true) = (person, chosen.clone(), verified) else {
        if let (Some(m), None) = (&chosen, &known) {
            throttle::unknown_device_failed(&app.throttle, &canon.key, m.id).await?;
        }
        spread_alert(app, meta, &canon.key).await?;
        audit(
            app,
            crate::audit::catalogue::LOGIN_FAILURE,
            chosen.as_ref().map_or("password", |m| m.kind.as_str()),
            Some(flow),
            chosen.as_ref(),
            json!({"reason": "invalid_credentials", "factor": "password", "ip": meta.ip.to_string(),
                   "account": account, "known_device": known.is_some()}),
        )
        .await?;
        return Err(AuthnError::InvalidCredentials);
    };
    if means.check_usable(now).is_err() {
        audit(
            app,
            crate::audit::catalogue::LOGIN_FAILURE,
            means.kind.as_str(),
            Some(flow),
            Some(&means),
            json!({"reason": "means_not_active", "ip": meta.ip.to_string()}),
        )
        .await?;
        return Err(AuthnError::MeansNotActive);
    }
    throttle::password_succeeded(
        &app.throttle,
        &canon.key,
        means.id,
        known.as_ref().map(|(_, d)| d.as_str()),
    )
    .await?;
    if super::operator_password::expired(app, person.id, &means).await? {
        super::operator_password::require_change(app, flow, person.id, &means, meta).await?;
        return Ok(Step::Next("password_change"));
    }
    if means.kind == MeansKind::Totp {
        throttle::clear_backoff(&app.throttle, means.id, AuthFactor::Password).await?;
        // The second factor is not asked for when this means cannot reach the requested
        // level anyway (e.g. `high` asked of a password + TOTP holder).
        let reachable = app
            .caps
            .in_force()
            .await?
            .reachable(means.kind, means.loa, person.proofing_loa);
        if reachable < flow.requested_loa() {
            return unmet(app, flow, &means, reachable, meta).await.map(Step::Done);
        }
        let mut waiting = flow.clone();
        waiting.first_factor = Some(FirstFactor {
            person: person.id,
            means: means.id,
        });
        flow::save(app, &waiting).await?;
        return Ok(Step::Next("totp"));
    }
    let completed = complete(app, flow, &person, &means, Loa::Low, vec![Amr::Pwd], meta).await?;
    Ok(Step::Done(trust_device(app, completed, device, means.id)))
}

/// The means a password login uses among the holder's: the kind that can reach the
/// requested level first (above low only `totp`, even when it is not active, so that a
/// correct password on a locked means is told `means-not-active`); among them an active
/// means, then one that once held a credential (suspended, then revoked or expired),
/// newest first. Means that never held a credential (applied, issued, rejected) come last.
fn choose(means: Vec<EidMeans>, requested: Loa) -> Option<EidMeans> {
    let preferred = if requested > Loa::Low {
        MeansKind::Totp
    } else {
        MeansKind::Password
    };
    let mut candidates: Vec<EidMeans> = means
        .into_iter()
        .filter(|m| matches!(m.kind, MeansKind::Password | MeansKind::Totp))
        .collect();
    let rank = |s: MeansStatus| -> u8 {
        match s {
            MeansStatus::Active => 0,
            MeansStatus::Suspended => 1,
            MeansStatus::Revoked | MeansStatus::Expired => 2,
            MeansStatus::Issued | MeansStatus::Applied | MeansStatus::Rejected => 3,
        }
    };
    candidates.sort_by_key(|m| {
        let other = u8::from(m.kind != preferred);
        let state = rank(m.status);
        let (first, second) = if preferred == MeansKind::Totp {
            (other, state)
        } else {
            (state, other)
        };
        (first, second, -m.valid_from)
    });
    candidates.into_iter().next()
}

/// A login that authenticated the holder marks this browser as known for `means`: the
/// device cookie gets a fresh entry (rotated at each success).
fn trust_device(app: &Authn, mut completed: Completed, device: Option<&str>, means: MeansId) -> Completed {
    if completed.session_cookie.is_some() {
        let ttl = i64::try_from(app.config.login.device_ttl.as_secs()).unwrap_or(i64::MAX);
        completed.device_cookie = Some(app.login_keys.rotated(device, means, app.now(), ttl));
    }
    completed
}

/// The one-address-many-accounts alert (R-OPS-2), on the address' /64.
async fn spread_alert(app: &Authn, meta: &RequestMeta, account: &str) -> Result<(), AuthnError> {
    if throttle::note_ip_spread(&app.throttle, meta.ip, account).await? {
        let block = throttle::address_block(meta.ip);
        tracing::warn!(address = %block, "alert: one address failed on many accounts");
        let alert = AuditEvent::new(
            crate::audit::catalogue::ALERT_IP_SPREAD,
            "system",
            format!("ip:{block}"),
            json!({"accounts": app.config.login.ip_spread_alert, "window_secs": app.config.login.window.as_secs()}),
        );
        app.store.append(alert).await?;
    }
    Ok(())
}

/// `POST /authn/flows/{flow}/totp`: the second factor of a `totp` means (R-MEANS-2,
/// R-AUTH-5). The seed is opened in the HSM only for the check and zeroised after; a
/// code within ±1 step is accepted once (ephemeral replay cache and the last used step in
/// SQL); failures back off exponentially and lock the means at `login.totp_lock_after`.
pub async fn totp(
    app: &Authn,
    flow: &LoginFlow,
    code: &str,
    meta: &RequestMeta,
    device: Option<&str>,
) -> Result<Completed, AuthnError> {
    throttle::attempt_global(&app.throttle).await?;
    throttle::attempt_from(&app.throttle, meta.ip).await?;
    let Some(first) = flow.first_factor.clone() else {
        return Err(AuthnError::BadRequest("the password step comes first".into()));
    };
    if code.len() > 16 {
        return Err(AuthnError::BadRequest("code too long".into()));
    }
    let means = app.store.means(first.means).await?.ok_or(AuthnError::MeansNotActive)?;
    if means.holder != first.person || means.kind != MeansKind::Totp || means.check_usable(app.now()).is_err() {
        audit(
            app,
            "login.failure",
            "totp",
            Some(flow),
            Some(&means),
            json!({"reason": "means_not_active", "ip": meta.ip.to_string()}),
        )
        .await?;
        return Err(AuthnError::MeansNotActive);
    }
    verify_code(app, Some(flow), &means, code, meta).await?;
    let person = app
        .store
        .person(first.person)
        .await?
        .ok_or(AuthnError::MeansNotActive)?;
    let completed = complete(
        app,
        flow,
        &person,
        &means,
        Loa::Substantial,
        vec![Amr::Pwd, Amr::Otp, Amr::Mfa],
        meta,
    )
    .await?;
    Ok(trust_device(app, completed, device, means.id))
}

/// The one-time code of a `totp` means (R-AUTH-5): back-off first, the seed opened in the
/// HSM only for the check (zeroised after), a code within ±1 step accepted once (the
/// ephemeral replay cache, then the last used step in SQL). A failure is counted, audited
/// and may lock the means; a success clears the counter.
pub(crate) async fn verify_code(
    app: &Authn,
    flow: Option<&LoginFlow>,
    means: &EidMeans,
    code: &str,
    meta: &RequestMeta,
) -> Result<(), AuthnError> {
    throttle::check_backoff(&app.throttle, means.id, AuthFactor::Otp).await?;
    let Credential::PasswordTotp { sealed_seed, .. } = app.store.credential(means.id).await? else {
        return Err(AuthnError::MeansNotActive);
    };
    let step = {
        let seed = TotpSeed::from_bytes(app.sealer.open(&sealed_seed, means.id.to_string().as_bytes()).await?)?;
        seed.matching_step(code, app.now())?
        // `seed` is zeroised here.
    };
    let reason = match step {
        None => Some("invalid_code"),
        Some(step) => {
            let fresh = app
                .ephemeral
                .put_new(&replay_key(means.id, step), b"1", REPLAY_TTL)
                .await?;
            if fresh && app.store.use_totp_step(means.id, step).await? {
                None
            } else {
                Some("replayed_code")
            }
        }
    };
    if let Some(reason) = reason {
        factor_failed(app, flow, means, AuthFactor::Otp, reason, meta).await?;
        return Err(AuthnError::InvalidCredentials);
    }
    app.store.clear_auth_failures(means.id, AuthFactor::Otp).await?;
    throttle::clear_backoff(&app.throttle, means.id, AuthFactor::Otp).await?;
    Ok(())
}

/// The password of a `totp` means outside a login (password change): back-off first, a
/// failure counted, audited and possibly locking, a success clears the counter.
pub(crate) async fn verify_password_factor(
    app: &Authn,
    means: &EidMeans,
    password: Password,
    meta: &RequestMeta,
) -> Result<(), AuthnError> {
    throttle::check_backoff(&app.throttle, means.id, AuthFactor::Password).await?;
    let phc = match app.store.credential(means.id).await? {
        Credential::PasswordTotp { password_phc, .. } => Some(password_phc),
        _ => None,
    };
    if !app.passwords.verify(phc, password).await? {
        factor_failed(app, None, means, AuthFactor::Password, "invalid_credentials", meta).await?;
        return Err(AuthnError::InvalidCredentials);
    }
    app.store.clear_auth_failures(means.id, AuthFactor::Password).await?;
    throttle::clear_backoff(&app.throttle, means.id, AuthFactor::Password).await?;
    Ok(())
}

/// How long a used TOTP step stays in the replay cache: past the ±1 step window.
const REPLAY_TTL: std::time::Duration = std::time::Duration::from_secs(150);

fn replay_key(means: MeansId, step: i64) -> String {
    format!("totp:used:{means}:{step}")
}

/// A failed factor of a multi-factor means (R-AUTH-4): the durable counter, audit, the
/// one-IP-many-accounts alert, then the hard lock (suspension until the helpdesk
/// reactivates after identity re-verification) at the limit, else the back-off.
async fn factor_failed(
    app: &Authn,
    flow: Option<&LoginFlow>,
    means: &EidMeans,
    factor: AuthFactor,
    reason: &str,
    meta: &RequestMeta,
) -> Result<(), AuthnError> {
    let failures = app.store.count_auth_failure(means.id, factor).await?;
    let (factor_name, limit) = match factor {
        AuthFactor::Password => ("password", app.config.login.password_lock_after),
        AuthFactor::Otp => ("otp", app.config.login.totp_lock_after),
    };
    audit(
        app,
        "login.failure",
        means.kind.as_str(),
        flow,
        Some(means),
        json!({"reason": reason, "factor": factor_name, "failures": failures, "ip": meta.ip.to_string()}),
    )
    .await?;
    spread_alert(app, meta, &means.id.to_string()).await?;
    // Wrong passwords never suspend a means (issue 19: that would let anyone lock the
    // holder out); wrong codes after a right password do.
    if factor == AuthFactor::Otp
        && failures >= i64::try_from(limit).unwrap_or(i64::MAX)
        && means.status == MeansStatus::Active
    {
        lock(app, means, factor_name, failures).await?;
    } else {
        throttle::back_off(&app.throttle, means.id, factor, failures).await?;
    }
    Ok(())
}

/// The hard lock: the means is suspended (committed before the answer, R-LIFE-4) and only
/// a helpdesk reactivation after identity re-verification opens it again.
async fn lock(app: &Authn, means: &EidMeans, factor: &str, failures: i64) -> Result<(), AuthnError> {
    let event = AuditEvent::new(
        crate::audit::catalogue::MEANS_LOCKED,
        "system",
        format!("means:{}", means.id),
        json!({"factor": factor, "failures": failures, "reason": "too_many_failures"}),
    );
    tracing::warn!(means = %means.id, factor, failures, "alert: means locked after repeated failures");
    // The version from the database itself, not from a cache.
    let Some(current) = app.store.means_record(means.id).await?.map(|r| r.means) else {
        return Ok(());
    };
    if current.status != MeansStatus::Active {
        return Ok(());
    }
    match app
        .store
        .set_status(current.id, current.version, MeansStatus::Suspended, event)
        .await
    {
        Ok(_) => {}
        // Another request changed the means in between (e.g. a concurrent failure locked
        // it): the next use sees its current state.
        Err(crate::store::StoreError::Conflict) => {
            tracing::warn!(means = %means.id, "means changed while being locked");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    crate::lifecycle::service::publish(&app.lifecycle, means.id).await;
    Ok(())
}

/// Ends a ceremony that proved `ceremony` with `amr`: the achieved LoA under the caps in
/// force now (R-SUP-2), never a lower `acr` than requested
/// (`unmet_authentication_requirements`), the SSO session, then the steps after the
/// ceremony and the code ([`super::release::proceed`]).
pub async fn complete(
    app: &Authn,
    flow: &LoginFlow,
    person: &NaturalPerson,
    means: &EidMeans,
    ceremony: Loa,
    amr: Vec<Amr>,
    meta: &RequestMeta,
) -> Result<Completed, AuthnError> {
    let caps = app.caps.in_force().await?;
    let achieved = Loa::achieved(means.loa.min(person.proofing_loa), caps.cap(means.kind), ceremony);
    let method = means.kind.as_str();
    if achieved < flow.requested_loa() {
        return unmet(app, flow, means, achieved, meta).await;
    }
    let authn = Authentication {
        person: person.id,
        means: means.id,
        auth_time: app.now(),
        loa: achieved,
        amr,
        sid: crate::random::token(),
        mandate: None,
    };
    let cookie = session::create(app, &authn).await?;
    audit(
        app,
        crate::audit::catalogue::LOGIN_SUCCESS,
        method,
        Some(flow),
        Some(means),
        json!({"loa": achieved, "sid": authn.sid, "ip": meta.ip.to_string()}),
    )
    .await?;
    let mut done = flow.clone();
    done.first_factor = None;
    done.authenticated = Some(authn);
    let next = super::release::proceed(app, done).await?;
    Ok(Completed {
        next,
        session_cookie: Some(cookie),
        device_cookie: None,
    })
}

/// The holder cannot reach the requested level with this means: the flow ends with
/// `unmet_authentication_requirements`, audited, and never with a lower `acr`.
pub async fn unmet(
    app: &Authn,
    flow: &LoginFlow,
    means: &EidMeans,
    reachable: Loa,
    meta: &RequestMeta,
) -> Result<Completed, AuthnError> {
    audit(
        app,
        crate::audit::catalogue::LOGIN_FAILURE,
        means.kind.as_str(),
        Some(flow),
        Some(means),
        json!({"reason": "unmet_loa", "achieved": reachable, "requested": flow.requested_loa(), "ip": meta.ip.to_string()}),
    )
    .await?;
    let next = super::release::end_with_error(
        app,
        flow,
        ErrorCode::UnmetAuthenticationRequirements,
        "the requested level of assurance cannot be reached",
    )
    .await?;
    Ok(Completed {
        next,
        session_cookie: None,
        device_cookie: None,
    })
}

async fn audit(
    app: &Authn,
    event: &str,
    method: &str,
    flow: Option<&LoginFlow>,
    means: Option<&EidMeans>,
    mut data: serde_json::Value,
) -> Result<(), AuthnError> {
    if let Some(obj) = data.as_object_mut() {
        obj.insert("method".into(), json!(method));
        if let Some(flow) = flow {
            obj.insert("client_id".into(), json!(flow.request.client_id.as_str()));
        }
    }
    record_login_metric(app, event, method, flow, &data);
    let (actor, subject) = match means {
        Some(m) => (format!("holder:{}", m.holder), format!("means:{}", m.id)),
        None => ("anonymous".to_owned(), "login".to_owned()),
    };
    app.oidc
        .phases
        .time(
            crate::monitor::phases::Phase::LoginAudit,
            app.store.append(AuditEvent::new(event, actor, subject, data)),
        )
        .await?;
    Ok(())
}

/// Counts a finished login attempt for `/metrics`: the achieved LoA on success, the
/// requested one on failure.
fn record_login_metric(app: &Authn, event: &str, method: &str, flow: Option<&LoginFlow>, data: &serde_json::Value) {
    let success = event == crate::audit::catalogue::LOGIN_SUCCESS;
    if !success && event != crate::audit::catalogue::LOGIN_FAILURE {
        return;
    }
    let name = |v: serde_json::Value| v.as_str().map(str::to_owned);
    let loa = match (success, flow) {
        (true, _) => data.get("loa").cloned().and_then(name),
        (false, Some(f)) => serde_json::to_value(f.requested_loa()).ok().and_then(name),
        (false, None) => None,
    };
    app.metrics.login(method, loa.as_deref().unwrap_or("unknown"), success);
}
