//! The eIDAS-Node proxy profile: the node's SpecificProxyService, played here by the
//! `openidconnect` crate, asks for attributes with `eidas:attribute:*` scopes and for its
//! level with `acr_values` of eIDAS LoA URIs. It gets exactly the attributes it asked for
//! that its allow list permits, in the ID token and at userinfo (R-DATA-4); a level the
//! holder cannot reach ends with `unmet_authentication_requirements`, and a node that
//! names no eIDAS level is refused.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};
use serde_json::{json, Value};

use crate::support::server::{browser, client_entry, jwt_part, login, query, TestServer, REDIRECT, SECRET};

const NODE: &str = "eidas-node";

/// Person claims (not protocol claims) in a claim set.
fn person_claims(claims: &Value) -> Vec<String> {
    let mut names: Vec<String> = claims
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| eidgate::domain::claims::EIDAS_NATURAL.contains(&k.as_str()) && *k != "sub")
        .cloned()
        .collect();
    names.sort();
    names
}

async fn node_server() -> TestServer {
    let server = TestServer::start().await;
    server.provision().await;
    // Allowed: identifier and names; not the date of birth, not gender.
    server
        .import(json!({ "clients": [client_entry(NODE, json!({
            "eidas_node": true,
            "allowed_claims": ["person_identifier", "given_name", "family_name"],
        }))] }))
        .await;
    server
}

fn rp_http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_data_4_eidas_node_gets_exactly_the_allowed_attributes_it_asked_for() {
    let server = node_server().await;
    let http = rp_http();
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(server.url.clone()).unwrap(), &http)
        .await
        .unwrap();
    let scopes: Vec<String> = metadata
        .scopes_supported()
        .unwrap()
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    for s in ["eidas:attribute:first_name", "eidas:attribute:legal_person_identifier"] {
        assert!(scopes.iter().any(|x| x == s), "{s} in {scopes:?}");
    }
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(NODE.into()),
        Some(ClientSecret::new(SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        // first_name, family_name and person_identifier are allowed; date_of_birth is not.
        .add_scope(Scope::new("eidas:attribute:first_name".into()))
        .add_scope(Scope::new("eidas:attribute:family_name".into()))
        .add_scope(Scope::new("eidas:attribute:date_of_birth".into()))
        .add_scope(Scope::new("eidas:attribute:person_identifier".into()))
        .add_extra_param("acr_values", "http://eidas.europa.eu/LoA/low")
        .set_pkce_challenge(challenge)
        .url();
    let back = login(&server, &browser(), auth_url.as_str()).await;
    let code = query(&back, "code").unwrap_or_else(|| panic!("{back}"));
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    // Signature against the JWKS, iss, aud, exp, nonce: as the proxy service checks them.
    let verified = id_token.claims(&client.id_token_verifier(), &nonce).unwrap();
    assert_eq!(
        verified.auth_context_ref().unwrap().as_str(),
        "http://eidas.europa.eu/LoA/low"
    );
    assert_eq!(verified.given_name().unwrap().get(None).unwrap().as_str(), "Jonas");
    let raw = jwt_part(&id_token.to_string(), 1);
    assert_eq!(
        person_claims(&raw),
        vec!["family_name", "given_name", "person_identifier"],
        "ID token: {raw}"
    );
    assert_eq!(raw["person_identifier"], "LT/LT/38001085718");

    let info: Value = http
        .get(server.at("/userinfo"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        person_claims(&info),
        vec!["family_name", "given_name", "person_identifier"],
        "userinfo: {info}"
    );
    assert_eq!(info["family_name"], "Jonaitis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eidas_node_level_above_the_means_is_unmet_and_no_level_is_refused() {
    let server = node_server().await;
    let (_, challenge) = crate::support::server::pkce();
    let mut params = crate::support::server::auth_params(NODE, &challenge);
    crate::support::server::set_param(&mut params, "scope", Some("openid eidas:attribute:first_name"));
    // The holder's only means is a password (low).
    let mut high = params.clone();
    crate::support::server::set_param(&mut high, "acr_values", Some("http://eidas.europa.eu/LoA/substantial"));
    let back = login(
        &server,
        &browser(),
        &crate::support::server::authorize_url(&server, &high),
    )
    .await;
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("unmet_authentication_requirements"),
        "{back}"
    );
    assert_eq!(query(&back, "code"), None);
    // No acr_values, or short names instead of the eIDAS URIs: refused before any login.
    for acr in [None, Some("substantial")] {
        let mut p = params.clone();
        crate::support::server::set_param(&mut p, "acr_values", acr);
        let r = browser()
            .get(crate::support::server::authorize_url(&server, &p))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let to = url::Url::parse(&crate::support::server::location(&r).unwrap()).unwrap();
        assert!(to.as_str().starts_with(REDIRECT), "{to}");
        assert_eq!(query(&to, "error").as_deref(), Some("invalid_request"), "{acr:?}");
    }
}
