//! The smartcard means end to end (issue 4; DESIGN "Smartcard login", "Activation API"):
//! a card stand-in on its own SoftHSM token (the `eidgate card` CLI in its own process and
//! `SOFTHSM2_CONF`) is personalised by our CA in the server's HSM, activated, and logs in
//! through the OIDC code flow at LoA high. Every refusal of the issue is its own test; each
//! one checks the generic answer, the exact audit reason, and that the challenge was
//! consumed (the good token for it is then refused as a replay).

mod ocsp;
mod policy;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use eidgate::config::Config;
use serde_json::{json, Value};
use tempfile::TempDir;
use x509_parser::prelude::FromDer;

use crate::support::operators::{
    activation_start, activation_step, apply, approve, helpdesk_in_person, operator_token, post, provision_staff,
    register, HELPDESK, ISSUER, REGISTRAR,
};
use crate::support::server::{
    auth_params, authorize_url, browser, client_entry, exchange, jwt_part, pkce, query, set_param, start_login,
    TestServer, REDIRECT,
};

/// The card holder registered in these tests.
pub(crate) const CARD_HOLDER: &str = "LT/LT/48707070707";
/// The card PIN.
const PIN: &str = "card-pin-4321";

static NEXT_CARD: AtomicU32 = AtomicU32::new(1);

/// A card stand-in: its own token directory and `SOFTHSM2_CONF`, used through the CLI.
pub(crate) struct CardStandIn {
    dir: TempDir,
    conf: PathBuf,
    label: String,
}

