//! The authorization request (OIDC Core §3.1.2, RFC 9126, RFC 7636): parsing and
//! validation into a typed [`AuthRequest`]. Trust is established first (`client_id`,
//! `redirect_uri`); only then may errors go back to the client.

use serde::{Deserialize, Serialize};

use super::error::{AuthorizeError, ErrorCode, OAuthError};
use super::params::Params;
use super::pkce;
use crate::domain::client::Client;
use crate::domain::ids::ClientId;
use crate::domain::loa::Loa;

/// Scopes eidgate understands; others are ignored (OIDC Core §3.1.2.1 allows it). Only
/// scopes that release something: no `email` (no e-mail claim is held for release).
pub const SUPPORTED_SCOPES: [&str; 5] = ["openid", "profile", "offline_access", "eidas", "eidas_legal"];

/// URN prefix of PAR request URIs (RFC 9126 §2.2).
pub const PAR_URN_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// `prompt` values (OIDC Core §3.1.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// `none`: no user interaction; fail with `login_required` if needed.
    pub none: bool,
    /// `login`: re-authenticate even with a session.
    pub login: bool,
    /// `consent`: ask for consent.
    pub consent: bool,
}

/// A validated authorization request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    /// The client.
    pub client_id: ClientId,
    /// Exactly one of the client's registered redirect URIs.
    pub redirect_uri: String,
    /// Supported scopes requested (always contains `openid`).
    pub scope: Vec<String>,
    /// Opaque RP state, returned unchanged.
    pub state: Option<String>,
    /// Nonce, copied into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Prompt flags.
    pub prompt: Prompt,
    /// Maximum authentication age in seconds.
    pub max_age: Option<u64>,
    /// The level the holder must reach (requested, raised to the client's floor).
    pub requested_loa: Option<Loa>,
    /// Claims requested individually (`claims` parameter), userinfo and id_token.
    pub claims: ClaimsRequest,
    /// `login_hint` (an identifier the login page may pre-fill).
    pub login_hint: Option<String>,
    /// `id_token_hint` (a previous ID token of ours).
    pub id_token_hint: Option<String>,
    /// The first language of `ui_locales` the pages speak (`en`, `lt`, `lv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_locales: Option<String>,
}

/// Individually requested claims, by destination (OIDC Core §5.5), and those asked for
/// as OpenID Connect for Identity Assurance `verified_claims` (DESIGN "Claims").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    /// Claims asked for in the userinfo response.
    pub userinfo: Vec<String>,
    /// Claims asked for in the ID token.
    pub id_token: Vec<String>,
    /// Claims asked for inside `verified_claims` in the userinfo response.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified_userinfo: Vec<String>,
    /// Claims asked for inside `verified_claims` in the ID token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified_id_token: Vec<String>,
}

impl ClaimsRequest {
    /// Every individually requested claim name, whatever its destination.
    pub fn all_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .userinfo
            .iter()
            .chain(&self.id_token)
            .chain(&self.verified_userinfo)
            .chain(&self.verified_id_token)
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// The claim names inside a `verified_claims` request (OIDC4IDA §5): the keys of its
/// `claims` member (an array of such requests is accepted too).
fn verified_names(request: &serde_json::Value) -> Vec<String> {
    let one = |v: &serde_json::Value| -> Vec<String> {
        v.get("claims")
            .and_then(|c| c.as_object())
            .map(|c| c.keys().take(64).cloned().collect())
            .unwrap_or_default()
    };
    match request {
        serde_json::Value::Array(list) => list.iter().take(8).flat_map(one).collect(),
        other => one(other),
    }
}

impl AuthRequest {
    /// Whether `scope` contains `name`.
    pub fn has_scope(&self, name: &str) -> bool {
        self.scope.iter().any(|s| s == name)
    }

    /// Whether the holder must choose a legal person to act for: scope `eidas_legal` or a
    /// legal-person `eidas:attribute:*` scope.
    pub fn acts_for_legal_person(&self) -> bool {
        self.scope
            .iter()
            .any(|s| s == "eidas_legal" || crate::domain::eidas_scopes::is_legal(s))
    }

