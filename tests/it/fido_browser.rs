//! FIDO2 in a real browser (issue 5): headless Debian Chromium driven over the DevTools
//! protocol with a virtual CTAP2 authenticator (user verification on, resident keys)
//! activates an issued `fido` means through `/activate`, then logs in through `/login`
//! in an OIDC code flow started and finished by the `openidconnect` relying party. The ID
//! token says `acr` substantial (the means' level) and `amr` `hwk user mfa`: the virtual
//! authenticator's `packed` attestation chains to the configured attestation root.
//! Screenshots of the activation and login pages go to `target/test-artefacts/`.
//!
//! The attestation root: Chromium's virtual authenticator signs its attestation with the
//! example attestation key published in the FIDO U2F raw message format specification and
//! presents a self-signed "Batch Certificate" for it. The test issues a root certificate
//! for that public key and name, as an operator would install a vendor's attestation
//! root, and puts it on the allow list at high.

use std::path::PathBuf;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    PkceCodeChallenge, RedirectUrl, TokenResponse,
};
use serde_json::{json, Value};

use crate::support::cdp::Browser;
use crate::support::operators::{issue_kind, operator_token, provision_staff, register, state_of, ISSUER, REGISTRAR};
use crate::support::server::{query, TestServer, REDIRECT, SECRET};

const APPLICANT: &str = "LT/LT/48702020202";
const SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";

/// The U2F specification's example attestation private key (public test material), which
/// Chromium's virtual authenticator uses for its attestation signatures.
const U2F_EXAMPLE_ATTESTATION_KEY: &str = "f3fccc0d00d8031954f90864d43c247f4bf5f0665c6b50cc17749a27d1cf7664";

fn artefacts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-artefacts")
}

/// A root certificate for the virtual authenticator's attestation key and name.
fn chromium_attestation_root() -> String {
    use p256::pkcs8::EncodePrivateKey as _;
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
    let secret = hex::decode(U2F_EXAMPLE_ATTESTATION_KEY).unwrap();
    let key = p256::ecdsa::SigningKey::from_slice(&secret).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let pair = KeyPair::try_from(der.as_bytes()).unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, "Chromium");
    dn.push(DnType::OrganizationalUnitName, "Authenticator Attestation");
    dn.push(DnType::CommonName, "Batch Certificate");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.self_signed(&pair).unwrap().pem()
}

fn rp_http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Runs `script` on the page (setting form fields, submitting).
async fn act(page: &crate::support::cdp::Page<'_>, script: &str) {
    page.eval(&format!("(() => {{ {script}; return true; }})()")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_3_r_means_3_browser_activates_a_security_key_and_logs_in_with_hwk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("chromium-attestation-root.pem");
    std::fs::write(&root, chromium_attestation_root()).unwrap();
    // WebAuthn needs a domain as RP ID: the browser uses http://localhost:{port} (a
    // secure context), the RP talks to the issuer on 127.0.0.1.
    let server = TestServer::start_with(|c| {
        c.origin = Some(c.issuer.replace("127.0.0.1", "localhost"));
        c.webauthn.attestation = vec![eidgate::config::AttestationTrustConfig {
            loa: eidgate::domain::loa::Loa::High,
            ca_files: vec![root.clone()],
            aaguids: vec![],
        }];
    })
    .await;
    server.provision().await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    register(&server, &registrar, APPLICANT, "high").await;
    let issued = issue_kind(&server, &registrar, &issuer, APPLICANT, "fido", "substantial").await;
    let origin = server.app.config.origin().to_owned();

    let browser = Browser::launch().await;
    let page = browser.page().await;
    page.call("WebAuthn.enable", json!({"enableUI": false})).await;
    let authenticator = page
        .call(
            "WebAuthn.addVirtualAuthenticator",
            json!({"options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "automaticPresenceSimulation": true,
            }}),
        )
        .await;
    let authenticator_id = authenticator["authenticatorId"].as_str().unwrap().to_owned();

    // ---- activation through /activate -------------------------------------------------
    page.goto(&format!("{origin}/activate")).await;
    page.wait_for("document.getElementById('code-form') !== null").await;
    act(
        &page,
        &format!(
            "document.getElementById('identifier').value = '{APPLICANT}'; \
             document.getElementById('code').value = '{}'; \
             document.getElementById('code-form').requestSubmit()",
            issued.activation_code
        ),
    )
    .await;
    page.wait_for("!document.getElementById('step-accept').hidden").await;
    act(
        &page,
        "document.getElementById('accept-terms').checked = true; \
         document.getElementById('accept-advice').checked = true; \
         document.getElementById('accept-form').requestSubmit()",
    )
    .await;
    page.wait_for("!document.getElementById('step-fido').hidden").await;
    page.screenshot(&artefacts().join("fido-activation.png")).await;
    act(&page, "document.getElementById('fido-register').click()").await;
    page.wait_for("!document.getElementById('done').hidden").await;
    page.screenshot(&artefacts().join("fido-activation-done.png")).await;
    assert_eq!(state_of(&server, &issued.id).await, "active");
    let stored = server
        .app
        .store
        .fido_of_means(issued.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let attestation: Value = serde_json::from_str(&stored.attestation).unwrap();
    assert_eq!(attestation["format"], "packed", "{attestation}");
    assert_eq!(attestation["trusted_loa"], "high", "{attestation}");
    // The credential is resident on the virtual authenticator.
    let creds = page
        .call("WebAuthn.getCredentials", json!({"authenticatorId": authenticator_id}))
        .await;
    assert_eq!(creds["credentials"].as_array().unwrap().len(), 1, "{creds}");

    // ---- OIDC login through /login with the relying party ------------------------------
    let http = rp_http();
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(server.url.clone()).unwrap(), &http)
        .await
        .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("rp".into()),
        Some(ClientSecret::new(SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_auth_context_value(AuthenticationContextClass::new(SUBSTANTIAL.into()))
        .set_pkce_challenge(challenge)
        .url();
    let auth_url = auth_url.as_str().replacen(&server.url, &origin, 1);

    // The RP's callback is answered by the test, which reads the code from it.
    page.call(
        "Fetch.enable",
        json!({"patterns": [{"urlPattern": format!("{REDIRECT}*"), "requestStage": "Request"}]}),
    )
    .await;
    page.goto(&auth_url).await;
    page.wait_for("location.pathname === '/login' && !document.getElementById('method-webauthn').hidden")
        .await;
    page.screenshot(&artefacts().join("fido-login.png")).await;
    let mut events = browser.events();
    // Username-less: no identifier, the authenticator offers its passkey.
    act(&page, "document.getElementById('webauthn-login').click()").await;
    let paused = page.next_event(&mut events, "Fetch.requestPaused").await;
    let callback = url::Url::parse(paused["request"]["url"].as_str().unwrap()).unwrap();
    page.call(
        "Fetch.fulfillRequest",
        json!({"requestId": paused["requestId"], "responseCode": 200, "body": "T0s="}),
    )
    .await;
    assert_eq!(
        query(&callback, "state").as_deref(),
        Some(csrf.secret().as_str()),
        "{callback}"
    );
    let code = query(&callback, "code").unwrap_or_else(|| panic!("no code: {callback}"));
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.auth_context_ref().unwrap().as_str(), SUBSTANTIAL);
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    assert_eq!(amr, vec!["hwk", "user", "mfa"]);
    assert_eq!(claims.subject().as_str(), APPLICANT);
}
