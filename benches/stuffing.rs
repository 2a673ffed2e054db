//! Credential stuffing against the login defences (issue 19), in one run against the real
//! server (SQLite, memory ephemeral store, TLS off, SoftHSM) on loopback, behind a
//! "trusted proxy" so that each client has its own address (`X-Forwarded-For`):
//!
//! - the attack: `EIDGATE_BENCH_IDENTIFIERS` (default 1,000) identifiers × 10 wrong
//!   passwords from 50 addresses (one browser and one login flow per address, as fast as
//!   the server answers); the holders' identifiers are among the targets, the rest are
//!   identifiers nobody holds;
//! - meanwhile 20 holders, each in the browser they logged in with before (device cookie),
//!   log in normally (`GET /authorize` with `prompt=login`, the password step, the
//!   redirect with a code) every `EIDGATE_BENCH_PAUSE_MS` (default 2000) ms until the
//!   attack is over.
//!
//! Prints the holders' success rate (target 100%), their p50/p99 login time, the attack's
//! attempts per second that reached argon2 (answered 401) and those refused before it
//! (429/403), and the peak resident memory of the process (server and load generator).
//!
//! `cargo bench --bench stuffing` (env `EIDGATE_BENCH_IDENTIFIERS`, `EIDGATE_BENCH_PAUSE_MS`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eidgate::config::{Config, TlsMode};
use serde_json::{json, Value};

const HOLDERS: usize = 20;
const ADDRESSES: usize = 50;
const GUESSES: usize = 10;
const PASSWORD: &str = "bench holder pass phrase";

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

fn holder_id(i: usize) -> String {
    format!("LT/LT/3800101{i:04}")
}

/// The `n`-th target: the holders first, then identifiers nobody holds.
fn target(n: usize) -> String {
    if n < HOLDERS {
        holder_id(n)
    } else {
        format!("LT/LT/4900{n:07}")
    }
}

