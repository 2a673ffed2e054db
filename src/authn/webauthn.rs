//! The WebAuthn relying party (DESIGN "FIDO2 login", R-AUTH-4, R-AUTH-5, R-MEANS-3,
//! R-MEANS-4): the only file that uses the `webauthn_rp` crate (STYLE §1.2).
//!
//! - Registration (during activation): `webauthn_rp` builds the creation options (user
//!   verification **required**, resident keys preferred, ES256/ES384/EdDSA/RS256) and
//!   verifies the response (client data type, challenge, origin, RP ID hash, UP/UV flags,
//!   algorithm, credential). We ask for `direct` attestation; the `packed` statement with
//!   an `x5c` chain, which `webauthn_rp` does not accept, is verified first by
//!   [`super::attestation`] (W3C §8.2) and assessed against the allow list, then handed to
//!   `webauthn_rp` without its statement. Self attestation (`packed` without `x5c`) and
//!   `none` are verified by `webauthn_rp` itself and never trusted.
//! - Login: discoverable (no identifier) or identifier-first (allow list of the holder's
//!   credentials), user verification required, the configured RP ID and origin, the
//!   signature counter enforced (a counter that does not increase is reported as
//!   [`WebauthnError::CounterRegression`] **after** the signature verified), the backup
//!   eligibility must not change.
//!
//! Ceremony state (the challenge) is serialised for the ephemeral store, where the
//! caller keeps it single use (`take`). Challenges are `webauthn_rp`'s 128-bit values from
//! `rand`'s thread RNG (a ChaCha CSPRNG seeded from the OS): the W3C minimum is 16 bytes;
//! the crate does not accept a caller's challenge, so DESIGN's 32 bytes do not apply here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use webauthn_rp::bin::{Decode, Encode};
use webauthn_rp::request::auth::{AllowedCredentials, AuthenticationVerificationOptions, SignatureCounterEnforcement};
use webauthn_rp::request::register::{
    CredProtect, PublicKeyCredentialUserEntity, RegistrationVerificationOptions, ResidentKeyRequirement, UserHandle64,
};
use webauthn_rp::request::{
    AsciiDomain, BackupReq, Credentials as _, ExtensionInfo, PublicKeyCredentialDescriptor, RpId,
};
use webauthn_rp::response::auth::error::AuthCeremonyErr;
use webauthn_rp::response::register::{CompressedPubKey, DynamicState, StaticState};
use webauthn_rp::response::{AuthTransports, Backup, CredentialId};
use webauthn_rp::{
    DiscoverableAuthentication64, DiscoverableAuthenticationServerState, DiscoverableCredentialRequestOptions,
    NonDiscoverableAuthentication64, NonDiscoverableAuthenticationServerState, NonDiscoverableCredentialRequestOptions,
    PublicKeyCredentialCreationOptions, Registration, RegistrationServerState,
};

use super::attestation::{self, AttestationPolicy, AttestationResult};
use crate::config::Config;
use crate::domain::loa::Loa;

/// Largest PublicKeyCredential JSON accepted (an attestation with a chain of a few
/// certificates fits easily).
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024;

/// Why a ceremony failed. The holder gets one generic answer; the reason goes to the audit log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebauthnError {
    /// The response JSON does not parse.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The ceremony state does not decode (or has expired).
    #[error("ceremony state invalid or expired")]
    State,
    /// A verification step failed (reason for the audit log).
    #[error("verification failed: {0}")]
    Failed(&'static str),
    /// The user verification (UV) flag was not set.
    #[error("user not verified")]
    UserNotVerified,
    /// The signature verified but the counter did not increase: a cloned authenticator.
    #[error("signature counter did not increase")]
    CounterRegression,
    /// The attestation statement is invalid.
    #[error("attestation invalid: {0}")]
    Attestation(#[from] attestation::AttestationError),
    /// Internal error building options.
    #[error("options: {0}")]
    Options(String),
}

/// The relying party: RP ID, origin and attestation allow list from configuration.
pub struct Relying {
    rp_id: RpId,
    origins: Vec<String>,
    policy: AttestationPolicy,
}

impl std::fmt::Debug for Relying {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relying")
            .field("origins", &self.origins)
            .field("policy", &self.policy)
            .finish()
    }
}

