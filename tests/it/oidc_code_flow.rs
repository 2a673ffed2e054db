//! A real relying party (the `openidconnect` crate) against the real server: discovery,
//! code flow with PKCE through the login API, token exchange, ID token validated against
//! the JWKS that the HSM key produced, then userinfo, refresh, introspection, revocation.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, RevocationUrl, Scope, TokenIntrospectionResponse, TokenResponse,
};

use crate::support::server::{browser, login, query, TestServer, REDIRECT, SECRET};

fn rp_http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_1_r_data_1_real_rp_completes_code_flow_and_uses_every_token_endpoint() {
    let server = TestServer::start().await;
    server.provision().await;
    let http = rp_http();

    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(server.url.clone()).unwrap(), &http)
        .await
        .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("rp".into()),
        Some(ClientSecret::new(SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
    .set_introspection_url(IntrospectionUrl::new(server.at("/introspect")).unwrap())
    .set_revocation_url(RevocationUrl::new(server.at("/revoke")).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("eidas".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = browser();
    let back = login(&server, &browser, auth_url.as_str()).await;
    assert!(back.as_str().starts_with(REDIRECT));
    assert_eq!(query(&back, "state").as_deref(), Some(csrf.secret().as_str()));
    assert_eq!(
        query(&back, "iss").as_deref(),
        Some(server.url.as_str()),
        "RFC 9207 iss"
    );
    let code = query(&back, "code").unwrap();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    // Signature checked against /jwks.json (the HSM key), plus iss, aud, exp, nonce.
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).unwrap();
    assert_eq!(claims.subject().as_str(), "LT/LT/38001085718");
    assert_eq!(
        claims.auth_context_ref().unwrap().as_str(),
        "http://eidas.europa.eu/LoA/low"
    );
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    assert_eq!(amr, vec!["pwd"]);
    assert!(claims.auth_time().is_some());
    let header = id_token.to_string();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            header.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].as_str().is_some());

    // userinfo: the eIDAS minimum data set, limited to the client's allow list.
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), "LT/LT/38001085718");
    let raw: serde_json::Value = http
        .get(server.at("/userinfo"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["given_name"], "Jonas");
    assert_eq!(raw["person_identifier"], "LT/LT/38001085718");
    assert_eq!(raw["birthdate"], "1980-01-08");
    assert!(raw.get("gender").is_none(), "gender is not on the allow list: {raw}");

    // introspection of the access token.
    let intro = client
        .introspect(tokens.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(intro.active());

    // refresh with rotation: the old refresh token is dead afterwards.
    let refresh = tokens.refresh_token().unwrap().clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let new_refresh = refreshed.refresh_token().unwrap().clone();
    assert_ne!(new_refresh.secret(), refresh.secret());
    refreshed
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .unwrap();

    // revocation of the new refresh token ends the grant: its access token stops too.
    // (The oauth2 crate refuses revocation over plain http, so this call is made by hand.)
    let revoked = http
        .post(server.at("/revoke"))
        .basic_auth("rp", Some(SECRET))
        .form(&[
            ("token", new_refresh.secret().as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(client
        .exchange_refresh_token(&new_refresh)
        .unwrap()
        .request_async(&http)
        .await
        .is_err());
    let intro = client
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(!intro.active(), "access token of a revoked grant must be inactive");
    let denied = http
        .get(server.at("/userinfo"))
        .bearer_auth(refreshed.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
}
