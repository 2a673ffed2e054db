//! Load on a scaled deployment (issue 9): two `eidgate serve` processes sharing one
//! PostgreSQL cluster, one `redis-server` and one SoftHSM token, all on loopback and
//! started here (the same harness as `tests/it/scale/`).
//!
//! Phases of `EIDGATE_BENCH_SECS` (default 30) seconds each:
//! 1. **saturated**: `EIDGATE_BENCH_CONCURRENCY` (default 8) workers run logins back to
//!    back (the throughput; the latency there is mostly queueing, Little's law);
//! 2. **paced**: the same workers start logins at a fixed total rate, a share of phase
//!    1's throughput, as a service is run below saturation: one phase per entry of
//!    `EIDGATE_BENCH_LOAD_PERCENT` (default `60,30`). Latency is counted from each login's scheduled start, so
//!    a worker that falls behind is charged for it (no coordinated omission).
//!
//! In both phases:
//! - the workers run full logins:
//!   `GET /authorize` on one instance, the password step and the code exchange at `/token`
//!   on the other (a minimal keep-alive HTTP/1.1 client per worker and instance, like
//!   `wrk`, so the load generator takes little of the shared cores);
//! - one helpdesk task, every `EIDGATE_BENCH_SUSPEND_MS` (default 250) ms, suspends a
//!   means on one instance, then logs in with it on the other instance until refused (the
//!   time from the suspension's 200 to the first refused login), then reactivates it, and
//!   so on through a set of "churn" holders.
//!
//! Reports per phase the throughput, p50/p99 latency of a full login, the error count
//! (every answer other than 200, apart from the expected refusals of churn holders while
//! suspended) and the propagation time (target p99 < 100 ms). The refusal of a login
//! comes after its password check (argon2id, by design: the status of a means is not told
//! to whoever knows an identifier), so at saturation the probe waits in the same argon2
//! queue as every other login; the paced phase shows the propagation as a holder sees it.
//! `cargo bench --bench load` (needs PostgreSQL, redis-server and SoftHSMv2 installed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/scale/cluster.rs"]
mod cluster;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use sha2::Digest;

use cluster::{free_port, Cluster, Node};