impl CardStandIn {
    pub(crate) async fn new(curve: &str) -> CardStandIn {
        let dir = tempfile::Builder::new()
            .prefix("card-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(&conf, eidgate::hsm::init::render_softhsm_conf(&tokens)).unwrap();
        let card = CardStandIn {
            label: format!("card-{}", NEXT_CARD.fetch_add(1, Ordering::Relaxed)),
            dir,
            conf,
        };
        card.run(&["init", "--curve", curve]).await;
        card
    }

    async fn output(&self, args: &[&str]) -> std::process::Output {
        self.output_with_pin(args, PIN).await
    }

    async fn output_with_pin(&self, args: &[&str], pin: &str) -> std::process::Output {
        let module = crate::support::softhsm::module();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_eidgate"));
        command
            .env("SOFTHSM2_CONF", &self.conf)
            .env("EIDGATE_DATA_DIR", self.dir.path())
            .env("EIDGATE_LOG", "warn")
            .env("EIDGATE_CARD_PIN", pin)
            .env_remove("EIDGATE_CONFIG")
            .arg("card")
            .args(args)
            .arg("--token")
            .arg(&self.label)
            .arg("--module")
            .arg(module);
        command.output().await.unwrap()
    }

    async fn run(&self, args: &[&str]) -> String {
        let out = self.output(args).await;
        assert!(
            out.status.success(),
            "eidgate card {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    async fn csr(&self) -> String {
        self.run(&["csr"]).await
    }

    async fn store(&self, certificate_pem: &str) {
        let file = self.dir.path().join("cert.pem");
        std::fs::write(&file, certificate_pem).unwrap();
        self.run(&["store-certificate", file.to_str().unwrap()]).await;
    }

    pub(crate) async fn sign(&self, origin: &str, nonce: &str) -> String {
        self.run(&["sign-challenge", "--origin", origin, "--nonce", nonce])
            .await
            .trim()
            .to_owned()
    }

    async fn sign_as(&self, origin: &str, nonce: &str, algorithm: &str) -> String {
        self.run(&[
            "sign-challenge",
            "--origin",
            origin,
            "--nonce",
            nonce,
            "--algorithm",
            algorithm,
        ])
        .await
        .trim()
        .to_owned()
    }
}

/// Operators' tokens.
pub(crate) struct Officers {
    registrar: String,
    issuer: String,
    helpdesk: String,
    /// Issuance officer who neither registered nor approved the means (R-ISS-3).
    personaliser: String,
}

pub(crate) async fn staffed(adjust: impl FnOnce(&mut Config)) -> (TestServer, Officers) {
    let server = TestServer::start_with(adjust).await;
    provision_staff(&server).await;
    let officers = Officers {
        registrar: operator_token(&server, REGISTRAR).await,
        issuer: operator_token(&server, ISSUER).await,
        helpdesk: operator_token(&server, HELPDESK).await,
        personaliser: operator_token(&server, crate::support::operators::REGISTRAR2).await,
    };
    register(&server, &officers.registrar, CARD_HOLDER, "high").await;
    (server, officers)
}

/// Applies and approves a smartcard means of `CARD_HOLDER`: (means id, activation code).
pub(crate) async fn approved_card_means(server: &TestServer, officers: &Officers) -> (String, String) {
    let applied = apply(server, &officers.registrar, CARD_HOLDER, "smartcard", "high").await;
    assert_eq!(applied.status, 201, "{}", applied.body);
    let id = applied.body["id"].as_str().unwrap().to_owned();
    let approved = approve(server, &officers.issuer, &id).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let code = crate::support::operators::delivered(server, &id, "activation_code");
    (id, code)
}

/// Personalises `card` for means `id` (CSR made on the card, certificate from our CA
/// stored back on the card); returns the issuance answer.
pub(crate) async fn personalise(server: &TestServer, officers: &Officers, id: &str, card: &CardStandIn) -> Value {
    let csr = card.csr().await;
    let answer = post(
        server,
        &format!("/admin/v1/means/{id}/certificate"),
        &officers.personaliser,
        &json!({ "csr": csr }),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    card.store(answer.body["certificate_pem"].as_str().unwrap()).await;
    answer.body
}

/// Activation with the card: start with the code, accept, challenge, token.
async fn activate_card(server: &TestServer, code: &str, card: &CardStandIn) -> Value {
    let started = activation_start(server, CARD_HOLDER, code).await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_eq!(started.body["kind"], "smartcard");
    let activation = started.body["activation"].as_str().unwrap().to_owned();
    let accept = json!({
        "terms_version": started.body["terms_version"],
        "security_advice_version": started.body["security_advice_version"],
    });
    assert_eq!(
        activation_step(server, &activation, "accept", &accept).await.status,
        200
    );
    let challenge = activation_step(server, &activation, "smartcard/challenge", &json!({})).await;
    assert_eq!(challenge.status, 200, "{}", challenge.body);
    let token = card.sign(&server.url, challenge.body["nonce"].as_str().unwrap()).await;
    let done = post_raw(
        server,
        &format!("/activation/{activation}/smartcard/token"),
        None,
        &token,
    )
    .await;
    assert_eq!(done.0, 200, "{}", done.1);
    done.1
}

/// A card issued end to end: applied, approved, personalised, activated. (means id, card)
async fn active_card(server: &TestServer, officers: &Officers) -> (String, CardStandIn) {
    let (id, code) = approved_card_means(server, officers).await;
    let card = CardStandIn::new("p256").await;
    personalise(server, officers, &id, &card).await;
    let activated = activate_card(server, &code, &card).await;
    assert_eq!(activated["state"], "active");
    assert_eq!(activated["means"], id.as_str());
    (id, card)
}

pub(crate) async fn post_raw(
    server: &TestServer,
    path: &str,
    browser: Option<&reqwest::Client>,
    body: &str,
) -> (u16, Value) {
    let client = match browser {
        Some(b) => b.clone(),
        None => crate::support::server::http(),
    };
    let r = client
        .post(server.at(path))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A login flow of the fixture RP `rp` (optionally asking `acr_values`) in a fresh browser.
pub(crate) struct Login {
    browser: reqwest::Client,
    flow: String,
    verifier: String,
}

/// One card login attempt on a fresh flow of client `rp`: challenge, the card's token
/// over our origin, and the server's answer.
async fn card_attempt(server: &TestServer, card: &CardStandIn) -> (Login, String, (u16, Value)) {
    let login = start(server, "rp", None).await;
    let nonce = login.challenge(server).await;
    let token = card.sign(&server.url, &nonce).await;
    let answer = login.token(server, &token).await;
    (login, token, answer)
}

pub(crate) async fn start(server: &TestServer, client: &str, acr_values: Option<&str>) -> Login {
    let (verifier, challenge) = pkce();
    let mut params = auth_params(client, &challenge);
    set_param(&mut params, "acr_values", acr_values);
    let browser = browser();
    let flow = start_login(&browser, &authorize_url(server, &params)).await;
    Login {
        browser,
        flow,
        verifier,
    }
}

impl Login {
    pub(crate) async fn challenge(&self, server: &TestServer) -> String {
        let (status, body) = post_raw(
            server,
            &format!("/authn/flows/{}/smartcard/challenge", self.flow),
            Some(&self.browser),
            "{}",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let nonce = body["nonce"].as_str().unwrap().to_owned();
        assert_eq!(STANDARD.decode(&nonce).unwrap().len(), 32, "32 random bytes");
        nonce
    }

    pub(crate) async fn token(&self, server: &TestServer, token: &str) -> (u16, Value) {
        post_raw(
            server,
            &format!("/authn/flows/{}/smartcard/token", self.flow),
            Some(&self.browser),
            token,
        )
        .await
    }
}

/// The reason of the newest smartcard `login.failure` record.
async fn last_reason(server: &TestServer) -> String {
    let records = server.app.store.audit_after(0, 1_000_000).await.unwrap();
    records
        .iter()
        .rev()
        .find(|r| r.event.event_type == "login.failure" && r.event.data["method"] == "smartcard")
        .map(|r| r.event.data["reason"].as_str().unwrap_or("").to_owned())
        .unwrap_or_default()
}

/// Asserts the generic refusal with audit reason `reason`, then that the challenge is
/// gone: the good token for it is refused as a replay.
async fn assert_refused(server: &TestServer, login: &Login, answer: (u16, Value), reason: &str, good: &str) {
    assert_eq!(answer.0, 401, "{}", answer.1);
    assert_eq!(
        answer.1["type"].as_str().unwrap_or(""),
        answer_type(),
        "one generic error"
    );
    assert_eq!(last_reason(server).await, reason);
    let again = login.token(server, good).await;
    assert_eq!(again.0, 401, "{}", again.1);
    assert_eq!(
        last_reason(server).await,
        "nonce_replayed",
        "the challenge was consumed"
    );
}

fn answer_type() -> String {
    "urn:eidgate:problem:invalid-credentials".into()
}

async fn problem_type_base(server: &TestServer) -> String {
    // The problem type URI of a 401 from the password step, to compare against.
    let login = start(server, "rp", None).await;
    let r = login
        .browser
        .post(server.at(&format!("/authn/flows/{}/password", login.flow)))
        .json(&json!({"identifier": "LT/LT/00000000000", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    body["type"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn r_means_3_card_issued_end_to_end_logs_in_at_high_with_sc_hwk_pin() {
    let (server, officers) = staffed(|_| {}).await;
    let (id, code) = approved_card_means(&server, &officers).await;
    let card = CardStandIn::new("p256").await;
    let issued = personalise(&server, &officers, &id, &card).await;
    // The certificate: our CA, the person's identifier, digitalSignature, clientAuth, CRL URL.
    let pem = issued["certificate_pem"].as_str().unwrap();
    let der = eidgate::smartcard::pem_certificates(pem).remove(0);
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
    assert!(
        cert.subject().to_string().contains("PNOLT-48707070707"),
        "{}",
        cert.subject()
    );
    assert!(cert.key_usage().unwrap().unwrap().value.digital_signature());
    assert!(cert.extended_key_usage().unwrap().unwrap().value.client_auth);
    assert_eq!(
        eidgate::smartcard::x509::serial_hex(cert.raw_serial()),
        issued["serial"].as_str().unwrap()
    );
    assert!(cert.raw_serial().len() >= 16, "random 128-bit serial");
    let ca = crate::support::server::http()
        .get(server.at("/smartcard/ca.crt"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (_, ca) = x509_parser::certificate::X509Certificate::from_der(&ca).unwrap();
    cert.verify_signature(Some(ca.public_key())).unwrap();
    assert_eq!(cert.issuer(), ca.subject());
    let ext = format!("{:?}", cert.extensions());
    assert!(
        ext.contains(&format!("{}/smartcard/crl", server.url)),
        "CRL distribution point"
    );
    // The serial is recorded with the means.
    let recorded = server
        .app
        .store
        .card_certificates_of(id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].serial, issued["serial"].as_str().unwrap());
    // A second CSR for the same means is refused.
    let again = post(
        &server,
        &format!("/admin/v1/means/{id}/certificate"),
        &officers.personaliser,
        &json!({ "csr": card.csr().await }),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.body);

    let activated = activate_card(&server, &code, &card).await;
    assert_eq!(activated["state"], "active");

    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let token = card.sign(&server.url, &nonce).await;
    let (status, body) = login.token(&server, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done", "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(REDIRECT));
    let code = query(&back, "code").unwrap();
    let tokens = exchange(&server, "rp", &code, &login.verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let claims = jwt_part(tokens.body["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["acr"], "http://eidas.europa.eu/LoA/high", "{claims}");
    let amr: Vec<&str> = claims["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for method in ["sc", "hwk", "pin", "mfa"] {
        assert!(amr.contains(&method), "{amr:?}");
    }
}

#[tokio::test]
async fn r_iss_2_card_activation_needs_the_card_of_the_means() {
    let (server, officers) = staffed(|_| {}).await;
    let (id, code) = approved_card_means(&server, &officers).await;
    let card = CardStandIn::new("p256").await;
    personalise(&server, &officers, &id, &card).await;
    // Another card with a copy of the certificate but its own key cannot activate.
    let thief = CardStandIn::new("p256").await;
    let cert = server
        .app
        .store
        .card_certificates_of(id.parse().unwrap())
        .await
        .unwrap();
    thief.store(&eidgate::smartcard::certificate_pem(&cert[0].der)).await;
    let started = activation_start(&server, CARD_HOLDER, &code).await;
    let activation = started.body["activation"].as_str().unwrap().to_owned();
    let accept = json!({
        "terms_version": started.body["terms_version"],
        "security_advice_version": started.body["security_advice_version"],
    });
    activation_step(&server, &activation, "accept", &accept).await;
    let challenge = activation_step(&server, &activation, "smartcard/challenge", &json!({})).await;
    let forged = thief.sign(&server.url, challenge.body["nonce"].as_str().unwrap()).await;
    let refused = post_raw(
        &server,
        &format!("/activation/{activation}/smartcard/token"),
        None,
        &forged,
    )
    .await;
    assert_eq!(refused.0, 401, "{}", refused.1);
    let records = server
        .app
        .store
        .audit_by_subject(&format!("means:{id}"), 1000)
        .await
        .unwrap();
    let failure = records
        .iter()
        .rev()
        .find(|r| r.event.event_type == "activation.failed")
        .unwrap();
    assert_eq!(failure.event.data["reason"], "signature_invalid");
    assert_eq!(crate::support::operators::state_of(&server, &id).await, "issued");
    // The real card activates.
    let challenge = activation_step(&server, &activation, "smartcard/challenge", &json!({})).await;
    let token = card.sign(&server.url, challenge.body["nonce"].as_str().unwrap()).await;
    let done = post_raw(
        &server,
        &format!("/activation/{activation}/smartcard/token"),
        None,
        &token,
    )
    .await;
    assert_eq!(done.0, 200, "{}", done.1);
    assert_eq!(crate::support::operators::state_of(&server, &id).await, "active");
}

#[tokio::test]
async fn loa_request_high_with_a_card_gives_acr_high() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "rp", Some("http://eidas.europa.eu/LoA/high")).await;
    let info: Value = login
        .browser
        .get(server.at(&format!("/authn/flows/{}", login.flow)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["requested_loa"], "high");
    assert!(
        info["methods"].as_array().unwrap().contains(&json!("smartcard")),
        "{info}"
    );
    let nonce = login.challenge(&server).await;
    let (status, body) = login.token(&server, &card.sign(&server.url, &nonce).await).await;
    assert_eq!(status, 200, "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    let tokens = exchange(&server, "rp", &query(&back, "code").unwrap(), &login.verifier).await;
    let claims = jwt_part(tokens.body["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["acr"], "http://eidas.europa.eu/LoA/high");
}

#[tokio::test]
async fn r_means_4_the_card_key_signs_only_after_the_holders_pin() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let args = [
        "sign-challenge",
        "--origin",
        server.url.as_str(),
        "--nonce",
        nonce.as_str(),
    ];
    let wrong = card.output_with_pin(&args, "not-the-pin").await;
    assert!(!wrong.status.success(), "a wrong PIN must not sign");
    assert!(wrong.stdout.is_empty());
    let (status, body) = login.token(&server, &card.sign(&server.url, &nonce).await).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn r_auth_5_replayed_nonce_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    // A client that asks for consent keeps the flow open after the ceremony.
    server
        .import(json!({"clients": [client_entry("asks", json!({"consent": "always"}))]}))
        .await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "asks", None).await;
    let nonce = login.challenge(&server).await;
    let token = card.sign(&server.url, &nonce).await;
    let (status, body) = login.token(&server, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "consent", "{body}");
    let replay = login.token(&server, &token).await;
    assert_eq!(replay.0, 401, "{}", replay.1);
    assert_eq!(last_reason(&server).await, "nonce_replayed");
}

#[tokio::test]
async fn r_auth_5_expired_nonce_is_refused() {
    let (server, officers) = staffed(|c| c.smartcard.nonce_ttl = std::time::Duration::from_secs(60)).await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let token = card.sign(&server.url, &nonce).await;
    server.app.clock.advance(61);
    let answer = login.token(&server, &token).await;
    assert_refused(&server, &login, answer, "nonce_expired", &token).await;
}

#[tokio::test]
async fn r_auth_5_nonce_from_another_flow_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let first = start(&server, "rp", None).await;
    let other = start(&server, "rp", None).await;
    let first_nonce = first.challenge(&server).await;
    let other_nonce = other.challenge(&server).await;
    let token_for_first = card.sign(&server.url, &first_nonce).await;
    let answer = other.token(&server, &token_for_first).await;
    let good = card.sign(&server.url, &other_nonce).await;
    assert_refused(&server, &other, answer, "signature_invalid", &good).await;
    // A flow that never asked for a challenge has none to match.
    let third = start(&server, "rp", None).await;
    let answer = third.token(&server, &token_for_first).await;
    assert_eq!(answer.0, 401);
    assert_eq!(last_reason(&server).await, "nonce_missing");
}

#[tokio::test]
async fn r_auth_5_wrong_origin_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let phished = card.sign("https://id.example.evil", &nonce).await;
    let answer = login.token(&server, &phished).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "signature_invalid", &good).await;
}

#[tokio::test]
async fn r_means_3_signature_by_another_key_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (id, card) = active_card(&server, &officers).await;
    let copy = CardStandIn::new("p256").await;
    let cert = server
        .app
        .store
        .card_certificates_of(id.parse().unwrap())
        .await
        .unwrap();
    copy.store(&eidgate::smartcard::certificate_pem(&cert[0].der)).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let answer = login.token(&server, &copy.sign(&server.url, &nonce).await).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "signature_invalid", &good).await;
}

#[tokio::test]
async fn r_auth_7_algorithm_hash_mismatch_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    // A P-256 card key named ES384 (hash SHA-384): the algorithm does not fit the key.
    let mismatch = card.sign_as(&server.url, &nonce, "ES384").await;
    let answer = login.token(&server, &mismatch).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "algorithm_key_mismatch", &good).await;
    // Relabelling a good ES256 signature as ES384 fails the same way.
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let good = card.sign(&server.url, &nonce).await;
    let relabelled = good.replace("\"ES256\"", "\"ES384\"");
    let answer = login.token(&server, &relabelled).await;
    assert_refused(&server, &login, answer, "algorithm_key_mismatch", &good).await;
}

#[tokio::test]
async fn r_auth_5_truncated_or_malformed_base64_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    for field in ["signature", "unverifiedCertificate"] {
        let login = start(&server, "rp", None).await;
        let nonce = login.challenge(&server).await;
        let good = card.sign(&server.url, &nonce).await;
        let mut token: Value = serde_json::from_str(&good).unwrap();
        let value = token[field].as_str().unwrap().to_owned();
        token[field] = json!(value[..value.len() - 1]);
        let answer = login.token(&server, &token.to_string()).await;
        assert_refused(&server, &login, answer, "malformed_base64", &good).await;
    }
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let good = card.sign(&server.url, &nonce).await;
    let mut token: Value = serde_json::from_str(&good).unwrap();
    token["signature"] = json!(token["signature"].as_str().unwrap().replace(['+', '/'], "-"));
    token["signature"] = json!(format!("{}*", &token["signature"].as_str().unwrap()[1..]));
    let answer = login.token(&server, &token.to_string()).await;
    assert_refused(&server, &login, answer, "malformed_base64", &good).await;
}

#[tokio::test]
async fn r_sec_5_oversized_token_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let good = card.sign(&server.url, &nonce).await;
    let mut token: Value = serde_json::from_str(&good).unwrap();
    token["padding"] = json!("x".repeat(10_001));
    let answer = login.token(&server, &token.to_string()).await;
    assert_refused(&server, &login, answer, "token_size", &good).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let good = card.sign(&server.url, &nonce).await;
    let answer = login.token(&server, r#"{"format":"web-eid:1.0"}"#).await;
    assert_refused(&server, &login, answer, "token_size", &good).await;
    // The format is parsed exactly.
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let good = card.sign(&server.url, &nonce).await;
    let answer = login
        .token(&server, &good.replace("\"web-eid:1.0\"", "\"web-eid:10.0\""))
        .await;
    assert_refused(&server, &login, answer, "unsupported_format", &good).await;
}

#[tokio::test]
async fn r_means_3_expired_or_not_yet_valid_certificate_is_refused() {
    let (server, officers) = staffed(|c| c.smartcard.certificate_validity = std::time::Duration::from_secs(3600)).await;
    let (_, card) = active_card(&server, &officers).await;
    server.app.clock.advance(2 * 3600);
    let (login, token, answer) = card_attempt(&server, &card).await;
    assert_refused(&server, &login, answer, "certificate_expired", &token).await;

    server.app.clock.advance(-2 * 3600 - 600);
    let (login, token, answer) = card_attempt(&server, &card).await;
    assert_refused(&server, &login, answer, "certificate_not_yet_valid", &token).await;
}

#[tokio::test]
async fn r_life_4_card_of_a_suspended_or_revoked_means_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (id, card) = active_card(&server, &officers).await;
    let suspended = helpdesk_in_person(&server, &officers.helpdesk, &id, "suspend").await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    let (login, token, answer) = card_attempt(&server, &card).await;
    assert_refused(&server, &login, answer, "means_not_active", &token).await;

    let revoked = helpdesk_in_person(&server, &officers.helpdesk, &id, "revoke").await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let (login, token, answer) = card_attempt(&server, &card).await;
    assert_refused(&server, &login, answer, "means_not_active", &token).await;
}

#[tokio::test]
async fn r_log_1_crl_lists_a_revoked_card_and_verifies_against_the_ca() {
    let (server, officers) = staffed(|_| {}).await;
    let (id, _card) = active_card(&server, &officers).await;
    let serial = server
        .app
        .store
        .card_certificates_of(id.parse().unwrap())
        .await
        .unwrap()[0]
        .serial
        .clone();
    let http = crate::support::server::http();
    let fetch = |path: &'static str| {
        let http = http.clone();
        let url = server.at(path);
        async move { http.get(url).send().await.unwrap().bytes().await.unwrap().to_vec() }
    };
    let ca_der = fetch("/smartcard/ca.crt").await;
    let (_, ca) = x509_parser::certificate::X509Certificate::from_der(&ca_der).unwrap();
    let listed = |crl_der: &[u8]| {
        let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(crl_der).unwrap();
        crl.verify_signature(ca.public_key()).unwrap();
        assert_eq!(crl.issuer(), ca.subject());
        assert!(crl.next_update().is_some());
        crl.iter_revoked_certificates()
            .map(|r| eidgate::smartcard::x509::serial_hex(r.raw_serial()))
            .collect::<Vec<_>>()
    };
    assert!(!listed(&fetch("/smartcard/crl").await).contains(&serial));
    let revoked = helpdesk_in_person(&server, &officers.helpdesk, &id, "revoke").await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let crl = fetch("/smartcard/crl").await;
    assert!(listed(&crl).contains(&serial), "the revoked card's serial is listed");
    // The CA key is P-384 and lives in the HSM (ca-1).
    let curve = ca.public_key().algorithm.parameters.as_ref().unwrap().as_oid().unwrap();
    assert_eq!(curve.to_id_string(), "1.3.132.0.34", "P-384");
    let records = server.app.store.audit_after(0, 1_000_000).await.unwrap();
    assert!(records.iter().any(|r| r.event.event_type == "certificate.crl_signed"));
    assert!(records
        .iter()
        .any(|r| r.event.event_type == "key.generated" && r.event.subject == "key:ca-1"));
}

// ---------------------------------------------------------------------------------------
// External CAs (test CAs made here with rcgen; `trusted_ca_files` configured at start).

/// A test CA: its rcgen certificate and key, and the PEM file path.
struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

fn ca_params(name: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    params
}

fn test_root(name: &str) -> TestCa {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = ca_params(name).self_signed(&key).unwrap();
    TestCa { cert, key }
}

/// A card certificate for `csr` from `ca`: `adjust` may change the parameters.
fn card_cert(ca: &TestCa, csr: &str, adjust: impl FnOnce(&mut rcgen::CertificateParams)) -> String {
    let mut request = rcgen::CertificateSigningRequestParams::from_pem(csr).unwrap();
    request.params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    request.params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    adjust(&mut request.params);
    request.signed_by(&ca.cert, &ca.key).unwrap().pem()
}

fn write_pem(dir: &TempDir, name: &str, pems: &[&str]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, pems.concat()).unwrap();
    path
}

async fn import_card(server: &TestServer, pem: &str) -> String {
    let report = server
        .import(json!({"means": [{"holder": CARD_HOLDER, "kind": "smartcard", "loa": "high", "certificate_pem": pem}]}))
        .await;
    report.means_ids[0].clone()
}

#[tokio::test]
async fn r_auth_7_certificate_from_an_untrusted_ca_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let rogue = test_root("Rogue CA");
    let other = CardStandIn::new("p256").await;
    let pem = card_cert(&rogue, &other.csr().await, |_| {});
    other.store(&pem).await;
    import_card(&server, &pem).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let answer = login.token(&server, &other.sign(&server.url, &nonce).await).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "untrusted_issuer", &good).await;
}

#[tokio::test]
async fn r_auth_7_wrong_eku_or_key_usage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_root("Partner CA");
    let file = write_pem(&dir, "partner.pem", &[&ca.cert.pem()]);
    let (server, officers) = staffed(|c| c.smartcard.trusted_ca_files = vec![file.into()]).await;
    let (_, card) = active_card(&server, &officers).await;
    for (reason, adjust) in [
        (
            "extended_key_usage",
            Box::new(|p: &mut rcgen::CertificateParams| {
                p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth]
            }) as Box<dyn FnOnce(&mut rcgen::CertificateParams)>,
        ),
        (
            "key_usage",
            Box::new(|p: &mut rcgen::CertificateParams| p.key_usages = vec![rcgen::KeyUsagePurpose::KeyEncipherment]),
        ),
    ] {
        let other = CardStandIn::new("p256").await;
        let pem = card_cert(&ca, &other.csr().await, adjust);
        other.store(&pem).await;
        let login = start(&server, "rp", None).await;
        let nonce = login.challenge(&server).await;
        let answer = login.token(&server, &other.sign(&server.url, &nonce).await).await;
        let good = card.sign(&server.url, &nonce).await;
        assert_refused(&server, &login, answer, reason, &good).await;
    }
}

