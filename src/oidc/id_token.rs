//! The ID token's claims (OIDC Core §2), written straight from the grant's fields (issue 22:
//! a `serde_json::Value` map of them cost some thirty allocations per token).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::UnixTime;

/// The claims this provider sets itself. A released claim by one of these names is not
/// taken (a person's attribute never overrides the token's own `sub`, `aud` or `nonce`).
const OWN: [&str; 13] = [
    "iss",
    "sub",
    "aud",
    "azp",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "amr",
    "sid",
    "jti",
    "at_hash",
    "nonce",
];

/// An ID token's claims.
#[derive(Serialize)]
pub struct IdTokenClaims<'a> {
    /// Issuer.
    pub iss: &'a str,
    /// Subject (public or pairwise).
    pub sub: &'a str,
    /// The client.
    pub aud: &'a str,
    /// The client.
    pub azp: &'a str,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// When the holder authenticated.
    pub auth_time: UnixTime,
    /// The achieved level, in the client's format.
    pub acr: &'static str,
    /// Methods used.
    pub amr: Vec<&'static str>,
    /// SSO session.
    pub sid: &'a str,
    /// Unique per token.
    pub jti: String,
    /// Left half of the access token's SHA-256.
    pub at_hash: String,
    /// The authorization request's nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    /// Released and verified claims (never one of [`OWN`]).
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl<'a> IdTokenClaims<'a> {
    /// The claims without released ones.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        iss: &'a str,
        sub: &'a str,
        client_id: &'a str,
        exp: UnixTime,
        iat: UnixTime,
        authn: &'a super::grant::Authentication,
        acr: &'static str,
        nonce: Option<&'a str>,
        at_hash: String,
    ) -> Self {
        Self {
            iss,
            sub,
            aud: client_id,
            azp: client_id,
            exp,
            iat,
            auth_time: authn.auth_time,
            acr,
            amr: authn.amr.iter().map(|a| a.as_str()).collect(),
            sid: &authn.sid,
            jti: crate::random::token(),
            at_hash,
            nonce,
            extra: Map::new(),
        }
    }

    /// Adds released claims; a name already present (ours, or released before) keeps its
    /// value.
    pub fn release(&mut self, claims: Map<String, Value>) {
        for (name, value) in claims {
            if !OWN.contains(&name.as_str()) {
                self.extra.entry(name).or_insert(value);
            }
        }
    }

    /// Sets `verified_claims` (OpenID Connect for Identity Assurance).
    pub fn verified(&mut self, verified: Value) {
        self.extra.insert("verified_claims".into(), verified);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{MeansId, PersonId};
    use crate::domain::loa::{Amr, Loa};

    #[test]
    fn released_claims_never_override_the_tokens_own() {
        let authn = super::super::grant::Authentication {
            person: PersonId::new(),
            means: MeansId::new(),
            auth_time: 100,
            loa: Loa::High,
            amr: vec![Amr::Hwk, Amr::Pin],
            sid: "s-1".into(),
            mandate: None,
        };
        let mut claims = IdTokenClaims::new("https://id", "sub-1", "rp", 200, 150, &authn, "high", None, "h".into());
        let released: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "sub": "someone else", "nonce": "planted", "aud": "other", "given_name": "Ona"
        }))
        .unwrap();
        claims.release(released);
        claims.verified(serde_json::json!({"trust_framework": "eidas"}));
        let v = serde_json::to_value(&claims).unwrap();
        assert_eq!(v["sub"], "sub-1");
        assert_eq!(v["aud"], "rp");
        assert_eq!(v["azp"], "rp");
        assert!(v.get("nonce").is_none());
        assert_eq!(v["given_name"], "Ona");
        assert_eq!(v["amr"], serde_json::json!(["hwk", "pin"]));
        assert_eq!(v["auth_time"], 100);
        assert_eq!(v["verified_claims"]["trust_framework"], "eidas");
        let text = serde_json::to_string(&claims).unwrap();
        assert_eq!(text.matches("\"sub\"").count(), 1, "{text}");
    }
}
