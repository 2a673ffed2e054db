//! Relying parties (OAuth clients) and the rules that apply to them.

use serde::{Deserialize, Serialize};

use super::ids::ClientId;
use super::loa::Loa;

/// How a client authenticates at the token endpoint (OIDC Core §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with `client_id:client_secret`.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523), keys from the client's JWKS.
    PrivateKeyJwt,
}

impl AuthMethod {
    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// JWS algorithms the provider signs ID tokens with (keys in the HSM).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256 (default).
    ES256,
    /// RSASSA-PSS with SHA-256, RSA-3072 key.
    PS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA-3072 key (required by OIDC Core).
    RS256,
}

impl SigningAlg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::PS256 => "PS256",
            SigningAlg::RS256 => "RS256",
        }
    }
}

/// `sub` of a client: the person identifier everywhere, or pairwise per sector.
/// Public only for a client allowed `person_identifier` ([`Client::subject_type`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectType {
    /// Pairwise per sector identifier (the redirect_uri host unless configured).
    Pairwise,
    /// The eIDAS person identifier, the same for every such client.
    Public,
}

/// When the holder is asked to consent to the release of claims.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentMode {
    /// At every login.
    Always,
    /// Never (first-party clients).
    Never,
    /// The first time per client and attribute set.
    #[default]
    Once,
}

/// The form of `acr` values a client receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcrFormat {
    /// `low|substantial|high`.
    Short,
    /// `http://eidas.europa.eu/LoA/...`.
    #[default]
    Uri,
}

/// A registered relying party. The secret is held only as its SHA-256 fingerprint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Client {
    /// The client identifier.
    pub client_id: ClientId,
    /// Display name on the login page.
    #[serde(default)]
    pub client_name: String,
    /// The client's logo on the login page: an `https` URL (the login page's content
    /// security policy admits images from that origin only for this client's flows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// SHA-256 of the client secret (hex), for the secret-based methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_sha256: Option<String>,
    /// The client's public keys (JWKS) for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Exact-match redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Claims this client may ever receive (R-DATA-4).
    #[serde(default)]
    pub allowed_claims: Vec<String>,
    /// The one token endpoint authentication method this client uses.
    pub token_endpoint_auth_method: AuthMethod,
    /// Authorization requests must come through PAR (RFC 9126).
    #[serde(default)]
    pub require_par: bool,
    /// PKCE S256 required (default true; false only for legacy RPs; `plain` never).
    #[serde(default = "yes")]
    pub require_pkce: bool,
    /// ID token signing algorithm.
    #[serde(default = "default_alg")]
    pub id_token_signed_response_alg: SigningAlg,
    /// `public` or `pairwise` as registered; unset: public when the client may receive
    /// `person_identifier`, else pairwise. Read it through [`Client::subject_type`].
    #[serde(default, rename = "subject_type", skip_serializing_if = "Option::is_none")]
    pub registered_subject_type: Option<SubjectType>,
    /// Sector identifier for pairwise `sub` (default: the redirect_uri host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector_identifier: Option<String>,
    /// Destination country (YY of `person_identifier`); default the provider's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// A floor applied even when the RP asks for less.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_acr: Option<Loa>,
    /// Consent mode.
    #[serde(default)]
    pub consent: ConsentMode,
    /// `acr` value format.
    #[serde(default)]
    pub acr_format: AcrFormat,
    /// The operators' console: only access tokens issued to such a client are accepted by
    /// the admin and helpdesk APIs (DESIGN "Operators' tokens").
    #[serde(default)]
    pub operator_console: bool,
    /// Authorization requests only as a signed request object (RFC 9101), by value or
    /// pushed; signed with a key of `jwks`.
    #[serde(default)]
    pub require_signed_request_object: bool,
    /// Tokens only bound to a DPoP key (RFC 9449): a proof at every token request.
    #[serde(default)]
    pub require_dpop: bool,
    /// An eIDAS-Node (SpecificProxyService): `acr_values` with the eIDAS LoA URIs required.
    #[serde(default)]
    pub eidas_node: bool,
    /// A security profile the client follows (`fapi2`: FAPI 2.0 Security Profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ClientProfile>,
}

/// Security profiles a client may be registered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientProfile {
    /// FAPI 2.0 Security Profile: PAR, PKCE S256, `private_key_jwt`, no RS256.
    Fapi2,
}

fn yes() -> bool {
    true
}

fn default_alg() -> SigningAlg {
    SigningAlg::ES256
}