#[tokio::test]
async fn r_auth_7_chain_with_a_self_issued_intermediate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = test_root("Partner Root");
    // Same name as the root (self-issued), another key, signed by the root.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = ca_params("Partner Root")
        .signed_by(&key, &root.cert, &root.key)
        .unwrap();
    let intermediate = TestCa { cert, key };
    let file = write_pem(&dir, "partner.pem", &[&root.cert.pem(), &intermediate.cert.pem()]);
    let (server, officers) = staffed(|c| c.smartcard.trusted_ca_files = vec![file.into()]).await;
    let (_, card) = active_card(&server, &officers).await;
    let other = CardStandIn::new("p256").await;
    let pem = card_cert(&intermediate, &other.csr().await, |_| {});
    other.store(&pem).await;
    import_card(&server, &pem).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let answer = login.token(&server, &other.sign(&server.url, &nonce).await).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "self_issued_intermediate", &good).await;
}

/// Serves `body` at any path over plain HTTP on a local port, for as long as the
/// returned task runs (a CRL distribution point).
async fn serve_bytes(body: Vec<u8>) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/partner.crl", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/pkix-crl\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    (url, task)
}

fn crl_of(ca: &TestCa, revoked: &[&[u8]]) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc();
    let params = rcgen::CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(5),
        next_update: now + time::Duration::hours(1),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|serial| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(serial),
                revocation_time: now - time::Duration::minutes(1),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    params.signed_by(&ca.cert, &ca.key).unwrap().der().to_vec()
}

