//! The smartcard steps (DESIGN "Smartcard login" and "Activation API", CONTRACT; issue
//! 4; R-AUTH-5, R-MEANS-3, R-MEANS-4, R-ISS-2): a challenge per login flow or
//! activation, then the Web eID token checked in full.
//!
//! Order of the token step, so that nothing can be retried against the same challenge:
//! 1. the challenge of this flow is **taken** (consumed) first, whatever follows;
//! 2. size, format, base64; certificate validity, key usage, EKU; chain to a trusted CA;
//!    the signature over `hash(origin) || hash(challenge)` with the named algorithm;
//!    revocation status for external CAs (fail closed); the certificate registered to a
//!    `smartcard` means that is `active` (login) or being activated (activation).
//!
//! A refusal answers one generic error and writes the precise [`Rejection`] to the audit
//! log (`login.failure` / `activation.failed`, external sink too, R-LOG-1, R-LOG-4). A
//! dependency that fails (SQL, ephemeral store, HSM) is `Dependency` (its cause kept): fail closed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::state::Cards;
use super::{webeid, x509, Rejection};
use crate::audit::AuditEvent;
use crate::authn::ceremony::{Completed, RequestMeta};
use crate::authn::flow::LoginFlow;
use crate::authn::AuthnError;
use crate::domain::ids::MeansId;
use crate::domain::loa::{Amr, Loa};
use crate::domain::means::{EidMeans, MeansKind, MeansStatus};
use crate::domain::secret::fingerprint_hex;
use crate::domain::UnixTime;
use crate::store::CardCertificate;

