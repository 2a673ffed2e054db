//! Separation of duties end to end (issue 18; R-ISS-1, R-ISS-2, R-ISS-3, R-SEC-3,
//! R-SEC-4): no single operator can create, hand over or restore an identity. One test per
//! rule, each written as the insider's attempt.

use serde_json::{json, Value};

use crate::support::operators::{
    activate, apply, approve, count_events, delivered, get, helpdesk, helpdesk_in_person, issue, login_tokens,
    operator_token, outbox_messages, post, provision_staff, register, state_of, status_body, stored, CONSOLE, HELPDESK,
    ISSUER, OPERATOR_PASSWORD, REGISTRAR, REGISTRAR2, SECURITY,
};
use crate::support::problem::assert_problem;
use crate::support::server::{auth_params, authorize_url, browser, password_step, pkce, start_login, TestServer};

const APPLICANT: &str = "LT/LT/48505050505";
const APPLICANT_PASSWORD: &str = "my own long pass phrase";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_1_r_iss_2_approve_answer_has_no_secret_and_the_holder_activates_with_the_outbox_code() {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    register(&server, &registrar, APPLICANT, "substantial").await;
    let applied = apply(&server, &registrar, APPLICANT, "password", "low").await;
    let id = applied.body["id"].as_str().unwrap().to_owned();

    let approved = approve(&server, &issuer, &id).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    // CONTRACT: {"id", "state": "issued", "delivery": [{"kind", "channel"}]}, no secret.
    assert_eq!(approved.body["id"], id.as_str());
    assert_eq!(approved.body["state"], "issued");
    assert_eq!(
        approved.body["delivery"],
        json!([{"kind": "activation_code", "channel": "email"}, {"kind": "revocation_secret", "channel": "sms"}])
    );
    let messages = outbox_messages(&server, &id);
    assert_eq!(messages.len(), 2, "{messages:?}");
    let code = delivered(&server, &id, "activation_code");
    let secret = delivered(&server, &id, "revocation_secret");
    let text = approved.body.to_string();
    assert!(!text.contains(&code) && !text.contains(&secret), "{text}");
    // Two channels to the holder's two registered contact points.
    assert_eq!(messages[0]["to"], "ona@example.org");
    assert_eq!(messages[1]["to"], "+37060000000");
    for m in &messages {
        for field in ["means", "kind", "secret", "channel", "to", "created"] {
            assert!(m.get(field).is_some(), "{field} missing in {m}");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(server.app.config.data_dir.join("outbox")).unwrap() {
            let mode = entry.unwrap().metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
    // Delivery is audited, never with the secret.
    let subject = format!("means:{id}");
    assert_eq!(count_events(&server, &subject, "delivery.sent").await, 2);
    for r in crate::support::operators::audit_events(&server, &subject).await {
        let t = r.event.data.to_string();
        assert!(
            !t.contains(&code) && !t.contains(&secret),
            "{}: {t}",
            r.event.event_type
        );
    }
    // The holder activates with the code from the outbox.
    let done = activate(&server, APPLICANT, &code, APPLICANT_PASSWORD).await;
    assert_eq!(done["state"], "active");

    // No contact point: nothing to deliver to, the application stays applied.
    let bare = "LT/LT/48505050516";
    let mut body = crate::support::operators::registration(bare, "substantial");
    body.as_object_mut().unwrap().remove("email");
    body.as_object_mut().unwrap().remove("phone");
    assert_eq!(post(&server, "/admin/v1/persons", &registrar, &body).await.status, 201);
    let other = apply(&server, &registrar, bare, "password", "low").await;
    let other_id = other.body["id"].as_str().unwrap();
    let refused = approve(&server, &issuer, other_id).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(state_of(&server, other_id).await, "applied");
    assert!(outbox_messages(&server, other_id).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_3_r_sec_3_the_approving_or_registering_officer_cannot_personalise_the_card() {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    let third = operator_token(&server, REGISTRAR2).await;
    register(&server, &registrar, APPLICANT, "high").await;
    let applied = apply(&server, &registrar, APPLICANT, "smartcard", "high").await;
    assert_eq!(applied.status, 201, "{}", applied.body);
    let id = applied.body["id"].as_str().unwrap().to_owned();
    assert_eq!(approve(&server, &issuer, &id).await.status, 200);
    let path = format!("/admin/v1/means/{id}/certificate");
    let csr = json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"});
    for (who, token) in [("approver", &issuer), ("registrar", &registrar)] {
        let refused = post(&server, &path, token, &csr).await;
        assert_problem(&refused, 403, "forbidden");
        assert!(
            refused.body["detail"].as_str().unwrap().contains("cannot personalise"),
            "{who}: {}",
            refused.body
        );
    }
    // A third issuance officer gets as far as the CSR (refused for what it is, not who).
    let third_try = post(&server, &path, &third, &csr).await;
    assert_ne!(third_try.status, 403, "{}", third_try.body);
    assert!(server
        .app
        .store
        .card_certificates_of(id.parse().unwrap())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_4_a_low_loa_or_stale_operator_token_gets_403_on_both_apis() {
    const PASSWORD_ONLY: &str = "LT/LT/39001010077";
    let server = TestServer::start_with(|c| c.operators.max_auth_age = std::time::Duration::from_secs(120)).await;
    provision_staff(&server).await;
    server
        .import(json!({
            "persons": [{"identifier": PASSWORD_ONLY, "given_name": "Low", "family_name": "Staff",
                         "birthdate": "1990-01-01", "proofing_loa": "high"}],
            "operators": [{"person": PASSWORD_ONLY, "roles": ["helpdesk", "registration"]}],
            "means": [{"holder": PASSWORD_ONLY, "kind": "password", "loa": "low", "password": OPERATOR_PASSWORD}]
        }))
        .await;
    let low = login_tokens(&server, CONSOLE, PASSWORD_ONLY, OPERATOR_PASSWORD, "openid").await;
    let low = low["access_token"].as_str().unwrap().to_owned();
    let strong = operator_token(&server, HELPDESK).await;
    let admin_path = format!("/admin/v1/persons?identifier={}", stored(HELPDESK));
    let desk_path = format!("/helpdesk/v1/holders?identifier={}", stored(HELPDESK));
    for path in [&admin_path, &desk_path] {
        let refused = get(&server, path, &low).await;
        assert_problem(&refused, 403, "operator-assurance");
        assert_eq!(refused.header("content-type"), Some("application/problem+json"));
    }
    assert_eq!(get(&server, &desk_path, &strong).await.status, 200);
    let subject = "operator-api";
    let denied = count_events(&server, subject, "operator.access_denied").await;
    assert!(denied >= 2, "audited: {denied}");
    // A substantial login older than operators.max_auth_age is refused as well.
    server.app.clock.advance(121);
    assert_problem(&get(&server, &desk_path, &strong).await, 403, "operator-assurance");
    let fresh = operator_token(&server, HELPDESK).await;
    assert_eq!(get(&server, &desk_path, &fresh).await.status, 200);
}

/// An operator who is both helpdesk and security officer, to show that one person still
/// cannot approve their own request.
const DOUBLE_ROLE: &str = "LT/LT/39001010088";

async fn active_means(server: &TestServer) -> String {
    let registrar = operator_token(server, REGISTRAR).await;
    let issuer = operator_token(server, ISSUER).await;
    register(server, &registrar, APPLICANT, "substantial").await;
    let issued = issue(server, &registrar, &issuer, APPLICANT).await;
    activate(server, APPLICANT, &issued.activation_code, APPLICANT_PASSWORD).await;
    issued.id
}

fn decision(id: &str, what: &str) -> String {
    format!("/helpdesk/v1/approvals/{id}/{what}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_3_a_compromised_means_stays_suspended_until_a_security_officer_approves_its_reactivation() {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    server
        .import(json!({
            "persons": [{"identifier": DOUBLE_ROLE, "given_name": "Two", "family_name": "Hats",
                         "birthdate": "1990-01-01", "proofing_loa": "high"}],
            "operators": [{"person": DOUBLE_ROLE, "roles": ["helpdesk", "security"]}],
            "means": [{"holder": DOUBLE_ROLE, "kind": "totp", "loa": "substantial", "password": OPERATOR_PASSWORD,
                       "totp_secret": crate::support::operators::OPERATOR_TOTP_SEED}]
        }))
        .await;
    let id = active_means(&server).await;
    let security = operator_token(&server, SECURITY).await;
    let desk = operator_token(&server, HELPDESK).await;
    let double = operator_token(&server, DOUBLE_ROLE).await;
    let marked = post(
        &server,
        &format!("/admin/v1/means/{id}/compromised"),
        &security,
        &json!({"reason": "key material leaked"}),
    )
    .await;
    assert_eq!(marked.status, 201, "{}", marked.body);
    assert_eq!(state_of(&server, &id).await, "suspended");

    // One helpdesk operator's in-person reactivation only opens a request.
    let asked = helpdesk_in_person(&server, &desk, &id, "reactivate").await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    assert_eq!(asked.body["state"], "suspended");
    let approval = asked.body["approval"].as_str().unwrap().to_owned();
    assert_eq!(state_of(&server, &id).await, "suspended");
    let open = get(&server, "/helpdesk/v1/approvals", &security).await;
    assert_eq!(open.status, 200, "{}", open.body);
    assert_eq!(open.body["approvals"][0]["id"], approval.as_str());
    // Not the helpdesk operator (no security role).
    assert_eq!(
        post(&server, &decision(&approval, "approve"), &desk, &json!({}))
            .await
            .status,
        403
    );
    // A request by an operator who also holds the security role: not approved by them.
    let own = helpdesk_in_person(&server, &double, &id, "reactivate").await;
    assert_eq!(own.status, 202, "{}", own.body);
    let own_id = own.body["approval"].as_str().unwrap();
    let self_approved = post(&server, &decision(own_id, "approve"), &double, &json!({})).await;
    assert_problem(&self_approved, 403, "forbidden");
    assert_eq!(state_of(&server, &id).await, "suspended");

    // A second person with role security approves: active.
    let done = post(&server, &decision(&approval, "approve"), &security, &json!({})).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["means"]["state"], "active");
    assert_eq!(state_of(&server, &id).await, "active");
    let subject = format!("means:{id}");
    assert_eq!(count_events(&server, &subject, "approval.requested").await, 2);
    assert_eq!(count_events(&server, &subject, "approval.approved").await, 1);
    // Decided once only.
    assert_eq!(
        post(&server, &decision(&approval, "approve"), &security, &json!({}))
            .await
            .status,
        409
    );
    // The other (now moot) request is rejected by the security officer: audited.
    let rejected = post(
        &server,
        &decision(own_id, "reject"),
        &security,
        &json!({"reason": "duplicate"}),
    )
    .await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    assert_eq!(count_events(&server, &subject, "approval.rejected").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_3_revocation_on_a_law_enforcement_order_needs_a_security_officer_and_holder_suspension_does_not() {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let id = active_means(&server).await;
    let desk = operator_token(&server, HELPDESK).await;
    let security = operator_token(&server, SECURITY).await;
    let order = status_body("law_enforcement_order", "Vilnius court order 2026-117");
    let asked = helpdesk(&server, &desk, &id, "revoke", "leo-1", &order).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    assert_eq!(asked.body["state"], "active");
    // The same Idempotency-Key gets the same answer, and nothing more happens.
    let again = helpdesk(&server, &desk, &id, "revoke", "leo-1", &order).await;
    assert_eq!((again.status, &again.body), (202, &asked.body));
    assert_eq!(state_of(&server, &id).await, "active");
    let approval = asked.body["approval"].as_str().unwrap();
    let rejected = post(
        &server,
        &decision(approval, "reject"),
        &security,
        &json!({"reason": "order not verified"}),
    )
    .await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    assert_eq!(state_of(&server, &id).await, "active");

    // A suspension the holder asked for (revocation secret on the phone) is reactivated
    // by one helpdesk operator after an in-person check.
    let secret = delivered(&server, &id, "revocation_secret");
    let suspended = helpdesk(
        &server,
        &desk,
        &id,
        "suspend",
        "s-1",
        &status_body("revocation_secret", &secret),
    )
    .await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    let back = helpdesk_in_person(&server, &desk, &id, "reactivate").await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(state_of(&server, &id).await, "active");
    // A law-enforcement suspension, by contrast, needs the second person to lift.
    let leo = helpdesk(&server, &desk, &id, "suspend", "s-2", &order).await;
    assert_eq!(leo.status, 200, "{}", leo.body);
    let lift = helpdesk_in_person(&server, &desk, &id, "reactivate").await;
    assert_eq!(lift.status, 202, "{}", lift.body);
    assert_eq!(state_of(&server, &id).await, "suspended");
}

/// A password step of `identifier` in a fresh login at the console: (status, body, browser,
/// flow).
async fn console_password(
    server: &TestServer,
    identifier: &str,
    password: &str,
) -> (u16, Value, reqwest::Client, String) {
    let (_, challenge) = pkce();
    let params = auth_params(CONSOLE, &challenge);
    let b = browser();
    let flow = start_login(&b, &authorize_url(server, &params)).await;
    let (status, body) = password_step(server, &b, &flow, identifier, password).await;
    (status, body, b, flow)
}

async fn change(server: &TestServer, b: &reqwest::Client, flow: &str, new_password: &str) -> (u16, Value) {
    let r = b
        .post(server.at(&format!("/authn/flows/{flow}/password_change")))
        .json(&json!({ "new_password": new_password }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_4_expired_and_reused_operator_passwords_are_refused() {
    let server = TestServer::start().await;
    let staff = provision_staff(&server).await;
    let subject = format!("means:{}", staff.own_means[HELPDESK]);
    // Within 30 days: no change asked.
    let (status, body, _, _) = console_password(&server, HELPDESK, OPERATOR_PASSWORD).await;
    assert_eq!((status, &body["next"]), (200, &json!("totp")), "{body}");
    server.app.clock.advance(31 * 86_400);
    // Expired: the right password leads to the change step, not to the second factor.
    let (status, body, b, flow) = console_password(&server, HELPDESK, OPERATOR_PASSWORD).await;
    assert_eq!((status, &body["next"]), (200, &json!("password_change")), "{body}");
    let skip = b
        .post(server.at(&format!("/authn/flows/{flow}/totp")))
        .json(&json!({"code": "000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(skip.status().as_u16(), 400, "no TOTP step before the change");
    // The same password again: refused.
    let (status, body) = change(&server, &b, &flow, OPERATOR_PASSWORD).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("used before"), "{body}");
    const SECOND: &str = "second operator phrase 2026";
    let (status, body) = change(&server, &b, &flow, SECOND).await;
    assert_eq!((status, &body["next"]), (200, &json!("totp")), "{body}");
    assert_eq!(count_events(&server, &subject, "operator.password_changed").await, 1);
    assert_eq!(count_events(&server, &subject, "operator.password_refused").await, 2);
    // The new password works; the old one no longer does.
    let (status, body, _, _) = console_password(&server, HELPDESK, SECOND).await;
    assert_eq!((status, &body["next"]), (200, &json!("totp")), "{body}");
    let (status, _, _, _) = console_password(&server, HELPDESK, OPERATOR_PASSWORD).await;
    assert_eq!(status, 401);
    // 31 days later: neither the current nor the first password may be set again.
    server.app.clock.advance(31 * 86_400);
    let (_, body, b, flow) = console_password(&server, HELPDESK, SECOND).await;
    assert_eq!(body["next"], "password_change", "{body}");
    for old in [SECOND, OPERATOR_PASSWORD] {
        let (status, body) = change(&server, &b, &flow, old).await;
        assert_eq!(status, 400, "{old}: {body}");
    }
    // A holder's password is not subject to operator rules.
    let (status, body, _, _) = console_password(
        &server,
        crate::support::server::HOLDER,
        crate::support::server::PASSWORD,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["next"], "password_change", "{body}");
}

/// A one-purpose HTTP gateway on loopback: answers 200 to every POST and hands over the
/// bodies it received.
async fn gateway() -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, Value)>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/messages", listener.local_addr().unwrap().port());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let Some(end) = text.find("\r\n\r\n") else { continue };
                    let head = text[..end].to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + length {
                        continue;
                    }
                    let body: Value = serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap();
                    let auth = head
                        .lines()
                        .find_map(|l| l.strip_prefix("authorization:"))
                        .unwrap_or("")
                        .trim()
                        .to_owned();
                    tx.send((auth, body)).unwrap();
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_iss_1_the_webhook_adapter_carries_both_messages_to_the_gateway() {
    let (url, mut received) = gateway().await;
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("gateway.token");
    std::fs::write(&token_file, "gateway-token-123\n").unwrap();
    let server = TestServer::start_with(|c| {
        c.delivery.adapter = eidgate::delivery::DeliveryAdapter::Gateways;
        c.delivery.webhook = Some(eidgate::config::delivery::WebhookConfig {
            url,
            token_file: Some(token_file),
            token: None,
            timeout: std::time::Duration::from_secs(5),
        });
    })
    .await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    register(&server, &registrar, APPLICANT, "substantial").await;
    let applied = apply(&server, &registrar, APPLICANT, "password", "low").await;
    let id = applied.body["id"].as_str().unwrap().to_owned();
    let approved = approve(&server, &issuer, &id).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let (auth, message) = received.recv().await.unwrap();
        assert_eq!(auth, "bearer gateway-token-123");
        assert_eq!(message["means"], id.as_str());
        kinds.push((message["kind"].clone(), message["channel"].clone()));
        if message["kind"] == "activation_code" {
            let code = message["secret"].as_str().unwrap().to_owned();
            assert!(!approved.body.to_string().contains(&code));
            let done = activate(&server, APPLICANT, &code, APPLICANT_PASSWORD).await;
            assert_eq!(done["state"], "active");
        }
    }
    assert_eq!(
        kinds,
        vec![
            (json!("activation_code"), json!("email")),
            (json!("revocation_secret"), json!("sms"))
        ]
    );
    // Nothing went to the outbox.
    assert!(outbox_messages(&server, &id).is_empty());
}
