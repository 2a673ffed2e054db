//! The event catalogue walked end to end (R-LOG-1): one server, one scenario; after each
//! action the records it appended are read and must contain the events the catalogue
//! says that action records. Every catalogue entry is either proven here or named in
//! `ELSEWHERE` with the test that proves it, so a new event cannot join the catalogue
//! unproven. Each step also names the state-changing routes it drove; at the end every
//! such route in `src/` must have been walked (and written its record) or be classified in
//! `audit_routes` (issue 17 "no gaps").

use eidgate::audit::catalogue::{self, EVENTS};
use serde_json::json;

use crate::audit_walk::Walk;
use crate::support::operators::{
    activate, activation_start, apply, call, get, helpdesk, helpdesk_in_person, issue, login_attempt, operator_token,
    provision_staff, register, status_body, stored, ADMIN, HELPDESK, ISSUER, REGISTRAR,
};
use crate::support::server::{
    auth_params, authorize_url, browser, client_entry, exchange, login, pkce, post_form, TestServer, HOLDER, SECRET,
};

/// Events proven by other tests (event → test).
const ELSEWHERE: &[(&str, &str)] = &[
    (
        catalogue::ACTIVATION_TOTP_FAILED,
        "audit_walk::account::r_log_1_account_activation_helpdesk_and_operator_password_routes_write_their_records",
    ),
    (
        catalogue::LEGAL_NO_MANDATE,
        "audit_walk::legal::r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records",
    ),
    (
        catalogue::LEGAL_REFUSED,
        "audit_walk::legal::r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records",
    ),
    (
        catalogue::MANDATE_REVOKED,
        "audit_walk::legal::r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records",
    ),
    (
        catalogue::MANDATE_REACTIVATION_REQUESTED,
        "audit_walk::legal::r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records",
    ),
    (
        catalogue::ALERT_IP_SPREAD,
        "totp::r_auth_4_one_ip_failing_on_many_accounts_raises_an_alert",
    ),
    (
        catalogue::ALERT_NOTICE_OVERDUE,
        "supervision::r_ops_4_compromised_means_is_suspended_and_an_unsent_notice_alerts_after_7_days",
    ),
    (
        catalogue::MEANS_LOCKED,
        "totp::r_auth_4_back_off_doubles_then_the_hard_lock_refuses_even_the_right_code_until_reactivation",
    ),
    (
        catalogue::MEANS_RENEWAL_REFUSED,
        "lifecycle_edges::r_renew_2_a_renewal_at_high_rechecks_identity_data_at_the_register_and_a_mismatch_stops_it",
    ),
    (
        catalogue::CONSENT_REFUSED,
        "loa_claims::r_data_4_consent_refused_ends_with_access_denied_and_no_code",
    ),
    (
        catalogue::CONFIG_LOA_CAPS_RELOADED,
        "loa_claims::r_sup_2_a_reloaded_configuration_cap_applies_to_the_next_login_without_restart",
    ),
    (
        catalogue::LEGAL_PERSON_IMPORTED,
        "lifecycle_edges::r_iss_2_import_takes_revocation_secrets_legal_persons_and_mandates",
    ),
    (
        catalogue::MANDATE_IMPORTED,
        "lifecycle_edges::r_iss_2_import_takes_revocation_secrets_legal_persons_and_mandates",
    ),
    (
        catalogue::PROVIDER_TERMINATION_STARTED,
        "supervision::r_sup_3_termination_stops_issuance_and_revokes_every_means_resumably",
    ),
    (
        catalogue::INCIDENT_RECORDED,
        "monitor::availability (an outage below the significance thresholds)",
    ),
    (
        catalogue::INCIDENT_SIGNIFICANT,
        "supervision::r_ops_1_r_ops_2_availability_is_tracked_and_an_outage_becomes_a_classified_incident",
    ),
    (
        catalogue::CONFIG_LOGIN_SECRET_REPLACED,
        "needs a stored login secret the sealer cannot open; authn::device",
    ),
    (
        catalogue::MEANS_LOGIN_RESET,
        "audit_walk::account::r_log_1_account_activation_helpdesk_and_operator_password_routes_write_their_records",
    ),
    (
        catalogue::MEANS_PASSWORD_CHANGED,
        "audit_walk::account::r_log_1_account_activation_helpdesk_and_operator_password_routes_write_their_records",
    ),
    (
        catalogue::CONSENT_GRANTED,
        "audit_walk::legal::r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records",
    ),
    (
        catalogue::CONSENT_REVOKED,
        "audit_walk::legal::r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records",
    ),
    (
        catalogue::LEGAL_PERSON_REGISTERED,
        "audit_walk::legal::r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records",
    ),
    (
        catalogue::LOA_CAPS_CHANGED,
        "audit_walk::legal::r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records",
    ),
    (
        catalogue::MANDATE_CREATED,
        "audit_walk::legal::r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records",
    ),
    (
        catalogue::MANDATE_DELEGATED,
        "audit_walk::legal::r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records",
    ),
    (
        catalogue::MANDATE_SUSPENDED,
        "audit_walk::legal::r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records",
    ),
    (
        catalogue::MANDATE_USED,
        "audit_walk::legal::r_log_1_legal_person_mandate_consent_and_caps_routes_write_their_records",
    ),
    (
        catalogue::INCIDENT_CLASSIFIED,
        "audit_walk::supervision::r_log_1_supervision_routes_write_their_records",
    ),
    (
        catalogue::MAINTENANCE_ANNOUNCED,
        "audit_walk::supervision::r_log_1_supervision_routes_write_their_records",
    ),
    (
        catalogue::NOTICE_QUEUED,
        "audit_walk::supervision::r_log_1_supervision_routes_write_their_records",
    ),
    (
        catalogue::NOTICE_SENT,
        "audit_walk::supervision::r_log_1_supervision_routes_write_their_records",
    ),
    (
        catalogue::SYSTEM_CLOCK_RESOLVED,
        "audit_walk::supervision::r_log_1_supervision_routes_write_their_records",
    ),
    (
        catalogue::DELIVERY_SENT,
        "separation::r_iss_1_r_iss_2_approve_answer_has_no_secret_and_the_holder_activates_with_the_outbox_code",
    ),
    (
        catalogue::APPROVAL_REQUESTED,
        "separation::r_sec_3_a_compromised_means_stays_suspended_until_a_security_officer_approves_its_reactivation",
    ),
    (
        catalogue::APPROVAL_APPROVED,
        "separation::r_sec_3_a_compromised_means_stays_suspended_until_a_security_officer_approves_its_reactivation",
    ),
    (
        catalogue::APPROVAL_REJECTED,
        "separation::r_sec_3_a_compromised_means_stays_suspended_until_a_security_officer_approves_its_reactivation",
    ),
    (
        catalogue::MANDATE_APPROVED,
        "loa_claims::r_bind_1_r_sec_3_a_mandate_of_one_officer_releases_nothing_until_a_second_officer_approves",
    ),
    (
        catalogue::OPERATOR_PASSWORD_CHANGED,
        "separation::r_sec_4_expired_and_reused_operator_passwords_are_refused",
    ),
    (
        catalogue::OPERATOR_PASSWORD_REFUSED,
        "separation::r_sec_4_expired_and_reused_operator_passwords_are_refused",
    ),
    (
        catalogue::SYSTEM_STOP,
        "audit::r_log_2_shutdown_signs_a_final_checkpoint_over_the_system_stop",
    ),
    (
        catalogue::SYSTEM_CLOCK_JUMP,
        "needs a wall-clock step; app::spawn_audit_jobs",
    ),
    (
        catalogue::AUDIT_PRUNED,
        "audit::r_log_6_pruning_destroys_old_records_behind_a_signed_anchor_and_the_log_still_verifies",
    ),
    (catalogue::MEANS_EXPIRED, "lifecycle expiry sweep tests"),
    (
        catalogue::AUTHN_COUNTER_REGRESSION,
        "fido::r_auth_4_a_counter_regression_suspends_the_means_audits_and_alerts",
    ),
    (
        catalogue::FIDO_CREDENTIAL_REGISTERED,
        "fido::r_iss_3_r_means_4_fido_activation_then_discoverable_and_identifier_first_logins",
    ),
    (
        catalogue::FIDO_REGISTRATION_FAILED,
        "fido::r_means_4_user_verification_missing_is_refused_at_activation_and_login",
    ),
    (catalogue::KEY_ROTATED, "cli `hsm rotate`"),
    (
        catalogue::CERTIFICATE_ISSUED,
        "smartcard::r_means_3_card_issued_end_to_end_logs_in_at_high_with_sc_hwk_pin",
    ),
    (
        catalogue::CERTIFICATE_IMPORTED,
        "smartcard::r_auth_7_external_ca_card_is_refused_without_revocation_status",
    ),
    (
        catalogue::CRL_SIGNED,
        "smartcard::r_log_1_crl_lists_a_revoked_card_and_verifies_against_the_ca",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_1_every_catalogued_event_is_recorded_by_its_action() {
    let server = TestServer::start_with(|c| {
        c.audit.alert_account_failures = 1;
        c.audit.sink_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    let mut walk = Walk::from_start(&server);
    walk.check(
        "first start on a fresh token",
        &[],
        &[
            catalogue::KEY_GENERATED,
            catalogue::CLIENT_BUILTIN_REGISTERED,
            catalogue::CONFIG_LOGIN_SECRET_CREATED,
        ],
    )
    .await;
    provision_staff(&server).await;
    walk.check(
        "import",
        &[],
        &[
            catalogue::CLIENT_IMPORTED,
            catalogue::PERSON_IMPORTED,
            catalogue::MEANS_IMPORTED,
            catalogue::OPERATOR_IMPORTED,
        ],
    )
    .await;
    let registrar = operator_token(&server, REGISTRAR).await;
    walk.check(
        "operator login",
        &["GET /authorize", "POST /authn/flows/{flow}/password"],
        &[catalogue::LOGIN_SUCCESS],
    )
    .await;
    // The server appended its start before it answered the first request.
    let so_far = server.app.store.audit_after(0, 100_000).await.unwrap();
    assert!(so_far.iter().any(|r| r.event.event_type == catalogue::SYSTEM_START));
    walk.proven.insert(catalogue::SYSTEM_START, "serve");
    let issuer = operator_token(&server, ISSUER).await;
    let desk = operator_token(&server, HELPDESK).await;
    let admin = operator_token(&server, ADMIN).await;
    walk.check("more operator logins", &[], &[catalogue::LOGIN_SUCCESS])
        .await;

    let (status, _, _) = login_attempt(&server, "rp", HOLDER, "wrong password", "openid").await;
    assert_eq!(status, 401);
    walk.check(
        "wrong password",
        &["POST /authn/flows/{flow}/password"],
        &[catalogue::LOGIN_FAILURE],
    )
    .await;
    eidgate::jobs::audit_pass(&server.app.jobs, i64::MAX).await.unwrap();
    walk.check(
        "analysis pass after a failure (threshold 1)",
        &[],
        &[catalogue::ALERT_RAISED],
    )
    .await;

    let applicant = "LT/LT/38502020000";
    register(&server, &registrar, applicant, "substantial").await;
    walk.check(
        "registration",
        &["POST /admin/v1/persons"],
        &[catalogue::PERSON_REGISTERED, catalogue::PERSON_PROOFED],
    )
    .await;
    let issued = issue(&server, &registrar, &issuer, applicant).await;
    walk.check(
        "application and approval",
        &["POST /admin/v1/means", "POST /admin/v1/means/{id}/approve"],
        &[catalogue::MEANS_APPLIED, catalogue::MEANS_APPROVED],
    )
    .await;
    let second = apply(&server, &registrar, applicant, "password", "low").await;
    assert_eq!(second.status, 201, "{}", second.body);
    let id = second.body["id"].as_str().unwrap();
    let rejected = call(
        &server,
        reqwest::Method::POST,
        &format!("/admin/v1/means/{id}/reject"),
        Some(&issuer),
        Some(&json!({"reason": "duplicate application"})),
        None,
    )
    .await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    walk.check(
        "rejection",
        &["POST /admin/v1/means/{id}/reject"],
        &[catalogue::MEANS_REJECTED],
    )
    .await;

    let wrong = activation_start(&server, applicant, "AAAA-AAAA-AAAA").await;
    assert!(wrong.status >= 400, "{}", wrong.body);
    walk.check(
        "wrong activation code",
        &["POST /activation/start"],
        &[catalogue::ACTIVATION_FAILED],
    )
    .await;
    activate(
        &server,
        applicant,
        &issued.activation_code,
        "applicant pass phrase 2026",
    )
    .await;
    walk.check(
        "activation",
        &[
            "POST /activation/start",
            "POST /activation/{id}/accept",
            "POST /activation/{id}/password",
        ],
        &[catalogue::ACTIVATION_STARTED, catalogue::MEANS_ACTIVATED],
    )
    .await;

    let lookup = get(&server, &format!("/helpdesk/v1/holders?identifier={applicant}"), &desk).await;
    assert_eq!(lookup.status, 200, "{}", lookup.body);
    walk.check("helpdesk lookup", &[], &[catalogue::HELPDESK_LOOKUP]).await;
    let bad_secret = helpdesk(
        &server,
        &desk,
        &issued.id,
        "suspend",
        "bad-secret",
        &status_body("revocation_secret", "ZZZZ-ZZZZ-ZZZZ-ZZZZ"),
    )
    .await;
    assert_eq!(bad_secret.status, 403, "{}", bad_secret.body);
    walk.check(
        "wrong revocation secret",
        &["POST /helpdesk/v1/means/{id}/suspend"],
        &[catalogue::HELPDESK_REVOCATION_SECRET_WRONG],
    )
    .await;
    assert_eq!(
        helpdesk_in_person(&server, &desk, &issued.id, "suspend").await.status,
        200
    );
    walk.check(
        "suspension",
        &["POST /helpdesk/v1/means/{id}/suspend"],
        &[catalogue::MEANS_SUSPENDED],
    )
    .await;
    let refused = helpdesk(
        &server,
        &desk,
        &issued.id,
        "reactivate",
        "bad-reactivation",
        &status_body("revocation_secret", &issued.revocation_secret),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    walk.check(
        "unfit verification",
        &["POST /helpdesk/v1/means/{id}/reactivate"],
        &[catalogue::HELPDESK_VERIFICATION_FAILED],
    )
    .await;
    assert_eq!(
        helpdesk_in_person(&server, &desk, &issued.id, "reactivate")
            .await
            .status,
        200
    );
    walk.check(
        "reactivation",
        &["POST /helpdesk/v1/means/{id}/reactivate"],
        &[catalogue::MEANS_REACTIVATED],
    )
    .await;
    assert_eq!(
        helpdesk_in_person(&server, &desk, &issued.id, "revoke").await.status,
        200
    );
    walk.check(
        "revocation",
        &["POST /helpdesk/v1/means/{id}/revoke"],
        &[catalogue::MEANS_REVOKED],
    )
    .await;

    // A helpdesk operator tries an officer's task: beyond their roles.
    let denied = apply(&server, &desk, applicant, "password", "low").await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    walk.check(
        "helpdesk operator applies",
        &["POST /admin/v1/means"],
        &[catalogue::OPERATOR_ACCESS_DENIED],
    )
    .await;
    let roles = call(
        &server,
        reqwest::Method::PUT,
        &format!("/admin/v1/operators/{}", stored(ISSUER)),
        Some(&admin),
        Some(&json!({"roles": ["issuance", "registration"]})),
        None,
    )
    .await;
    assert_eq!(roles.status, 200, "{}", roles.body);
    walk.check(
        "role change",
        &["PUT /admin/v1/operators/{identifier}"],
        &[catalogue::OPERATOR_ROLES_CHANGED],
    )
    .await;

    let browser = browser();
    let (_, challenge) = pkce();
    login(
        &server,
        &browser,
        &authorize_url(&server, &auth_params("rp", &challenge)),
    )
    .await;
    walk.check(
        "holder login",
        &["GET /authorize", "POST /authn/flows/{flow}/password"],
        &[catalogue::LOGIN_SUCCESS],
    )
    .await;
    server
        .import(json!({"clients": [client_entry("rp2", json!({}))]}))
        .await;
    walk.check("one more client", &[], &[catalogue::CLIENT_IMPORTED]).await;
    let (code, verifier) = crate::audit_routes::sso_code(&server, &browser, "rp2").await;
    walk.check(
        "SSO answer to another client",
        &["GET /authorize"],
        &[catalogue::LOGIN_SSO],
    )
    .await;
    let tokens = exchange(&server, "rp2", &code, &verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let access = tokens.body["access_token"].as_str().unwrap();
    let revoked = post_form(&server, "/revoke", Some(("rp2", SECRET)), &[("token", access)]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    walk.check("token revocation", &["POST /revoke"], &[catalogue::TOKEN_REVOKED])
        .await;
    let out = browser.get(server.at("/logout")).send().await.unwrap();
    assert!(out.status().as_u16() < 500);
    walk.check("holder logout", &["GET /logout"], &[catalogue::LOGOUT])
        .await;

    // The daily analysis for yesterday is due on a fresh server (the scheduler may have
    // written it already; then this pass adds nothing and it is in the log anyway).
    eidgate::jobs::reports_due(&server.app.jobs).await.unwrap();
    let all = server.app.store.audit_after(0, 100_000).await.unwrap();
    assert!(
        all.iter().any(|r| r.event.event_type == catalogue::AUDIT_REPORT),
        "no daily report in the log"
    );
    walk.proven.insert(catalogue::AUDIT_REPORT, "daily analysis");

    let unproven: Vec<&str> = EVENTS
        .iter()
        .map(|e| e.name)
        .filter(|name| !walk.proven.contains_key(name) && !ELSEWHERE.iter().any(|(n, _)| n == name))
        .collect();
    assert!(unproven.is_empty(), "catalogued but never proven: {unproven:?}");
    crate::audit_routes::every_state_changing_route_is_accounted_for(&walk.walked);
    for (name, _) in ELSEWHERE {
        assert!(catalogue::find(name).is_some(), "{name} is not in the catalogue");
    }
}
