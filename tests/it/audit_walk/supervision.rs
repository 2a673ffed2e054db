//! Supervision routes (R-OPS-1..4): incidents, planned downtime, compromised means and
//! their notices, and the clock alarm.

use serde_json::json;

use super::Walk;
use crate::support::operators::{operator_token, post, provision_staff, ADMIN};
use crate::support::server::TestServer;
use eidgate::audit::catalogue;

pub(crate) const ROUTES: &[&str] = &[
    "POST /admin/v1/clock/resolve",
    "POST /admin/v1/incidents",
    "POST /admin/v1/maintenance",
    "POST /admin/v1/means/{id}/compromised",
    "POST /admin/v1/notices/{id}/sent",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_1_supervision_routes_write_their_records() {
    let server = TestServer::start().await;
    let staff = provision_staff(&server).await;
    server
        .import_update(json!({"operators": [{"person": ADMIN, "roles": ["admin", "security"]}]}))
        .await;
    let security = operator_token(&server, ADMIN).await;
    let mut walk = Walk::new(&server).await;
    walk.skip().await;

    let body = json!({"affected_percent": 5.0, "duration_minutes": 240, "service": "login"});
    let r = post(&server, "/admin/v1/incidents", &security, &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    walk.check(
        "incident classified",
        &["POST /admin/v1/incidents"],
        &[catalogue::INCIDENT_CLASSIFIED],
    )
    .await;

    let earliest = eidgate::supervision::maintenance::earliest_start(server.app.now());
    let window = json!({"starts_at": earliest + 60, "ends_at": earliest + 3660, "message": "database upgrade"});
    let r = post(&server, "/admin/v1/maintenance", &security, &window).await;
    assert_eq!(r.status, 201, "{}", r.body);
    walk.check(
        "maintenance announced",
        &["POST /admin/v1/maintenance"],
        &[catalogue::MAINTENANCE_ANNOUNCED],
    )
    .await;

    let path = format!("/admin/v1/means/{}/compromised", staff.holder_means);
    let r = post(
        &server,
        &path,
        &security,
        &json!({"reason": "card model vulnerability"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let notice = r.body["id"].as_str().unwrap().to_owned();
    walk.check(
        "means declared compromised",
        &["POST /admin/v1/means/{id}/compromised"],
        &[catalogue::MEANS_SUSPENDED, catalogue::NOTICE_QUEUED],
    )
    .await;
    let r = post(
        &server,
        &format!("/admin/v1/notices/{notice}/sent"),
        &security,
        &json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    walk.check(
        "notice sent",
        &["POST /admin/v1/notices/{id}/sent"],
        &[catalogue::NOTICE_SENT],
    )
    .await;

    server.app.raise_clock_alarm();
    let r = post(&server, "/admin/v1/clock/resolve", &security, &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    walk.check(
        "clock alarm resolved",
        &["POST /admin/v1/clock/resolve"],
        &[catalogue::SYSTEM_CLOCK_RESOLVED],
    )
    .await;
    walk.finish(ROUTES);
}
