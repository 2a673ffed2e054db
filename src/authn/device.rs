//! Device trust (issue 19, OWASP "device cookies"): a browser that logged in successfully
//! with a means gets a signed, HttpOnly cookie bound to that means, rotated at each
//! success. Password attempts from such a browser are throttled on their own, so failures
//! made elsewhere never lock the holder out.
//!
//! The cookie holds up to [`MAX_ENTRIES`] entries `means~nonce~exp~mac`, newest first;
//! `mac` is HMAC-SHA-256 (RFC 2104) over `means~nonce~exp` under the device key. The keys
//! derive from one 256-bit secret kept sealed under the HSM `data-wrap` key in
//! `provider_state` (shared by every instance); the same secret derives the decoy
//! credential ids of identifier-first WebAuthn.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::domain::ids::MeansId;
use crate::domain::secret::ct_eq;
use crate::domain::UnixTime;

/// Name of the device cookie.
pub const DEVICE_COOKIE: &str = "eidgate_device";

/// Means one browser is remembered for at most.
pub const MAX_ENTRIES: usize = 4;

/// `provider_state` name of the sealed login secret.
pub const SECRET_STATE: &str = "login_secret";

/// HMAC-SHA-256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = Zeroizing::new([0u8; 64]);
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.iter().map(|b| b ^ 0x36).collect::<Vec<u8>>());
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block.iter().map(|b| b ^ 0x5c).collect::<Vec<u8>>());
    outer.update(inner);
    outer.finalize().into()
}

/// The keys of the login defences, derived from the login secret.
#[derive(Clone)]
pub struct LoginKeys {
    device: Zeroizing<[u8; 32]>,
    decoy: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for LoginKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginKeys(..)")
    }
}

/// A device cookie entry that verified for a means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownDevice {
    /// The entry's random id (the per-device throttle key).
    pub id: String,
}

impl LoginKeys {
    /// Derives the keys from the 32-byte secret.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            device: Zeroizing::new(hmac_sha256(secret, b"eidgate device cookie v1")),
            decoy: Zeroizing::new(hmac_sha256(secret, b"eidgate webauthn decoy v1")),
        }
    }

    fn mac(&self, body: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac_sha256(self.device.as_ref(), body.as_bytes()))
    }

    /// The entry of `cookie` for `means`, if it verifies and has not expired.
    pub fn known(&self, cookie: Option<&str>, means: MeansId, now: UnixTime) -> Option<KnownDevice> {
        let cookie = cookie?;
        if cookie.len() > 1024 {
            return None;
        }
        let wanted = means.to_string();
        cookie.split('.').take(MAX_ENTRIES).find_map(|entry| {
            let mut parts = entry.split('~');
            let (m, nonce, exp, mac) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || m != wanted {
                return None;
            }
            let body = format!("{m}~{nonce}~{exp}");
            let good = ct_eq(self.mac(&body).as_bytes(), mac.as_bytes());
            let live = exp.parse::<UnixTime>().is_ok_and(|e| e > now);
            (good && live).then(|| KnownDevice { id: nonce.to_owned() })
        })
    }

    /// The cookie after a success with `means`: a new entry for it first (rotated), the
    /// other still valid entries of `previous` after it, at most [`MAX_ENTRIES`].
    pub fn rotated(&self, previous: Option<&str>, means: MeansId, now: UnixTime, ttl_secs: i64) -> String {
        let m = means.to_string();
        let nonce = URL_SAFE_NO_PAD.encode(crate::random::bytes::<16>());
        let body = format!("{m}~{nonce}~{}", now + ttl_secs);
        let mut entries = vec![format!("{body}~{}", self.mac(&body))];
        if let Some(previous) = previous.filter(|p| p.len() <= 1024) {
            for entry in previous.split('.').take(MAX_ENTRIES) {
                let Some(other) = entry.split('~').next().and_then(|id| id.parse::<MeansId>().ok()) else {
                    continue;
                };
                if other != means && self.known(Some(entry), other, now).is_some() {
                    entries.push(entry.to_owned());
                }
            }
        }
        entries.truncate(MAX_ENTRIES);
        entries.join(".")
    }

    /// The decoy credential ids answered for an identifier without active FIDO means:
    /// stable for that identifier (derived with the server secret), unlike a random
    /// answer that would tell it apart from a real holder on the second request.
    pub fn decoy_credentials(&self, person_key: &str) -> Vec<String> {
        let first = hmac_sha256(self.decoy.as_ref(), format!("{person_key}|1").as_bytes());
        let second = hmac_sha256(self.decoy.as_ref(), format!("{person_key}|2").as_bytes());
        let mut bytes = first.to_vec();
        bytes.extend_from_slice(&second);
        let len = [16usize, 32, 48, 64][usize::from(first[0] % 4)];
        vec![URL_SAFE_NO_PAD.encode(&bytes[..len])]
    }
}

