//! FIDO2 throughput (issue 5), measured in one run:
//!
//! 1. Assertion verification per core: `Relying::finish_login` (webauthn_rp: client
//!    data, authenticator data, ES256 signature, counter, backup state) on one thread,
//!    over assertions prepared beforehand (each with its own challenge and a rising
//!    counter), so only the verification is timed.
//! 2. Full FIDO logins per second against the real server (SQLite, memory ephemeral
//!    store, TLS off) on loopback: `GET /authorize` → `webauthn/start` → the software
//!    authenticator signs → `webauthn/finish` → redirect with a code. `C` workers, each a
//!    holder with an active `fido` means of its own (its own counter).
//!
//! `cargo bench --bench fido` (env `EIDGATE_BENCH_SECS`, `EIDGATE_BENCH_CONCURRENCY`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/support/authenticator.rs"]
#[allow(dead_code)]
mod authenticator;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authenticator::{Attest, SoftKey};
use eidgate::authn::webauthn::{Relying, StoredCredential};
use eidgate::config::{Config, TlsMode};
use eidgate::domain::ids::MeansId;
use eidgate::domain::loa::Loa;
use eidgate::domain::means::{EidMeans, MeansKind, MeansStatus};
use serde_json::{json, Value};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

/// Registers `key` with `relying` in-process; the stored credential.
fn register(relying: &Relying, key: &mut SoftKey) -> (StoredCredential, String) {
    let handle = Relying::new_user_handle();
    let started = relying
        .start_registration(&handle, "LT/LT/38001085718", "Jonas Jonaitis", &[])
        .unwrap();
    let response = key.register(&json!({"publicKey": started.options}), &Attest::None);
    let created = relying
        .finish_registration(&started.state, response.to_string().as_bytes(), 1_800_000_000)
        .unwrap();
    let attestation = serde_json::to_string(&created.attestation).unwrap();
    (
        StoredCredential {
            credential_id: created.credential_id,
            user_handle: created.user_handle,
            static_state: created.static_state,
            dynamic_state: created.dynamic_state,
        },
        attestation,
    )
}

fn verification_per_core(count: usize) -> f64 {
    let mut config = Config {
        issuer: "http://127.0.0.1:1".into(),
        ..Default::default()
    };
    config.finish().unwrap();
    let relying = Relying::from_config(&config).unwrap();
    let mut key = SoftKey::new("http://127.0.0.1:1");
    let (mut stored, _) = register(&relying, &mut key);
    let prepared: Vec<_> = (0..count)
        .map(|_| {
            let (kind, started) = relying.start_login(&[]).unwrap();
            let response = key.assert(&json!({"publicKey": started.options}));
            (kind, started.state, response.to_string().into_bytes())
        })
        .collect();
    let t0 = Instant::now();
    for (kind, state, response) in &prepared {
        let asserted = relying.finish_login(*kind, state, response, &stored).unwrap();
        stored.dynamic_state = asserted.dynamic_state;
    }
    count as f64 / t0.elapsed().as_secs_f64()
}