/// A client registration is inconsistent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    /// No redirect URI registered.
    #[error("client {client}: no redirect_uri registered")]
    NoRedirectUri {
        /// The client.
        client: String,
    },
    /// A redirect URI outside the allowed forms ([`check_redirect_uri`]).
    #[error("client {client}: redirect URI {uri:?} refused: {why}")]
    RedirectUri {
        /// The client.
        client: String,
        /// The URI as registered.
        uri: String,
        /// What is wrong with it.
        why: RedirectUriError,
    },
    /// Secret-based method without a secret, or `private_key_jwt` without keys.
    #[error("token_endpoint_auth_method {0} needs credentials that are missing")]
    MissingCredentials(&'static str),
    /// A registered public key is refused ([`super::client_keys`]).
    #[error("client {client}: jwks refused: {why}")]
    Key {
        /// The client.
        client: String,
        /// What is wrong.
        why: super::client_keys::KeyError,
    },
    /// The destination country is not two upper-case letters.
    #[error("country must be two upper-case letters")]
    Country,
    /// `subject_type = "public"` would hand the national identifier as `sub` to a client
    /// not allowed `person_identifier` (R-DATA-4).
    #[error("client {client}: subject_type \"public\" needs person_identifier in allowed_claims (the public sub is the national identifier); use \"pairwise\"")]
    PublicSubject {
        /// The client.
        client: String,
    },
    /// `logo_uri` is not an absolute `https` URL of at most 512 characters without userinfo.
    #[error("client {client}: logo_uri must be an https URL (at most 512 characters, no user name or password)")]
    LogoUri {
        /// The client.
        client: String,
    },
    /// A setting the client's profile (`fapi2`, `eidas_node`) forbids.
    #[error("client {client}: {what}")]
    Profile {
        /// The client.
        client: String,
        /// The forbidden setting.
        what: &'static str,
    },
}

/// Why a redirect URI is refused at registration.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum RedirectUriError {
    /// Not an absolute URI.
    #[error("not an absolute URI")]
    Malformed,
    /// A `*` anywhere: URIs are matched exactly, a wildcard would only ever match itself.
    #[error("wildcards are not allowed")]
    Wildcard,
    /// A `#`: the response is appended as a query, a fragment is not allowed (RFC 6749 §3.1.2).
    #[error("a fragment is not allowed")]
    Fragment,
    /// `user:password@` before the host.
    #[error("userinfo is not allowed")]
    Userinfo,
    /// `http` to a host other than a loopback one (RFC 8252 §7.3).
    #[error("http is allowed only to loopback hosts (127.0.0.1, [::1], localhost)")]
    PlainHttp,
    /// `https` without a host.
    #[error("https needs a host")]
    NoHost,
    /// A scheme that is neither `https`, `http` to loopback, nor a private-use scheme
    /// in reverse-domain form (RFC 8252 §7.1) — `javascript:`, `data:`, `file:`…
    #[error("scheme not allowed: only https, http to loopback, or a reverse-domain private-use scheme such as com.example.app")]
    Scheme,
}

/// Whether `uri` may be registered as a redirect (or post-logout redirect) URI:
/// - `https://host/…`;
/// - `http://` to a loopback host only (`127.0.0.0/8`, `[::1]`, `localhost`; native apps,
///   RFC 8252 §7.3);
/// - a private-use scheme of a native app in reverse-domain form with at least two labels
///   (`com.example.app:/cb`, RFC 8252 §7.1);
///
/// and in every case no fragment, no `*` wildcard, no userinfo, no control characters.
pub fn check_redirect_uri(uri: &str) -> Result<(), RedirectUriError> {
    if uri.contains('*') {
        return Err(RedirectUriError::Wildcard);
    }
    if uri.contains('#') {
        return Err(RedirectUriError::Fragment);
    }
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(RedirectUriError::Malformed);
    }
    let parsed = url::Url::parse(uri).map_err(|_| RedirectUriError::Malformed)?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(RedirectUriError::Userinfo);
    }
    match parsed.scheme() {
        "https" => match parsed.host_str() {
            Some(h) if !h.is_empty() => Ok(()),
            _ => Err(RedirectUriError::NoHost),
        },
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => Ok(()),
            _ => Err(RedirectUriError::PlainHttp),
        },
        scheme if reverse_domain(scheme) && !parsed.cannot_be_a_base() => Ok(()),
        _ => Err(RedirectUriError::Scheme),
    }
}

