//! Memory per live authorization code and per open login flow in the memory ephemeral
//! store (issue 22: at most 512 bytes each).
//!
//! Measured, not estimated: the test runs itself again as a child process that does
//! nothing else (one test, one thread), fills a fresh store with `N` codes, then `N`
//! flows, exactly as the server stores them (the same structs, the same JSON, the same
//! keys), and reads its resident memory (`/proc/self/statm`) before and after each phase.
//! The difference covers everything the entries cost: the records, the keys, the hash
//! table and the expiry index, and the allocator's rounding.

use std::time::Duration;

use eidgate::authn::flow::LoginFlow;
use eidgate::domain::secret::fingerprint_hex;
use eidgate::ephemeral::memory::MemoryStore;
use eidgate::ephemeral::Ephemeral;
use eidgate::oidc::authorize::AuthRequest;
use eidgate::oidc::grant::{code_key, Authentication, CodeGrant};

const CHILD: &str = "EIDGATE_FOOTPRINT_CHILD";
const N: usize = 100_000;
const LIMIT: f64 = 512.0;

/// Bytes per live code and per open flow, measured in a child process.
fn measure() -> (f64, f64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "footprint::footprint_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let measured = |what: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| Some(l.split_once(&format!("footprint {what} "))?.1))
            .unwrap_or_else(|| panic!("no {what} figure in {stdout}"))
            .parse()
            .unwrap()
    };
    let (code, flow) = (measured("code"), measured("flow"));
    println!("bytes per live code {code:.0}, per open flow {flow:.0}");
    // Something was measured: the records alone take more than this.
    assert!(code > 64.0 && flow > 64.0, "{code} {flow}");
    (code, flow)
}

/// The target (the store as it kept JSON strings took 1,007 bytes per code and
/// 1,258 per flow on this measure).
#[test]
fn r_perf_22_memory_store_holds_a_code_or_a_flow_in_at_most_512_bytes() {
    let (code, flow) = measure();
    assert!(code <= LIMIT, "{code:.0} bytes per live code");
    assert!(flow <= LIMIT, "{flow:.0} bytes per open flow");
}

fn resident_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0
}

fn token() -> String {
    eidgate::random::token()
}

fn authentication() -> Authentication {
    serde_json::from_value(serde_json::json!({
        "person": uuid::Uuid::new_v4(), "means": uuid::Uuid::new_v4(), "auth_time": 1_796_000_000,
        "loa": "substantial", "amr": ["pwd", "otp"], "sid": token(),
    }))
    .unwrap()
}

fn request(n: usize) -> AuthRequest {
    serde_json::from_value(serde_json::json!({
        "client_id": "municipality-portal", "redirect_uri": "https://portal.example.lt/oidc/callback",
        "scope": ["openid", "profile"], "state": token(), "nonce": token(), "code_challenge": token(),
        "prompt": {"none": false, "login": false, "consent": false}, "max_age": null,
        "requested_loa": "substantial", "claims": {"userinfo": [], "id_token": []},
        "login_hint": format!("LT/LT/3800101{n:04}"), "id_token_hint": null,
    }))
    .unwrap()
}

/// The child: fills a store and prints the bytes per entry of each kind.
#[tokio::test]
async fn footprint_child() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    // One store per kind, each from empty, so that each is charged its own hash table.
    let (code_store, flow_store) = (MemoryStore::with_caps(N, N + 1), MemoryStore::with_caps(N, N + 1));
    let ttl = Duration::from_secs(600);
    // Warm up the allocator's and the store's fixed parts (not per-entry costs).
    code_store.put("warm", b"{}", ttl).await.unwrap();
    flow_store.put("warm", b"{}", ttl).await.unwrap();

    // The values are made first and kept until the end, so that only what the store
    // keeps shows in the difference (not the allocator pages of the values' temporaries).
    let codes: Vec<(String, Vec<u8>)> = (0..N).map(code).collect();
    let flows: Vec<(String, Vec<u8>)> = (0..N).map(flow).collect();
    let before = resident_bytes();
    for (key, bytes) in &codes {
        // As `oidc::code::issue_code` stores it (`ephemeral::put_json`).
        code_store.put(key, bytes, ttl).await.unwrap();
    }
    let after_codes = resident_bytes();
    for (key, bytes) in &flows {
        // As `authn::flow::start` stores it.
        assert!(flow_store.put_bounded(key, bytes, ttl).await.unwrap());
    }
    let after_flows = resident_bytes();
    assert_eq!((code_store.len(), flow_store.len()), (N + 1, N + 1));
    assert_eq!(flow_store.bounded_len(), Some(N));
    println!("footprint code {}", (after_codes - before) / N as f64);
    println!("footprint flow {}", (after_flows - after_codes) / N as f64);
    drop((codes, flows));
}

/// A code's key and value as `oidc::code::issue_code` makes them.
fn code(n: usize) -> (String, Vec<u8>) {
    let request = request(n);
    let grant = CodeGrant {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        sub: format!("LT/LT/3800101{n:04}"),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scope: request.scope.clone(),
        claims: request.claims.clone(),
        authn: authentication(),
        exp: 1_796_000_060,
    };
    (code_key(&token()).to_string(), serde_json::to_vec(&grant).unwrap())
}

/// A flow's key and value as `authn::flow::start` makes them.
fn flow(n: usize) -> (String, Vec<u8>) {
    let flow = LoginFlow {
        id: token(),
        request: request(n),
        client_name: "Municipality portal".into(),
        browser: fingerprint_hex(&token()),
        exp: 1_796_000_600,
        first_factor: None,
        password_change: None,
        authenticated: None,
        legal_chosen: false,
        consented: false,
        pending: None,
        opened_from: Some(format!(
            "flows:addr:{}",
            &fingerprint_hex(&format!("10.0.{}.{}", n / 256, n % 256))[..32]
        )),
    };
    let bytes = serde_json::to_vec(&flow).unwrap();
    assert!(bytes.len() <= eidgate::authn::flow::MAX_FLOW_BYTES);
    (format!("flow:{}", fingerprint_hex(&flow.id)), bytes)
}