#[tokio::test]
async fn r_auth_7_external_ca_card_is_refused_without_revocation_status() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_root("Partner CA");
    let file = write_pem(&dir, "partner.pem", &[&ca.cert.pem()]);
    let (server, officers) = staffed(|c| c.smartcard.trusted_ca_files = vec![file.into()]).await;
    let (_, card) = active_card(&server, &officers).await;

    // No distribution point at all: unknown status, refused (fail closed).
    let bare = CardStandIn::new("p256").await;
    let pem = card_cert(&ca, &bare.csr().await, |_| {});
    bare.store(&pem).await;
    import_card(&server, &pem).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let answer = login.token(&server, &bare.sign(&server.url, &nonce).await).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "revocation_status_unknown", &good).await;

    // A distribution point nobody answers at: refused too.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/gone.crl", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = CardStandIn::new("p256").await;
    let pem = card_cert(&ca, &unreachable.csr().await, |p| {
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint { uris: vec![dead_url] }];
    });
    unreachable.store(&pem).await;
    import_card(&server, &pem).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let answer = login.token(&server, &unreachable.sign(&server.url, &nonce).await).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "revocation_status_unknown", &good).await;

    // A current CRL of the CA: a listed card is refused, an unlisted one logs in.
    let listed_card = CardStandIn::new("p256").await;
    let fine_card = CardStandIn::new("p256").await;
    let listed_serial = [0x11u8; 16];
    let (crl_url, server_task) = serve_bytes(crl_of(&ca, &[&listed_serial])).await;
    let listed_pem = card_cert(&ca, &listed_card.csr().await, |p| {
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&listed_serial));
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec![crl_url.clone()],
        }];
    });
    listed_card.store(&listed_pem).await;
    import_card(&server, &listed_pem).await;
    let fine_pem = card_cert(&ca, &fine_card.csr().await, |p| {
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint { uris: vec![crl_url] }];
    });
    fine_card.store(&fine_pem).await;
    import_card(&server, &fine_pem).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let answer = login.token(&server, &listed_card.sign(&server.url, &nonce).await).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "certificate_revoked", &good).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let (status, body) = login.token(&server, &fine_card.sign(&server.url, &nonce).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done");
    server_task.abort();
    let records = server.app.store.audit_after(0, 1_000_000).await.unwrap();
    assert!(records.iter().any(|r| r.event.event_type == "certificate.imported"));
}

#[tokio::test]
async fn r_auth_7_problem_type_of_a_refusal_is_the_generic_one() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let generic = problem_type_base(&server).await;
    assert_eq!(generic, answer_type(), "same problem type as a wrong password");
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let token = card.sign("https://other.example", &nonce).await;
    let (status, body) = login.token(&server, &token).await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], generic.as_str());
    assert!(body.get("detail").is_none() || !body["detail"].to_string().contains("signature"));
}
