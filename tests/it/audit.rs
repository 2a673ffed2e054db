//! The tamper-evident audit log end to end (R-LOG-2, R-LOG-4, R-SEC-6): a log with a
//! checkpoint signed by the HSM `audit-sign` key is tampered with on a real SQLite and (when
//! `EIDGATE_TEST_DATABASE_URL` is set) PostgreSQL database, the way an attacker with
//! database access would (triggers dropped first), and `eidgate audit verify` must exit 1
//! naming the first bad `seq`; the untouched log verifies. Failed logins driven through
//! the API reach the external sink, raise alerts and reach the webhook.

use std::path::Path;
use std::process::Command;

use eidgate::audit::{chain_hash, AuditEvent};
use eidgate::store::{AuditRepo, SqlStore};
use sqlx::{AnyConnection, Connection, Executor, Row};

use crate::support::server::{
    auth_params, authorize_url, browser, http, login, password_step, pkce, start_login, TestServer, HOLDER,
};

pub(crate) fn eidgate(data_dir: &Path, token: &str, db: &str) -> Command {
    crate::support::softhsm::softhsm_conf();
    let mut c = Command::new(env!("CARGO_BIN_EXE_eidgate"));
    c.env("EIDGATE_DATA_DIR", data_dir)
        .env("EIDGATE_LOG", "warn")
        .env("EIDGATE_HSM_TOKEN_LABEL", token)
        .env("EIDGATE_DATABASE_URL", db)
        .env_remove("EIDGATE_CONFIG");
    c
}