/// How long after its expiry a challenge record is kept, so that a late token is told
/// `nonce_expired` rather than `nonce_missing`.
const EXPIRED_GRACE: std::time::Duration = std::time::Duration::from_secs(600);
/// How long a consumed challenge is remembered (a replay is told `nonce_replayed`).
const USED_MEMORY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whose challenge: a login flow or an activation.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// A login flow id.
    Flow(&'a str),
    /// An activation id.
    Activation(&'a str),
}

impl Scope<'_> {
    fn name(self) -> String {
        match self {
            Scope::Flow(id) => format!("flow:{}", fingerprint_hex(id)),
            Scope::Activation(id) => format!("activation:{}", fingerprint_hex(id)),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Challenge {
    nonce: String,
    exp: UnixTime,
}

/// A failed token step: a refusal (audited, generic answer) or a dependency down.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The token is refused for this reason.
    Rejected(Rejection),
    /// A dependency failed: fail closed (503); the cause is logged once, at the edge.
    Dependency(crate::domain::cause::Cause),
}

impl From<Rejection> for Failure {
    fn from(r: Rejection) -> Self {
        Failure::Rejected(r)
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure::Dependency(crate::domain::cause::Cause::new(e))
    }
}

impl From<crate::ephemeral::EphemeralError> for Failure {
    fn from(e: crate::ephemeral::EphemeralError) -> Self {
        Failure::Dependency(crate::domain::cause::Cause::new(e))
    }
}

/// Issues a fresh challenge (32 bytes from the CSPRNG, base64) for `scope`, replacing
/// any earlier one, valid `smartcard.nonce_ttl` (R-AUTH-5).
pub async fn challenge(app: &Cards, scope: Scope<'_>) -> Result<String, crate::ephemeral::EphemeralError> {
    let nonce = STANDARD.encode(crate::random::bytes::<32>());
    let ttl = app.config.smartcard.nonce_ttl;
    let record = Challenge {
        nonce: nonce.clone(),
        exp: app.now() + crate::domain::secs(ttl),
    };
    crate::ephemeral::put_json(
        app.ephemeral.as_ref(),
        &format!("smartcard:challenge:{}", scope.name()),
        &record,
        ttl + EXPIRED_GRACE,
    )
    .await?;
    Ok(nonce)
}

/// Takes (consumes) the challenge of `scope`.
async fn take_challenge(app: &Cards, scope: Scope<'_>) -> Result<String, Failure> {
    let name = scope.name();
    let used_key = format!("smartcard:used:{name}");
    let taken = app.ephemeral.take(&format!("smartcard:challenge:{name}")).await?;
    let Some(challenge) = crate::ephemeral::decode::<Challenge>(taken) else {
        return Err(if app.ephemeral.get(&used_key).await?.is_some() {
            Rejection::NonceReplayed.into()
        } else {
            Rejection::NonceMissing.into()
        });
    };
    app.ephemeral.put(&used_key, b"1", USED_MEMORY).await?;
    if challenge.exp <= app.now() {
        return Err(Rejection::NonceExpired.into());
    }
    Ok(challenge.nonce)
}

/// What a verified token proved: the card holds the key of this registered certificate.
#[derive(Clone, Debug)]
pub struct Proven {
    /// The certificate as registered.
    pub certificate: CardCertificate,
    /// The token's algorithm (audited).
    pub algorithm: webeid::Algorithm,
}

/// Checks a token body against `nonce` at `now` (everything but the means' state).
pub async fn verify(app: &Cards, nonce: &str, body: &str, now: UnixTime) -> Result<Proven, Failure> {
    let token = webeid::parse(body)?;
    let smartcard = &app.smartcard;
    let chain = {
        let cert = x509::parse(&token.certificate)?;
        x509::check_leaf(&cert, now)?;
        let chain = smartcard.trust.verify_chain(&token.certificate, &cert, now)?;
        let data = webeid::signed_data(token.algorithm, app.config.origin(), nonce);
        x509::verify_token_signature(cert.public_key(), token.algorithm, &data, &token.signature)?;
        chain
    };
    if !chain.own {
        let issuer = smartcard.trust.ca(chain.issuer).ok_or(Rejection::UntrustedIssuer)?;
        smartcard.status.check(&token.certificate, issuer, now).await?;
    }
    let sha = x509::sha256_hex(&token.certificate);
    let certificate = app
        .store
        .card_certificate(&sha)
        .await?
        .ok_or(Rejection::CertificateUnknown)?;
    Ok(Proven {
        certificate,
        algorithm: token.algorithm,
    })
}

async fn refuse(
    app: &Cards,
    event: &str,
    subject: String,
    means: Option<&EidMeans>,
    mut data: serde_json::Value,
) -> Result<(), AuthnError> {
    if let Some(obj) = data.as_object_mut() {
        obj.insert("method".into(), json!("smartcard"));
    }
    let actor = match means {
        Some(m) => format!("holder:{}", m.holder),
        None => "anonymous".into(),
    };
    let subject = match means {
        Some(m) => format!("means:{}", m.id),
        None => subject,
    };
    app.store.append(AuditEvent::new(event, actor, subject, data)).await?;
    Ok(())
}

/// `POST /authn/flows/{flow}/smartcard/token`: the login ceremony (LoA high, amr `sc hwk
/// pin mfa`). Every refusal is [`AuthnError::InvalidCredentials`] to the client.
pub async fn login(app: &Cards, flow: &LoginFlow, body: &str, meta: &RequestMeta) -> Result<Completed, AuthnError> {
    crate::authn::throttle::attempt_global(&app.authn.throttle).await?;
    crate::authn::throttle::attempt_from(&app.authn.throttle, meta.ip).await?;
    let outcome = login_checks(app, flow, body).await;
    let (proven, means) = match outcome {
        Ok(found) => found,
        Err((Failure::Dependency(cause), _)) => return Err(AuthnError::Dependency(cause)),
        Err((Failure::Rejected(reason), means)) => {
            tracing::info!(reason = %reason, "smartcard login refused");
            refuse(
                app,
                crate::audit::catalogue::LOGIN_FAILURE,
                "login".into(),
                means.as_ref(),
                json!({"reason": reason.as_str(), "ip": meta.ip.to_string(), "client_id": flow.request.client_id.as_str()}),
            )
            .await?;
            return Err(AuthnError::InvalidCredentials);
        }
    };
    let person = app
        .store
        .person(means.holder)
        .await?
        .ok_or(AuthnError::InvalidCredentials)?;
    tracing::debug!(algorithm = proven.algorithm.as_str(), "smartcard login verified");
    crate::authn::ceremony::complete(
        &app.authn,
        flow,
        &person,
        &means,
        Loa::High,
        vec![Amr::Sc, Amr::Hwk, Amr::Pin, Amr::Mfa],
        meta,
    )
    .await
}

type Checked = Result<(Proven, EidMeans), (Failure, Option<EidMeans>)>;

async fn login_checks(app: &Cards, flow: &LoginFlow, body: &str) -> Checked {
    let nonce = take_challenge(app, Scope::Flow(&flow.id))
        .await
        .map_err(|f| (f, None))?;
    let now = app.now();
    let proven = verify(app, &nonce, body, now).await.map_err(|f| (f, None))?;
    let means = app
        .store
        .means(proven.certificate.means)
        .await
        .map_err(|e| (Failure::from(e), None))?
        .ok_or((Failure::Rejected(Rejection::CertificateUnknown), None))?;
    if means.kind != MeansKind::Smartcard || means.check_usable(now).is_err() {
        return Err((Failure::Rejected(Rejection::MeansNotActive), Some(means)));
    }
    Ok((proven, means))
}

/// Errors of the activation steps (mapped by `http.rs`).
#[derive(Debug)]
pub enum ActivationFailure {
    /// A lifecycle error (unknown activation, terms not accepted, dependency down...).
    Lifecycle(crate::lifecycle::LifecycleError),
    /// The token was refused (audited; generic answer).
    Refused,
}

impl From<crate::lifecycle::LifecycleError> for ActivationFailure {
    fn from(e: crate::lifecycle::LifecycleError) -> Self {
        ActivationFailure::Lifecycle(e)
    }
}

/// `POST /activation/{id}/smartcard/challenge`.
pub async fn activation_challenge(app: &Cards, activation: &str) -> Result<String, ActivationFailure> {
    crate::lifecycle::activation::smartcard_pending(&app.lifecycle, activation).await?;
    challenge(app, Scope::Activation(activation))
        .await
        .map_err(|e| ActivationFailure::Lifecycle(e.into()))
}

/// `POST /activation/{id}/smartcard/token`: the card proves possession of the key of the
/// certificate issued to this means (with the activation code already checked at start,
/// R-ISS-2); the means becomes `active`.
pub async fn activation_token(app: &Cards, activation: &str, body: &str) -> Result<MeansId, ActivationFailure> {
    let (means_id, person) = crate::lifecycle::activation::smartcard_pending(&app.lifecycle, activation).await?;
    let now = app.now();
    let checked = async {
        let nonce = take_challenge(app, Scope::Activation(activation)).await?;
        let proven = verify(app, &nonce, body, now).await?;
        if proven.certificate.means != means_id {
            return Err(Failure::Rejected(Rejection::AnotherMeans));
        }
        let means = app.store.means(means_id).await?.ok_or(Rejection::MeansNotActive)?;
        if means.kind != MeansKind::Smartcard || means.status != MeansStatus::Issued {
            return Err(Failure::Rejected(Rejection::MeansNotActive));
        }
        Ok(proven)
    }
    .await;
    match checked {
        Ok(proven) => {
            tracing::debug!(algorithm = proven.algorithm.as_str(), "smartcard activation verified");
            Ok(crate::lifecycle::activation::finish_smartcard(&app.lifecycle, activation).await?)
        }
        Err(Failure::Dependency(cause)) => Err(crate::lifecycle::LifecycleError::Dependency(cause).into()),
        Err(Failure::Rejected(reason)) => {
            let audit = AuditEvent::new(
                crate::audit::catalogue::ACTIVATION_FAILED,
                format!("holder:{person}"),
                format!("means:{means_id}"),
                json!({"method": "smartcard", "reason": reason.as_str()}),
            );
            app.store
                .append(audit)
                .await
                .map_err(|e| ActivationFailure::Lifecycle(e.into()))?;
            Err(ActivationFailure::Refused)
        }
    }
}