const SECRET: &str = "bench-client-secret-0123456789abcdef";
const PASSWORD: &str = "bench password 123";
const OPERATOR_PASSWORD: &str = "operator pass phrase 2026";
const HELPDESK: &str = "LT/LT/39001010033";
const STABLE: usize = 40;
const CHURN: usize = 8;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn identifier(n: usize) -> String {
    format!("LT/LT/3800101{n:04}")
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

/// A keep-alive HTTP/1.1 connection with pre-built requests; returns status, the
/// headers that matter here, and the body.
struct RawConn {
    addr: String,
    stream: Option<tokio::net::TcpStream>,
    buf: Vec<u8>,
}

struct Answer {
    status: u16,
    location: Option<String>,
    cookies: Vec<String>,
    body: Vec<u8>,
}

impl RawConn {
    fn new(url: &str) -> Self {
        Self {
            addr: url.trim_start_matches("http://").to_owned(),
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    async fn send(&mut self, request: &[u8]) -> Answer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if self.stream.is_none() {
            let s = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            self.stream = Some(s);
        }
        let stream = self.stream.as_mut().unwrap();
        stream.write_all(request).await.unwrap();
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).unwrap().to_owned();
        let status: u16 = head[9..12].parse().unwrap();
        let mut length = 0;
        let (mut location, mut cookies, mut close) = (None, Vec::new(), false);
        for line in head.lines().skip(1) {
            let Some((k, v)) = line.split_once(':') else { continue };
            let v = v.trim();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.parse().unwrap(),
                "location" => location = Some(v.to_owned()),
                "set-cookie" => cookies.push(v.split(';').next().unwrap_or("").to_owned()),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        while self.buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        if close {
            self.stream = None;
        }
        Answer {
            status,
            location,
            cookies,
            body,
        }
    }
}

fn get(host: &str, path: &str, cookie: Option<&str>) -> Vec<u8> {
    let cookie = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{cookie}\r\n").into_bytes()
}

fn post(host: &str, path: &str, headers: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One instance as seen by one worker.
struct Side {
    host: String,
    conn: RawConn,
}

impl Side {
    fn new(url: &str) -> Self {
        Self {
            host: url.trim_start_matches("http://").to_owned(),
            conn: RawConn::new(url),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Refused,
    Error(String),
}

/// A full login of `who` for `client` (secret-based): authorize on `start`, password and
/// token on `finish`. `Refused` is a 403 at the password step or `invalid_grant` at the
/// exchange (a means suspended in between).
async fn login(
    start: &mut Side,
    finish: &mut Side,
    client: &str,
    who: &str,
    password: &str,
) -> (Outcome, Option<Value>) {
    let verifier = "bench-verifier-bench-verifier-bench-verifier-0123";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let path = format!(
        "/authorize?client_id={client}&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=openid%20offline_access&code_challenge={challenge}&code_challenge_method=S256&state=s"
    );
    let a = start.conn.send(&get(&start.host, &path, None)).await;
    if a.status != 303 {
        return (Outcome::Error(format!("authorize {}", a.status)), None);
    }
    let flow = a
        .location
        .unwrap_or_default()
        .trim_start_matches("/login?flow=")
        .to_owned();
    let cookie = a.cookies.join("; ");
    let body = json!({"identifier": who, "password": password}).to_string();
    let r = finish
        .conn
        .send(&post(
            &finish.host,
            &format!("/authn/flows/{flow}/password"),
            &format!("Cookie: {cookie}\r\n"),
            "application/json",
            &body,
        ))
        .await;
    match r.status {
        200 => {}
        403 => return (Outcome::Refused, None),
        s => {
            return (
                Outcome::Error(format!("password {s}: {}", String::from_utf8_lossy(&r.body))),
                None,
            )
        }
    }
    let step: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let Some(redirect) = step["redirect_to"].as_str() else {
        return (Outcome::Error(format!("password step: {step}")), None);
    };
    let redirect = url::Url::parse(redirect).unwrap();
    let Some(code) = redirect
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
    else {
        return (Outcome::Error(format!("no code: {redirect}")), None);
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client}:{SECRET}"));
    let form = format!(
        "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Frp.example%2Fcb&code_verifier={verifier}"
    );
    let t = finish
        .conn
        .send(&post(
            &finish.host,
            "/token",
            &format!("Authorization: Basic {basic}\r\n"),
            "application/x-www-form-urlencoded",
            &form,
        ))
        .await;
    let tokens: Value = serde_json::from_slice(&t.body).unwrap_or(Value::Null);
    match t.status {
        200 => (Outcome::Done, Some(tokens)),
        400 if tokens["error"] == "invalid_grant" => (Outcome::Refused, None),
        s => (Outcome::Error(format!("token {s}: {tokens}")), None),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// What one phase of login workers measured.
struct Phase {
    elapsed: Duration,
    latencies: Vec<Duration>,
    refused: u64,
    errors: Vec<String>,
}

impl Phase {
    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn report(&self) {
        println!(
            "  full logins (authorize + password + token)  {:>8.1} /s  ({} in {:.1} s)",
            self.throughput(),
            self.latencies.len(),
            self.elapsed.as_secs_f64()
        );
        println!(
            "  login latency                               p50 {:>6.1} ms  p99 {:>6.1} ms",
            ms(percentile(&self.latencies, 0.50)),
            ms(percentile(&self.latencies, 0.99))
        );
        println!("  expected refusals (churn holders suspended) {:>8}", self.refused);
        println!("  errors                                      {:>8}", self.errors.len());
        for e in self.errors.iter().take(5) {
            println!("    {e}");
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `concurrency` workers run full logins for `seconds`, back to back (`rate` None) or
/// started at `rate` logins per second in total.
async fn run_phase(url_a: &str, url_b: &str, concurrency: usize, seconds: u64, rate: Option<f64>) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    // Paced: worker `w` starts its `k`-th login at `started + (w / n + k) * interval`.
    let interval = rate.map(|r| Duration::from_secs_f64(concurrency as f64 / r));
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (url_a, url_b, stop, next) = (url_a.to_owned(), url_b.to_owned(), stop.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let (mut sa, mut sb) = (Side::new(&url_a), Side::new(&url_b));
            let mut latencies = Vec::new();
            let (mut refused, mut errors) = (0u64, Vec::new());
            let mut k = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let t = match interval {
                    None => Instant::now(),
                    Some(i) => {
                        let at = started + i.mul_f64(w as f64 / concurrency as f64) + i * k;
                        k += 1;
                        tokio::time::sleep_until(at.into()).await;
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        at
                    }
                };
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                // Mostly stable holders; every fifth login a churn holder.
                let who = if n % 5 == 4 {
                    STABLE + (n / 5) % CHURN
                } else {
                    n % STABLE
                };
                let (outcome, _) = if (n + w) % 2 == 0 {
                    login(&mut sa, &mut sb, "bench", &identifier(who), PASSWORD).await
                } else {
                    login(&mut sb, &mut sa, "bench", &identifier(who), PASSWORD).await
                };
                match outcome {
                    Outcome::Done => latencies.push(t.elapsed()),
                    Outcome::Refused if who >= STABLE => refused += 1,
                    Outcome::Refused => errors.push(format!("stable holder {who} refused")),
                    Outcome::Error(e) => errors.push(e),
                }
            }
            (latencies, refused, errors)
        }));
    }

    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut phase = Phase {
        elapsed,
        latencies: Vec::new(),
        refused: 0,
        errors: Vec::new(),
    };
    for w in workers {
        let (l, r, e) = w.await.unwrap();
        phase.latencies.extend(l);
        phase.refused += r;
        phase.errors.extend(e);
    }
    phase.latencies.sort();
    phase
}

async fn run() {
    let seconds = env_num("EIDGATE_BENCH_SECS", 30);
    let concurrency = env_num("EIDGATE_BENCH_CONCURRENCY", 8) as usize;
    let (port_a, port_b) = (free_port(), free_port());
    let cluster = Cluster::start(port_a).await;
    let a = Node::start(&cluster.shared, "a", port_a).await;
    let b = Node::start(&cluster.shared, "b", port_b).await;
    let mut persons = vec![
        json!({"identifier": HELPDESK, "given_name": "Help", "family_name": "Desk",
                                  "birthdate": "1990-01-01", "proofing_loa": "high"}),
    ];
    let mut means = vec![json!({"holder": HELPDESK, "kind": "password", "loa": "low", "password": OPERATOR_PASSWORD})];
    for n in 0..STABLE + CHURN {
        persons.push(
            json!({"identifier": identifier(n), "given_name": "Ona", "family_name": "Onaitė",
                            "birthdate": "1980-01-01", "proofing_loa": "high"}),
        );
        means.push(json!({"holder": identifier(n), "kind": "password", "loa": "low", "password": PASSWORD}));
    }
    let client = |id: &str, console: bool| {
        json!({"client_id": id, "client_secret": SECRET, "redirect_uris": ["https://rp.example/cb"],
               "allowed_claims": [], "token_endpoint_auth_method": "client_secret_basic",
               "consent": "never", "operator_console": console})
    };
    cluster.import(&json!({
        "clients": [client("bench", false), client("console", true)],
        "persons": persons, "means": means,
        "operators": [{"person": HELPDESK, "roles": ["helpdesk"]}],
    }));
    let churn_means: Vec<String> = (STABLE..STABLE + CHURN)
        .map(|n| {
            let code = identifier(n).rsplit('/').next().unwrap().to_owned();
            cluster.pg.query(&format!(
                "SELECT m.id FROM means m JOIN persons p ON p.id = m.holder_id WHERE p.identifier_code = '{code}'"
            ))
        })
        .collect();
    let operator = {
        let (mut sa, mut sb) = (Side::new(&a.url), Side::new(&b.url));
        let (outcome, tokens) = login(&mut sa, &mut sb, "console", HELPDESK, OPERATOR_PASSWORD).await;
        assert_eq!(outcome, Outcome::Done);
        tokens.unwrap()["access_token"].as_str().unwrap().to_owned()
    };
    println!(
        "eidgate load bench: 2 instances, PostgreSQL + Redis, {seconds} s, {concurrency} login workers, {} cores",
        eidgate::config::Config::cores()
    );

    // The floor: logins one at a time on the idle cluster (what a refused login costs
    // at least: the argon2id check comes before the refusal).
    let mut alone = Vec::new();
    {
        let (mut sa, mut sb) = (Side::new(&a.url), Side::new(&b.url));
        for n in 0..30 {
            let t = Instant::now();
            let (outcome, _) = login(&mut sa, &mut sb, "bench", &identifier(n % STABLE), PASSWORD).await;
            assert_eq!(outcome, Outcome::Done);
            alone.push(t.elapsed());
        }
        alone.sort();
    }
    println!(
        "one login at a time on the idle cluster     p50 {:>6.1} ms  max {:>6.1} ms  (30 logins)",
        ms(percentile(&alone, 0.50)),
        ms(alone.last().copied().unwrap_or_default())
    );

    let stop = Arc::new(AtomicBool::new(false));
    // 0 = saturated, 1 = paced: the helpdesk tags its samples with the phase.
    let phase = Arc::new(AtomicU64::new(0));
    // The helpdesk: suspend on one instance, log in on the other until refused, reactivate.
    let helpdesk = {
        let (url_a, url_b, stop, operator, phase) = (
            a.url.clone(),
            b.url.clone(),
            stop.clone(),
            operator.clone(),
            phase.clone(),
        );
        tokio::spawn(async move {
            let mut propagation = Vec::new();
            let mut refresh_refused = Vec::new();
            let mut first_try = [0u64; 8];
            let mut errors = Vec::new();
            let mut round = 0usize;
            let every = Duration::from_millis(env_num("EIDGATE_BENCH_SUSPEND_MS", 250));
            let begun = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                // One suspension round per `every` (its own logins are load too).
                tokio::time::sleep_until((begun + every * round as u32).into()).await;
                let i = round % CHURN;
                let (on, other) = if round % 2 == 0 {
                    (&url_a, &url_b)
                } else {
                    (&url_b, &url_a)
                };
                let (mut here, mut there) = (Side::new(on), Side::new(other));
                let means = &churn_means[i];
                let body =
                    json!({"reason": "bench", "verification": {"method": "in_person", "evidence": "bench desk"}})
                        .to_string();
                let call = |command: &str, key: String| {
                    post(
                        &here.host,
                        &format!("/helpdesk/v1/means/{means}/{command}"),
                        &format!("Authorization: Bearer {operator}\r\nIdempotency-Key: {key}\r\n"),
                        "application/json",
                        &body,
                    )
                };
                let suspend = call("suspend", format!("s-{round}"));
                let reactivate = call("reactivate", format!("r-{round}"));
                // A refresh token of the holder, to probe the other instance without a
                // password check in the way.
                let mut there_too = Side::new(other);
                let (_, held) = login(&mut there, &mut there_too, "bench", &identifier(STABLE + i), PASSWORD).await;
                let refresh = held
                    .as_ref()
                    .and_then(|t| t["refresh_token"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                let basic = base64::engine::general_purpose::STANDARD.encode(format!("bench:{SECRET}"));
                let refresh_request = post(
                    &there.host,
                    "/token",
                    &format!("Authorization: Basic {basic}\r\n"),
                    "application/x-www-form-urlencoded",
                    &format!("grant_type=refresh_token&refresh_token={refresh}"),
                );
                let r = here.conn.send(&suspend).await;
                let at = Instant::now();
                let tag = (phase.load(Ordering::Relaxed) as usize).min(7);
                if r.status != 200 {
                    errors.push(format!("suspend {}: {}", r.status, String::from_utf8_lossy(&r.body)));
                    break;
                }
                let t = there.conn.send(&refresh_request).await;
                if t.status == 400 {
                    refresh_refused.push((tag, at.elapsed()));
                } else {
                    errors.push(format!("refresh after suspension answered {}", t.status));
                }
                let mut tries = 0;
                loop {
                    tries += 1;
                    let mut there_again = Side::new(other);
                    let (outcome, _) =
                        login(&mut there, &mut there_again, "bench", &identifier(STABLE + i), PASSWORD).await;
                    if outcome == Outcome::Refused {
                        propagation.push((tag, at.elapsed()));
                        if tries == 1 {
                            first_try[tag] += 1;
                        }
                        break;
                    }
                    if tries > 100 {
                        errors.push("suspension never reached the other instance".into());
                        break;
                    }
                }
                let r = here.conn.send(&reactivate).await;
                if r.status != 200 {
                    errors.push(format!("reactivate {}: {}", r.status, String::from_utf8_lossy(&r.body)));
                    break;
                }
                round += 1;
            }
            (propagation, refresh_refused, first_try, errors)
        })
    };

    let saturated = run_phase(&a.url, &b.url, concurrency, seconds, None).await;
    // Paced phases at these shares of phase 1's throughput (at most 7).
    let percents: Vec<f64> = std::env::var("EIDGATE_BENCH_LOAD_PERCENT")
        .unwrap_or_else(|_| "60,30".to_owned())
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .take(7)
        .collect();
    let mut phases = Vec::new();
    for (i, percent) in percents.iter().enumerate() {
        let rate = saturated.throughput() * percent / 100.0;
        phase.store(i as u64 + 1, Ordering::Relaxed);
        phases.push((
            format!(
                "phase {}, paced at {rate:.1} logins/s ({percent:.0} % of phase 1)",
                i + 2
            ),
            run_phase(&a.url, &b.url, concurrency, seconds, Some(rate)).await,
        ));
    }
    stop.store(true, Ordering::Relaxed);
    let (propagation, refresh_refused, first_try, helpdesk_errors) = helpdesk.await.unwrap();
    println!(
        "helpdesk errors                             {:>8}",
        helpdesk_errors.len()
    );
    for e in helpdesk_errors.iter().take(5) {
        println!("  {e}");
    }
    phases.insert(
        0,
        (
            format!("phase 1, saturated ({concurrency} workers back to back)"),
            saturated,
        ),
    );
    for (tag, (title, result)) in phases.iter().enumerate() {
        println!("{title}");
        result.report();
        let mut p: Vec<Duration> = propagation.iter().filter(|(t, _)| *t == tag).map(|(_, d)| *d).collect();
        let mut r: Vec<Duration> = refresh_refused
            .iter()
            .filter(|(t, _)| *t == tag)
            .map(|(_, d)| *d)
            .collect();
        p.sort();
        r.sort();
        println!(
            "  suspensions: {} (next login on the other instance refused at the first try: {})",
            p.len(),
            first_try[tag]
        );
        println!(
            "  suspension 200 -> refused login elsewhere   p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms  (target p99 < 100 ms)",
            ms(percentile(&p, 0.50)),
            ms(percentile(&p, 0.99)),
            ms(p.last().copied().unwrap_or_default())
        );
        println!(
            "  suspension 200 -> refresh refused elsewhere p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms  ({} probes)",
            ms(percentile(&r, 0.50)),
            ms(percentile(&r, 0.99)),
            ms(r.last().copied().unwrap_or_default()),
            r.len()
        );
    }
    let (code, out) = cluster.audit_verify();
    println!(
        "audit verify after the run: exit {code} {}",
        out.lines().next().unwrap_or("")
    );
    drop((a, b));
}
