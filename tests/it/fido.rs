//! The FIDO2 means without a browser (issue 5; DESIGN "FIDO2 login", "Activation API"):
//! a software authenticator (p256, hand-written CTAP2 CBOR) activates `fido` means and
//! logs in through the login API, and each negative of the issue is one test: UV flag
//! missing, wrong origin, wrong RP ID hash, replayed challenge, credential of another
//! means, suspended means, counter regression (→ suspended, audited, alert event),
//! tampered clientDataJSON, tampered signature, attestation not on the allow list when
//! high is required (→ `unmet_authentication_requirements`).

use serde_json::{json, Value};

use crate::support::authenticator::{b64, unb64, Attest, AttestationChain, SoftKey};
use crate::support::operators::{
    activation_start, activation_step, count_events, helpdesk_in_person, issue_kind, operator_token, provision_staff,
    register, state_of, HELPDESK, ISSUER, REGISTRAR,
};
use crate::support::problem::assert_problem;
use crate::support::server::{
    auth_params, authorize_url, browser, exchange, jwt_part, pkce, query, set_param, start_login, Answer, TestServer,
    REDIRECT,
};

/// Holders registered by these tests.
const ALICE: &str = "LT/LT/48001010011";
const BOB: &str = "LT/LT/38001010022";
const SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";
const HIGH: &str = "http://eidas.europa.eu/LoA/high";

/// A server with staff and two registered holders (proofed at high).
async fn server_with(adjust: impl FnOnce(&mut eidgate::config::Config)) -> TestServer {
    let server = TestServer::start_with(adjust).await;
    server.provision().await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    register(&server, &registrar, ALICE, "high").await;
    register(&server, &registrar, BOB, "high").await;
    server
}

/// Issues a `fido` means at `loa` to `holder` and activates it with `key`; returns the means id.
async fn activate(server: &TestServer, holder: &str, loa: &str, key: &mut SoftKey, attest: &Attest) -> String {
    let registrar = operator_token(server, REGISTRAR).await;
    let issuer = operator_token(server, ISSUER).await;
    let issued = issue_kind(server, &registrar, &issuer, holder, "fido", loa).await;
    let answer = register_key(server, holder, &issued.activation_code, key, attest).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["state"], "active");
    assert_eq!(answer.body["means"], issued.id.as_str());
    issued.id
}

/// Activation up to and including `webauthn/finish`.
async fn register_key(server: &TestServer, holder: &str, code: &str, key: &mut SoftKey, attest: &Attest) -> Answer {
    let started = activation_start(server, holder, code).await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_eq!(started.body["kind"], "fido");
    let activation = started.body["activation"].as_str().unwrap().to_owned();
    // The authenticator step is closed until the holder accepts.
    let early = activation_step(server, &activation, "webauthn/start", &json!({})).await;
    assert_eq!(early.status, 422, "{}", early.body);
    let accept = json!({
        "terms_version": started.body["terms_version"],
        "security_advice_version": started.body["security_advice_version"],
    });
    assert_eq!(
        activation_step(server, &activation, "accept", &accept).await.status,
        200
    );
    let options = activation_step(server, &activation, "webauthn/start", &json!({})).await;
    assert_eq!(options.status, 200, "{}", options.body);
    let pk = &options.body["publicKey"];
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required", "{pk}");
    assert_eq!(pk["attestation"], "direct", "{pk}");
    let response = key.register(&options.body, attest);
    activation_step(server, &activation, "webauthn/finish", &response).await
}

/// A login in progress.
struct Login {
    browser: reqwest::Client,
    flow: String,
    verifier: String,
}