/// `com.example.app`: two or more dot-separated labels of lower-case letters, digits and
/// `-` (the URL parser has lower-cased the scheme already).
fn reverse_domain(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl Client {
    /// Validates a registration (import, admin API).
    pub fn validate(&self) -> Result<(), ClientError> {
        if self.redirect_uris.is_empty() {
            return Err(ClientError::NoRedirectUri {
                client: self.client_id.to_string(),
            });
        }
        for uri in self.redirect_uris.iter().chain(&self.post_logout_redirect_uris) {
            check_redirect_uri(uri).map_err(|why| ClientError::RedirectUri {
                client: self.client_id.to_string(),
                uri: uri.chars().take(200).collect(),
                why,
            })?;
        }
        match self.token_endpoint_auth_method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost if self.secret_sha256.is_none() => {
                return Err(ClientError::MissingCredentials(
                    self.token_endpoint_auth_method.as_str(),
                ));
            }
            AuthMethod::PrivateKeyJwt if self.jwks.is_none() => {
                return Err(ClientError::MissingCredentials("private_key_jwt"));
            }
            _ => {}
        }
        if let Some(jwks) = &self.jwks {
            super::client_keys::check_key_set(jwks, self.requires_high()).map_err(|why| ClientError::Key {
                client: self.client_id.to_string(),
                why,
            })?;
        }
        if let Some(c) = &self.country {
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ClientError::Country);
            }
        }
        if self.logo_uri.is_some() && self.logo_origin().is_none() {
            return Err(ClientError::LogoUri {
                client: self.client_id.to_string(),
            });
        }
        if self.registered_subject_type == Some(SubjectType::Public) && !self.may_receive_person_identifier() {
            return Err(ClientError::PublicSubject {
                client: self.client_id.to_string(),
            });
        }
        if let Some(what) = self.profile_conflict() {
            return Err(ClientError::Profile {
                client: self.client_id.to_string(),
                what,
            });
        }
        Ok(())
    }

    /// The origin (`https://host[:port]`) of a well-formed `logo_uri`, for the login page's
    /// content security policy; `None` without a logo or for one that is not plain https.
    pub fn logo_origin(&self) -> Option<String> {
        let uri = self.logo_uri.as_deref()?;
        let url = url::Url::parse(uri).ok()?;
        let plain = uri.len() <= 512
            && url.scheme() == "https"
            && url.username().is_empty()
            && url.password().is_none()
            && url.host_str().is_some()
            && !uri.contains(['"', '\'', ' ', ';', ',']);
        plain.then(|| url.origin().ascii_serialization())
    }

    /// Whether `person_identifier` is on this client's allow list (R-DATA-4).
    pub fn may_receive_person_identifier(&self) -> bool {
        self.allowed_claims.iter().any(|c| c == "person_identifier")
    }

    /// The `sub` this client gets (R-DATA-4). The public `sub` is the national identifier,
    /// so only a client allowed `person_identifier` gets it; every other client is
    /// pairwise, even one stored as public before this rule (fail closed).
    pub fn subject_type(&self) -> SubjectType {
        match self.registered_subject_type {
            Some(SubjectType::Pairwise) => SubjectType::Pairwise,
            Some(SubjectType::Public) | None if self.may_receive_person_identifier() => SubjectType::Public,
            Some(SubjectType::Public) | None => SubjectType::Pairwise,
        }
    }

    /// A setting the client's profile forbids: `fapi2` (FAPI 2.0) wants `private_key_jwt`,
    /// PKCE and no RS256; an `eidas_node` receives `acr` as the eIDAS LoA URIs.
    fn profile_conflict(&self) -> Option<&'static str> {
        let fapi2 = self.is_fapi2();
        if fapi2 && self.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt {
            Some("profile fapi2 forbids any token_endpoint_auth_method but private_key_jwt")
        } else if fapi2 && !self.require_pkce {
            Some("profile fapi2 forbids require_pkce = false")
        } else if fapi2 && self.id_token_signed_response_alg == SigningAlg::RS256 {
            Some("profile fapi2 forbids RS256")
        } else if self.eidas_node && self.acr_format == AcrFormat::Short {
            Some("an eidas_node receives acr as eIDAS LoA URIs: acr_format short is refused")
        } else {
            None
        }
    }

    /// Whether the client follows the FAPI 2.0 Security Profile.
    pub fn is_fapi2(&self) -> bool {
        self.profile == Some(ClientProfile::Fapi2)
    }

    /// Whether the client asks for LoA high on every login (`minimum_acr = high`): its
    /// keys must then be of the strength [`super::client_keys`] requires for high.
    pub fn requires_high(&self) -> bool {
        self.minimum_acr == Some(Loa::High)
    }

    /// Exact string match of a redirect URI (no prefix or pattern matching).
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    /// The `acr` value for `loa` in this client's format.
    pub fn acr_value(&self, loa: Loa) -> &'static str {
        match self.acr_format {
            AcrFormat::Short => loa.short(),
            AcrFormat::Uri => loa.uri(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        serde_json::from_value(serde_json::json!({
            "client_id": "rp", "redirect_uris": ["https://rp.example/cb"],
            "token_endpoint_auth_method": "client_secret_basic", "secret_sha256": "00"
        }))
        .unwrap()
    }

    #[test]
    fn defaults_require_pkce_and_es256() {
        let c = client();
        assert!(c.require_pkce);
        assert_eq!(c.id_token_signed_response_alg, SigningAlg::ES256);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn profiles_refuse_conflicting_settings() {
        let mut c = client();
        c.profile = Some(ClientProfile::Fapi2);
        assert!(c.validate().unwrap_err().to_string().contains("private_key_jwt"));
        let mut c = client();
        c.eidas_node = true;
        assert!(c.validate().is_ok());
        c.acr_format = AcrFormat::Short;
        assert!(c.validate().unwrap_err().to_string().contains("eidas_node"));
    }

    #[test]
    fn redirect_uris_match_exactly() {
        let c = client();
        assert!(c.has_redirect_uri("https://rp.example/cb"));
        assert!(!c.has_redirect_uri("https://rp.example/cb/"));
        assert!(!c.has_redirect_uri("https://rp.example/cb?x=1"));
    }

    #[test]
    fn registrations_without_credentials_or_with_fragments_are_refused() {
        let mut c = client();
        c.secret_sha256 = None;
        assert!(c.validate().is_err());
        let mut c = client();
        c.redirect_uris = vec!["https://rp.example/cb#frag".into()];
        assert!(c.validate().is_err());
    }

    #[test]
    fn redirect_uri_forms() {
        for ok in [
            "https://rp.example/cb",
            "https://rp.example:8443/cb?x=1",
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
            "http://localhost/cb",
            "com.example.app:/oauth2redirect",
            "lt.gov.eid-app:/cb",
        ] {
            assert_eq!(check_redirect_uri(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("javascript://x/%0aalert(1)//", RedirectUriError::Scheme),
            ("JavaScript://x/%0aalert(1)//", RedirectUriError::Scheme),
            ("data:text/html,x", RedirectUriError::Scheme),
            ("file:///etc/passwd", RedirectUriError::Scheme),
            ("myapp:/cb", RedirectUriError::Scheme),
            ("com.example.app:cb", RedirectUriError::Scheme),
            ("https://*.rp.example/*", RedirectUriError::Wildcard),
            ("https://rp.example/cb#", RedirectUriError::Fragment),
            ("https://user:pw@rp.example/cb", RedirectUriError::Userinfo),
            ("https://user@rp.example/cb", RedirectUriError::Userinfo),
            ("http://rp.example/cb", RedirectUriError::PlainHttp),
            ("http://10.0.0.1/cb", RedirectUriError::PlainHttp),
            ("/cb", RedirectUriError::Malformed),
            ("https://rp.example/c b", RedirectUriError::Malformed),
        ] {
            assert_eq!(check_redirect_uri(bad), Err(why), "{bad}");
        }
        let mut c = client();
        c.post_logout_redirect_uris = vec!["javascript:alert(1)".into()];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("client rp") && e.contains("javascript:alert(1)"), "{e}");
    }

    #[test]
    fn issue_24_a_logo_is_an_https_url_and_gives_its_origin() {
        let mut c = client();
        c.logo_uri = Some("https://rp.example:8443/img/logo.png?v=2".into());
        assert_eq!(c.logo_origin().as_deref(), Some("https://rp.example:8443"));
        assert!(c.validate().is_ok());
        for bad in [
            "http://rp.example/logo.png",
            "data:image/png;base64,AAAA",
            "javascript:alert(1)",
            "https://user:pw@rp.example/logo.png",
            "https://rp.example/logo.png'; script-src *",
            "/logo.png",
        ] {
            c.logo_uri = Some(bad.into());
            assert_eq!(c.logo_origin(), None, "{bad}");
            assert_eq!(c.validate(), Err(ClientError::LogoUri { client: "rp".into() }), "{bad}");
        }
    }

    #[test]
    fn r_data_4_issue_24_sub_is_public_only_for_a_client_allowed_person_identifier() {
        // Unset: pairwise for a names-only client, public for one allowed the identifier.
        let mut c = client();
        c.allowed_claims = vec!["given_name".into(), "family_name".into()];
        assert_eq!(c.subject_type(), SubjectType::Pairwise);
        c.allowed_claims.push("person_identifier".into());
        assert_eq!(c.subject_type(), SubjectType::Public);
        // Registered pairwise stays pairwise.
        c.registered_subject_type = Some(SubjectType::Pairwise);
        assert_eq!(c.subject_type(), SubjectType::Pairwise);
        assert!(c.validate().is_ok());
        // Public without the identifier on the allow list: refused at registration, and a
        // client stored that way before the rule is served pairwise (fail closed).
        c.registered_subject_type = Some(SubjectType::Public);
        c.allowed_claims = vec!["given_name".into()];
        assert_eq!(c.validate(), Err(ClientError::PublicSubject { client: "rp".into() }));
        assert_eq!(c.subject_type(), SubjectType::Pairwise);
    }
}
