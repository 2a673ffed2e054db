//! Issue 17 attacks 1 and 2, played by the database writer (R-LOG-2, R-LOG-6, R-SEC-6): a
//! DBA or a stolen database credential, without the HSM and without the external sink. On
//! SQLite and (with `EIDGATE_TEST_DATABASE_URL`) PostgreSQL the attacker drops the
//! append-only triggers, edits rows with plain SQL and recomputes the chain with the same
//! algorithm; `eidgate audit verify` must exit 1 naming the first bad seq it can prove, and
//! retention must refuse, sign nothing, delete nothing and raise `audit_tampering`.

use std::path::Path;

use eidgate::audit::retention::Pruned;
use eidgate::audit::sink::{AlertRules, Shipper};
use eidgate::audit::verify::{verify_with, Coverage, Options, Verdict};
use eidgate::audit::{chain_hash, AuditEvent};
use eidgate::hsm::Pkcs11Hsm;
use eidgate::store::{AuditRepo, SqlStore};
use sqlx::{AnyConnection, Connection, Executor, Row};

use crate::audit::{attacker, eidgate, sink_lines, webhook};

/// The sink the CLI reads by default (`{data_dir}/audit-sink.jsonl`), with `webhook`.
pub(crate) fn witness_with(data_dir: &Path, webhook: Option<url::Url>) -> Shipper {
    let rules = AlertRules {
        window: 900,
        account_failures: 5,
        ip_accounts: 5,
        helpdesk_failures: 3,
    };
    Shipper::new(data_dir.join("audit-sink.jsonl"), webhook, rules)
}

/// [`witness_with`] without a webhook.
pub(crate) fn witness(data_dir: &Path) -> Shipper {
    witness_with(data_dir, None)
}

pub(crate) async fn open_hsm(label: &str) -> (Pkcs11Hsm, String, tempfile::TempDir) {
    let (config, dir) = crate::support::softhsm::hsm_config(label);
    let token = config.token_label.clone();
    let data_dir = dir.path().to_owned();
    let hsm = tokio::task::spawn_blocking(move || Pkcs11Hsm::open(&config, &data_dir).unwrap())
        .await
        .unwrap();
    (hsm, token, dir)
}