/// The login keys from `provider_state`, made (and sealed under the HSM `data-wrap` key)
/// on first start. Two instances starting at once for the first time may both write; each
/// reads back what is stored, so at worst one instance's first cookies stop verifying.
/// A stored secret this HSM cannot open (a database restored next to another token, a
/// replaced `data-wrap` key) is replaced, audited: every browser is unknown again once,
/// which only makes the defences stricter.
pub async fn load_or_create(
    store: &dyn crate::store::Store,
    sealer: &dyn crate::hsm::Sealer,
) -> Result<LoginKeys, String> {
    if let Some(text) = store.provider_state(SECRET_STATE).await.map_err(|e| e.to_string())? {
        match open(sealer, &text).await {
            Ok(keys) => return Ok(keys),
            Err(e) => tracing::warn!(error = %e, "stored login secret unusable: replaced (device cookies reset)"),
        }
        create(store, sealer, crate::audit::catalogue::CONFIG_LOGIN_SECRET_REPLACED).await
    } else {
        create(store, sealer, crate::audit::catalogue::CONFIG_LOGIN_SECRET_CREATED).await
    }
}

const AAD: &[u8] = b"eidgate login secret";

async fn open(sealer: &dyn crate::hsm::Sealer, text: &str) -> Result<LoginKeys, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.as_bytes())
        .map_err(|_| "login secret: not base64url".to_owned())?;
    let secret = sealer.open(&bytes, AAD).await.map_err(|e| e.to_string())?;
    if secret.len() != 32 {
        return Err("login secret: wrong length".into());
    }
    Ok(LoginKeys::from_secret(&secret))
}

async fn create(
    store: &dyn crate::store::Store,
    sealer: &dyn crate::hsm::Sealer,
    event: &str,
) -> Result<LoginKeys, String> {
    let secret = Zeroizing::new(crate::random::bytes::<32>());
    let sealed = sealer.seal(secret.as_ref(), AAD).await.map_err(|e| e.to_string())?;
    let text = URL_SAFE_NO_PAD.encode(sealed);
    let event = crate::audit::AuditEvent::new(
        event,
        "system",
        "login",
        serde_json::json!({"purpose": "device cookies, webauthn decoys"}),
    );
    store
        .set_provider_state(SECRET_STATE, &text, event)
        .await
        .map_err(|e| e.to_string())?;
    let stored = store
        .provider_state(SECRET_STATE)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or(text);
    open(sealer, &stored).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn r_auth_4_device_cookie_is_bound_to_the_means_signed_and_rotated() {
        let keys = LoginKeys::from_secret(&[7u8; 32]);
        let (a, b) = (MeansId::new(), MeansId::new());
        let first = keys.rotated(None, a, 1000, 100);
        let known = keys.known(Some(&first), a, 1001).map(|d| d.id);
        assert!(known.is_some());
        assert_eq!(keys.known(Some(&first), b, 1001), None, "bound to the means");
        assert_eq!(keys.known(Some(&first), a, 1100), None, "expires");
        let other = LoginKeys::from_secret(&[8u8; 32]);
        assert_eq!(other.known(Some(&first), a, 1001), None, "signed");
        let forged = first.replacen(&a.to_string(), &b.to_string(), 1);
        assert_eq!(keys.known(Some(&forged), b, 1001), None, "the MAC covers the means");
        let both = keys.rotated(Some(&first), b, 1002, 100);
        assert!(keys.known(Some(&both), a, 1003).is_some() && keys.known(Some(&both), b, 1003).is_some());
        let again = keys.rotated(Some(&both), a, 1004, 100);
        assert_ne!(keys.known(Some(&again), a, 1005).map(|d| d.id), known, "rotated");
        assert_eq!(again.split('.').count(), 2);
    }

    #[test]
    fn r_auth_4_decoys_are_stable_per_identifier_and_secret() {
        let keys = LoginKeys::from_secret(&[7u8; 32]);
        assert_eq!(keys.decoy_credentials("pid:LT:1"), keys.decoy_credentials("pid:LT:1"));
        assert_ne!(keys.decoy_credentials("pid:LT:1"), keys.decoy_credentials("pid:LT:2"));
        let other = LoginKeys::from_secret(&[8u8; 32]);
        assert_ne!(keys.decoy_credentials("pid:LT:1"), other.decoy_credentials("pid:LT:1"));
    }
}