/// A started ceremony: state for the ephemeral store, options for the browser.
pub struct Started {
    /// Serialised server state (keep single use).
    pub state: Vec<u8>,
    /// `PublicKeyCredentialCreationOptionsJSON` / `...RequestOptionsJSON`.
    pub options: Value,
}

/// A credential registered in a verified ceremony.
#[derive(Clone, Debug)]
pub struct NewCredential {
    /// base64url credential id.
    pub credential_id: String,
    /// base64url user handle.
    pub user_handle: String,
    /// base64url static state.
    pub static_state: String,
    /// base64url dynamic state.
    pub dynamic_state: String,
    /// What the attestation showed.
    pub attestation: AttestationResult,
    /// A multi-device (synced) credential: never trusted as a certified authenticator.
    pub backup_eligible: bool,
}

/// A stored credential as the login needs it.
#[derive(Clone, Debug)]
pub struct StoredCredential {
    /// base64url credential id.
    pub credential_id: String,
    /// base64url user handle.
    pub user_handle: String,
    /// base64url static state.
    pub static_state: String,
    /// base64url dynamic state.
    pub dynamic_state: String,
}

/// A verified assertion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asserted {
    /// The new dynamic state (counter) to store, when it changed.
    pub dynamic_state: String,
}

/// Which assertion the browser was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LoginKind {
    /// No identifier: the authenticator picks a resident credential.
    Discoverable,
    /// Identifier first: the holder's credentials are listed.
    IdentifierFirst,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Result<Vec<u8>, WebauthnError> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| WebauthnError::Malformed("base64url".into()))
}

