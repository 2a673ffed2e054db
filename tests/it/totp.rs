//! The password + TOTP means end to end (DESIGN "Authentication and LoA", "Activation
//! API", "Login API", "Keys"): activation with an otpauth URI and SVG QR code confirmed by
//! a code, OIDC login at substantial with `amr` `pwd otp mfa`, single-use codes, back-off
//! and hard lock, the one-IP-many-accounts alert, and seeds sealed in the HSM so that a
//! database file reveals neither passwords nor seeds (R-MEANS-2, R-ISS-2, R-AUTH-3..6,
//! R-SEC-2).

use eidgate::config::Config;
use eidgate::domain::ids::MeansId;
use eidgate::store::Credential;
use serde_json::{json, Value};

use crate::support::operators::{
    activate_totp, activation_start, activation_step, activation_totp, align_to_step, audit_events, count_events,
    helpdesk_in_person, issue_kind, operator_token, otpauth_secret, provision_staff, register, state_of, totp_at,
    totp_now, HELPDESK, ISSUER, REGISTRAR,
};
use crate::support::problem::assert_problem;
use crate::support::server::{
    auth_params, authorize_url, browser, exchange, jwt_part, password_step, pkce, query, set_param, start_login,
    Answer, TestServer, HOLDER, PASSWORD, REDIRECT,
};

/// A person registered by the activation test.
const APPLICANT: &str = "LT/LT/48505050505";
/// The applicant's chosen password.
const APPLICANT_PASSWORD: &str = "violet kettle orbit 42";
/// The fixture holder's TOTP means password (imported).
const TOTP_PASSWORD: &str = "amber lantern seventeen";
/// The fixture holder's imported seed (RFC 6238's test seed, base32).
const SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// A second holder with a TOTP means of their own.
const OTHER: &str = "LT/LT/49001010099";
/// The second holder's seed.
const OTHER_SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/// The eIDAS substantial acr value.
const SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";

/// A server with the fixture, a TOTP means (substantial) for `HOLDER` and one for `OTHER`.
async fn with_totp(adjust: impl FnOnce(&mut Config)) -> TestServer {
    let server = TestServer::start_with(adjust).await;
    server.provision().await;
    server
        .import(json!({
            "persons": [{
                "identifier": OTHER, "given_name": "Ona", "family_name": "Onaitė",
                "birthdate": "1990-01-01", "proofing_loa": "substantial"
            }],
            "means": [
                {"holder": HOLDER, "kind": "totp", "loa": "substantial", "password": TOTP_PASSWORD, "totp_secret": SEED},
                {"holder": OTHER, "kind": "totp", "loa": "substantial", "password": TOTP_PASSWORD, "totp_secret": OTHER_SEED}
            ]
        }))
        .await;
    align_to_step(&server);
    server
}

/// The TOTP means of `identifier`.
async fn totp_means(server: &TestServer, identifier: &str) -> MeansId {
    let person = server
        .app
        .store
        .person_by_identifier(&identifier.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    server
        .app
        .store
        .means_of_holder(person.id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind == eidgate::domain::means::MeansKind::Totp)
        .unwrap()
        .id
}

/// A login in progress: the browser, its flow and the PKCE verifier.
struct Login {
    browser: reqwest::Client,
    flow: String,
    verifier: String,
}

/// Starts a login at `rp` asking for substantial.
async fn start_substantial(server: &TestServer) -> Login {
    let (verifier, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    set_param(&mut params, "acr_values", Some(SUBSTANTIAL));
    let browser = browser();
    let flow = start_login(&browser, &authorize_url(server, &params)).await;
    Login {
        browser,
        flow,
        verifier,
    }
}

/// `POST /authn/flows/{flow}/totp`.
async fn totp_step(server: &TestServer, login: &Login, code: &str) -> Answer {
    let r = login
        .browser
        .post(server.at(&format!("/authn/flows/{}/totp", login.flow)))
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    Answer::from(r).await
}

/// A substantial login up to the TOTP step (the password accepted).
async fn past_password(server: &TestServer, identifier: &str, password: &str) -> Login {
    let login = start_substantial(server).await;
    let (status, body) = password_step(server, &login.browser, &login.flow, identifier, password).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"next": "totp"}));
    login
}