async fn run() {
    let seconds = env_num("EIDGATE_BENCH_SECS", 5);
    let concurrency = env_num("EIDGATE_BENCH_CONCURRENCY", 8) as usize;
    let count = env_num("EIDGATE_BENCH_ASSERTIONS", 5000) as usize;
    println!(
        "eidgate FIDO bench: {seconds} s login phase, {concurrency} workers, {} cores",
        Config::cores()
    );
    let per_core = tokio::task::spawn_blocking(move || verification_per_core(count))
        .await
        .unwrap();
    println!("assertion verification (1 thread)  {per_core:>9.0} assertions/s per core");

    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = Config {
        issuer: format!("http://127.0.0.1:{port}"),
        data_dir: dir.path().to_owned(),
        ..Default::default()
    };
    config.tls.mode = TlsMode::Off;
    config.login.ip_attempts = u64::MAX;
    config.login.flows_per_address = u64::MAX;
    // The load generator is one loopback address: lift the per-IP transport limits.
    config.limits.rate_per_ip = 0;
    config.limits.connections_per_ip = config.limits.max_connections;
    config.login.global_attempts = u64::MAX;
    config.finish().unwrap();
    let app = eidgate::app::build(config).await.unwrap();
    let serving = app.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        eidgate::web::serve::serve(serving, listener, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let persons: Vec<Value> = (0..concurrency)
        .map(|i| {
            json!({"identifier": format!("LT/LT/3800101{i:04}"), "given_name": "Jonas", "family_name": "Jonaitis",
                   "birthdate": "1980-01-08", "proofing_loa": "high"})
        })
        .collect();
    let doc = json!({
        "clients": [{"client_id": "bench", "client_secret": "bench-client-secret-0123456789abcdef",
                     "redirect_uris": ["https://rp.example/cb"], "allowed_claims": [],
                     "token_endpoint_auth_method": "client_secret_basic", "consent": "never"}],
        "persons": persons,
    });
    eidgate::admin::import::import(app.store.as_ref(), &doc.to_string(), &app.config)
        .await
        .unwrap();
    // One active fido means per worker, registered in-process with the server's own RP.
    let mut keys = Vec::new();
    for i in 0..concurrency {
        let identifier = format!("LT/LT/3800101{i:04}");
        let person = app
            .store
            .person_by_identifier(&identifier.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let now = app.now();
        let means = EidMeans {
            id: MeansId::new(),
            holder: person.id,
            kind: MeansKind::Fido,
            loa: Loa::Substantial,
            status: MeansStatus::Active,
            valid_from: now,
            valid_until: now + 86_400,
            version: 1,
        };
        let event = eidgate::audit::AuditEvent::new(
            "means.imported",
            "system:bench",
            format!("means:{}", means.id),
            json!({}),
        );
        app.store
            .insert_means(&means, &eidgate::store::Credential::None, event)
            .await
            .unwrap();
        let mut key = SoftKey::new(&app.config.issuer);
        let (stored, attestation) = register(&app.authn.webauthn, &mut key);
        let record = eidgate::store::FidoCredentialRecord {
            means: means.id,
            credential_id: stored.credential_id,
            user_handle: stored.user_handle,
            static_state: stored.static_state,
            dynamic_state: stored.dynamic_state,
            attestation,
            created_at: now,
            last_used_at: None,
        };
        let event = eidgate::audit::AuditEvent::new(
            "fido.credential_registered",
            "system:bench",
            format!("means:{}", means.id),
            json!({}),
        );
        app.store.save_fido_credential(&record, event).await.unwrap();
        keys.push(key);
    }

    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for mut key in keys {
        let done = done.clone();
        let issuer = app.config.issuer.clone();
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                login(&issuer, &mut key).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let t0 = Instant::now();
    for w in workers {
        w.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
    println!("full FIDO login (authorize→code)   {rate:>9.1} logins/s ({concurrency} workers)");
    let _ = stop.send(());
}

/// One whole login in a fresh browser stand-in; panics unless it ends with a code.
async fn login(issuer: &str, key: &mut SoftKey) {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!(
        "{issuer}/authorize?response_type=code&client_id=bench&redirect_uri=https%3A%2F%2Frp.example%2Fcb\
         &scope=openid&state=s&nonce=n&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
         &code_challenge_method=S256&acr_values=http%3A%2F%2Feidas.europa.eu%2FLoA%2Fsubstantial"
    );
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let flow = r.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/login?flow=")
        .to_owned();
    let options: Value = browser
        .post(format!("{issuer}/authn/flows/{flow}/webauthn/start"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = key.assert(&options);
    let done: Value = browser
        .post(format!("{issuer}/authn/flows/{flow}/webauthn/finish"))
        .json(&response)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(done["redirect_to"].as_str().unwrap_or("").contains("code="), "{done}");
}
