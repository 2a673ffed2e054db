//! Operating the provider: transport limits (R-SEC-5: head size, connections per IP, rate
//! limit, slow clients), `/metrics`, and encrypted backups with restore (R-SEC-7) on
//! SQLite and PostgreSQL (see `support::db::databases`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eidgate::store::snapshot::{Item, SnapshotError, SnapshotHeader, SnapshotSink};
use eidgate::store::SqlStore;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::server::{http, tokens_for, TestServer, HOLDER};

fn addr(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (EOF or reset); returns what was read.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends one keep-alive request and reads exactly its response head (the connection stays open).
async fn request_keep_alive(stream: &mut TcpStream, host: &str) -> String {
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    // `/healthz` answers "ok": the response is complete once the body follows the head.
    while !(got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"ok")) {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed an admitted connection");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn r_sec_5_an_oversized_request_head_gets_431() {
    let server = TestServer::start().await;
    let client = http();
    let r = client
        .get(server.at("/healthz"))
        .header("x-filler", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "urn:eidgate:problem:header-too-large");
    // Far beyond the limit the HTTP parser itself refuses it, still with 431.
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nx-filler: {}\r\n\r\n",
        "b".repeat(200 * 1024)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let answer = String::from_utf8_lossy(&read_to_close(&mut stream).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A normal request still passes.
    assert_eq!(client.get(server.at("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn r_sec_5_too_many_connections_from_one_ip_are_refused() {
    let server = TestServer::start_with(|c| c.limits.connections_per_ip = 2).await;
    let host = addr(&server);
    let mut first = TcpStream::connect(&host).await.unwrap();
    let mut second = TcpStream::connect(&host).await.unwrap();
    // Both are admitted and served, and stay open (keep-alive).
    assert!(request_keep_alive(&mut first, &host).await.starts_with("HTTP/1.1 200"));
    assert!(request_keep_alive(&mut second, &host).await.starts_with("HTTP/1.1 200"));
    // The third from the same address is answered 429 and closed.
    let mut third = TcpStream::connect(&host).await.unwrap();
    let _ = third
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await;
    let answer = String::from_utf8_lossy(&read_to_close(&mut third).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("too-many-connections"), "{answer}");
    // The admitted ones are unaffected.
    assert!(request_keep_alive(&mut first, &host).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn r_sec_5_rate_limit_answers_429_with_retry_after() {
    let server = TestServer::start_with(|c| {
        c.limits.rate_per_ip = 1;
        c.limits.rate_burst = 3;
    })
    .await;
    let client = http();
    let discovery = server.at("/.well-known/openid-configuration");
    // No trusted proxies: X-Forwarded-For is ignored, so a fresh value each time does not
    // buy a fresh bucket.
    let from = |n: u8| {
        client
            .get(&discovery)
            .header("x-forwarded-for", format!("203.0.113.{n}"))
    };
    for n in 0..3 {
        assert_eq!(from(n).send().await.unwrap().status(), 200);
    }
    let r = from(200).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "urn:eidgate:problem:rate-limited");
    assert_eq!(body["status"], 429);
    // Probes are not limited.
    assert_eq!(client.get(server.at("/healthz")).send().await.unwrap().status(), 200);
    // The refusal is counted.
    let metrics = crate::support::server::metrics_text(&server).await;
    assert!(metrics.contains("eidgate_rate_limited_requests_total 1"), "{metrics}");
}

#[tokio::test]
async fn r_sec_5_behind_a_trusted_proxy_each_forwarded_client_has_its_own_rate_limit() {
    let server = TestServer::start_with(|c| {
        c.limits.rate_per_ip = 1;
        c.limits.rate_burst = 3;
        c.limits.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let client = http();
    let discovery = server.at("/.well-known/openid-configuration");
    let from = |ip: &str| client.get(&discovery).header("x-forwarded-for", ip.to_owned());
    for _ in 0..3 {
        assert_eq!(from("203.0.113.7").send().await.unwrap().status(), 200);
    }
    assert_eq!(from("203.0.113.7").send().await.unwrap().status(), 429);
    // Another client behind the same proxy has its own bucket.
    assert_eq!(from("203.0.113.8").send().await.unwrap().status(), 200);
    // A client cannot escape its bucket by writing its own entry: the proxy appends.
    assert_eq!(from("198.51.100.1, 203.0.113.7").send().await.unwrap().status(), 429);
    // The forwarded address, not the proxy's loopback one, decides who reads /metrics.
    let metrics = client
        .get(server.at("/metrics"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 404);
    assert_eq!(client.get(server.at("/metrics")).send().await.unwrap().status(), 200);
}

/// A stranger who holds every request slot (here the only one, with a request whose body
/// never comes) must not keep the transport limits from answering others: the head-size and
/// per-IP rate limits sit outside the concurrency limit, and a request they refuse never
/// waits for a slot (issue 22 moved the layers into stacks; this pins their order).
#[tokio::test]
async fn r_sec_5_limits_answer_while_every_request_slot_is_held() {
    let server = TestServer::start_with(|c| {
        c.limits.concurrency = 1;
        c.limits.header_bytes = 2048;
        c.limits.request_timeout = Duration::from_secs(600);
    })
    .await;
    let host = addr(&server);
    let mut holder = TcpStream::connect(&host).await.unwrap();
    holder
        .write_all(
            format!(
                "POST /token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 20\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // "100 Continue" comes when the handler first reads the body: the slot is taken.
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = holder.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before 100 Continue");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // An oversized head is refused at once. Were the concurrency limit outside the head
    // check, this request would wait for the held slot (600 s); the outer bound only
    // keeps such a server from hanging the suite.
    let refused = tokio::time::timeout(
        Duration::from_secs(60),
        http()
            .get(server.at("/.well-known/openid-configuration"))
            .header("x-pad", "a".repeat(4096))
            .send(),
    )
    .await
    .expect("the head-size limit waited for a request slot")
    .unwrap();
    assert_eq!(refused.status(), 431);
    // The limit is one for the whole server, not one per route: a request to another
    // route that passes the limits waits for the held slot (it cannot finish while the
    // slot is held, so this wait never ends early when the limit holds)...
    let mut waiting = tokio::spawn(http().get(server.at("/.well-known/openid-configuration")).send());
    let early = tokio::time::timeout(Duration::from_millis(500), &mut waiting).await;
    assert!(
        early.is_err(),
        "a second route had a request slot of its own: {early:?}"
    );
    // ...and the held request was alive all along: its body arrives and it is answered,
    // which frees the slot for the waiting one.
    holder.write_all(b"grant_type=nothing00").await.unwrap();
    let answer = String::from_utf8_lossy(&read_to_close(&mut holder).await).into_owned();
    let last = answer.rsplit("HTTP/1.1 ").next().unwrap_or_default();
    assert!(last.starts_with('4'), "{answer}");
    assert_eq!(waiting.await.unwrap().unwrap().status(), 200);
}

#[tokio::test]
async fn r_sec_5_a_slow_client_is_cut_off_after_the_header_timeout() {
    let timeout = Duration::from_millis(300);
    let server = TestServer::start_with(|c| c.limits.header_read_timeout = timeout).await;
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    let started = Instant::now();
    // Half a request head, then nothing (slowloris).
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // Waits on the socket for the server to close it; the outer bound only keeps a broken
    // server from hanging the suite.
    let answer = tokio::time::timeout(Duration::from_secs(30), read_to_close(&mut stream))
        .await
        .expect("the server did not close a slow connection");
    assert!(started.elapsed() >= timeout, "closed before the configured timeout");
    // No request was handled (at most hyper's 408).
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// `name{labels} value` lines of an exposition, by `name{labels}`.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "not OpenMetrics text");
    let mut series = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line}"));
        assert!(
            key.starts_with("eidgate_") && key.chars().all(|c| c.is_ascii_graphic() || c == ' '),
            "bad series {key}"
        );
        series.insert(key.to_owned(), value);
    }
    series
}

#[tokio::test]
async fn metrics_count_requests_logins_hsm_signatures_and_pools_after_a_login() {
    let server = TestServer::start().await;
    server.provision().await;
    let tokens = tokens_for(&server, "rp").await;
    assert!(tokens["id_token"].is_string());
    let r = http().get(server.at("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let series = parse_exposition(&r.text().await.unwrap());
    let at_least_one = |key: &str| {
        let v = series
            .get(key)
            .copied()
            .unwrap_or_else(|| panic!("missing {key} in {series:#?}"));
        assert!(v >= 1.0, "{key} = {v}");
    };
    at_least_one("eidgate_http_requests_total{method=\"POST\",route=\"/token\",status=\"200\"}");
    at_least_one("eidgate_http_request_duration_seconds_count{method=\"POST\",route=\"/token\"}");
    at_least_one("eidgate_logins_total{method=\"password\",loa=\"low\",outcome=\"success\"}");
    at_least_one("eidgate_hsm_sign_duration_seconds_count{alg=\"ES256\",outcome=\"ok\"}");
    at_least_one("eidgate_hsm_sessions");
    at_least_one("eidgate_db_pool_max");
    at_least_one("eidgate_db_pool_connections");
    assert!(series.contains_key("eidgate_hsm_sign_in_flight"));
    // Route templates, never concrete paths with ids.
    assert!(series.keys().all(|k| !k.contains(HOLDER)));
    assert!(series
        .keys()
        .any(|k| k.contains("route=\"/authn/flows/{flow}/password\"")));
}

#[tokio::test]
async fn metrics_are_hidden_from_others_and_open_to_the_token() {
    let token = "metrics-token-0123456789abcdef-0123456789";
    let server = TestServer::start_with(|c| {
        c.metrics.loopback = false;
        c.metrics.token = Some(token.to_string().into());
    })
    .await;
    let client = http();
    let anonymous = client.get(server.at("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 404);
    let wrong = client
        .get(server.at("/metrics"))
        .bearer_auth("metrics-token-0123456789abcdef-0123456780")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
    let right = client
        .get(server.at("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("eidgate_http_requests_total"));
}

// ---------------------------------------------------------------------------------------
// Backups (R-SEC-7)

/// Collects a snapshot: rows per table, sorted (row order is not part of the contract).
#[derive(Default)]
struct Collect {
    tables: BTreeMap<String, Vec<String>>,
    current: String,
}

#[async_trait]
impl SnapshotSink for Collect {
    async fn header(&mut self, _: &SnapshotHeader) -> Result<(), SnapshotError> {
        Ok(())
    }
    async fn item(&mut self, item: Item) -> Result<(), SnapshotError> {
        match item {
            Item::Table(name) => {
                self.tables.insert(name.clone(), Vec::new());
                self.current = name;
            }
            Item::Row(row) => self
                .tables
                .get_mut(&self.current)
                .unwrap()
                .push(serde_json::to_string(&row).unwrap()),
        }
        Ok(())
    }
}

async fn contents(store: &SqlStore) -> BTreeMap<String, Vec<String>> {
    let mut sink = Collect::default();
    store.snapshot(&mut sink).await.unwrap();
    for rows in sink.tables.values_mut() {
        rows.sort();
    }
    sink.tables
}

/// A running server on `url` with data: a login and token exchange, a signed checkpoint.
async fn busy_server(url: String) -> TestServer {
    let server = TestServer::start_with(move |c| c.database.url = url).await;
    server.provision().await;
    tokens_for(&server, "rp").await;
    eidgate::jobs::audit_pass(&server.app.jobs, 1).await.unwrap();
    server
}

async fn backup_of(server: &TestServer, source: &SqlStore) -> Vec<u8> {
    let mut file = Vec::new();
    let summary = eidgate::backup::write(source, server.app.sealer.as_ref(), &mut file, server.app.now())
        .await
        .unwrap();
    assert!(
        summary.rows["persons"] >= 1 && summary.rows["audit_log"] >= 3,
        "{summary:?}"
    );
    file
}

#[tokio::test]
async fn r_sec_7_backup_while_serving_restores_the_same_data_and_a_valid_chain_on_every_engine() {
    let sources = crate::support::db::databases().await;
    let targets = crate::support::db::databases().await;
    for ((engine, source_url), (_, target_url)) in sources.into_iter().zip(targets) {
        let server = busy_server(source_url.clone()).await;
        let source = SqlStore::connect(&source_url, 2).await.unwrap();
        // Taken while the server keeps writing: another login lands during the backup.
        let (file, _) = tokio::join!(backup_of(&server, &source), tokens_for(&server, "rp"));
        let text = String::from_utf8_lossy(&file);
        assert!(text.starts_with("EIDGATE-BACKUP 1 "), "{engine}");
        assert!(
            !text.contains("Jonaitis") && !text.contains(HOLDER),
            "{engine}: plaintext in the backup"
        );

        let target = SqlStore::connect(&target_url, 2).await.unwrap();
        let summary = eidgate::backup::restore(&target, server.app.sealer.as_ref(), file.as_slice())
            .await
            .unwrap();
        assert!(summary.total_rows > 0);
        // The restored database holds exactly what the backup holds, table for table.
        let mut in_file = Collect::default();
        let (manifest, _) = eidgate::backup::read(server.app.sealer.as_ref(), file.as_slice(), &mut in_file)
            .await
            .unwrap();
        assert_eq!(manifest.snapshot.backend, engine);
        for rows in in_file.tables.values_mut() {
            rows.sort();
        }
        assert_eq!(contents(&target).await, in_file.tables, "{engine}");
        // And what the source held before the backup (persons do not change on login).
        assert_eq!(contents(&target).await["persons"], contents(&source).await["persons"]);
        // The snapshot is consistent: the restored audit chain verifies with the HSM's keys.
        let keys = eidgate::hsm::AuditSigner::audit_keys(server.app.hsm.as_deref().unwrap());
        let verdict = eidgate::audit::verify::verify(&target, &keys).await.unwrap();
        assert!(
            matches!(verdict, eidgate::audit::verify::Verdict::Intact { .. }),
            "{engine}: {}",
            verdict.line()
        );
        // A server on the restored database logs the holder in (the password means needs
        // no HSM key; the new server signs with its own token).
        drop(server);
        target.close().await;
        let restored_server = TestServer::start_with(move |c| c.database.url = target_url).await;
        let tokens = tokens_for(&restored_server, "rp").await;
        assert!(tokens["access_token"].is_string(), "{engine}");
    }
}

#[tokio::test]
async fn r_sec_7_restore_refuses_a_non_empty_database() {
    for (engine, url) in crate::support::db::databases().await {
        let server = busy_server(url.clone()).await;
        let store = SqlStore::connect(&url, 2).await.unwrap();
        let file = backup_of(&server, &store).await;
        let before = contents(&store).await;
        let err = eidgate::backup::restore(&store, server.app.sealer.as_ref(), file.as_slice())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not empty"), "{engine}: {err}");
        assert_eq!(contents(&store).await, before, "{engine}: the target changed");
    }
}

#[tokio::test]
async fn r_sec_7_a_tampered_or_truncated_backup_is_refused_and_nothing_is_kept() {
    let sources = crate::support::db::databases().await;
    let targets = crate::support::db::databases().await;
    for ((engine, source_url), (_, target_url)) in sources.into_iter().zip(targets) {
        let server = busy_server(source_url.clone()).await;
        let source = SqlStore::connect(&source_url, 2).await.unwrap();
        let file = backup_of(&server, &source).await;
        let target = SqlStore::connect(&target_url, 2).await.unwrap();
        let empty = contents(&target).await;
        let sealer = server.app.sealer.as_ref();

        let mut flipped = file.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x01;
        let cut = &file[..file.len() - 10];
        let mut other_id = file.clone();
        other_id[17] = if other_id[17] == b'0' { b'1' } else { b'0' };
        for (what, bad) in [
            ("flipped bit", flipped.as_slice()),
            ("truncated", cut),
            ("other id", other_id.as_slice()),
        ] {
            let err = eidgate::backup::restore(&target, sealer, bad).await.unwrap_err();
            assert!(
                err.to_string().contains("damaged or was altered"),
                "{engine} {what}: {err}"
            );
            assert!(eidgate::backup::check(sealer, bad).await.is_err(), "{engine} {what}");
            assert_eq!(contents(&target).await, empty, "{engine} {what}: rows were kept");
        }
        // The intact file still restores into the same target.
        eidgate::backup::restore(&target, sealer, file.as_slice())
            .await
            .unwrap();
    }
}

#[test]
fn r_sec_7_cli_backup_restore_and_audit_verify() {
    use std::process::Command;
    crate::support::softhsm::softhsm_conf();
    let (hsm, hsm_dir) = crate::support::softhsm::hsm_config("cli-backup");
    let dir = tempfile::tempdir().unwrap();
    let source_db = format!("sqlite://{}/source.db", dir.path().display());
    let target_db = format!("sqlite://{}/target.db", dir.path().display());
    let eidgate = |db: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_eidgate"));
        c.env("EIDGATE_DATA_DIR", hsm_dir.path())
            .env("EIDGATE_DATABASE_URL", db)
            .env("EIDGATE_HSM_TOKEN_LABEL", &hsm.token_label)
            .env("EIDGATE_LOG", "warn")
            .env_remove("EIDGATE_CONFIG");
        c
    };
    let run = |c: &mut Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let import = dir.path().join("import.json");
    std::fs::write(&import, crate::support::server::fixture().to_string()).unwrap();
    run(eidgate(&source_db).arg("import").arg(&import));
    run(eidgate(&source_db).args(["audit", "checkpoint"]));
    let file = dir.path().join("eidgate.backup");
    let summary: Value =
        serde_json::from_str(&run(eidgate(&source_db).args(["backup", "--json", "--out"]).arg(&file))).unwrap();
    assert_eq!(summary["rows"]["persons"], 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(run(eidgate(&target_db).args(["restore", "--check", "--in"]).arg(&file)).starts_with("OK "));
    run(eidgate(&target_db).args(["restore", "--in"]).arg(&file));
    let verified = run(eidgate(&target_db).args(["audit", "verify"]));
    assert!(verified.starts_with("OK"), "{verified}");
    // A second restore into the now non-empty database is refused.
    let out = eidgate(&target_db)
        .args(["restore", "--in"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}
