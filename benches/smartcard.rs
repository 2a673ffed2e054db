//! Smartcard throughput (issue 4), measured on the real server with SoftHSM.
//!
//! 1. Verification: `smartcard::ceremony::verify` (token parsing, certificate checks, the
//!    chain to our CA, the token signature, the certificate's registration) plus the status
//!    of its means, back to back for `T` seconds: first on one task (the per-core rate),
//!    then on one task per core.
//! 2. Full logins: `C` concurrent clients, each login being `/authorize` → smartcard
//!    challenge → token (signed by a software card key: the card's own signing time is not
//!    the server's cost) → code → `/token` (one HSM signature for the ID token).
//!
//! The card certificate is issued by our CA in the HSM from the card key's CSR, exactly as
//! in production. `cargo bench --bench smartcard` (env `EIDGATE_BENCH_SECS`,
//! `EIDGATE_BENCH_CONCURRENCY`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use eidgate::config::{Config, TlsMode};
use eidgate::smartcard::webeid::{self, Algorithm, TokenJson};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use serde_json::{json, Value};
use sha2::Digest;
use x509_parser::prelude::FromDer;

const SECRET: &str = "bench-client-secret-0123456789abcdef";
const HOLDER: &str = "LT/LT/38001085718";

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

/// A software stand-in for the card key (the server's work is what is measured).
struct SoftCard {
    key: p256::ecdsa::SigningKey,
    certificate: Vec<u8>,
}

impl SoftCard {
    fn token(&self, origin: &str, nonce: &str) -> String {
        let digest = Algorithm::ES256.hash(&webeid::signed_data(Algorithm::ES256, origin, nonce));
        let signature: p256::ecdsa::Signature = self.key.sign_prehash(&digest).unwrap();
        serde_json::to_string(&TokenJson {
            unverified_certificate: STANDARD.encode(&self.certificate),
            algorithm: "ES256".into(),
            signature: STANDARD.encode(signature.to_bytes()),
            format: "web-eid:1.0".into(),
            app_version: "https://eidgate.invalid/bench".into(),
        })
        .unwrap()
    }
}

async fn run() {
    let seconds = env_num("EIDGATE_BENCH_SECS", 5);
    let concurrency = env_num("EIDGATE_BENCH_CONCURRENCY", 8) as usize;
    let cores = Config::cores();
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

    // The card: a P-256 key, a CSR, a certificate from our CA in the HSM.
    let rcgen_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&rcgen_key)
        .unwrap();
    let subject = eidgate::smartcard::ca::CardSubject {
        country: "LT".into(),
        code: "38001085718".into(),
        given_name: "Jonas".into(),
        family_name: "Jonaitis".into(),
    };
    let issuing = app.smartcard.clone();
    let csr_der = csr.der().to_vec();
    let now = app.now();
    let issued = tokio::task::spawn_blocking(move || {
        issuing
            .ca
            .issue(&csr_der, &subject, now, Duration::from_secs(86_400))
            .unwrap()
    })
    .await
    .unwrap();
    let key = {
        use p256::pkcs8::DecodePrivateKey;
        p256::ecdsa::SigningKey::from_pkcs8_der(&rcgen_key.serialize_der()).unwrap()
    };
    let card = Arc::new(SoftCard {
        key,
        certificate: issued.der.clone(),
    });
    let doc = json!({
        "clients": [{"client_id": "bench", "client_secret": SECRET, "redirect_uris": ["https://rp.example/cb"],
                     "allowed_claims": [], "token_endpoint_auth_method": "client_secret_basic", "consent": "never"}],
        "persons": [{"identifier": HOLDER, "given_name": "Jonas", "family_name": "Jonaitis",
                     "birthdate": "1980-01-08", "proofing_loa": "high"}],
        "means": [{"holder": HOLDER, "kind": "smartcard", "loa": "high",
                   "certificate_pem": eidgate::smartcard::certificate_pem(&issued.der)}]
    });
    eidgate::admin::import::import(app.store.as_ref(), &doc.to_string(), &app.config)
        .await
        .unwrap();
    let origin = app.config.origin().to_owned();

    // 1. Verification.
    let nonce = STANDARD.encode([7u8; 32]);
    let token = card.token(&origin, &nonce);
    for tasks in [1, cores] {
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let (app, done, token, nonce) = (app.clone(), done.clone(), token.clone(), nonce.clone());
            handles.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let now = app.now();
                    let proven = eidgate::smartcard::ceremony::verify(&app.cards, &nonce, &token, now)
                        .await
                        .unwrap();
                    let means = app.store.means(proven.certificate.means).await.unwrap().unwrap();
                    means.check_usable(now).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let n = done.load(Ordering::Relaxed);
        println!(
            "verification (signature + chain + status), {tasks} task(s): {:.0}/s",
            n as f64 / seconds as f64
        );
    }

    // 1b. The certificate path alone, in the same run: built and checked every time (as
    // before issue 22) against taken from the path cache (the card's status is asked at
    // every login either way).
    {
        let trust = &app.smartcard.trust;
        let (_, leaf) = x509_parser::certificate::X509Certificate::from_der(&card.certificate).unwrap();
        let now = app.now();
        let mut rates = Vec::new();
        for cached in [false, true] {
            let started = Instant::now();
            let mut n = 0u64;
            while started.elapsed() < Duration::from_secs(seconds) {
                let chain = if cached {
                    trust.verify_chain(&card.certificate, &leaf, now)
                } else {
                    trust.verify_chain_uncached(&leaf, now)
                };
                assert!(chain.unwrap().own);
                n += 1;
            }
            rates.push(n as f64 / started.elapsed().as_secs_f64());
        }
        println!(
            "certificate path, 1 thread: checked every time {:.0}/s ({:.1} us), from the cache {:.0}/s ({:.1} us): {:.0}x",
            rates[0],
            1e6 / rates[0],
            rates[1],
            1e6 / rates[1],
            rates[1] / rates[0]
        );
    }

    // 2. Full logins over HTTP.
    let base = format!("http://127.0.0.1:{port}");
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for _ in 0..concurrency {
        let (base, card, origin, done) = (base.clone(), card.clone(), origin.clone(), done.clone());
        handles.push(tokio::spawn(async move {
            let back = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            while Instant::now() < deadline {
                login(&base, &back, &card, &origin).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    println!(
        "full smartcard logins (authorize → challenge → token → code → ID token), {concurrency} clients: {:.1}/s",
        n as f64 / seconds as f64
    );
    let _ = stop.send(());
}

async fn login(base: &str, back: &reqwest::Client, card: &SoftCard, origin: &str) {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = eidgate::random::token();
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let url = format!(
        "{base}/authorize?response_type=code&client_id=bench&redirect_uri=https%3A%2F%2Frp.example%2Fcb&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256"
    );
    let r = browser.get(url).send().await.unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let flow = location.strip_prefix("/login?flow=").unwrap().to_owned();
    let nonce: Value = browser
        .post(format!("{base}/authn/flows/{flow}/smartcard/challenge"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = card.token(origin, nonce["nonce"].as_str().unwrap());
    let done: Value = browser
        .post(format!("{base}/authn/flows/{flow}/smartcard/token"))
        .header("content-type", "application/json")
        .body(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let redirect = url::Url::parse(done["redirect_to"].as_str().expect("login done")).unwrap();
    let code = redirect
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let answer: Value = back
        .post(format!("{base}/token"))
        .basic_auth("bench", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "https://rp.example/cb"),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer["id_token"].is_string(), "{answer}");
}
