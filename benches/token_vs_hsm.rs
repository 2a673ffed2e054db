//! Token endpoint throughput against the raw PKCS#11 signing rate, measured in one run
//! on the same SoftHSM token (issue "Foundation", DESIGN performance rules).
//!
//! 1. Raw rate: one OS thread per core, each with its own PKCS#11 session on the same
//!    token, calls `C_Sign` (CKM_ECDSA over a SHA-256 digest) back to back for `T` seconds.
//!    Then the same through eidgate's `Signer` (session pool, `spawn_blocking`), `C` tasks.
//! 2. Code exchange: the real server (SQLite, memory ephemeral store, TLS off) on
//!    loopback; codes are minted beforehand through SSO `/authorize` (not timed), then `C`
//!    concurrent clients redeem them at `/token` (client_secret_basic, PKCE S256), which
//!    costs one HSM signature (the ID token) per exchange.
//!
//! Prints the rates and the ratios (target: exchange at least 70% of the signing rate).
//! `cargo bench --bench token_vs_hsm` (env `EIDGATE_BENCH_SECS`, `EIDGATE_BENCH_CONCURRENCY`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use eidgate::config::{Config, TlsMode};
use eidgate::domain::client::SigningAlg;
use serde_json::json;
use sha2::Digest;

const SECRET: &str = "bench-client-secret-0123456789abcdef";
const VERIFIER: &str = "bench-verifier-bench-verifier-bench-verifier-0123";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench`-less args; only measure
    // when invoked by `cargo bench`.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let seconds = env_num("EIDGATE_BENCH_SECS", 5);
    let concurrency = env_num("EIDGATE_BENCH_CONCURRENCY", 8) as usize;
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
    config.login.global_attempts = u64::MAX;
    config.finish().unwrap();
    let app = eidgate::app::build(config).await.unwrap();
    let serving = app.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        eidgate::app::serve(serving, listener, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let doc = json!({
        "clients": [{"client_id": "bench", "client_secret": SECRET, "redirect_uris": ["https://rp.example/cb"],
                     "allowed_claims": [], "token_endpoint_auth_method": "client_secret_basic"}],
        "persons": [{"identifier": "LT/LT/38001085718", "given_name": "Jonas", "family_name": "Jonaitis",
                     "birthdate": "1980-01-08", "proofing_loa": "high"}],
        "means": [{"holder": "LT/LT/38001085718", "kind": "password", "loa": "low", "password": "bench password 123"}]
    });
    eidgate::admin::import::import(app.store.as_ref(), &doc.to_string(), &app.config)
        .await
        .unwrap();

    println!(
        "eidgate bench: {seconds} s per phase, {concurrency} concurrent, {} cores",
        Config::cores()
    );
    let raw = raw_c_sign(&app.config, Duration::from_secs(seconds));
    println!(
        "raw PKCS#11 C_Sign ES256         {raw:>9.0} signatures/s  ({} threads, own sessions)",
        Config::cores()
    );
    let pooled = raw_signing(&app, concurrency, Duration::from_secs(seconds)).await;
    println!("Signer::sign via session pool    {pooled:>9.0} signatures/s  ({concurrency} tasks)");
    let floor = http_floor(&app.config.issuer, concurrency, Duration::from_secs(seconds)).await;
    println!("HTTP floor (GET /healthz)        {floor:>9.0} requests/s");
    let exchange = code_exchange(&app.config.issuer, concurrency, Duration::from_secs(seconds)).await;
    println!("token endpoint code exchange     {exchange:>9.0} exchanges/s");
    println!("ratio exchange / raw C_Sign      {:>9.1} %", 100.0 * exchange / raw);
    println!("ratio exchange / pooled signing  {:>9.1} %", 100.0 * exchange / pooled);
    let _ = stop.send(());
}

/// `C_Sign` straight on the token: no pool, no runtime, one thread and session per core.
fn raw_c_sign(config: &Config, duration: Duration) -> f64 {
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, ObjectClass};
    let context = eidgate::hsm::pkcs11::context(&config.hsm.module).unwrap();
    let slot = eidgate::hsm::pkcs11::find_token_slot(&context, &config.hsm.token_label)
        .unwrap()
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..Config::cores())
        .map(|_| {
            let session = context.open_rw_session(slot).unwrap();
            let done = done.clone();
            std::thread::spawn(move || {
                // The token is logged in for the whole process by the server's pool.
                let key = session
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Label(b"oidc-sign-1".to_vec()),
                    ])
                    .unwrap()[0];
                let digest = sha2::Sha256::digest(b"header.payload");
                while start.elapsed() < duration {
                    session.sign(&Mechanism::Ecdsa, key, &digest).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn raw_signing(app: &Arc<eidgate::app::App>, concurrency: usize, duration: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let signer = app.signer.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let message = format!("header.payload-{i}");
            while start.elapsed() < duration {
                signer.sign(SigningAlg::ES256, message.as_bytes()).await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// The same HTTP client and server stack on an endpoint that does nothing: the cost of
/// the transport alone, for reading the exchange figure.
async fn http_floor(issuer: &str, concurrency: usize, duration: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = reqwest::Client::new();
        let url = format!("{issuer}/healthz");
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < duration {
                let r = client.get(&url).send().await.unwrap();
                let _ = r.bytes().await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn code_exchange(issuer: &str, concurrency: usize, duration: Duration) -> f64 {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let authorize = format!(
        "{issuer}/authorize?client_id=bench&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256&state=s"
    );
    // One interactive login creates the SSO session; later codes need no interaction.
    let r = browser.get(&authorize).send().await.unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let flow = location.trim_start_matches("/login?flow=");
    let r = browser
        .post(format!("{issuer}/authn/flows/{flow}/password"))
        .json(&json!({"identifier": "LT/LT/38001085718", "password": "bench password 123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let clients: Vec<reqwest::Client> = (0..concurrency).map(|_| reqwest::Client::new()).collect();
    let mut exchanged = 0u64;
    let mut timed = Duration::ZERO;
    while timed < duration {
        // Mint a batch of codes (not timed): fewer than the 60 s code lifetime allows.
        let batch = 2000;
        let mut codes = Vec::with_capacity(batch);
        for _ in 0..batch {
            let r = browser.get(&authorize).send().await.unwrap();
            let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
            codes.push(
                location
                    .query_pairs()
                    .find(|(k, _)| k == "code")
                    .unwrap()
                    .1
                    .into_owned(),
            );
        }
        let codes = Arc::new(std::sync::Mutex::new(codes));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for client in &clients {
            let client = client.clone();
            let codes = codes.clone();
            let token_url = format!("{issuer}/token");
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                loop {
                    let Some(code) = codes.lock().unwrap().pop() else { break };
                    let r = client
                        .post(&token_url)
                        .basic_auth("bench", Some(SECRET))
                        .form(&[
                            ("grant_type", "authorization_code"),
                            ("code", code.as_str()),
                            ("redirect_uri", "https://rp.example/cb"),
                            ("code_verifier", VERIFIER),
                        ])
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200, "{:?}", r.text().await);
                    let _ = r.bytes().await;
                    n += 1;
                }
                n
            }));
        }
        for t in tasks {
            exchanged += t.await.unwrap();
        }
        timed += start.elapsed();
    }
    exchanged as f64 / timed.as_secs_f64()
}