async fn append(store: &SqlStore, range: std::ops::RangeInclusive<i64>) {
    for i in range {
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
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Records 1..=10 with chained checkpoints at 4 and 8, each witnessed in a fresh sink.
async fn two_checkpoints(store: &SqlStore, hsm: &Pkcs11Hsm, sink: &Shipper) {
    let _ = std::fs::remove_file(sink.sink_path());
    append(store, 1..=4).await;
    let at4 = eidgate::audit::checkpoint::checkpoint_if_due(store, hsm, sink, 1, now())
        .await
        .unwrap();
    assert_eq!(at4.map(|c| c.seq), Some(4));
    append(store, 5..=8).await;
    let at8 = eidgate::audit::checkpoint::checkpoint_if_due(store, hsm, sink, 1, now())
        .await
        .unwrap();
    assert_eq!(at8.map(|c| c.seq), Some(8));
    append(store, 9..=10).await;
}

/// Recomputes every hash from `from` on (and the head) as an attacker who knows the
/// algorithm would, after `edit` changed the rows.
pub(crate) async fn rechain(c: &mut AnyConnection, from: i64) {
    let rows =
        sqlx::query("SELECT seq, time, event_type, actor, subject, data FROM audit_log WHERE seq >= $1 ORDER BY seq")
            .bind(from - 1)
            .fetch_all(&mut *c)
            .await
            .unwrap();
    let mut prev: [u8; 32] = if from == 1 {
        [0; 32]
    } else {
        let r = sqlx::query("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(from - 1)
            .fetch_one(&mut *c)
            .await
            .unwrap();
        r.try_get::<Vec<u8>, _>("hash").unwrap().try_into().unwrap()
    };
    for r in rows.iter().filter(|r| r.try_get::<i64, _>("seq").unwrap() >= from) {
        let seq: i64 = r.try_get("seq").unwrap();
        let time: i64 = r.try_get("time").unwrap();
        let event = AuditEvent::new(
            &r.try_get::<String, _>("event_type").unwrap(),
            r.try_get::<String, _>("actor").unwrap(),
            r.try_get::<String, _>("subject").unwrap(),
            serde_json::from_str(&r.try_get::<String, _>("data").unwrap()).unwrap(),
        );
        let hash = chain_hash(&prev, seq, time, &event);
        sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3")
            .bind(prev.to_vec())
            .bind(hash.to_vec())
            .bind(seq)
            .execute(&mut *c)
            .await
            .unwrap();
        prev = hash;
    }
    let last: i64 = sqlx::query("SELECT MAX(seq) AS m FROM audit_log")
        .fetch_one(&mut *c)
        .await
        .unwrap()
        .try_get("m")
        .unwrap();
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2")
        .bind(last)
        .bind(prev.to_vec())
        .execute(&mut *c)
        .await
        .unwrap();
}

#[derive(Clone, Copy, Debug)]
enum Attack {
    None,
    /// Checkpoint rows after 4 deleted, records after 4 cut, head set back.
    Truncate,
    /// Checkpoint rows after 4 deleted, record 6 changed, chain and head recomputed.
    Rewrite,
    /// Only the checkpoint row at 4 deleted (the signed chain has a hole).
    DeleteMiddleCheckpoint,
}

async fn attack(db: &str, how: Attack) {
    if matches!(how, Attack::None) {
        return;
    }
    let mut c = attacker(db).await;
    match how {
        Attack::None => {}
        Attack::Truncate => {
            c.execute("DELETE FROM audit_checkpoints WHERE seq > 4").await.unwrap();
            c.execute("DELETE FROM audit_log WHERE seq > 4").await.unwrap();
            rechain(&mut c, 5).await;
        }
        Attack::Rewrite => {
            c.execute("DELETE FROM audit_checkpoints WHERE seq > 4").await.unwrap();
            c.execute("UPDATE audit_log SET subject = 'thing:evil' WHERE seq = 6")
                .await
                .unwrap();
            rechain(&mut c, 6).await;
        }
        Attack::DeleteMiddleCheckpoint => {
            c.execute("DELETE FROM audit_checkpoints WHERE seq = 4").await.unwrap();
        }
    }
    c.close().await.unwrap();
}

/// `(exit code, first line of stdout, stderr)` of `eidgate audit verify ARGS`.
fn verify_cli(data_dir: &Path, token: &str, db: &str, args: &[&str]) -> (i32, String, String) {
    let out = eidgate(data_dir, token, db)
        .args(["audit", "verify"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code().unwrap_or(-1),
        stdout.lines().next().unwrap_or_default().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_2_r_sec_6_the_sink_witness_catches_a_cut_or_rechained_log_whose_checkpoints_were_deleted() {
    let (hsm, token, dir) = open_hsm("witness").await;
    let data = dir.path();
    let cases = [
        (Attack::None, "OK records=10 checkpoints=2"),
        (Attack::Truncate, "FAIL seq=5: truncated"),
        // The record at 6 changed; the witnessed checkpoint at 8 is what proves it.
        (Attack::Rewrite, "FAIL seq=8: changed"),
        (Attack::DeleteMiddleCheckpoint, "FAIL seq=4: missing"),
    ];
    for (how, expected) in cases {
        for (engine, db) in crate::support::db::databases().await {
            let store = SqlStore::connect(&db, 2).await.unwrap();
            let sink = witness(data);
            two_checkpoints(&store, &hsm, &sink).await;
            store.close().await;
            attack(&db, how).await;
            let (code, line, stderr) = verify_cli(data, &token, &db, &[]);
            assert!(line.starts_with(expected), "{engine} {how:?}: {line} [{stderr}]");
            assert_eq!(
                code,
                i32::from(expected.starts_with("FAIL")),
                "{engine} {how:?}: {line}"
            );
            // `--sink FILE` reads a copy kept elsewhere just the same.
            let copy = data.join("elsewhere.jsonl");
            std::fs::copy(sink.sink_path(), &copy).unwrap();
            let named = verify_cli(data, &token, &db, &["--sink", copy.to_str().unwrap()]);
            assert_eq!((named.0, named.1.as_str()), (code, line.as_str()), "{engine} {how:?}");
            if matches!(how, Attack::Truncate | Attack::Rewrite) {
                // Without the witness the cut or rewritten tail after the last checkpoint
                // left in the database cannot be told from an intact log: the warning says so.
                let (code, line, stderr) = verify_cli(data, &token, &db, &["--no-sink"]);
                assert_eq!(code, 0, "{engine} {how:?}: {line}");
                assert!(stderr.contains("warning: --no-sink"), "{stderr}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_2_a_witnessed_checkpoint_missing_from_an_empty_sink_is_an_error_not_a_pass() {
    let (hsm, token, dir) = open_hsm("nosink").await;
    let (_, db) = crate::support::db::databases().await.remove(0);
    let store = SqlStore::connect(&db, 2).await.unwrap();
    let sink = witness(dir.path());
    two_checkpoints(&store, &hsm, &sink).await;
    std::fs::remove_file(sink.sink_path()).unwrap();
    let (code, line, stderr) = verify_cli(dir.path(), &token, &db, &[]);
    assert_ne!(code, 0, "{line}");
    assert!(stderr.contains("witnesses no checkpoint"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_2_verify_fails_when_a_checkpoint_came_later_than_the_configuration_allows() {
    let (hsm, _token, dir) = open_hsm("schedule").await;
    let keys = eidgate::hsm::AuditSigner::audit_keys(&hsm);
    for (engine, db) in crate::support::db::databases().await {
        let store = SqlStore::connect(&db, 2).await.unwrap();
        let sink = witness(dir.path());
        let t = now();
        append(&store, 1..=4).await;
        eidgate::audit::checkpoint::checkpoint_if_due(&store, &hsm, &sink, 1, t)
            .await
            .unwrap();
        append(&store, 5..=8).await;
        // Signed an hour after records 5..8 were written: the job was not running.
        eidgate::audit::checkpoint::checkpoint_if_due(&store, &hsm, &sink, 1, t + 3600)
            .await
            .unwrap();
        append(&store, 9..=10).await;
        let defaults = Coverage::from_config(1000, 60, 2, t + 3600);
        let check = |coverage: Coverage| {
            let options = Options {
                witness: None,
                coverage: Some(coverage),
            };
            let (store, keys) = (&store, &keys);
            async move { verify_with(store, keys, options).await.unwrap().line() }
        };
        assert_eq!(check(defaults).await, "FAIL seq=5: missing", "{engine}");
        // Without the schedule the same log verifies: the gap is the only fault.
        assert!(
            matches!(
                verify_with(&store, &keys, Options::default()).await.unwrap(),
                Verdict::Intact { .. }
            ),
            "{engine}"
        );
        // A generous interval accepts the late checkpoint, but then the head (9, 10) has
        // waited past it at the verifier's clock: not covered.
        let relaxed = Coverage::from_config(1000, 7200, 2, t + 3 * 3600);
        assert_eq!(check(relaxed).await, "FAIL seq=9: missing", "{engine}");
        // `checkpoint_every = 2`: four records waited, so the checkpoint was due within a
        // tick of the second, whatever the interval.
        let by_count = Coverage::from_config(2, 7200, 2, t + 3600);
        assert_eq!(check(by_count).await, "FAIL seq=5: missing", "{engine}");
        // In time everywhere: verifies.
        let fine = Coverage::from_config(1000, 7200, 2, t + 3600);
        assert!(check(fine).await.starts_with("OK records=10 checkpoints=2"), "{engine}");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_6_r_sec_6_back_dated_records_are_not_pruned_and_raise_audit_tampering() {
    let (hook, mut received) = webhook().await;
    let (hsm, _token, dir) = open_hsm("backdate").await;
    for (engine, db) in crate::support::db::databases().await {
        let store = SqlStore::connect(&db, 2).await.unwrap();
        let sink = witness_with(dir.path(), Some(url::Url::parse(&hook).unwrap()));
        let _ = std::fs::remove_file(sink.sink_path());
        append(&store, 1..=5).await;
        eidgate::audit::checkpoint::checkpoint_if_due(&store, &hsm, &sink, 1, now())
            .await
            .unwrap();
        append(&store, 6..=7).await;
        // Attack 1: the records up to 5 back-dated to 1970, the chain recomputed.
        let mut c = attacker(&db).await;
        c.execute("UPDATE audit_log SET time = 0 WHERE seq <= 5").await.unwrap();
        rechain(&mut c, 1).await;
        c.close().await.unwrap();
        // By the column everything up to 5 is a year past retention; by signed time
        // nothing is, and the chain no longer matches the signed checkpoint.
        let pruned = eidgate::audit::retention::prune_expired(&store, &hsm, &sink, now(), 3600)
            .await
            .unwrap();
        assert!(
            matches!(pruned, Pruned::Tampering { seq: 5, .. }),
            "{engine}: {pruned:?}"
        );
        // Even once the signed checkpoint is past retention, the tampered chain is refused.
        let later = eidgate::audit::retention::prune_expired(&store, &hsm, &sink, now() + 7200, 60)
            .await
            .unwrap();
        assert!(matches!(later, Pruned::Tampering { .. }), "{engine}: {later:?}");
        let left = store.audit_after(0, 100).await.unwrap();
        assert_eq!(left.first().map(|r| r.seq), Some(1), "{engine}: nothing deleted");
        assert!(
            store
                .checkpoints()
                .await
                .unwrap()
                .iter()
                .all(|c| c.kind == eidgate::audit::CheckpointKind::Checkpoint),
            "{engine}: no anchor signed"
        );
        let alert = left
            .iter()
            .find(|r| r.event.event_type == "alert.raised" && r.event.data["rule"] == "audit_tampering")
            .unwrap_or_else(|| panic!("{engine}: no alert recorded"));
        assert_eq!(alert.event.data["seq"], 5);
        let lines = sink_lines(sink.sink_path());
        assert!(
            lines
                .iter()
                .any(|l| l["event_type"] == "alert.raised" && l["data"]["rule"] == "audit_tampering"),
            "{engine}: {lines:?}"
        );
        let posted = received.recv().await.unwrap();
        assert!(posted.contains("audit_tampering"), "{posted}");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_6_retention_prunes_by_signed_checkpoint_time_and_the_anchor_is_witnessed() {
    let (hsm, token, dir) = open_hsm("signedtime").await;
    for (engine, db) in crate::support::db::databases().await {
        let store = SqlStore::connect(&db, 2).await.unwrap();
        let sink = witness(dir.path());
        let _ = std::fs::remove_file(sink.sink_path());
        append(&store, 1..=3).await;
        let t = now();
        eidgate::audit::checkpoint::checkpoint_if_due(&store, &hsm, &sink, 1, t)
            .await
            .unwrap();
        append(&store, 4..=5).await;
        // Not yet: the checkpoint's signed time is inside retention.
        let early = eidgate::audit::retention::prune_expired(&store, &hsm, &sink, t + 30, 60)
            .await
            .unwrap();
        assert_eq!(early, Pruned::Nothing, "{engine}");
        let due = eidgate::audit::retention::prune_expired(&store, &hsm, &sink, t + 3600, 60)
            .await
            .unwrap();
        assert_eq!(due, Pruned::UpTo(3), "{engine}");
        let left: Vec<i64> = store.audit_after(0, 100).await.unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(left, [4, 5, 6], "{engine}: 6 is audit.pruned");
        let witnessed = eidgate::audit::witness::read(sink.sink_path()).unwrap();
        assert!(
            witnessed
                .iter()
                .any(|c| c.kind == eidgate::audit::CheckpointKind::Prune && c.seq == 3),
            "{engine}: {witnessed:?}"
        );
        store.close().await;
        let (code, line, stderr) = verify_cli(dir.path(), &token, &db, &[]);
        assert_eq!(code, 0, "{engine}: {line} [{stderr}]");
        assert!(line.starts_with("OK records=3 checkpoints=2"), "{engine}: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_2_a_fresh_database_refuses_to_forge_a_second_chain_tip() {
    // Two instances signing at once cannot fork the chain: the second insert at the same
    // chain position conflicts and is dropped (the next pass signs the new head).
    let (hsm, _token, dir) = open_hsm("fork").await;
    for (engine, db) in crate::support::db::databases().await {
        let store = SqlStore::connect(&db, 2).await.unwrap();
        let sink = witness(dir.path());
        append(&store, 1..=2).await;
        let first = eidgate::audit::checkpoint::checkpoint_if_due(&store, &hsm, &sink, 1, now())
            .await
            .unwrap()
            .unwrap();
        let mut forked = first.clone();
        forked.seq = 1;
        assert!(
            matches!(
                store.insert_checkpoint(&forked).await,
                Err(eidgate::store::StoreError::Conflict)
            ),
            "{engine}"
        );
        let mut c = AnyConnection::connect(&db).await.unwrap();
        assert!(
            c.execute("DELETE FROM audit_checkpoints").await.is_err(),
            "{engine}: checkpoints are append-only"
        );
        c.close().await.unwrap();
        store.close().await;
    }
}