impl Relying {
    /// From configuration: RP ID (default: the origin's host), origin, allow list.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let origin = config.origin().trim_end_matches('/').to_owned();
        let host = url::Url::parse(&origin)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .ok_or_else(|| format!("origin {origin:?} has no host"))?;
        let rp_id = config.webauthn.rp_id.clone().unwrap_or(host);
        let domain = AsciiDomain::try_from(rp_id.clone())
            .map_err(|e| format!("webauthn.rp_id {rp_id:?} is not a domain: {e}"))?;
        let policy = AttestationPolicy::load(&config.webauthn.attestation)?;
        Ok(Self {
            rp_id: RpId::Domain(domain),
            origins: vec![origin],
            policy,
        })
    }

    /// The attestation allow list.
    pub fn policy(&self) -> &AttestationPolicy {
        &self.policy
    }

    /// A fresh random user handle (64 bytes) for a new credential, base64url.
    pub fn new_user_handle() -> String {
        b64(UserHandle64::new().as_ref())
    }

    /// Creation options for the holder's authenticator (R-MEANS-4: UV required).
    pub fn start_registration(
        &self,
        user_handle: &str,
        name: &str,
        display_name: &str,
        exclude: &[String],
    ) -> Result<Started, WebauthnError> {
        let handle = user_handle_of(user_handle)?;
        let username = name
            .to_owned()
            .try_into()
            .map_err(|_| WebauthnError::Options("user name".into()))?;
        let nickname = display_name.to_owned().try_into().ok();
        let mut excluded = Vec::new();
        for id in exclude {
            let id = CredentialId::decode(unb64(id)?).map_err(|_| WebauthnError::Malformed("credential id".into()))?;
            excluded.push(PublicKeyCredentialDescriptor {
                id,
                transports: AuthTransports::decode(0).map_err(|_| WebauthnError::Options("transports".into()))?,
            });
        }
        let mut options = PublicKeyCredentialCreationOptions::passkey(
            &self.rp_id,
            PublicKeyCredentialUserEntity {
                name: username,
                id: &handle,
                display_name: nickname,
            },
            excluded,
        );
        // Resident keys allowed (needed for the identifier-less login), not required: a
        // security key with a full credential store still registers.
        options.authenticator_selection.resident_key = ResidentKeyRequirement::Preferred;
        // Ask for credProtect (UV required for the credential) but do not make the browser
        // refuse authenticators without the extension: user verification is enforced by
        // this server at every login anyway.
        options.extensions.cred_protect = CredProtect::UserVerificationRequired(ExtensionInfo::AllowDontEnforceValue);
        let (server, client) = options
            .start_ceremony()
            .map_err(|e| WebauthnError::Options(e.to_string()))?;
        let mut json = serde_json::to_value(&client).map_err(|e| WebauthnError::Options(e.to_string()))?;
        if let Some(obj) = json.as_object_mut() {
            // The attestation statement is what the allow list is checked against.
            obj.insert("attestation".into(), Value::from("direct"));
            obj.insert("attestationFormats".into(), serde_json::json!(["packed", "none"]));
        }
        let state = server.encode().map_err(|e| WebauthnError::Options(e.to_string()))?;
        Ok(Started { state, options: json })
    }

    /// Verifies a registration response against the state of its ceremony; assesses the
    /// attestation against the allow list.
    pub fn finish_registration(&self, state: &[u8], response: &[u8], now: i64) -> Result<NewCredential, WebauthnError> {
        if response.len() > MAX_RESPONSE_BYTES {
            return Err(WebauthnError::Malformed("response too large".into()));
        }
        let server = RegistrationServerState::<64>::decode(state).map_err(|_| WebauthnError::State)?;
        let mut json: Value = serde_json::from_slice(response).map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        let inner = json
            .get("response")
            .ok_or_else(|| WebauthnError::Malformed("response".into()))?;
        let text = |name: &str| {
            inner
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| WebauthnError::Malformed(name.into()))
        };
        let object = unb64(text("attestationObject")?)?;
        let client_data = unb64(text("clientDataJSON")?)?;
        let client_data_hash: [u8; 32] = Sha256::digest(&client_data).into();
        let parsed = attestation::parse(&object)?;
        let aaguid = attestation::format_aaguid(&parsed.aaguid);
        let mut result = AttestationResult {
            format: parsed.format.clone(),
            aaguid,
            kind: "none".into(),
            trust_path: Vec::new(),
            trusted_loa: None,
        };
        if parsed.format == "packed" && attestation::has_x5c(&parsed) {
            let chain = attestation::verify_packed_x5c(&parsed, &client_data_hash)?;
            let (loa, path) = self.policy.assess(&chain, &parsed.aaguid, now);
            result.kind = "basic".into();
            result.trust_path = path;
            // A synced (backup eligible) credential is a copy outside the certified
            // device: never trusted for more than substantial (R-MEANS-3).
            result.trusted_loa = if parsed.backup_eligible { None } else { loa };
            // Hand the rest of the ceremony to webauthn_rp without the statement it
            // cannot parse.
            let stripped = b64(&attestation::without_statement(&parsed.auth_data));
            if let Some(r) = json.get_mut("response").and_then(Value::as_object_mut) {
                r.insert("attestationObject".into(), Value::from(stripped));
            }
        } else if parsed.format == "packed" {
            result.kind = "self".into();
        } else if parsed.format != "none" {
            return Err(WebauthnError::Failed("unsupported attestation format"));
        }
        let bytes = serde_json::to_vec(&json).map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        let registration =
            Registration::from_json_relaxed(&bytes).map_err(|e| WebauthnError::Malformed(e.to_string()))?;
        let options = RegistrationVerificationOptions::<String, String> {
            allowed_origins: &self.origins,
            allowed_top_origins: None,
            backup_requirement: BackupReq::None,
            error_on_unsolicited_extensions: false,
            require_authenticator_attachment: false,
            client_data_json_relaxed: true,
        };
        let credential = server.verify(&self.rp_id, &registration, &options).map_err(|e| {
            use webauthn_rp::response::register::error::RegCeremonyErr as E;
            match e {
                E::UserNotVerified => WebauthnError::UserNotVerified,
                E::OriginMismatch => WebauthnError::Failed("origin mismatch"),
                E::ChallengeMismatch => WebauthnError::Failed("challenge mismatch"),
                E::RpIdHashMismatch => WebauthnError::Failed("RP ID hash mismatch"),
                E::Timeout => WebauthnError::State,
                _ => WebauthnError::Failed("registration verification"),
            }
        })?;
        let (id, _transports, user, static_state, dynamic_state, _metadata) = credential.into_parts();
        let static_bytes = static_state
            .encode()
            .map_err(|_| WebauthnError::Failed("static state encoding"))?;
        let dynamic_bytes = dynamic_state
            .encode()
            .map_err(|_| WebauthnError::Failed("dynamic state encoding"))?;
        Ok(NewCredential {
            credential_id: b64(id.as_ref()),
            user_handle: b64(user.as_ref()),
            static_state: b64(&static_bytes),
            dynamic_state: b64(&dynamic_bytes),
            attestation: result,
            backup_eligible: !matches!(dynamic_state.backup, Backup::NotEligible),
        })
    }

    /// Request options: discoverable when `credentials` is empty, else limited to them.
    pub fn start_login(&self, credentials: &[String]) -> Result<(LoginKind, Started), WebauthnError> {
        if credentials.is_empty() {
            let (server, client) = DiscoverableCredentialRequestOptions::passkey(&self.rp_id)
                .start_ceremony()
                .map_err(|e| WebauthnError::Options(e.to_string()))?;
            let options = serde_json::to_value(&client).map_err(|e| WebauthnError::Options(e.to_string()))?;
            let state = server.encode().map_err(|e| WebauthnError::Options(e.to_string()))?;
            return Ok((LoginKind::Discoverable, Started { state, options }));
        }
        let mut allowed = AllowedCredentials::with_capacity(credentials.len());
        for id in credentials {
            let id = CredentialId::decode(unb64(id)?).map_err(|_| WebauthnError::Malformed("credential id".into()))?;
            let transports = AuthTransports::decode(0).map_err(|_| WebauthnError::Options("transports".into()))?;
            allowed.push(PublicKeyCredentialDescriptor { id, transports }.into());
        }
        let mut request = NonDiscoverableCredentialRequestOptions::second_factor(&self.rp_id, allowed)
            .map_err(|e| WebauthnError::Options(e.to_string()))?;
        // A FIDO means is both factors (R-MEANS-2): user verification is required.
        request.options().user_verification = webauthn_rp::request::UserVerificationRequirement::Required;
        let (server, client) = request
            .start_ceremony()
            .map_err(|e| WebauthnError::Options(e.to_string()))?;
        let options = serde_json::to_value(&client).map_err(|e| WebauthnError::Options(e.to_string()))?;
        let state = server.encode().map_err(|e| WebauthnError::Options(e.to_string()))?;
        Ok((LoginKind::IdentifierFirst, Started { state, options }))
    }

    /// Verifies an assertion against the ceremony state and the stored credential.
    pub fn finish_login(
        &self,
        kind: LoginKind,
        state: &[u8],
        response: &[u8],
        stored: &StoredCredential,
    ) -> Result<Asserted, WebauthnError> {
        if response.len() > MAX_RESPONSE_BYTES {
            return Err(WebauthnError::Malformed("response too large".into()));
        }
        let handle = user_handle_of(&stored.user_handle)?;
        let id_bytes = unb64(&stored.credential_id)?;
        let id = CredentialId::<&[u8]>::decode(&id_bytes).map_err(|_| WebauthnError::Failed("stored credential id"))?;
        let static_bytes = unb64(&stored.static_state)?;
        let static_state =
            StaticState::<CompressedPubKey<[u8; 32], [u8; 32], [u8; 48], Vec<u8>>>::decode(static_bytes.as_slice())
                .map_err(|_| WebauthnError::Failed("stored static state"))?;
        let dynamic_bytes: [u8; 7] = unb64(&stored.dynamic_state)?
            .try_into()
            .map_err(|_| WebauthnError::Failed("stored dynamic state"))?;
        let dynamic = DynamicState::decode(dynamic_bytes).map_err(|_| WebauthnError::Failed("stored dynamic state"))?;
        let mut credential = webauthn_rp::AuthenticatedCredential::new(id, &handle, static_state, dynamic)
            .map_err(|_| WebauthnError::Failed("stored credential"))?;
        let options = AuthenticationVerificationOptions::<String, String> {
            allowed_origins: &self.origins,
            allowed_top_origins: None,
            // The backup eligibility recorded at registration must not change.
            backup_requirement: None,
            error_on_unsolicited_extensions: false,
            auth_attachment_enforcement: Default::default(),
            update_uv: false,
            sig_counter_enforcement: SignatureCounterEnforcement::Fail,
            client_data_json_relaxed: true,
        };
        let outcome = match kind {
            LoginKind::Discoverable => {
                let server = DiscoverableAuthenticationServerState::decode(state).map_err(|_| WebauthnError::State)?;
                let assertion = DiscoverableAuthentication64::from_json_relaxed(response)
                    .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
                server.verify(&self.rp_id, &assertion, &mut credential, &options)
            }
            LoginKind::IdentifierFirst => {
                let server =
                    NonDiscoverableAuthenticationServerState::decode(state).map_err(|_| WebauthnError::State)?;
                let assertion = NonDiscoverableAuthentication64::from_json_relaxed(response)
                    .map_err(|e| WebauthnError::Malformed(e.to_string()))?;
                server.verify(&self.rp_id, &assertion, &mut credential, &options)
            }
        };
        outcome.map_err(auth_error)?;
        let next = credential
            .dynamic_state()
            .encode()
            .map_err(|_| WebauthnError::Failed("dynamic state encoding"))?;
        Ok(Asserted {
            dynamic_state: b64(&next),
        })
    }
}