/// Finishes a login whose TOTP step answered `done`: the ID token's payload.
async fn id_token_of(server: &TestServer, login: &Login, done: &Answer) -> Value {
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["next"], "done", "{}", done.body);
    let back = url::Url::parse(done.body["redirect_to"].as_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let tokens = exchange(server, "rp", &code, &login.verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    jwt_part(tokens.body["id_token"].as_str().unwrap(), 1)
}

fn assert_substantial_mfa(claims: &Value) {
    assert_eq!(claims["acr"], SUBSTANTIAL, "{claims}");
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]), "{claims}");
}

// ---- activation and login end to end ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_2_r_means_2_totp_activation_then_oidc_login_at_substantial_with_pwd_otp_mfa() {
    let server = TestServer::start().await;
    server.provision().await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    register(&server, &registrar, APPLICANT, "high").await;
    // Never above the kind's ceiling.
    let too_high = crate::support::operators::apply(&server, &registrar, APPLICANT, "totp", "high").await;
    assert_eq!(too_high.status, 422, "{}", too_high.body);
    let issued = issue_kind(&server, &registrar, &issuer, APPLICANT, "totp", "substantial").await;
    align_to_step(&server);

    let started = activation_start(&server, APPLICANT, &issued.activation_code).await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_eq!(started.body["kind"], "totp");
    let activation = started.body["activation"].as_str().unwrap().to_owned();
    // Nothing before the acceptance, no app before the password.
    let early = activation_step(
        &server,
        &activation,
        "password",
        &json!({"password": APPLICANT_PASSWORD}),
    )
    .await;
    assert_eq!(early.status, 422, "{}", early.body);
    let accept = json!({
        "terms_version": started.body["terms_version"],
        "security_advice_version": started.body["security_advice_version"],
    });
    assert_eq!(
        activation_step(&server, &activation, "accept", &accept).await.status,
        200
    );
    assert_eq!(activation_totp(&server, &activation).await.status, 422);

    // Password rules (R-AUTH-3): length, not the identifier, not a common password.
    for weak in ["short pass", "my 48505050505 pass", "Password1234", "qwertyuiop123"] {
        let refused = activation_step(&server, &activation, "password", &json!({"password": weak})).await;
        assert_eq!(refused.status, 422, "{weak}: {}", refused.body);
    }
    let set = activation_step(
        &server,
        &activation,
        "password",
        &json!({"password": APPLICANT_PASSWORD}),
    )
    .await;
    assert_eq!(set.body, json!({"next": "totp"}));

    // The enrolment: a 160-bit seed as otpauth URI and SVG QR, the same on a second look,
    // never cached.
    let enrol = activation_totp(&server, &activation).await;
    assert_eq!(enrol.status, 200, "{}", enrol.body);
    assert_eq!(enrol.header("cache-control"), Some("no-store"));
    let uri = enrol.body["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let seed = otpauth_secret(&uri);
    assert_eq!(seed.len(), 32, "160 bits in base32: {seed}");
    let svg = enrol.body["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    assert_eq!(
        activation_totp(&server, &activation).await.body["otpauth_uri"],
        uri.as_str()
    );

    // Not active until a valid code confirms the enrolment.
    let wrong = activation_step(
        &server,
        &activation,
        "totp/confirm",
        &json!({"code": totp_at(&server, &seed, 5)}),
    )
    .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(state_of(&server, &issued.id).await, "issued");
    let login = start_substantial(&server).await;
    let (status, _) = password_step(&server, &login.browser, &login.flow, APPLICANT, APPLICANT_PASSWORD).await;
    assert_eq!(status, 401, "an unconfirmed means has no credential yet");

    let activation_code = totp_now(&server, &seed);
    let done = activation_step(&server, &activation, "totp/confirm", &json!({"code": activation_code})).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body, json!({"state": "active", "means": issued.id}));
    assert_eq!(state_of(&server, &issued.id).await, "active");

    // Login: password, then TOTP. The code used at activation is spent.
    let login = past_password(&server, APPLICANT, APPLICANT_PASSWORD).await;
    assert_eq!(totp_step(&server, &login, &activation_code).await.status, 401);
    server.app.clock.advance(30);
    let done = totp_step(&server, &login, &totp_now(&server, &seed)).await;
    let claims = id_token_of(&server, &login, &done).await;
    assert_substantial_mfa(&claims);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_means_2_login_api_offers_password_totp_up_to_substantial_only() {
    let server = with_totp(|_| {}).await;
    let login = start_substantial(&server).await;
    let info: Value = login
        .browser
        .get(server.at(&format!("/authn/flows/{}", login.flow)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        info["methods"],
        json!(["smartcard", "webauthn", "password_totp"]),
        "{info}"
    );
    // The TOTP step is closed before the password.
    let early = totp_step(&server, &login, &totp_now(&server, SEED)).await;
    assert_eq!(early.status, 400, "{}", early.body);

    let (verifier, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    set_param(&mut params, "acr_values", Some("http://eidas.europa.eu/LoA/high"));
    let browser = browser();
    let flow = start_login(&browser, &authorize_url(&server, &params)).await;
    let info: Value = browser
        .get(server.at(&format!("/authn/flows/{flow}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !info["methods"].as_array().unwrap().contains(&json!("password_totp")),
        "password + TOTP never reaches high: {info}"
    );
    // Even when tried, the flow ends without a code (and without asking for the code
    // that could not help): never `acr` high.
    let _ = verifier;
    let (status, body) = password_step(&server, &browser, &flow, HOLDER, TOTP_PASSWORD).await;
    assert_eq!((status, &body["next"]), (200, &json!("done")), "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    assert_eq!(query(&back, "code"), None, "{back}");
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("unmet_authentication_requirements")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_5_imported_totp_means_logs_in_and_the_low_password_means_still_works() {
    let server = with_totp(|_| {}).await;
    let login = past_password(&server, HOLDER, TOTP_PASSWORD).await;
    let done = totp_step(&server, &login, &totp_now(&server, SEED)).await;
    assert_substantial_mfa(&id_token_of(&server, &login, &done).await);
    // A low request still prefers the holder's password means.
    let (_, challenge) = pkce();
    let browser = browser();
    let flow = start_login(&browser, &authorize_url(&server, &auth_params("rp", &challenge))).await;
    let (status, body) = password_step(&server, &browser, &flow, HOLDER, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done");
}

// ---- negatives ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_wrong_password_wrong_code_and_code_of_another_means_fail_and_are_audited() {
    let server = with_totp(|_| {}).await;
    let means = totp_means(&server, HOLDER).await;

    let login = start_substantial(&server).await;
    let (status, body) = password_step(&server, &login.browser, &login.flow, HOLDER, "not my password at all").await;
    assert_eq!(status, 401, "{body}");
    // The other factor's password does not open this one either.
    let (status, _) = password_step(&server, &login.browser, &login.flow, HOLDER, PASSWORD).await;
    assert_eq!(
        status, 401,
        "the low password means' password is not the TOTP means' password"
    );

    let login = past_password(&server, HOLDER, TOTP_PASSWORD).await;
    let wrong = totp_step(&server, &login, &totp_at(&server, SEED, 4)).await;
    assert_problem(&wrong, 401, "invalid-credentials");
    let other = totp_step(&server, &login, &totp_now(&server, OTHER_SEED)).await;
    assert_problem(&other, 401, "invalid-credentials");
    assert_eq!(totp_step(&server, &login, "12345").await.status, 401);

    let subject = format!("means:{means}");
    let failures: Vec<Value> = audit_events(&server, &subject)
        .await
        .into_iter()
        .filter(|r| r.event.event_type == "login.failure")
        .map(|r| r.event.data)
        .collect();
    assert_eq!(failures.len(), 5, "{failures:?}");
    assert_eq!(failures.iter().filter(|d| d["factor"] == "password").count(), 2);
    assert_eq!(failures.iter().filter(|d| d["factor"] == "otp").count(), 3);
    assert!(failures.iter().all(|d| d["ip"] == "127.0.0.1"));

    // Still usable with the right factors.
    let done = totp_step(&server, &login, &totp_now(&server, SEED)).await;
    assert_substantial_mfa(&id_token_of(&server, &login, &done).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_5_a_code_is_accepted_once_neither_the_same_nor_the_previous_step_again() {
    let server = with_totp(|_| {}).await;
    let code = totp_now(&server, SEED);
    let previous = totp_at(&server, SEED, -1);
    let login = past_password(&server, HOLDER, TOTP_PASSWORD).await;
    let done = totp_step(&server, &login, &code).await;
    assert_eq!(done.status, 200, "{}", done.body);

    // The same code in a new flow, and the previous step's code, which is still within
    // the ±1 window: both refused.
    let again = past_password(&server, HOLDER, TOTP_PASSWORD).await;
    assert_problem(&totp_step(&server, &again, &code).await, 401, "invalid-credentials");
    assert_problem(&totp_step(&server, &again, &previous).await, 401, "invalid-credentials");
    // The SQL mark alone refuses it too (another instance, a flushed cache).
    let means = totp_means(&server, HOLDER).await;
    let step = eidgate::authn::totp::step_of(server.app.now());
    assert!(!server.app.store.use_totp_step(means, step).await.unwrap());
    assert!(!server.app.store.use_totp_step(means, step - 1).await.unwrap());

    // The next step's code is fresh.
    server.app.clock.advance(30);
    let done = totp_step(&server, &again, &totp_now(&server, SEED)).await;
    assert_substantial_mfa(&id_token_of(&server, &again, &done).await);
    let replays = audit_events(&server, &format!("means:{means}"))
        .await
        .into_iter()
        .filter(|r| r.event.data["reason"] == "replayed_code")
        .count();
    assert_eq!(replays, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_back_off_doubles_then_the_hard_lock_refuses_even_the_right_code_until_reactivation() {
    let server = with_totp(|_| {}).await;
    provision_staff(&server).await;
    let means = totp_means(&server, HOLDER).await;
    let login = past_password(&server, HOLDER, TOTP_PASSWORD).await;
    let wrong = |n: i64| totp_at(&server, SEED, 10 + n);

    let limits = &server.app.config.login;
    assert_eq!(limits.totp_lock_after, 10, "the default lock");
    for n in 1..=10u32 {
        // 800-63B back-off: none for the first three failures, then 2, 4, 8, ... seconds.
        let wait = if n > 4 { 2u64 << (n - 5) } else { 0 };
        if wait > 0 {
            // Within the back-off even the right code is not looked at: 429 + Retry-After.
            let early = totp_step(&server, &login, &totp_now(&server, SEED)).await;
            assert_problem(&early, 429, "too-many-attempts");
            let retry: u64 = early.header("retry-after").unwrap().parse().unwrap();
            assert!(retry <= wait && retry + 2 >= wait, "failure {n}: {retry} s vs {wait} s");
            server.app.clock.advance(i64::try_from(retry).unwrap());
        }
        let failed = totp_step(&server, &login, &wrong(i64::from(n))).await;
        assert_problem(&failed, 401, "invalid-credentials");
    }
    // Locked: the means is suspended (helpdesk reactivation needed), and the right code
    // fails, in this flow and in a new one.
    assert_eq!(state_of(&server, &means.to_string()).await, "suspended");
    assert_eq!(
        count_events(&server, &format!("means:{means}"), "means.locked").await,
        1
    );
    let right = totp_step(&server, &login, &totp_now(&server, SEED)).await;
    assert_problem(&right, 403, "means-not-active");
    let fresh = start_substantial(&server).await;
    let (status, _) = password_step(&server, &fresh.browser, &fresh.flow, HOLDER, TOTP_PASSWORD).await;
    assert_eq!(status, 403);

    // Reactivation after identity re-verification lifts the lock with fresh counters; the
    // lock is a security suspension, so a security officer approves it (R-SEC-3).
    let desk = operator_token(&server, HELPDESK).await;
    let asked = helpdesk_in_person(&server, &desk, &means.to_string(), "reactivate").await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    assert_eq!(state_of(&server, &means.to_string()).await, "suspended");
    let security = operator_token(&server, crate::support::operators::SECURITY).await;
    let approval = asked.body["approval"].as_str().unwrap();
    let reactivated = crate::support::operators::post(
        &server,
        &format!("/helpdesk/v1/approvals/{approval}/approve"),
        &security,
        &json!({}),
    )
    .await;
    assert_eq!(reactivated.status, 200, "{}", reactivated.body);
    let login = past_password(&server, HOLDER, TOTP_PASSWORD).await;
    assert_eq!(totp_step(&server, &login, &wrong(20)).await.status, 401);
    let done = totp_step(&server, &login, &totp_now(&server, SEED)).await;
    assert_substantial_mfa(&id_token_of(&server, &login, &done).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_one_ip_failing_on_many_accounts_raises_an_alert() {
    let server = with_totp(|c| c.login.ip_spread_alert = 2).await;
    for identifier in [HOLDER, OTHER] {
        let login = start_substantial(&server).await;
        let (status, _) = password_step(&server, &login.browser, &login.flow, identifier, "wrong password here").await;
        assert_eq!(status, 401);
    }
    let alerts = audit_events(&server, "ip:127.0.0.1")
        .await
        .into_iter()
        .filter(|r| r.event.event_type == "alert.ip_spread")
        .count();
    assert_eq!(alerts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_login_api_has_a_global_rate_limit_with_retry_after() {
    let server = with_totp(|c| c.login.global_attempts = 3).await;
    let login = start_substantial(&server).await;
    for _ in 0..3 {
        let (status, _) = password_step(&server, &login.browser, &login.flow, OTHER, "wrong password here").await;
        assert_eq!(status, 401);
    }
    let (status, body) = password_step(&server, &login.browser, &login.flow, HOLDER, TOTP_PASSWORD).await;
    assert_eq!(status, 429, "{body}");
}

// ---- secrets at rest ------------------------------------------------------------------

/// Every byte of the SQLite database: the file and its WAL.
fn database_bytes(server: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["eidgate.db", "eidgate.db-wal", "eidgate.db-shm"] {
        if let Ok(bytes) = std::fs::read(server.app.config.data_dir.join(name)) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_3_r_sec_2_a_database_dump_reveals_no_password_and_no_totp_seed() {
    if std::env::var("EIDGATE_TEST_SERVER_DB").as_deref() == Ok("postgres") {
        return; // reads the SQLite file
    }
    let server = with_totp(|_| {}).await;
    // One means through activation too (its seed sealed at enrolment).
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    register(&server, &registrar, APPLICANT, "high").await;
    let issued = issue_kind(&server, &registrar, &issuer, APPLICANT, "totp", "substantial").await;
    let (_, activated_seed) = activate_totp(&server, APPLICANT, &issued.activation_code, APPLICANT_PASSWORD).await;
    // A login, so that the replay mark and counters are written as well.
    let login = past_password(&server, HOLDER, TOTP_PASSWORD).await;
    assert_eq!(totp_step(&server, &login, &totp_now(&server, SEED)).await.status, 200);

    let dump = database_bytes(&server);
    assert!(dump.len() > 4096, "the database file was read");
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for password in [TOTP_PASSWORD, APPLICANT_PASSWORD, PASSWORD] {
        secrets.push(password.as_bytes().to_vec());
    }
    for seed in [SEED, OTHER_SEED, activated_seed.as_str()] {
        let raw = eidgate::authn::totp::TotpSeed::from_base32(seed).unwrap();
        secrets.push(seed.as_bytes().to_vec());
        secrets.push(seed.to_lowercase().into_bytes());
        secrets.push(raw.expose().to_vec());
        secrets.push(hex::encode(raw.expose()).into_bytes());
        use base64::Engine as _;
        secrets.push(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(raw.expose())
                .into_bytes(),
        );
        secrets.push(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(raw.expose())
                .into_bytes(),
        );
    }
    for secret in &secrets {
        assert!(!contains(&dump, secret), "a secret is readable in the database file");
    }
    // The check is able to fail: the sealed seed itself is in the file.
    let means = totp_means(&server, HOLDER).await;
    let Credential::PasswordTotp {
        password_phc,
        sealed_seed,
    } = server.app.store.credential(means).await.unwrap()
    else {
        panic!("a totp credential")
    };
    assert!(password_phc.starts_with("$argon2id$"));
    assert!(contains(&dump, password_phc.as_bytes()));
    assert_eq!(sealed_seed.len(), 1 + 4 + 12 + 20 + 16);

    // Only the HSM opens it, and only for its own means (the means id is the AAD).
    let opened = server
        .app
        .sealer
        .open(&sealed_seed, means.to_string().as_bytes())
        .await
        .unwrap();
    assert_eq!(opened.as_slice(), b"12345678901234567890");
    let other = totp_means(&server, OTHER).await;
    assert!(server
        .app
        .sealer
        .open(&sealed_seed, other.to_string().as_bytes())
        .await
        .is_err());
    let mut tampered = sealed_seed.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(server
        .app
        .sealer
        .open(&tampered, means.to_string().as_bytes())
        .await
        .is_err());
    // Sealing is randomised: the same seed twice gives two ciphertexts.
    let a = server.app.sealer.seal(b"12345678901234567890", b"x").await.unwrap();
    let b = server.app.sealer.seal(b"12345678901234567890", b"x").await.unwrap();
    assert_ne!(a, b);
}

// ---- password change --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_r_means_2_password_change_needs_the_current_password_and_a_fresh_code() {
    let server = with_totp(|_| {}).await;
    let means = totp_means(&server, HOLDER).await;
    // The holder's SSO session from a substantial login.
    let login = past_password(&server, HOLDER, TOTP_PASSWORD).await;
    let used = totp_now(&server, SEED);
    let done = totp_step(&server, &login, &used).await;
    id_token_of(&server, &login, &done).await;
    let change = |current: &str, code: &str, new: &str| {
        let body = json!({"current_password": current, "code": code, "new_password": new});
        let request = login
            .browser
            .post(server.at(&format!("/account/api/means/{means}/password")))
            .json(&body);
        async move { Answer::from(request.send().await.unwrap()).await }
    };
    const NEW: &str = "copper meadow ninety one";

    // Without a session: refused.
    let anonymous = crate::support::server::http()
        .post(server.at(&format!("/account/api/means/{means}/password")))
        .json(&json!({"current_password": TOTP_PASSWORD, "code": used, "new_password": NEW}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    server.app.clock.advance(30);
    let fresh = totp_now(&server, SEED);
    assert_eq!(
        change(TOTP_PASSWORD, &fresh, "password1234").await.status,
        400,
        "rules apply"
    );
    assert_eq!(change("not the password at all", &fresh, NEW).await.status, 401);
    assert_eq!(change(TOTP_PASSWORD, &used, NEW).await.status, 401, "a spent code");
    let changed = change(TOTP_PASSWORD, &fresh, NEW).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(
        count_events(&server, &format!("means:{means}"), "means.password_changed").await,
        1
    );
    // The same request again: its code is spent.
    assert_eq!(change(NEW, &fresh, "another long pass phrase").await.status, 401);

    // The old password is gone, the new one works with the same app.
    let old = start_substantial(&server).await;
    let (status, _) = password_step(&server, &old.browser, &old.flow, HOLDER, TOTP_PASSWORD).await;
    assert_eq!(status, 401);
    server.app.clock.advance(30);
    let login = past_password(&server, HOLDER, NEW).await;
    let done = totp_step(&server, &login, &totp_now(&server, SEED)).await;
    assert_substantial_mfa(&id_token_of(&server, &login, &done).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_renew_1_a_new_totp_app_is_enrolled_only_through_a_renewal_resting_on_the_valid_means() {
    let server = with_totp(|_| {}).await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    let old = totp_means(&server, HOLDER).await;
    let applied = crate::support::operators::post(
        &server,
        "/admin/v1/means",
        &registrar,
        &json!({"holder": HOLDER, "kind": "totp", "loa": "substantial", "renews": old}),
    )
    .await;
    assert_eq!(applied.status, 201, "{}", applied.body);
    let id = applied.body["id"].as_str().unwrap().to_owned();
    let approved = crate::support::operators::approve(&server, &issuer, &id).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let issued = crate::support::operators::issued_from(&server, id.clone(), &approved);
    let code = issued.activation_code.as_str();
    const NEW: &str = "copper meadow ninety one";
    let (done, seed) = activate_totp(&server, HOLDER, code, NEW).await;
    assert_eq!(done["means"], id.as_str());
    assert_ne!(seed, SEED, "a new seed for the new app");

    // The renewed means logs in with the new app; the old app's code is another means'.
    server.app.clock.advance(30);
    let login = past_password(&server, HOLDER, NEW).await;
    assert_eq!(totp_step(&server, &login, &totp_now(&server, SEED)).await.status, 401);
    let done = totp_step(&server, &login, &totp_now(&server, &seed)).await;
    assert_substantial_mfa(&id_token_of(&server, &login, &done).await);
    let audit = audit_events(&server, &format!("means:{id}")).await;
    assert_eq!(
        audit[0].event.data["renewal"]["basis"], "valid_means",
        "{:?}",
        audit[0].event.data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_5_the_same_code_raced_in_two_flows_is_accepted_once() {
    let server = with_totp(|_| {}).await;
    let a = past_password(&server, HOLDER, TOTP_PASSWORD).await;
    let b = past_password(&server, HOLDER, TOTP_PASSWORD).await;
    let code = totp_now(&server, SEED);
    let (ra, rb) = tokio::join!(totp_step(&server, &a, &code), totp_step(&server, &b, &code));
    let mut statuses = [ra.status, rb.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "{} / {}", ra.body, rb.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_4_wrong_passwords_never_suspend_the_totp_means_but_stop_unknown_browsers_at_the_limit() {
    let server = with_totp(|c| c.login.password_lock_after = 3).await;
    let means = totp_means(&server, HOLDER).await;
    for n in 1..=3 {
        let login = start_substantial(&server).await;
        let (status, body) = password_step(&server, &login.browser, &login.flow, HOLDER, "a wrong pass phrase").await;
        assert_eq!(status, 401, "failure {n}: {body}");
    }
    // The means stays active (issue 19: anyone could otherwise lock the holder out) ...
    assert_eq!(state_of(&server, &means.to_string()).await, "active");
    assert_eq!(
        count_events(&server, &format!("means:{means}"), "means.locked").await,
        0
    );
    // ... but a browser that never logged in with it may not try a password any more.
    let login = start_substantial(&server).await;
    let (status, body) = password_step(&server, &login.browser, &login.flow, HOLDER, TOTP_PASSWORD).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "urn:eidgate:problem:unknown-device-locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_5_totp_code_is_six_ascii_digits_after_trimming_and_nothing_else() {
    // Issue 25: trimming surrounding whitespace is the only normalisation.
    let server = with_totp(|c| {
        // Four wrong codes in a row: no back-off in the way of the good one after them.
        c.login.backoff_free = 10;
        c.login.account_failures = 20;
    })
    .await;
    let code = totp_now(&server, SEED);
    let means = totp_means(&server, HOLDER).await;
    for typed in [
        format!("{} {}", &code[..3], &code[3..]),
        format!("{}-{}", &code[..3], &code[3..]),
        format!("\u{3000}{code}"),
        code.chars()
            .map(|c| char::from_u32(0xFF10 + c.to_digit(10).unwrap()).unwrap())
            .collect(),
    ] {
        let login = past_password(&server, HOLDER, TOTP_PASSWORD).await;
        let answer = totp_step(&server, &login, &typed).await;
        // A wrong code (401), or longer than any code can be (400).
        assert!(matches!(answer.status, 400 | 401), "{typed:?}: {}", answer.body);
        assert!(answer.body.get("redirect_to").is_none(), "{typed:?}: no code");
    }
    // The right code was never consumed by those attempts.
    let step = eidgate::authn::totp::step_of(server.app.now());
    assert!(
        server.app.store.use_totp_step(means, step).await.unwrap(),
        "step still unused"
    );
    // Surrounding whitespace (a paste) is trimmed: the next step's code with it logs in.
    server.app.clock.advance(30);
    let login = past_password(&server, HOLDER, TOTP_PASSWORD).await;
    let done = totp_step(&server, &login, &format!(" {}\n", totp_now(&server, SEED))).await;
    assert_substantial_mfa(&id_token_of(&server, &login, &done).await);
}
