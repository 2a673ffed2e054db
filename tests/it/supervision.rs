//! Supervision: the annual report from the lifecycle history (R-SUP-1), incident
//! classification through the CLI (R-OPS-2), and the compliance report that fails the
//! suite when a requirement the code claims has no test.

use std::process::Command;

use eidgate::audit::AuditEvent;
use eidgate::domain::means::MeansStatus;
use serde_json::{json, Value};

use crate::support::server::TestServer;

fn person(id: &str) -> Value {
    json!({"identifier": id, "given_name": "Ona", "family_name": "Onaite", "birthdate": "1990-02-03", "proofing_loa": "high"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sup_1_annual_report_counts_users_of_valid_means_and_means_issued() {
    let server = TestServer::start().await;
    server.provision().await; // one holder with an active password means
    let ids = ["LT/LT/49001010001", "LT/LT/49001010002", "LT/LT/49001010003"];
    let report = server
        .import(json!({
            "persons": ids.iter().map(|i| person(i)).collect::<Vec<_>>(),
            "means": ids.iter().map(|i| json!({"holder": i, "kind": "password", "loa": "low", "password": "a long pass phrase"})).collect::<Vec<_>>(),
        }))
        .await;
    // The second holder's means is suspended, the third's revoked: neither is valid.
    let store = &server.app.store;
    for (n, status) in [(1, MeansStatus::Suspended), (2, MeansStatus::Revoked)] {
        let id = report.means_ids[n].parse().unwrap();
        let m = store.means(id).await.unwrap().unwrap();
        let event = format!("means.{}", status.as_str());
        store
            .set_status(
                id,
                m.version,
                status,
                AuditEvent::new(&event, "test", format!("means:{id}"), json!({})),
            )
            .await
            .unwrap();
    }
    let year = time::OffsetDateTime::now_utc().year();
    let r = eidgate::supervision::report::annual(store.as_ref(), year)
        .await
        .unwrap();
    let r = serde_json::to_value(&r).unwrap();
    assert_eq!(
        r,
        json!({"year": year,
               "valid_on_31_december": {"total": 2, "by_kind": {"password": 2}},
               "issued_during_year": {"total": 4, "by_kind": {"password": 4}}})
    );
    let before = eidgate::supervision::report::annual(store.as_ref(), year - 1)
        .await
        .unwrap();
    assert_eq!(before.valid_on_31_december.total, 0);
    assert_eq!(before.issued_during_year.total, 0);
}

fn classify(percent: &str, minutes: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_eidgate"))
        .args([
            "incident",
            "classify",
            "--affected-percent",
            percent,
            "--duration-minutes",
            minutes,
            "--json",
        ])
        .env("EIDGATE_LOG", "warn")
        .env_remove("EIDGATE_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn r_ops_2_incident_classification_boundaries_through_the_cli() {
    let c = classify("2", "360");
    assert_eq!(c["significant"], true);
    assert_eq!(c["threshold"]["min_percent"], 2.0);
    assert_eq!(c["threshold"]["min_hours"], 6);
    assert!(c["notification_text"].as_str().unwrap().contains("national CERT"));
    let c = classify("1.9", "479");
    assert_eq!(c["significant"], false);
    assert!(c.get("notification").is_none());
    assert_eq!(classify("15.01", "60")["significant"], true);
    assert_eq!(classify("15", "119")["significant"], false);
}

#[test]
fn r_sup_1_compliance_report_leaves_no_claimed_requirement_untested() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = eidgate::supervision::compliance::report(root, &[]).unwrap();
    assert!(
        report.requirements.len() >= 50,
        "requirements read from docs/REQUIREMENTS.md"
    );
    assert!(
        report.not_covered.is_empty(),
        "requirements without a test named after them: {:?}",
        report.not_covered
    );
    assert!(
        report.reviewer_unknown.is_empty(),
        "the README's evidence table names tests that do not carry the ID: {:?}",
        report.reviewer_unknown
    );
    // Without the results of a run nothing counts as evidenced.
    assert!(report.requirements.iter().all(|e| e.status == "results missing"));
    assert!(!report.all_evidenced());
    // docs/REQUIREMENTS.md is kept in sync with the shared file when it is beside the repo.
    let shared = root.join("../shared/REQUIREMENTS.md");
    if let Ok(text) = std::fs::read_to_string(&shared) {
        let ours = std::fs::read_to_string(root.join("docs/REQUIREMENTS.md")).unwrap();
        assert_eq!(
            ours, text,
            "docs/REQUIREMENTS.md differs from ../shared/REQUIREMENTS.md"
        );
    }
}

/// R-SUP-1: the report marks a requirement evidenced only from a run's results, through the
/// CLI an assessor uses, and exits non-zero while one is failing or not covered.
#[test]
fn r_sup_1_compliance_report_reads_the_results_of_a_run() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_eidgate");
    let run = |results: Option<&std::path::Path>| {
        let mut cmd = Command::new(bin);
        cmd.args(["compliance", "report", "--json", "--source"]).arg(root);
        if let Some(r) = results {
            cmd.arg("--results").arg(r);
        }
        let out = cmd.env("EIDGATE_DATA_DIR", dir.path()).output().unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), json)
    };
    // Without results: non-zero, and no requirement is called covered.
    let (code, json) = run(None);
    assert_eq!(code, Some(1));
    assert!(json["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["status"] != "evidenced"));

    // A run in which this very test's sibling passed on both passes and another failed.
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let lines = "     Running tests/it/main.rs (target/debug/deps/it-0)\n\
test supervision::r_sup_1_compliance_report_leaves_no_claimed_requirement_untested ... ok\n";
    let sup3 = "test supervision::r_sup_3_termination_stops_issuance_and_revokes_every_means_resumably";
    std::fs::write(
        results.join("sqlite.txt"),
        format!("# pass: sqlite\n# commit: c1\n# scope: all\n{lines}{sup3} ... ok\n"),
    )
    .unwrap();
    std::fs::write(
        results.join("postgres.txt"),
        format!("# pass: postgres\n# commit: c1\n# scope: it\n{lines}{sup3} ... FAILED\n"),
    )
    .unwrap();
    let (code, json) = run(Some(&results));
    assert_eq!(code, Some(1), "most requirements have no passing test in this run");
    let entry = |id: &str| {
        json["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .cloned()
            .unwrap()
    };
    let sup1 = entry("R-SUP-1");
    assert_eq!(sup1["status"], "evidenced", "{sup1}");
    let test = sup1["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["test"]
                .as_str()
                .unwrap()
                .ends_with("r_sup_1_compliance_report_leaves_no_claimed_requirement_untested")
        })
        .unwrap();
    assert_eq!(test["results"]["sqlite"], "passed");
    assert_eq!(test["results"]["postgres"], "passed");
    // Passed on SQLite, failed on PostgreSQL: failing.
    assert_eq!(entry("R-SUP-3")["status"], "failing");
    // A requirement whose tests did not appear in the run is not evidenced.
    assert_eq!(entry("R-AUTH-1")["status"], "not evidenced");
    assert_eq!(json["passes"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sup_3_termination_stops_issuance_and_revokes_every_means_resumably() {
    use crate::support::operators::{apply, get, login_attempt, operator_token, provision_staff, ADMIN, REGISTRAR};
    use crate::support::server::{HOLDER, PASSWORD};
    let server = TestServer::start().await;
    let staff = provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let admin = operator_token(&server, ADMIN).await;
    let pending = apply(&server, &registrar, HOLDER, "password", "low").await;
    assert_eq!(pending.status, 201, "{}", pending.body);
    let store = server.app.store.as_ref();

    eidgate::supervision::termination::start(store, "test", server.app.now())
        .await
        .unwrap();
    let refused = apply(&server, &registrar, HOLDER, "password", "low").await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body["type"].as_str().unwrap().ends_with("issuance-stopped"));

    let n = eidgate::supervision::termination::revoke_all(server.app.lifecycle.changes(), "test")
        .await
        .unwrap();
    assert!(n >= 6, "the holder's, four operators' and the pending application: {n}");
    assert_eq!(
        eidgate::supervision::termination::revoke_all(server.app.lifecycle.changes(), "test")
            .await
            .unwrap(),
        0,
        "resumable"
    );
    let holder_means = store.means(staff.holder_means.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(holder_means.status, MeansStatus::Revoked);
    let (status, body, _) = login_attempt(&server, "rp", HOLDER, PASSWORD, "openid").await;
    assert_eq!(status, 403, "{body}");
    // Records stay readable and the chain verifies.
    let records = store.audit_records(1, 100_000).await.unwrap();
    assert!(eidgate::audit::verify_run(eidgate::audit::GENESIS_HASH, 1, &records).is_ok());
    assert!(records.iter().any(|r| r.event.data["reason"] == "provider_termination"));
    // The annual report still reads the history (the admin's token died with its means).
    let r = get(&server, "/admin/v1/reports/annual?year=2026", &admin).await;
    assert_eq!(r.status, 401, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_ops_2_r_sup_1_admin_api_classifies_incidents_and_reports_the_year() {
    use crate::support::operators::{get, operator_token, post, provision_staff, ADMIN, HELPDESK};
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let admin = operator_token(&server, ADMIN).await;
    let helpdesk = operator_token(&server, HELPDESK).await;
    let body = json!({"affected_percent": 5.0, "duration_minutes": 240, "service": "login"});
    let r = post(&server, "/admin/v1/incidents", &admin, &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["significant"], true);
    assert_eq!(r.body["threshold"]["min_hours"], 4);
    assert_eq!(r.body["notification"]["service"], "login");
    let r = post(&server, "/admin/v1/incidents", &helpdesk, &body).await;
    assert_eq!(r.status, 403, "roles security or admin only");
    let year = time::OffsetDateTime::now_utc().year();
    let r = get(&server, &format!("/admin/v1/reports/annual?year={year}"), &admin).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["year"], year);
    // The fixture holder's password means and the operators' password + TOTP means.
    let by_kind = &r.body["issued_during_year"]["by_kind"];
    assert_eq!(
        by_kind["password"].as_u64().unwrap() + by_kind["totp"].as_u64().unwrap(),
        r.body["issued_during_year"]["total"].as_u64().unwrap()
    );
    assert!(r.body["valid_on_31_december"]["total"].as_u64().unwrap() >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_ops_1_planned_downtime_is_announced_a_working_day_ahead_and_shown_publicly() {
    use crate::support::operators::{operator_token, post, provision_staff, ADMIN, HELPDESK};
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let admin = operator_token(&server, ADMIN).await;
    let now = server.app.now();
    let earliest = eidgate::supervision::maintenance::earliest_start(now);
    let too_soon = json!({"starts_at": earliest - 60, "ends_at": earliest + 3600, "message": "database upgrade"});
    let r = post(&server, "/admin/v1/maintenance", &admin, &too_soon).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let public = || async {
        reqwest::get(server.at("/maintenance"))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    assert_eq!(public().await["maintenance"], Value::Null);
    // A minute of margin: the server reads its clock a moment after this test did.
    let window = json!({"starts_at": earliest + 60, "ends_at": earliest + 3660, "message": "database upgrade"});
    let r = post(
        &server,
        "/admin/v1/maintenance",
        &operator_token(&server, HELPDESK).await,
        &window,
    )
    .await;
    assert_eq!(r.status, 403);
    let r = post(&server, "/admin/v1/maintenance", &admin, &window).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(public().await["maintenance"]["message"], "database upgrade");
    // After the window it is no longer shown.
    server.app.clock.advance(earliest + 3661 - now);
    assert_eq!(public().await["maintenance"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_ops_4_compromised_means_is_suspended_and_an_unsent_notice_alerts_after_7_days() {
    use crate::support::operators::{get, login_attempt, operator_token, post, provision_staff, ADMIN, HELPDESK};
    use crate::support::server::{HOLDER, PASSWORD};
    let server = TestServer::start().await;
    let staff = provision_staff(&server).await;
    server
        .import_update(json!({"operators": [{"person": ADMIN, "roles": ["admin", "security"]}]}))
        .await;
    let security = operator_token(&server, ADMIN).await;
    let path = format!("/admin/v1/means/{}/compromised", staff.holder_means);
    let body = json!({"reason": "card model vulnerability CVE-2026-0001"});
    let r = post(&server, &path, &operator_token(&server, HELPDESK).await, &body).await;
    assert_eq!(r.status, 403, "security role only");
    let r = post(&server, &path, &security, &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let notice = r.body["id"].as_str().unwrap().to_owned();
    let (status, _, _) = login_attempt(&server, "rp", HOLDER, PASSWORD, "openid").await;
    assert_eq!(status, 403, "suspended at once");
    let pending = get(&server, "/admin/v1/notices", &security).await;
    assert_eq!(pending.body["notices"][0]["id"], notice.as_str());

    let app = &server.app;
    assert_eq!(
        eidgate::supervision::compromise::alert_overdue(&app.lifecycle)
            .await
            .unwrap(),
        0
    );
    app.clock.advance(7 * 86_400 + 1);
    assert_eq!(
        eidgate::supervision::compromise::alert_overdue(&app.lifecycle)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        eidgate::supervision::compromise::alert_overdue(&app.lifecycle)
            .await
            .unwrap(),
        0,
        "once a day"
    );
    let alerts = app
        .store
        .audit_by_subject(&format!("means:{}", staff.holder_means), 1000)
        .await
        .unwrap();
    assert!(alerts.iter().any(|r| r.event.event_type == "alert.notice_overdue"));

    let security = operator_token(&server, ADMIN).await; // the clock moved past the old token
    let r = post(
        &server,
        &format!("/admin/v1/notices/{notice}/sent"),
        &security,
        &json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &server,
        &format!("/admin/v1/notices/{notice}/sent"),
        &security,
        &json!({}),
    )
    .await;
    assert_eq!(r.status, 404, "sent once");
    assert_eq!(
        get(&server, "/admin/v1/notices", &security).await.body["notices"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sup_1_annual_report_has_a_readable_page() {
    use crate::support::operators::{get, operator_token, provision_staff, ADMIN};
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let admin = operator_token(&server, ADMIN).await;
    let year = time::OffsetDateTime::now_utc().year();
    let r = reqwest::Client::new()
        .get(server.at(&format!("/admin/v1/reports/annual?year={year}&format=html")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains(&format!("Users of valid means on 31 December {year}")));
    assert!(page.contains("<th scope=\"row\">password</th>"));
    let json = get(&server, &format!("/admin/v1/reports/annual?year={year}"), &admin).await;
    let total = json.body["valid_on_31_december"]["total"].as_u64().unwrap();
    assert!(page.contains(&format!("<th scope=\"row\">Total</th><td>{total}</td>")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_ops_3_a_clock_jump_pauses_token_issuance_until_a_security_officer_resolves_it() {
    use crate::support::operators::{operator_token, post, provision_staff, ADMIN};
    use crate::support::server::{browser, code_for, exchange};
    let server = TestServer::start().await;
    provision_staff(&server).await;
    server
        .import_update(json!({"operators": [{"person": ADMIN, "roles": ["admin", "security"]}]}))
        .await;
    let security = operator_token(&server, ADMIN).await;
    let (code, verifier) = code_for(&server, &browser(), "rp").await;

    server.app.raise_clock_alarm();
    let r = exchange(&server, "rp", &code, &verifier).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["error"], "temporarily_unavailable");

    let r = post(&server, "/admin/v1/clock/resolve", &security, &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["clock_alarm"], "resolved");
    assert!(server.app.clock_alarm().is_none());
    let records = server.app.store.audit_by_subject("clock", 100).await.unwrap();
    assert!(records.iter().any(|r| r.event.event_type == "system.clock_resolved"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_ops_1_r_ops_2_availability_is_tracked_and_an_outage_becomes_a_classified_incident() {
    use crate::support::operators::{get, operator_token, provision_staff, ADMIN};
    use crate::support::server::post_form;
    use eidgate::monitor::availability::evaluate;
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let app = &server.app;
    // The middleware counts the token endpoint's answers (a 400 is not a server error).
    let r = post_form(&server, "/token", None, &[("grant_type", "authorization_code")]).await;
    assert_eq!(r.status, 401);
    let (total, failed) = app.availability.counts("token", app.now());
    assert!(total >= 1 && failed == 0, "{total} {failed}");

    // An hour and a minute of a failing token service, then recovery.
    assert!(
        evaluate(&app.availability, app.store.as_ref(), &app.config.issuer, app.now())
            .await
            .unwrap()
            .is_empty()
    );
    for _ in 0..61 {
        for _ in 0..4 {
            app.availability.record("token", true, app.now());
        }
        app.clock.advance(60);
        assert!(
            evaluate(&app.availability, app.store.as_ref(), &app.config.issuer, app.now())
                .await
                .unwrap()
                .is_empty(),
            "still open"
        );
    }
    app.availability.record("token", false, app.now());
    app.clock.advance(60);
    let closed = evaluate(&app.availability, app.store.as_ref(), &app.config.issuer, app.now())
        .await
        .unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].service, "token");
    assert_eq!(closed[0].record["significant"], true, "{}", closed[0].record);
    assert!(closed[0].record["notification"].is_object());

    let admin = operator_token(&server, ADMIN).await; // the clock moved past the first token
    let listed = get(&server, "/admin/v1/incidents", &admin).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["incidents"][0]["service"], "token");
    let availability = get(&server, "/admin/v1/availability", &admin).await;
    let services: Vec<&str> = availability.body["availability"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, vec!["helpdesk", "login", "token"]);
}