fn auth_error(e: AuthCeremonyErr) -> WebauthnError {
    match e {
        AuthCeremonyErr::SignatureCounter => WebauthnError::CounterRegression,
        AuthCeremonyErr::UserNotVerified => WebauthnError::UserNotVerified,
        AuthCeremonyErr::OriginMismatch | AuthCeremonyErr::CrossOrigin | AuthCeremonyErr::TopOriginMismatch => {
            WebauthnError::Failed("origin mismatch")
        }
        AuthCeremonyErr::ChallengeMismatch => WebauthnError::Failed("challenge mismatch"),
        AuthCeremonyErr::RpIdHashMismatch => WebauthnError::Failed("RP ID hash mismatch"),
        AuthCeremonyErr::AssertionSignature => WebauthnError::Failed("signature invalid"),
        AuthCeremonyErr::Timeout => WebauthnError::State,
        AuthCeremonyErr::UserHandleMismatch | AuthCeremonyErr::CredentialIdMismatch => {
            WebauthnError::Failed("credential does not match")
        }
        AuthCeremonyErr::NoMatchingAllowedCredential => WebauthnError::Failed("credential not allowed"),
        AuthCeremonyErr::BackupEligible | AuthCeremonyErr::BackupNotEligible | AuthCeremonyErr::BackupDoesNotExist => {
            WebauthnError::Failed("backup state changed")
        }
        AuthCeremonyErr::CollectedClientData(_) | AuthCeremonyErr::CollectedClientDataRelaxed(_) => {
            WebauthnError::Failed("client data invalid")
        }
        _ => WebauthnError::Failed("assertion verification"),
    }
}