    /// The ToClient error for this request.
    pub fn error(&self, error: OAuthError) -> AuthorizeError {
        AuthorizeError::ToClient {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
        }
    }
}

/// Step one: establish trust. Returns the client's redirect URI or an `Untrusted` error.
pub fn trusted_redirect(params: &Params, client: Option<&Client>) -> Result<String, AuthorizeError> {
    let client = client
        .ok_or_else(|| AuthorizeError::Untrusted(OAuthError::new(ErrorCode::InvalidClient, "unknown client_id")))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| AuthorizeError::Untrusted(OAuthError::invalid_request("redirect_uri is required")))?;
    if !client.has_redirect_uri(redirect_uri) {
        return Err(AuthorizeError::Untrusted(OAuthError::invalid_request(
            "redirect_uri is not registered for this client",
        )));
    }
    Ok(redirect_uri.to_owned())
}

/// Step two: validate everything else. `pushed` is true when the parameters came from
/// a pushed authorization request.
pub fn validate(
    params: &Params,
    client: &Client,
    redirect_uri: String,
    pushed: bool,
) -> Result<AuthRequest, AuthorizeError> {
    let state = params.get("state").map(str::to_owned);
    let fail = |error: OAuthError| AuthorizeError::ToClient {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
    };

    if params.has("request") {
        return Err(fail(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported; use PAR",
        )));
    }
    if params.has("request_uri") {
        return Err(fail(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "only PAR request_uri values are supported",
        )));
    }
    match params.get("response_type") {
        None => return Err(fail(OAuthError::invalid_request("response_type is required"))),
        Some("code") => {}
        Some(_) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )))
        }
    }
    match params.get("response_mode") {
        None | Some("query") => {}
        Some(_) => {
            return Err(fail(OAuthError::invalid_request(
                "only response_mode=query is supported",
            )))
        }
    }
    if client.require_par && !pushed {
        return Err(fail(OAuthError::invalid_request(
            "this client must use pushed authorization requests",
        )));
    }
    let requested: Vec<&str> = params
        .get("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if !requested.contains(&"openid") {
        return Err(fail(OAuthError::new(
            ErrorCode::InvalidScope,
            "scope must contain openid",
        )));
    }
    let mut scope: Vec<String> = Vec::new();
    for s in requested {
        let known = SUPPORTED_SCOPES.contains(&s) || crate::domain::eidas_scopes::claims_of(s).is_some();
        if known && !scope.iter().any(|x| x == s) {
            scope.push(s.to_owned());
        }
    }

    let code_challenge = match (params.get("code_challenge"), params.get("code_challenge_method")) {
        (None, None) if client.require_pkce => {
            return Err(fail(OAuthError::invalid_request(
                "PKCE code_challenge (S256) is required",
            )))
        }
        (None, None) => None,
        (Some(c), Some("S256")) if pkce::valid_challenge(c) => Some(c.to_owned()),
        (Some(_), Some("S256")) => return Err(fail(OAuthError::invalid_request("malformed code_challenge"))),
        (Some(_), None) => {
            return Err(fail(OAuthError::invalid_request(
                "code_challenge_method is required (plain is not supported)",
            )))
        }
        (_, Some(_)) => {
            return Err(fail(OAuthError::invalid_request(
                "only code_challenge_method=S256 is supported",
            )))
        }
    };

    let mut prompt = Prompt::default();
    for p in params.get("prompt").unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        match p {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => {}
            _ => return Err(fail(OAuthError::invalid_request("unknown prompt value"))),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(fail(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        )));
    }

    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| fail(OAuthError::invalid_request("max_age must be a non-negative integer")))?,
        ),
    };

    let (claims, essential_acr) = match params.get("claims") {
        None => (ClaimsRequest::default(), None),
        Some(text) => parse_claims(text).map_err(fail)?,
    };
    let voluntary_acr = params.get("acr_values").and_then(lowest_known_acr);
    let mut requested_loa = match essential_acr {
        Some(loa) => Some(loa),
        None => voluntary_acr,
    };
    if let Some(floor) = client.minimum_acr {
        requested_loa = Some(requested_loa.map_or(floor, |r| r.max(floor)));
    }

    Ok(AuthRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        scope,
        state: state.clone(),
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge,
        prompt,
        max_age,
        requested_loa,
        claims,
        login_hint: params.get("login_hint").map(str::to_owned),
        id_token_hint: params.get("id_token_hint").map(str::to_owned),
        ui_locales: params.get("ui_locales").and_then(page_language),
    })
}