async fn start(server: &TestServer, acr: &str) -> Login {
    let (verifier, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    set_param(&mut params, "acr_values", Some(acr));
    let browser = browser();
    let flow = start_login(&browser, &authorize_url(server, &params)).await;
    Login {
        browser,
        flow,
        verifier,
    }
}

async fn post(server: &TestServer, login: &Login, step: &str, body: &Value) -> Answer {
    let r = login
        .browser
        .post(server.at(&format!("/authn/flows/{}/{step}", login.flow)))
        .json(body)
        .send()
        .await
        .unwrap();
    Answer::from(r).await
}

/// `webauthn/start` (identifier-first when `identifier` is given).
async fn options(server: &TestServer, login: &Login, identifier: Option<&str>) -> Value {
    let body = match identifier {
        Some(i) => json!({ "identifier": i }),
        None => json!({}),
    };
    let answer = post(server, login, "webauthn/start", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["publicKey"]["userVerification"], "required");
    answer.body
}

/// The ID token of a login whose last step answered `done`.
async fn id_token(server: &TestServer, login: &Login, done: &Answer) -> Value {
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["next"], "done", "{}", done.body);
    let back = url::Url::parse(done.body["redirect_to"].as_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let tokens = exchange(server, "rp", &code, &login.verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    jwt_part(tokens.body["id_token"].as_str().unwrap(), 1)
}

/// Failed FIDO logins audited for `means` with `reason`.
async fn failures(server: &TestServer, means: &str, reason: &str) -> usize {
    crate::support::operators::audit_events(server, &format!("means:{means}"))
        .await
        .iter()
        .filter(|r| r.event.event_type == "login.failure" && r.event.data["reason"] == reason)
        .count()
}

/// A server where `chain`'s CA is on the allow list at high.
async fn server_trusting(chain: &AttestationChain) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("attestation-ca.pem");
    std::fs::write(&ca, &chain.ca_pem).unwrap();
    let server = server_with(|c| {
        c.webauthn.attestation = vec![eidgate::config::AttestationTrustConfig {
            loa: eidgate::domain::loa::Loa::High,
            ca_files: vec![ca.clone()],
            aaguids: vec![],
        }];
    })
    .await;
    (server, dir)
}

// ---- the positive paths ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_3_r_means_4_fido_activation_then_discoverable_and_identifier_first_logins() {
    let server = server_with(|_| {}).await;
    let mut key = SoftKey::new(server.app.config.origin());
    let means = activate(&server, ALICE, "high", &mut key, &Attest::None).await;
    let stored = server
        .app
        .store
        .fido_of_means(means.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.credential_id, b64(&key.credential_id));
    let attestation: Value = serde_json::from_str(&stored.attestation).unwrap();
    assert_eq!(attestation["format"], "none");
    assert_eq!(attestation["trusted_loa"], Value::Null);
    assert_eq!(
        count_events(&server, &format!("means:{means}"), "fido.credential_registered").await,
        1
    );

    // Username-less: no allow list, the authenticator picks its resident credential.
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, None).await;
    assert_eq!(opts["publicKey"]["allowCredentials"], json!([]), "{opts}");
    let done = post(&server, &login, "webauthn/finish", &key.assert(&opts)).await;
    let claims = id_token(&server, &login, &done).await;
    // Without a trusted attestation: proof of possession, at most substantial.
    assert_eq!(claims["acr"], SUBSTANTIAL, "{claims}");
    assert_eq!(claims["amr"], json!(["pop", "user", "mfa"]), "{claims}");

    // Identifier first: the holder's credential is listed.
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, Some(ALICE)).await;
    assert_eq!(
        opts["publicKey"]["allowCredentials"][0]["id"],
        b64(&key.credential_id),
        "{opts}"
    );
    let done = post(&server, &login, "webauthn/finish", &key.assert(&opts)).await;
    let claims = id_token(&server, &login, &done).await;
    assert_eq!(claims["amr"], json!(["pop", "user", "mfa"]), "{claims}");
    // The counter moved with each login.
    let stored_after = server
        .app
        .store
        .fido_of_means(means.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(stored_after.dynamic_state, stored.dynamic_state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_means_3_trusted_packed_attestation_gives_hwk_and_high_and_is_recorded() {
    let chain = AttestationChain::new("Test Attestation Root");
    let (server, _dir) = server_trusting(&chain).await;
    let mut key = SoftKey::new(server.app.config.origin());
    let means = activate(&server, ALICE, "high", &mut key, &Attest::Packed(chain)).await;
    let stored = server
        .app
        .store
        .fido_of_means(means.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let attestation: Value = serde_json::from_str(&stored.attestation).unwrap();
    assert_eq!(attestation["format"], "packed", "{attestation}");
    assert_eq!(attestation["kind"], "basic", "{attestation}");
    assert_eq!(attestation["aaguid"], "11111111-1111-1111-1111-111111111111");
    assert_eq!(attestation["trusted_loa"], "high", "{attestation}");
    let path = attestation["trust_path"].as_array().unwrap();
    assert!(
        path.iter()
            .any(|p| p.as_str().unwrap().contains("Test Attestation Root")),
        "{attestation}"
    );

    let login = start(&server, HIGH).await;
    let opts = options(&server, &login, Some(ALICE)).await;
    let done = post(&server, &login, "webauthn/finish", &key.assert(&opts)).await;
    let claims = id_token(&server, &login, &done).await;
    assert_eq!(claims["acr"], HIGH, "{claims}");
    assert_eq!(claims["amr"], json!(["hwk", "user", "mfa"]), "{claims}");
}

// ---- negatives --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_means_3_attestation_not_on_the_allow_list_when_high_is_required_is_unmet() {
    // Trusted: one CA; the key attests with a chain of another CA.
    let trusted = AttestationChain::new("Trusted Root");
    let (server, _dir) = server_trusting(&trusted).await;
    let other = AttestationChain::new("Unknown Vendor Root");
    let mut key = SoftKey::new(server.app.config.origin());
    let means = activate(&server, ALICE, "high", &mut key, &Attest::Packed(other)).await;
    let stored = server
        .app
        .store
        .fido_of_means(means.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let attestation: Value = serde_json::from_str(&stored.attestation).unwrap();
    assert_eq!(attestation["kind"], "basic");
    assert_eq!(attestation["trusted_loa"], Value::Null, "{attestation}");

    let login = start(&server, HIGH).await;
    let opts = options(&server, &login, Some(ALICE)).await;
    let done = post(&server, &login, "webauthn/finish", &key.assert(&opts)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let back = url::Url::parse(done.body["redirect_to"].as_str().unwrap()).unwrap();
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("unmet_authentication_requirements"),
        "{back}"
    );
    assert!(query(&back, "code").is_none());
    // The same key is good for substantial.
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, Some(ALICE)).await;
    let done = post(&server, &login, "webauthn/finish", &key.assert(&opts)).await;
    let claims = id_token(&server, &login, &done).await;
    assert_eq!(claims["amr"], json!(["pop", "user", "mfa"]), "{claims}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_means_4_user_verification_missing_is_refused_at_activation_and_login() {
    let server = server_with(|_| {}).await;
    // Registration without UV: refused, the means stays issued.
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    let issued = issue_kind(&server, &registrar, &issuer, BOB, "fido", "substantial").await;
    let mut lazy = SoftKey::new(server.app.config.origin());
    lazy.user_verified = false;
    let refused = register_key(&server, BOB, &issued.activation_code, &mut lazy, &Attest::None).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(state_of(&server, &issued.id).await, "issued");
    assert_eq!(
        count_events(&server, &format!("means:{}", issued.id), "fido.registration_failed").await,
        1
    );

    // Login without UV: refused.
    let mut key = SoftKey::new(server.app.config.origin());
    let means = activate(&server, ALICE, "substantial", &mut key, &Attest::None).await;
    key.user_verified = false;
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, None).await;
    let answer = post(&server, &login, "webauthn/finish", &key.assert(&opts)).await;
    assert_problem(&answer, 401, "invalid-credentials");
    assert_eq!(failures(&server, &means, "user_not_verified").await, 1);
}

/// One login whose assertion `mangle` breaks; the answer.
async fn broken_login(mangle: impl FnOnce(&mut SoftKey, &Value) -> Value) -> (TestServer, String, Answer) {
    let server = server_with(|_| {}).await;
    let mut key = SoftKey::new(server.app.config.origin());
    let means = activate(&server, ALICE, "substantial", &mut key, &Attest::None).await;
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, Some(ALICE)).await;
    let response = mangle(&mut key, &opts);
    let answer = post(&server, &login, "webauthn/finish", &response).await;
    (server, means, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_wrong_origin_is_refused() {
    let (server, means, answer) = broken_login(|key, opts| {
        key.origin = "https://phishing.example".into();
        key.assert(opts)
    })
    .await;
    assert_problem(&answer, 401, "invalid-credentials");
    assert_eq!(
        failures(&server, &means, "verification failed: origin mismatch").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_wrong_rp_id_hash_is_refused() {
    let (server, means, answer) = broken_login(|key, opts| {
        key.rp_id = "evil.example".into();
        key.assert(opts)
    })
    .await;
    assert_problem(&answer, 401, "invalid-credentials");
    assert_eq!(
        failures(&server, &means, "verification failed: RP ID hash mismatch").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_tampered_client_data_json_is_refused() {
    let (server, means, answer) = broken_login(|key, opts| {
        let mut response = key.assert(opts);
        let mut client: Value =
            serde_json::from_slice(&unb64(response["response"]["clientDataJSON"].as_str().unwrap())).unwrap();
        // Same challenge and origin, one more member: the signed hash no longer matches.
        client["tampered"] = json!(true);
        response["response"]["clientDataJSON"] = json!(b64(client.to_string().as_bytes()));
        response
    })
    .await;
    assert_problem(&answer, 401, "invalid-credentials");
    assert_eq!(
        failures(&server, &means, "verification failed: signature invalid").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_tampered_signature_is_refused() {
    let (server, means, answer) = broken_login(|key, opts| {
        let mut response = key.assert(opts);
        let mut sig = unb64(response["response"]["signature"].as_str().unwrap());
        let last = sig.len() - 1;
        sig[last] ^= 0x01;
        response["response"]["signature"] = json!(b64(&sig));
        response
    })
    .await;
    assert_problem(&answer, 401, "invalid-credentials");
    assert_eq!(
        failures(&server, &means, "verification failed: signature invalid").await,
        1
    );
    assert_eq!(state_of(&server, &means).await, "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_5_a_challenge_is_used_once_a_replayed_assertion_is_refused() {
    let server = server_with(|_| {}).await;
    let mut key = SoftKey::new(server.app.config.origin());
    activate(&server, ALICE, "substantial", &mut key, &Attest::None).await;
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, None).await;
    let response = key.assert(&opts);
    let first = post(&server, &login, "webauthn/finish", &response).await;
    assert_eq!(first.status, 200, "{}", first.body);
    // The same assertion again, in a new flow of the same browser (the old flow is done)
    // and in a flow whose own challenge it does not answer.
    let again = start(&server, SUBSTANTIAL).await;
    let replay = post(&server, &again, "webauthn/finish", &response).await;
    assert_problem(&replay, 401, "invalid-credentials");
    let _fresh = options(&server, &again, None).await;
    let replay = post(&server, &again, "webauthn/finish", &response).await;
    assert_problem(&replay, 401, "invalid-credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_an_assertion_by_the_credential_of_another_means_is_refused() {
    let server = server_with(|_| {}).await;
    let mut alice = SoftKey::new(server.app.config.origin());
    let mut bob = SoftKey::new(server.app.config.origin());
    let alice_means = activate(&server, ALICE, "substantial", &mut alice, &Attest::None).await;
    activate(&server, BOB, "substantial", &mut bob, &Attest::None).await;
    // Identifier first for Alice; Bob's key answers.
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, Some(ALICE)).await;
    let answer = post(&server, &login, "webauthn/finish", &bob.assert(&opts)).await;
    assert_problem(&answer, 401, "invalid-credentials");
    // Bob's key presenting Alice's user handle (a discoverable login) is refused too.
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, None).await;
    bob.user_handle = alice.user_handle.clone();
    let answer = post(&server, &login, "webauthn/finish", &bob.assert(&opts)).await;
    assert_problem(&answer, 401, "invalid-credentials");
    assert_eq!(state_of(&server, &alice_means).await, "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_1_the_credential_of_a_suspended_means_is_refused() {
    let server = server_with(|_| {}).await;
    let mut key = SoftKey::new(server.app.config.origin());
    let means = activate(&server, ALICE, "substantial", &mut key, &Attest::None).await;
    let helpdesk = operator_token(&server, HELPDESK).await;
    let suspended = helpdesk_in_person(&server, &helpdesk, &means, "suspend").await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    // Identifier-first lists only credentials of active means (issue 19): a decoy here,
    // so the answer does not tell the means exists.
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, Some(ALICE)).await;
    let listed = opts["publicKey"]["allowCredentials"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{opts}");
    assert_ne!(listed[0]["id"], b64(&key.credential_id));
    // Username-less, the holder proves possession first and is then told.
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, None).await;
    let answer = post(&server, &login, "webauthn/finish", &key.assert(&opts)).await;
    assert_problem(&answer, 403, "means-not-active");
    assert_eq!(failures(&server, &means, "means_not_active").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_a_counter_regression_suspends_the_means_audits_and_alerts() {
    let server = server_with(|_| {}).await;
    let mut key = SoftKey::new(server.app.config.origin());
    let means = activate(&server, ALICE, "substantial", &mut key, &Attest::None).await;
    key.counter = 10;
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, None).await;
    let ok = post(&server, &login, "webauthn/finish", &key.assert(&opts)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // A clone of the key, behind the original: its counter does not increase.
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, None).await;
    let clone = post(&server, &login, "webauthn/finish", &key.assert_with_counter(&opts, 5)).await;
    assert_problem(&clone, 403, "means-not-active");
    assert_eq!(state_of(&server, &means).await, "suspended");
    assert_eq!(
        count_events(&server, &format!("means:{means}"), "authn.counter_regression").await,
        1
    );
    assert_eq!(failures(&server, &means, "counter_regression").await, 1);
    // The original key no longer works either, until the helpdesk reactivates.
    let login = start(&server, SUBSTANTIAL).await;
    let opts = options(&server, &login, None).await;
    let after = post(&server, &login, "webauthn/finish", &key.assert(&opts)).await;
    assert_problem(&after, 403, "means-not-active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_means_3_a_forged_attestation_signature_is_refused_at_activation() {
    let chain = AttestationChain::new("Test Attestation Root");
    let (server, _dir) = server_trusting(&chain).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    let issued = issue_kind(&server, &registrar, &issuer, ALICE, "fido", "high").await;
    // The chain's leaf key signs, but over other data: the statement does not verify.
    let mut key = SoftKey::new(server.app.config.origin());
    let forged = AttestationChain {
        ca_pem: chain.ca_pem.clone(),
        leaf_der: chain.leaf_der.clone(),
        leaf_key: p256::ecdsa::SigningKey::random(&mut rand::thread_rng()),
    };
    let answer = register_key(
        &server,
        ALICE,
        &issued.activation_code,
        &mut key,
        &Attest::Packed(forged),
    )
    .await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(state_of(&server, &issued.id).await, "issued");
    let events = crate::support::operators::audit_events(&server, &format!("means:{}", issued.id)).await;
    assert!(
        events.iter().any(|r| r.event.event_type == "fido.registration_failed"
            && r.event.data["reason"]
                .as_str()
                .unwrap()
                .contains("attestation signature invalid")),
        "{events:?}"
    );
}