/// `(exit code, first line of stdout)` of `eidgate audit verify`.
fn verify(data_dir: &Path, token: &str, db: &str) -> (i32, String) {
    let out = eidgate(data_dir, token, db).args(["audit", "verify"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let first = stdout.lines().next().unwrap_or_default().to_owned();
    (
        out.status.code().unwrap_or(-1),
        format!("{first}  [stderr: {}]", String::from_utf8_lossy(&out.stderr).trim()),
    )
}

/// A log of 10 records with a signed checkpoint at seq 8 (witnessed in a fresh sink).
pub(crate) async fn signed_log(data_dir: &Path, token: &str, db: &str) {
    let _ = std::fs::remove_file(data_dir.join("audit-sink.jsonl"));
    let store = SqlStore::connect(db, 2).await.unwrap();
    for i in 1..=8 {
        store
            .append(AuditEvent::new(
                "test.event",
                "system",
                format!("thing:{i}"),
                serde_json::json!({"i": i}),
            ))
            .await
            .unwrap();
    }
    let out = eidgate(data_dir, token, db)
        .args(["audit", "checkpoint", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let signed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(signed["seq"], 8, "{signed}");
    for i in 9..=10 {
        store
            .append(AuditEvent::new(
                "test.event",
                "system",
                format!("thing:{i}"),
                serde_json::json!({"i": i}),
            ))
            .await
            .unwrap();
    }
    store.close().await;
}

/// `eidgate audit export` of today's records into `{data_dir}/bundle.json`.
pub(crate) fn export_today(data_dir: &Path, token: &str, db: &str) -> std::path::PathBuf {
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let file = data_dir.join("bundle.json");
    let out = eidgate(data_dir, token, db)
        .args(["audit", "export", "--from", &today, "--to", &today, "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    file
}

/// The database writer of issue 17: connects with plain SQL and drops the append-only
/// triggers of the records and the checkpoints.
pub(crate) async fn attacker(db: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    let mut c = AnyConnection::connect(db).await.unwrap();
    for (table, trigger) in [
        ("audit_log", "audit_log_no_update"),
        ("audit_log", "audit_log_no_delete"),
        ("audit_checkpoints", "audit_checkpoints_no_update"),
        ("audit_checkpoints", "audit_checkpoints_no_delete"),
    ] {
        let drop = if db.starts_with("sqlite") {
            format!("DROP TRIGGER {trigger}")
        } else {
            format!("DROP TRIGGER {trigger} ON {table}")
        };
        c.execute(drop.as_str()).await.unwrap();
    }
    c
}

const COLUMNS: &str = "time, event_type, actor, subject, data, prev_hash, hash";

#[derive(Clone, Copy, Debug)]
enum Tamper {
    None,
    Change,
    Delete,
    Insert,
    Swap,
    DropTail,
    DropTailAndRewindHead,
    ForgeCheckpoint,
    RewriteChain,
}

async fn tamper(db: &str, how: Tamper) {
    if matches!(how, Tamper::None) {
        return;
    }
    let mut c = attacker(db).await;
    match how {
        Tamper::None => {}
        Tamper::Change => {
            c.execute("UPDATE audit_log SET subject = 'thing:evil' WHERE seq = 4")
                .await
                .unwrap();
        }
        Tamper::Delete => {
            c.execute("DELETE FROM audit_log WHERE seq = 5").await.unwrap();
        }
        Tamper::Insert => {
            // Make room at 6 and slip in a record chained correctly to seq 5.
            c.execute("UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 6")
                .await
                .unwrap();
            c.execute("UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000")
                .await
                .unwrap();
            let row = sqlx::query("SELECT time, hash FROM audit_log WHERE seq = 5")
                .fetch_one(&mut c)
                .await
                .unwrap();
            let time: i64 = row.try_get("time").unwrap();
            let prev: [u8; 32] = row.try_get::<Vec<u8>, _>("hash").unwrap().try_into().unwrap();
            let event = AuditEvent::new("test.event", "system", "thing:forged", serde_json::json!({"i": 0}));
            let hash = chain_hash(&prev, 6, time, &event);
            sqlx::query(
                "INSERT INTO audit_log (seq, time, event_type, actor, subject, data, prev_hash, hash) \
                 VALUES (6, $1, 'test.event', 'system', 'thing:forged', '{\"i\":0}', $2, $3)",
            )
            .bind(time)
            .bind(prev.to_vec())
            .bind(hash.to_vec())
            .execute(&mut c)
            .await
            .unwrap();
        }
        Tamper::Swap => {
            // Rows 3 and 6 trade places (every column but seq).
            let select = format!("SELECT {COLUMNS} FROM audit_log WHERE seq = $1");
            let mut rows = Vec::new();
            for seq in [3i64, 6] {
                let r = sqlx::query(&select).bind(seq).fetch_one(&mut c).await.unwrap();
                rows.push((
                    r.try_get::<i64, _>("time").unwrap(),
                    r.try_get::<String, _>("event_type").unwrap(),
                    r.try_get::<String, _>("actor").unwrap(),
                    r.try_get::<String, _>("subject").unwrap(),
                    r.try_get::<String, _>("data").unwrap(),
                    r.try_get::<Vec<u8>, _>("prev_hash").unwrap(),
                    r.try_get::<Vec<u8>, _>("hash").unwrap(),
                ));
            }
            for (seq, r) in [(6i64, &rows[0]), (3, &rows[1])] {
                sqlx::query(
                    "UPDATE audit_log SET time = $1, event_type = $2, actor = $3, subject = $4, data = $5, \
                     prev_hash = $6, hash = $7 WHERE seq = $8",
                )
                .bind(r.0)
                .bind(r.1.clone())
                .bind(r.2.clone())
                .bind(r.3.clone())
                .bind(r.4.clone())
                .bind(r.5.clone())
                .bind(r.6.clone())
                .bind(seq)
                .execute(&mut c)
                .await
                .unwrap();
            }
        }
        Tamper::DropTail => {
            c.execute("DELETE FROM audit_log WHERE seq >= 9").await.unwrap();
        }
        Tamper::DropTailAndRewindHead => {
            c.execute("DELETE FROM audit_log WHERE seq >= 7").await.unwrap();
            c.execute("UPDATE audit_head SET seq = 6, hash = (SELECT hash FROM audit_log WHERE seq = 6)")
                .await
                .unwrap();
        }
        Tamper::ForgeCheckpoint => {
            c.execute("UPDATE audit_checkpoints SET time = time + 1").await.unwrap();
        }
        Tamper::RewriteChain => {
            // Change seq 4 and recompute every later hash and the head, as an attacker who
            // knows the hash function would: only the signed checkpoint at 8 can tell.
            c.execute("UPDATE audit_log SET subject = 'thing:evil' WHERE seq = 4")
                .await
                .unwrap();
            crate::audit_tamper::rechain(&mut c, 4).await;
        }
    }
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_2_r_sec_6_audit_verify_names_the_first_bad_seq_on_every_engine() {
    let cases = [
        (Tamper::None, None),
        (Tamper::Change, Some("FAIL seq=4: changed")),
        (Tamper::Delete, Some("FAIL seq=5: missing")),
        (Tamper::Insert, Some("FAIL seq=6: inserted")),
        (Tamper::Swap, Some("FAIL seq=3: reordered")),
        (Tamper::DropTail, Some("FAIL seq=9: truncated")),
        (Tamper::DropTailAndRewindHead, Some("FAIL seq=7: truncated")),
        (Tamper::ForgeCheckpoint, Some("FAIL seq=8: bad-checkpoint-signature")),
        // A consistently rewritten chain is caught by the signed checkpoint it contradicts.
        (Tamper::RewriteChain, Some("FAIL seq=8: changed")),
    ];
    let (hsm, data) = crate::support::softhsm::hsm_config("audit");
    for (how, expected) in cases {
        for (engine, db) in crate::support::db::databases().await {
            signed_log(data.path(), &hsm.token_label, &db).await;
            tamper(&db, how).await;
            let (code, line) = verify(data.path(), &hsm.token_label, &db);
            match expected {
                None => {
                    assert_eq!(code, 0, "{engine} {how:?}: {line}");
                    assert!(
                        line.starts_with("OK records=10 checkpoints=1"),
                        "{engine} {how:?}: {line}"
                    );
                }
                Some(first_line) => {
                    assert_eq!(code, 1, "{engine} {how:?}: {line}");
                    assert!(line.starts_with(&format!("{first_line}  ")), "{engine} {how:?}: {line}");
                }
            }
        }
    }
}

/// A tiny webhook receiver: answers 200 and hands each request body over.
pub(crate) async fn webhook() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read until the declared body is complete.
            loop {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_owned)
                        })
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        let _ = tx.send(body.to_owned());
                        break;
                    }
                }
            }
            let _ = s
                .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    (url, rx)
}

pub(crate) fn sink_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_4_failed_logins_reach_the_sink_and_raise_brute_force_and_ip_alerts() {
    let (hook, mut received) = webhook().await;
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let collector = syslog.local_addr().unwrap().to_string();
    let server = TestServer::start_with(|c| {
        c.audit.syslog_udp = Some(collector);
        c.audit.alert_account_failures = 3;
        c.audit.alert_ip_accounts = 3;
        c.audit.webhook_url = Some(hook);
        // The test drives the jobs itself.
        c.audit.sink_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    server.provision().await;
    let browser = browser();
    let (_, challenge) = pkce();
    let flow = start_login(&browser, &authorize_url(&server, &auth_params("rp", &challenge))).await;
    for _ in 0..3 {
        let (status, _) = password_step(&server, &browser, &flow, HOLDER, "wrong password").await;
        assert_eq!(status, 401);
    }
    eidgate::jobs::audit_pass(&server.app.jobs, i64::MAX).await.unwrap();
    let lines = sink_lines(server.app.audit.sink_path());
    let failures = lines.iter().filter(|l| l["event_type"] == "login.failure").count();
    assert_eq!(failures, 3, "{lines:?}");
    // No identifier or password in the sink, only a pseudonym (R-LOG-5).
    let text = std::fs::read_to_string(server.app.audit.sink_path()).unwrap();
    assert!(!text.contains(HOLDER) && !text.contains("wrong password"));
    let alerts: Vec<&serde_json::Value> = lines.iter().filter(|l| l["event_type"] == "alert.raised").collect();
    assert_eq!(alerts.len(), 1, "{lines:?}");
    assert_eq!(alerts[0]["data"]["rule"], "brute_force_account");
    let posted = received.recv().await.unwrap();
    assert!(posted.contains("brute_force_account"), "{posted}");
    // The same lines reached the syslog collector (the scheduled daily report may come
    // first: look through what arrived).
    let mut datagram = [0u8; 8192];
    let mut failure = None;
    for _ in 0..lines.len() {
        let n = syslog.recv(&mut datagram).unwrap();
        let text = String::from_utf8_lossy(&datagram[..n]).into_owned();
        if text.contains(" eidgate - login.failure - ") {
            failure = Some(text);
            break;
        }
    }
    let failure = failure.expect("a login.failure datagram");
    assert!(failure.starts_with("<84>1 "), "{failure}");

    // The same IP now fails on two more accounts: three accounts in the window.
    for other in ["LT/LT/39001010000", "LT/LT/39001010001"] {
        let (status, _) = password_step(&server, &browser, &flow, other, "whatever").await;
        assert_eq!(status, 401);
    }
    eidgate::jobs::audit_pass(&server.app.jobs, i64::MAX).await.unwrap();
    let lines = sink_lines(server.app.audit.sink_path());
    let rules: Vec<&str> = lines
        .iter()
        .filter(|l| l["event_type"] == "alert.raised")
        .map(|l| l["data"]["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["brute_force_account", "ip_many_accounts"], "{lines:?}");
    let posted = received.recv().await.unwrap();
    assert!(posted.contains("ip_many_accounts"), "{posted}");
    // Each record reached the sink once. A witnessed checkpoint line carries the seq of
    // the record it covers, and the start checkpoint may be signed over a record (the
    // scheduled report) that a later pass ships: count record lines only (those that are
    // not a witness line, as `audit verify` reads them).
    let mut seqs: Vec<i64> = lines
        .iter()
        .filter(|l| eidgate::audit::witness::parse(l).is_none())
        .map(|l| l["seq"].as_i64().unwrap())
        .collect();
    let n = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_2_a_served_log_with_signed_checkpoints_verifies_and_a_foreign_key_does_not() {
    let server = TestServer::start_with(|c| c.audit.sink_interval = std::time::Duration::from_secs(3600)).await;
    server.provision().await;
    eidgate::jobs::audit_pass(&server.app.jobs, 1).await.unwrap();
    let store = server.app.store.as_ref();
    let checkpoints = store.checkpoints().await.unwrap();
    let first = checkpoints.first().expect("a checkpoint was signed").seq;
    // The import's records are covered.
    assert!(checkpoints.last().unwrap().seq >= 3, "{checkpoints:?}");
    let keys = eidgate::hsm::AuditSigner::audit_keys(server.app.hsm.as_deref().unwrap());
    let verdict = eidgate::audit::verify::verify(store, &keys).await.unwrap();
    assert!(
        matches!(verdict, eidgate::audit::verify::Verdict::Intact { .. }),
        "{verdict:?}"
    );
    // A key that did not sign fails every checkpoint.
    let mut wrong = keys.clone();
    wrong[0].x = wrong[0].y.clone();
    let verdict = eidgate::audit::verify::verify(store, &wrong).await.unwrap();
    assert_eq!(verdict.line(), format!("FAIL seq={first}: bad-checkpoint-signature"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sup_4_the_holder_sees_their_data_and_the_events_of_their_means() {
    let server = TestServer::start().await;
    server.provision().await;
    let browser = browser();
    let (_, challenge) = pkce();
    login(
        &server,
        &browser,
        &authorize_url(&server, &auth_params("rp", &challenge)),
    )
    .await;
    let r = browser.get(server.at("/account/api/me")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        me["person"]["identifier"],
        crate::support::operators::stored(HOLDER),
        "{me}"
    );
    assert_eq!(me["person"]["given_name"], "Jonas", "{me}");
    let events: Vec<&str> = me["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"means.imported"), "{events:?}");
    assert!(events.contains(&"login.success"), "{events:?}");
    let r = http().get(server.at("/account/api/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_2_an_exported_bundle_verifies_on_its_own_and_a_changed_one_does_not() {
    let (hsm, data) = crate::support::softhsm::hsm_config("export");
    let token = hsm.token_label.clone();
    // The token is made in this process first: a module initialised here does not see
    // tokens that a CLI process creates later.
    let trust = crate::audit_bundle::published_keys(hsm, data.path()).await;
    let (_, db) = crate::support::db::databases().await.remove(0);
    signed_log(data.path(), &token, &db).await;
    let file = export_today(data.path(), &token, &db);
    let bundle_check = |file: &Path| {
        // No database and no HSM: a wrong URL and token prove neither is used.
        let out = eidgate(data.path(), "no-such-token", "sqlite:///nonexistent/x.db")
            .args(["audit", "verify-bundle"])
            .arg(file)
            .arg("--trust")
            .arg(&trust)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, line) = bundle_check(&file);
    assert_eq!(code, Some(0), "{line}");
    assert!(line.starts_with("OK records=10 checkpoints=1"), "{line}");

    let mut bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    bundle["records"][3]["subject"] = "thing:evil".into();
    let changed = data.path().join("changed.json");
    std::fs::write(&changed, bundle.to_string()).unwrap();
    let (code, line) = bundle_check(&changed);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("FAIL "), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_6_pruning_destroys_old_records_behind_a_signed_anchor_and_the_log_still_verifies() {
    let (config, dir) = crate::support::softhsm::hsm_config("prune");
    let data_dir = dir.path().to_owned();
    let hsm = tokio::task::spawn_blocking(move || eidgate::hsm::Pkcs11Hsm::open(&config, &data_dir).unwrap())
        .await
        .unwrap();
    for (engine, db) in crate::support::db::databases().await {
        let store = SqlStore::connect(&db, 2).await.unwrap();
        for i in 1..=5 {
            store
                .append(AuditEvent::new(
                    "test.event",
                    "system",
                    format!("thing:{i}"),
                    serde_json::json!({}),
                ))
                .await
                .unwrap();
        }
        let mut c = AnyConnection::connect(&db).await.unwrap();
        assert!(
            c.execute("DELETE FROM audit_log WHERE seq = 1").await.is_err(),
            "{engine}: deleting without an anchor must be refused"
        );
        let witness = crate::audit_tamper::witness(dir.path());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        eidgate::audit::checkpoint::checkpoint_if_due(&store, &hsm, &witness, 1, now)
            .await
            .unwrap();
        let later = now + 3600;
        let anchor = eidgate::audit::retention::prune_expired(&store, &hsm, &witness, later, 60)
            .await
            .unwrap();
        assert_eq!(anchor, eidgate::audit::retention::Pruned::UpTo(5), "{engine}");
        let left: Vec<i64> = store.audit_after(0, 100).await.unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(left, [6], "{engine}");
        let keys = eidgate::hsm::AuditSigner::audit_keys(&hsm);
        let verdict = eidgate::audit::verify::verify(&store, &keys).await.unwrap();
        assert!(
            matches!(verdict, eidgate::audit::verify::Verdict::Intact { records: 1, .. }),
            "{engine}: {verdict:?}"
        );
        assert!(
            c.execute("DELETE FROM audit_log WHERE seq = 6").await.is_err(),
            "{engine}: records after the anchor stay append-only"
        );
        c.close().await.unwrap();
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_4_an_operator_exceeding_their_role_and_repeated_helpdesk_failures_raise_alerts() {
    use crate::support::operators::{apply, helpdesk, operator_token, provision_staff, status_body, HELPDESK};
    let server = TestServer::start_with(|c| {
        c.audit.alert_helpdesk_failures = 2;
        c.audit.sink_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    let staff = provision_staff(&server).await;
    let desk = operator_token(&server, HELPDESK).await;
    // Beyond the helpdesk role: applying for a means is a registration officer's task.
    let denied = apply(&server, &desk, HOLDER, "password", "low").await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    for n in 0..2 {
        let wrong = helpdesk(
            &server,
            &desk,
            &staff.holder_means,
            "suspend",
            &format!("wrong-{n}"),
            &status_body("revocation_secret", "ZZZZ-ZZZZ-ZZZZ-ZZZZ"),
        )
        .await;
        assert_eq!(wrong.status, 403, "{}", wrong.body);
    }
    eidgate::jobs::audit_pass(&server.app.jobs, i64::MAX).await.unwrap();
    let lines = sink_lines(server.app.audit.sink_path());
    let pid = crate::support::operators::person_id(&server, HELPDESK).await;
    let denial = lines
        .iter()
        .find(|l| l["event_type"] == "operator.access_denied")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(denial["actor"], format!("operator:{pid}"));
    assert_eq!(denial["data"]["path"], "/admin/v1/means");
    let rules: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l["event_type"] == "alert.raised")
        .map(|l| (l["data"]["rule"].as_str().unwrap(), l["data"]["key"].as_str().unwrap()))
        .collect();
    let actor = format!("operator:{pid}");
    assert!(rules.contains(&("operator_exceeds_role", actor.as_str())), "{rules:?}");
    assert!(
        rules.iter().any(|(rule, _)| *rule == "helpdesk_verification_failures"),
        "{rules:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_4_audit_report_prints_the_daily_and_weekly_summaries() {
    let (hsm, data) = crate::support::softhsm::hsm_config("report");
    let (_, db) = crate::support::db::databases().await.remove(0);
    signed_log(data.path(), &hsm.token_label, &db).await;
    for (flag, days) in [("--daily", 1), ("--weekly", 7)] {
        let out = eidgate(data.path(), &hsm.token_label, &db)
            .args(["audit", "report", flag, "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let (from, to) = (report["from"].as_i64().unwrap(), report["to"].as_i64().unwrap());
        assert_eq!(to - from, days * 86_400, "{report}");
        assert_eq!(to % 86_400, 0, "periods end at UTC midnight: {report}");
        for key in [
            "logins",
            "failures",
            "lockouts",
            "lifecycle",
            "access_denied",
            "alerts",
            "records",
        ] {
            assert!(report.get(key).is_some(), "{key} missing: {report}");
        }
    }
    let out = eidgate(data.path(), &hsm.token_label, &db)
        .args(["audit", "report", "--daily", "--weekly"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "one period at a time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_2_shutdown_signs_a_final_checkpoint_over_the_system_stop() {
    use eidgate::audit::CheckpointKind;
    use eidgate::config::{Config, TlsMode};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (hsm, _hsm_dir) = crate::support::softhsm::hsm_config("stop");
    let data = tempfile::tempdir().unwrap();
    let mut config = Config {
        issuer: format!("http://{}", listener.local_addr().unwrap()),
        data_dir: data.path().to_owned(),
        hsm,
        ..Config::default()
    };
    config.tls.mode = TlsMode::Off;
    config.database.url = format!("sqlite://{}/eidgate.db", data.path().display());
    config.audit.sink_interval = std::time::Duration::from_secs(3600);
    config.finish().unwrap();
    let app = eidgate::app::build(config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(eidgate::web::serve::serve(app.clone(), listener, async move {
        let _ = stopped.await;
    }));
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();

    let records = app.store.audit_after(0, 10_000).await.unwrap();
    let stop_seq = records
        .iter()
        .find(|r| r.event.event_type == "system.stop")
        .expect("system.stop recorded")
        .seq;
    let last = app
        .store
        .last_checkpoint(CheckpointKind::Checkpoint)
        .await
        .unwrap()
        .expect("a checkpoint at shutdown");
    assert!(
        last.seq >= stop_seq,
        "checkpoint {} before the stop at {stop_seq}",
        last.seq
    );
    let keys = eidgate::hsm::AuditSigner::audit_keys(app.hsm.as_deref().unwrap());
    let verdict = eidgate::audit::verify::verify(app.store.as_ref(), &keys).await.unwrap();
    assert!(
        matches!(verdict, eidgate::audit::verify::Verdict::Intact { .. }),
        "{verdict:?}"
    );
}