/// The first language of `ui_locales` (OIDC Core §3.1.2.1) the pages speak.
fn page_language(ui_locales: &str) -> Option<String> {
    ui_locales
        .split(' ')
        .take(16)
        .filter_map(|tag| tag.split('-').next())
        .map(str::to_ascii_lowercase)
        .find(|l| crate::config::ui::LANGUAGES.contains(&l.as_str()))
}

/// eIDAS "minimum" semantics: of the values listed, the lowest known one is the level
/// the RP accepts. Unknown voluntary values are ignored.
fn lowest_known_acr(values: &str) -> Option<Loa> {
    values.split(' ').filter_map(Loa::from_acr).min()
}

/// Parses the `claims` parameter (OIDC Core §5.5). Returns the claim names per
/// destination and the LoA of an essential `acr` request. An essential `acr` with no
/// known value is an error, never "assume the highest".
fn parse_claims(text: &str) -> Result<(ClaimsRequest, Option<Loa>), OAuthError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| OAuthError::invalid_request("claims parameter is not valid JSON"))?;
    let object = value
        .as_object()
        .ok_or_else(|| OAuthError::invalid_request("claims parameter must be a JSON object"))?;
    let mut out = ClaimsRequest::default();
    let mut essential_acr = None;
    for (destination, members) in object {
        let names: Vec<String> = match members {
            serde_json::Value::Object(m) => m.keys().filter(|k| *k != "verified_claims").take(64).cloned().collect(),
            serde_json::Value::Null => Vec::new(),
            _ => return Err(OAuthError::invalid_request("claims members must be objects")),
        };
        let verified = members.get("verified_claims").map(verified_names).unwrap_or_default();
        match destination.as_str() {
            "userinfo" => {
                out.userinfo = names;
                out.verified_userinfo = verified;
            }
            "id_token" => {
                if let Some(acr) = members.get("acr") {
                    let essential = acr.get("essential").and_then(|e| e.as_bool()).unwrap_or(false);
                    let mut values: Vec<String> = Vec::new();
                    if let Some(v) = acr.get("value").and_then(|v| v.as_str()) {
                        values.push(v.to_owned());
                    }
                    if let Some(list) = acr.get("values").and_then(|v| v.as_array()) {
                        values.extend(list.iter().filter_map(|v| v.as_str()).map(str::to_owned));
                    }
                    let known = values.iter().filter_map(|v| Loa::from_acr(v)).min();
                    if essential && !values.is_empty() && known.is_none() {
                        return Err(OAuthError::invalid_request(
                            "no requested essential acr value is supported",
                        ));
                    }
                    if essential {
                        essential_acr = known;
                    }
                }
                out.id_token = names;
                out.verified_id_token = verified;
            }
            _ => {}
        }
    }
    Ok((out, essential_acr))
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

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn params(extra: &str) -> Params {
        let base = format!(
            "client_id=rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=openid+eidas+bogus&state=s1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
        );
        Params::parse(base.as_bytes(), 2048).unwrap()
    }

    fn run(extra: &str) -> Result<AuthRequest, AuthorizeError> {
        let p = params(extra);
        let c = client();
        let uri = trusted_redirect(&p, Some(&c))?;
        validate(&p, &c, uri, false)
    }

    fn code_of(e: AuthorizeError) -> ErrorCode {
        match e {
            AuthorizeError::ToClient { error, .. } => error.code,
            AuthorizeError::Untrusted(error) => panic!("untrusted: {error}"),
        }
    }

    #[test]
    fn a_good_request_validates_and_drops_unknown_scopes() {
        let r = run("").unwrap();
        assert_eq!(r.scope, vec!["openid", "eidas"]);
        assert_eq!(r.state.as_deref(), Some("s1"));
        assert_eq!(r.code_challenge.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn unknown_client_and_unregistered_redirect_are_untrusted() {
        let p = params("");
        assert!(matches!(trusted_redirect(&p, None), Err(AuthorizeError::Untrusted(_))));
        let p = Params::parse(b"client_id=rp&redirect_uri=https%3A%2F%2Fevil.example%2Fcb", 2048).unwrap();
        assert!(matches!(
            trusted_redirect(&p, Some(&client())),
            Err(AuthorizeError::Untrusted(_))
        ));
    }

    #[test]
    fn pkce_is_required_and_plain_is_refused() {
        let c = client();
        let p = Params::parse(
            b"client_id=rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=openid",
            2048,
        )
        .unwrap();
        let e = validate(&p, &c, "https://rp.example/cb".into(), false).unwrap_err();
        assert_eq!(code_of(e), ErrorCode::InvalidRequest);
        let p = Params::parse(
            format!("client_id=rp&redirect_uri=x&response_type=code&scope=openid&code_challenge={CHALLENGE}&code_challenge_method=plain").as_bytes(),
            2048,
        )
        .unwrap();
        assert_eq!(
            code_of(validate(&p, &c, "x".into(), false).unwrap_err()),
            ErrorCode::InvalidRequest
        );
        let p = Params::parse(
            format!("client_id=rp&redirect_uri=x&response_type=code&scope=openid&code_challenge={CHALLENGE}")
                .as_bytes(),
            2048,
        )
        .unwrap();
        assert_eq!(
            code_of(validate(&p, &c, "x".into(), false).unwrap_err()),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn implicit_and_hybrid_are_refused() {
        let c = client();
        for rt in ["token", "id_token", "code+id_token", "code+token"] {
            let p = Params::parse(format!("response_type={rt}&scope=openid").as_bytes(), 2048).unwrap();
            let e = validate(&p, &c, "x".into(), false).unwrap_err();
            assert_eq!(code_of(e), ErrorCode::UnsupportedResponseType, "{rt}");
        }
    }

    #[test]
    fn request_objects_and_foreign_request_uris_are_answered_as_unsupported() {
        assert_eq!(
            code_of(run("&request=eyJ").unwrap_err()),
            ErrorCode::RequestNotSupported
        );
        assert_eq!(
            code_of(run("&request_uri=https%3A%2F%2Fx").unwrap_err()),
            ErrorCode::RequestUriNotSupported
        );
    }

    #[test]
    fn acr_minimum_semantics_and_essential_unknown_values() {
        let r = run("&acr_values=http%3A%2F%2Feidas.europa.eu%2FLoA%2Fhigh+substantial").unwrap();
        assert_eq!(r.requested_loa, Some(Loa::Substantial));
        let claims = r#"{"id_token":{"acr":{"essential":true,"values":["http://eidas.europa.eu/LoA/high"]}}}"#;
        let r = run(&format!(
            "&claims={}",
            url::form_urlencoded::byte_serialize(claims.as_bytes()).collect::<String>()
        ))
        .unwrap();
        assert_eq!(r.requested_loa, Some(Loa::High));
        let bad = r#"{"id_token":{"acr":{"essential":true,"values":["urn:unknown"]}}}"#;
        let e = run(&format!(
            "&claims={}",
            url::form_urlencoded::byte_serialize(bad.as_bytes()).collect::<String>()
        ))
        .unwrap_err();
        assert_eq!(code_of(e), ErrorCode::InvalidRequest);
        assert_eq!(run("&acr_values=urn%3Aunknown").unwrap().requested_loa, None);
    }

    #[test]
    fn client_floor_raises_the_request() {
        let mut c = client();
        c.minimum_acr = Some(Loa::Substantial);
        let p = params("&acr_values=low");
        let r = validate(&p, &c, "https://rp.example/cb".into(), false).unwrap();
        assert_eq!(r.requested_loa, Some(Loa::Substantial));
    }

    #[test]
    fn prompt_none_alone_and_bad_max_age() {
        assert_eq!(
            code_of(run("&prompt=none+login").unwrap_err()),
            ErrorCode::InvalidRequest
        );
        assert_eq!(code_of(run("&max_age=-1").unwrap_err()), ErrorCode::InvalidRequest);
        assert!(run("&prompt=login&max_age=0").unwrap().prompt.login);
    }

    #[test]
    fn par_only_clients_refuse_front_channel_requests() {
        let mut c = client();
        c.require_par = true;
        let p = params("");
        assert_eq!(
            code_of(validate(&p, &c, "x".into(), false).unwrap_err()),
            ErrorCode::InvalidRequest
        );
        assert!(validate(&p, &c, "x".into(), true).is_ok());
    }
}