/// A browser stand-in at `address` behind the trusted proxy.
fn browser(address: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", address.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

fn authorize_url(issuer: &str) -> String {
    format!(
        "{issuer}/authorize?response_type=code&client_id=bench&redirect_uri=https%3A%2F%2Frp.example%2Fcb\
         &scope=openid&state=s&nonce=n&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
         &code_challenge_method=S256&prompt=login"
    )
}

/// Opens a login flow; its id.
async fn flow(browser: &reqwest::Client, issuer: &str) -> Option<String> {
    let r = browser.get(authorize_url(issuer)).send().await.ok()?;
    let location = r.headers().get("location")?.to_str().ok()?;
    location.strip_prefix("/login?flow=").map(str::to_owned)
}

/// One password attempt: the status.
async fn attempt(
    browser: &reqwest::Client,
    issuer: &str,
    flow: &str,
    identifier: &str,
    password: &str,
) -> (u16, Value) {
    let r = browser
        .post(format!("{issuer}/authn/flows/{flow}/password"))
        .json(&json!({ "identifier": identifier, "password": password }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A whole login; `true` when it ended with a code.
async fn login(browser: &reqwest::Client, issuer: &str, identifier: &str) -> bool {
    let Some(flow) = flow(browser, issuer).await else {
        return false;
    };
    let (status, body) = attempt(browser, issuer, &flow, identifier, PASSWORD).await;
    status == 200 && body["redirect_to"].as_str().unwrap_or("").contains("code=")
}

/// Peak resident memory of this process (kB), from `/proc/self/status`.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn run() {
    let identifiers = env_num("EIDGATE_BENCH_IDENTIFIERS", 1000).max(HOLDERS as u64) as usize;
    let pause = Duration::from_millis(env_num("EIDGATE_BENCH_PAUSE_MS", 2000));
    println!(
        "eidgate stuffing bench: {identifiers} identifiers x {GUESSES} wrong passwords from {ADDRESSES} addresses, \
         {HOLDERS} holders, {} cores",
        Config::cores()
    );
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = Config {
        issuer: format!("http://127.0.0.1:{port}"),
        data_dir: dir.path().to_owned(),
        ..Default::default()
    };
    config.tls.mode = TlsMode::Off;
    // Every client is its own address behind the loopback "proxy"; the login limits stay
    // at their defaults.
    config.limits.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    config.limits.connections_per_ip = config.limits.max_connections;
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
    let persons: Vec<Value> = (0..HOLDERS)
        .map(|i| {
            json!({"identifier": holder_id(i), "given_name": "Jonas", "family_name": "Jonaitis",
                   "birthdate": "1980-01-08", "proofing_loa": "high"})
        })
        .collect();
    let means: Vec<Value> = (0..HOLDERS)
        .map(|i| json!({"holder": holder_id(i), "kind": "password", "loa": "low", "password": PASSWORD}))
        .collect();
    let doc = json!({
        "clients": [{"client_id": "bench", "client_secret": "bench-client-secret-0123456789abcdef",
                     "redirect_uris": ["https://rp.example/cb"], "allowed_claims": [],
                     "token_endpoint_auth_method": "client_secret_basic", "consent": "never"}],
        "persons": persons,
        "means": means,
    });
    eidgate::admin::import::import(app.store.as_ref(), &doc.to_string(), &app.config)
        .await
        .unwrap();
    let issuer = app.config.issuer.clone();

    // The holders logged in before, each from its own address: their browsers are known.
    let mut holders = Vec::new();
    for i in 0..HOLDERS {
        let b = browser(&format!("198.51.100.{}", i + 1));
        assert!(login(&b, &issuer, &holder_id(i)).await, "warm-up login of holder {i}");
        holders.push(b);
    }

    let attack_over = Arc::new(AtomicBool::new(false));
    let (verified, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let t0 = Instant::now();
    let mut attackers = Vec::new();
    for a in 0..ADDRESSES {
        let issuer = issuer.clone();
        let (verified, refused) = (verified.clone(), refused.clone());
        attackers.push(tokio::spawn(async move {
            let b = browser(&format!("203.0.{}.{}", a / 200, a % 200 + 1));
            let Some(flow) = flow(&b, &issuer).await else {
                return;
            };
            for n in (a..identifiers).step_by(ADDRESSES) {
                let identifier = target(n);
                for g in 0..GUESSES {
                    let (status, _) = attempt(&b, &issuer, &flow, &identifier, &format!("password{g}!")).await;
                    match status {
                        401 => verified.fetch_add(1, Ordering::Relaxed),
                        _ => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
        }));
    }
    let mut logins = Vec::new();
    for (i, b) in holders.into_iter().enumerate() {
        let issuer = issuer.clone();
        let over = attack_over.clone();
        logins.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut failed = 0u64;
            while !over.load(Ordering::Relaxed) {
                let started = Instant::now();
                if login(&b, &issuer, &holder_id(i)).await {
                    times.push(started.elapsed());
                } else {
                    failed += 1;
                }
                tokio::time::sleep(pause).await;
            }
            (times, failed)
        }));
    }
    for a in attackers {
        a.await.unwrap();
    }
    let attack_time = t0.elapsed();
    attack_over.store(true, Ordering::Relaxed);
    let mut times = Vec::new();
    let mut failed = 0;
    for l in logins {
        let (t, f) = l.await.unwrap();
        times.extend(t);
        failed += f;
    }
    times.sort();
    let ok = times.len() as u64;
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let (v, r) = (verified.load(Ordering::Relaxed), refused.load(Ordering::Relaxed));
    let secs = attack_time.as_secs_f64();
    println!("attack duration                   {secs:>9.1} s ({} attempts)", v + r);
    println!(
        "attack attempts verified (argon2) {:>9.1} /s ({v} in all)",
        v as f64 / secs
    );
    println!(
        "attack attempts refused before    {:>9.1} /s ({r} in all)",
        r as f64 / secs
    );
    println!(
        "holders' success rate             {:>9.1} % ({ok} of {})",
        if ok + failed == 0 {
            0.0
        } else {
            ok as f64 * 100.0 / (ok + failed) as f64
        },
        ok + failed
    );
    println!(
        "holders' login time p50 / p99     {:>9.1} / {:.1} ms",
        pct(0.50),
        pct(0.99)
    );
    println!(
        "peak memory (VmHWM, process)      {:>9.1} MiB; login flows held at the end: {}",
        peak_rss_kb() as f64 / 1024.0,
        app.ephemeral.bounded_len().unwrap_or(0)
    );
    let _ = stop.send(());
}