fn user_handle_of(text: &str) -> Result<UserHandle64, WebauthnError> {
    let bytes: [u8; 64] = unb64(text)?
        .try_into()
        .map_err(|_| WebauthnError::Malformed("user handle".into()))?;
    UserHandle64::decode(bytes).map_err(|_| WebauthnError::Malformed("user handle".into()))
}

/// The credential id (base64url) and user handle an assertion names, to find the stored
/// credential before verifying. Only the strings are read here; everything is verified
/// by [`Relying::finish_login`].
pub fn assertion_ids(response: &[u8]) -> Result<(String, Option<String>), WebauthnError> {
    if response.len() > MAX_RESPONSE_BYTES {
        return Err(WebauthnError::Malformed("response too large".into()));
    }
    let json: Value = serde_json::from_slice(response).map_err(|e| WebauthnError::Malformed(e.to_string()))?;
    let id = json
        .get("rawId")
        .or_else(|| json.get("id"))
        .and_then(Value::as_str)
        .ok_or_else(|| WebauthnError::Malformed("rawId".into()))?;
    // Normalised through bytes, so padding or alphabet differences cannot pick another row.
    let id = b64(&unb64(id)?);
    let handle = json
        .get("response")
        .and_then(|r| r.get("userHandle"))
        .and_then(Value::as_str)
        .map(|h| unb64(h).map(|b| b64(&b)))
        .transpose()?;
    Ok((id, handle))
}

/// The amr and the ceremony's LoA ceiling of a FIDO login (DESIGN table): a trusted
/// attestation gives `hwk user mfa` up to its allow-list level; otherwise `pop user mfa`
/// up to substantial.
pub fn proof_of(attestation: Option<&AttestationResult>) -> (Loa, Vec<crate::domain::loa::Amr>) {
    use crate::domain::loa::Amr;
    match attestation.and_then(|a| a.trusted_loa) {
        Some(loa) => (loa, vec![Amr::Hwk, Amr::User, Amr::Mfa]),
        None => (Loa::Substantial, vec![Amr::Pop, Amr::User, Amr::Mfa]),
    }
}
