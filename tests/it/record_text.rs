//! R-LOG-5: no raw biometric data and no identity document copy in any record. Tried as a
//! careless or malicious operator would: a scan, a photo or a fingerprint template pasted
//! into every free-text and evidence field (helpdesk evidence and reasons, proofing facts,
//! the compromise reason). Each is refused before anything changes, and no audit record
//! holds such content.

use serde_json::{json, Value};

use crate::support::operators::{
    get, helpdesk, helpdesk_in_person, operator_token, post, provision_staff, registration, state_of, HELPDESK,
    IN_PERSON, REGISTRAR, SECURITY,
};
use crate::support::server::TestServer;

/// The start of a JPEG passport scan as an upload carries it, base64 in a data URI.
fn scan() -> String {
    format!(
        "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgMC{}",
        "QUFB".repeat(2000)
    )
}

/// A fingerprint template (ISO/IEC 19794-2 header) pasted as text.
const TEMPLATE: &str = "FMR\u{0} 20\u{0}\u{0}\u{0}\u{1}\u{2c}";

fn assert_refused(answer: &crate::support::server::Answer, what: &str) {
    assert_eq!(answer.status, 400, "{what}: {}", answer.body);
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json"),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_5_document_copies_photos_and_templates_are_refused_in_every_free_text_field() {
    let server = TestServer::start().await;
    let staff = provision_staff(&server).await;
    let desk = operator_token(&server, HELPDESK).await;
    let means = staff.holder_means.clone();

    // Helpdesk: the scan as the evidence of an in-person check, then as the reason.
    for (n, body) in [
        json!({"reason": "lost", "verification": {"method": "in_person", "evidence": scan()}}),
        json!({"reason": scan(), "verification": {"method": "in_person", "evidence": IN_PERSON}}),
        json!({"reason": "lost", "verification": {"method": "in_person", "evidence": format!("photo {TEMPLATE}")}}),
    ]
    .iter()
    .enumerate()
    {
        let answer = helpdesk(&server, &desk, &means, "suspend", &format!("doc-{n}"), body).await;
        assert_refused(&answer, "helpdesk");
        assert_eq!(state_of(&server, &means).await, "active", "nothing changed");
    }

    // Registration: proofing facts are facts about the document, never the document.
    let registrar = operator_token(&server, REGISTRAR).await;
    for (field, value) in [
        ("document_number", "%PDF-1.7 scan"),
        ("checked_how", "data:image/png;base64,iVBORw0KGgo"),
        ("document_type", TEMPLATE),
    ] {
        let mut body: Value = registration("LT/LT/48501010077", "high");
        body["proofing"][field] = json!(value);
        let answer = post(&server, "/admin/v1/persons", &registrar, &body).await;
        assert_refused(&answer, field);
    }
    let looked_up = get(&server, "/helpdesk/v1/holders?identifier=LT/LT/48501010077", &desk).await;
    assert_eq!(looked_up.status, 404, "no person was registered: {}", looked_up.body);

    // The compromise reason of a security officer.
    let security = operator_token(&server, SECURITY).await;
    let answer = post(
        &server,
        &format!("/admin/v1/means/{means}/compromised"),
        &security,
        &json!({"reason": scan()}),
    )
    .await;
    assert_refused(&answer, "compromise reason");
    assert_eq!(state_of(&server, &means).await, "active");

    // Plain facts still go through (the same registration without the pasted content), and
    // no record anywhere holds the content.
    let clean = post(
        &server,
        "/admin/v1/persons",
        &registrar,
        &registration("LT/LT/48501010077", "high"),
    )
    .await;
    assert_eq!(clean.status, 201, "{}", clean.body);
    let ok = helpdesk_in_person(&server, &desk, &means, "suspend").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let all = server.app.store.audit_records(1, 1_000_000).await.unwrap();
    for r in &all {
        let text = r.event.data.to_string();
        for needle in ["/9j/", "base64,", "%PDF", "FMR\\u0000", "iVBORw0KGgo"] {
            assert!(
                !text.contains(needle),
                "seq {} ({}) holds {needle}: {text}",
                r.seq,
                r.event.event_type
            );
        }
    }
}
