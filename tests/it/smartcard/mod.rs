//! The smartcard means end to end (issue 4; DESIGN "Smartcard login", "Activation API"):
//! a card stand-in on its own SoftHSM token (the `eidgate card` CLI in its own process and
//! `SOFTHSM2_CONF`) is personalised by our CA in the server's HSM, activated, and logs in
//! through the OIDC code flow at LoA high. Every refusal of the issue is its own test; each
//! one checks the generic answer, the exact audit reason, and that the challenge was
//! consumed (the good token for it is then refused as a replay).

mod external_ca;
mod login;
mod ocsp;
mod policy;
mod refusals;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use eidgate::config::Config;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::support::operators::{
    activation_start, activation_step, apply, approve, operator_token, post, provision_staff, register, HELPDESK,
    ISSUER, REGISTRAR,
};
use crate::support::server::{auth_params, authorize_url, browser, pkce, set_param, start_login, TestServer};

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
