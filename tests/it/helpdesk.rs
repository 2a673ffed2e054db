//! The 24/7 helpdesk API (DESIGN "Helpdesk API", CONTRACT; R-LIFE-1..4, R-SEC-3/4):
//! operators' tokens from the console client only, roles from the server's records,
//! caller verification (revocation secret with a lock, in person, the holder's own ID
//! token, law-enforcement order), `Idempotency-Key`, no existence leak, a consistent end
//! state and a gap-free audit chain under parallel changes, and the OpenAPI document.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::operators::{
    activate, audit_events, call, count_events, get, helpdesk, helpdesk_in_person, issue, login_tokens, operator_token,
    provision_staff, register, state_of, status_body, Issued, Staff, CONSOLE, HELPDESK, IN_PERSON, ISSUER,
    OPERATOR_PASSWORD, REGISTRAR,
};
use crate::support::problem::assert_problem;
use crate::support::server::{TestServer, HOLDER, PASSWORD};

/// A person registered and issued a means through the admin API (it has a revocation
/// secret, which imported means do not).
const APPLICANT: &str = "LT/LT/48505050505";
const APPLICANT_PASSWORD: &str = "my own long pass phrase";

/// A server with the fixture and the staff, plus the helpdesk operator's token.
async fn desk() -> (TestServer, Staff, String) {
    let server = TestServer::start().await;
    let staff = provision_staff(&server).await;
    let token = operator_token(&server, HELPDESK).await;
    (server, staff, token)
}

/// Registers the applicant and issues and activates a low password means for them.
async fn active_applicant_means(server: &TestServer) -> Issued {
    let registrar = operator_token(server, REGISTRAR).await;
    let issuer = operator_token(server, ISSUER).await;
    register(server, &registrar, APPLICANT, "high").await;
    let issued = issue(server, &registrar, &issuer, APPLICANT).await;
    activate(server, APPLICANT, &issued.activation_code, APPLICANT_PASSWORD).await;
    issued
}

// ---- look-ups ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_1_helpdesk_finds_a_holder_and_a_means_history_and_each_lookup_is_audited() {
    let (server, staff, token) = desk().await;
    let found = get(&server, &format!("/helpdesk/v1/holders?identifier={HOLDER}"), &token).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.header("cache-control"), Some("no-store"));
    assert_eq!(found.body["holder"]["identifier"], "LT:38001085718");
    assert_eq!(found.body["means"][0]["id"], staff.holder_means.as_str());
    assert_eq!(found.body["means"][0]["state"], "active");

    let suspended = helpdesk_in_person(&server, &token, &staff.holder_means, "suspend").await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    let detail = get(&server, &format!("/helpdesk/v1/means/{}", staff.holder_means), &token).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.body["state"], "suspended");
    assert_eq!(detail.body["holder"], "LT:38001085718");
    let events: Vec<&str> = detail.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"means.imported") && events.contains(&"means.suspended"),
        "{events:?}"
    );
    let suspension = detail.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["event"] == "means.suspended")
        .unwrap();
    assert_eq!(suspension["data"]["verification"], "in_person");
    assert_eq!(suspension["data"]["reason"], "caller reported the means lost");

    let subject = format!("means:{}", staff.holder_means);
    assert_eq!(count_events(&server, &subject, "helpdesk.lookup").await, 1);
    let pid = crate::support::operators::person_id(&server, HOLDER).await;
    assert_eq!(
        count_events(&server, &format!("person:{pid}"), "helpdesk.lookup").await,
        1
    );

    let unknown = get(&server, "/helpdesk/v1/holders?identifier=LT/LT/99999999999", &token).await;
    assert_problem(&unknown, 404, "not-found");
}

// ---- who may call ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_4_no_token_is_401_and_a_token_of_a_non_console_client_is_403() {
    let (server, staff, _) = desk().await;
    let means = staff.holder_means.as_str();
    let body = status_body("in_person", IN_PERSON);

    let none = call(
        &server,
        reqwest::Method::POST,
        &format!("/helpdesk/v1/means/{means}/suspend"),
        None,
        Some(&body),
        Some("k1"),
    )
    .await;
    assert_problem(&none, 401, "unauthenticated");
    let garbage = helpdesk(&server, "not-a-token", means, "suspend", "k1", &body).await;
    assert_problem(&garbage, 401, "unauthenticated");

    // The helpdesk operator themselves, but logged in at an ordinary RP: refused, because
    // only the console's tokens count (the roles are right, the client is not).
    let rp_tokens = login_tokens(&server, "rp", HELPDESK, OPERATOR_PASSWORD, "openid").await;
    let rp_token = rp_tokens["access_token"].as_str().unwrap();
    let refused = helpdesk(&server, rp_token, means, "suspend", "k1", &body).await;
    assert_problem(&refused, 403, "forbidden");
    let lookup = get(&server, &format!("/helpdesk/v1/holders?identifier={HOLDER}"), rp_token).await;
    assert_problem(&lookup, 403, "forbidden");
    let admin = crate::support::operators::apply(&server, rp_token, HOLDER, "password", "low").await;
    assert_problem(&admin, 403, "forbidden");
    // A holder who is no operator, at the console client: refused as well.
    let holder_console = login_tokens(&server, crate::support::operators::CONSOLE, HOLDER, PASSWORD, "openid").await;
    let holder_console = holder_console["access_token"].as_str().unwrap();
    let refused = helpdesk(&server, holder_console, means, "suspend", "k2", &body).await;
    assert_problem(&refused, 403, "forbidden");
    assert_eq!(state_of(&server, means).await, "active");

    let pid = crate::support::operators::person_id(&server, HELPDESK).await;
    let denials: Vec<Value> = audit_events(&server, "operator-api")
        .await
        .into_iter()
        .filter(|r| r.event.event_type == "operator.access_denied")
        .map(|r| {
            assert!(r.event.actor.starts_with("holder:"));
            json!([r.event.actor, r.event.data["reason"]])
        })
        .collect();
    assert!(
        denials.contains(&json!([format!("holder:{pid}"), "not_console_client"])),
        "{denials:?}"
    );
    assert!(denials.iter().any(|d| d[1] == "not_an_operator"), "{denials:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_3_registration_officer_cannot_use_the_helpdesk() {
    let (server, staff, _) = desk().await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let means = staff.holder_means.as_str();
    for command in ["suspend", "revoke", "reactivate"] {
        let r = helpdesk(
            &server,
            &registrar,
            means,
            command,
            &format!("k-{command}"),
            &status_body("in_person", IN_PERSON),
        )
        .await;
        assert_problem(&r, 403, "forbidden");
    }
    let lookup = get(
        &server,
        &format!("/helpdesk/v1/holders?identifier={HOLDER}"),
        &registrar,
    )
    .await;
    assert_problem(&lookup, 403, "forbidden");
    assert_eq!(state_of(&server, means).await, "active");
    let subject = format!("means:{means}");
    assert!(
        audit_events(&server, &subject)
            .await
            .iter()
            .all(|r| !r.event.event_type.starts_with("means.") || r.event.event_type == "means.imported"),
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_3_helpdesk_operator_cannot_act_on_their_own_means() {
    let (server, staff, token) = desk().await;
    let own = staff.own_means[HELPDESK].as_str();
    let r = helpdesk_in_person(&server, &token, own, "suspend").await;
    assert_problem(&r, 403, "forbidden");
    assert!(r.body["detail"].as_str().unwrap().contains("own"), "{}", r.body);
    let r = helpdesk_in_person(&server, &token, own, "revoke").await;
    assert_problem(&r, 403, "forbidden");
    assert_eq!(state_of(&server, own).await, "active");
    // The same operator can act on somebody else's means.
    let other = helpdesk_in_person(&server, &token, &staff.own_means[ISSUER], "suspend").await;
    assert_eq!(other.status, 200, "{}", other.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_3_unknown_means_is_404_for_the_helpdesk_and_403_for_others_without_leaking_existence() {
    let (server, staff, token) = desk().await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let unknown = eidgate::domain::ids::MeansId::new().to_string();
    let known = staff.holder_means.as_str();

    let r = get(&server, &format!("/helpdesk/v1/means/{unknown}"), &token).await;
    assert_problem(&r, 404, "not-found");
    let r = helpdesk_in_person(&server, &token, &unknown, "suspend").await;
    assert_problem(&r, 404, "not-found");
    let r = helpdesk_in_person(&server, &token, "not-a-means-id", "revoke").await;
    assert_eq!(r.status, 404, "{}", r.body);

    // Without the helpdesk role: the same 403 whether the means exists or not.
    let mut answers = Vec::new();
    for id in [unknown.as_str(), known, "not-a-means-id"] {
        let read = get(&server, &format!("/helpdesk/v1/means/{id}"), &registrar).await;
        assert_problem(&read, 403, "forbidden");
        let change = helpdesk_in_person(&server, &registrar, id, "suspend").await;
        assert_problem(&change, 403, "forbidden");
        answers.push((read.body, change.body));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(state_of(&server, known).await, "active");
}

// ---- Idempotency-Key ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_1_same_idempotency_key_and_body_gets_the_same_answer_and_changes_once() {
    let (server, staff, token) = desk().await;
    let means = staff.holder_means.as_str();
    let body = status_body("in_person", IN_PERSON);
    let first = helpdesk(&server, &token, means, "suspend", "retry-1", &body).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["state"], "suspended");
    // A retry (the answer was lost): the same answer, not a 409 for suspending twice.
    let second = helpdesk(&server, &token, means, "suspend", "retry-1", &body).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body, first.body);
    // Without the key's protection, the same request is a refused transition.
    let fresh = helpdesk(&server, &token, means, "suspend", "retry-2", &body).await;
    assert_problem(&fresh, 409, "transition-not-allowed");
    // A refusal is an answer too: repeated with its key, it is the same refusal.
    let again = helpdesk(&server, &token, means, "suspend", "retry-2", &body).await;
    assert_eq!((again.status, &again.body), (409, &fresh.body));
    // After another change, the first key still answers what it answered.
    let reactivated = helpdesk(&server, &token, means, "reactivate", "retry-3", &body).await;
    assert_eq!(reactivated.status, 200, "{}", reactivated.body);
    let third = helpdesk(&server, &token, means, "suspend", "retry-1", &body).await;
    assert_eq!((third.status, &third.body), (200, &first.body));
    assert_eq!(state_of(&server, means).await, "active");

    let subject = format!("means:{means}");
    assert_eq!(count_events(&server, &subject, "means.suspended").await, 1);
    assert_eq!(count_events(&server, &subject, "means.reactivated").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_1_idempotency_key_reused_for_another_request_is_422() {
    let (server, staff, token) = desk().await;
    let means = staff.holder_means.as_str();
    let first = helpdesk(
        &server,
        &token,
        means,
        "suspend",
        "reused",
        &status_body("in_person", IN_PERSON),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let other_body =
        json!({"reason": "another reason", "verification": {"method": "in_person", "evidence": IN_PERSON}});
    let r = helpdesk(&server, &token, means, "suspend", "reused", &other_body).await;
    assert_problem(&r, 422, "unprocessable");
    // The same body on another command is another request as well: nothing is revoked.
    let r = helpdesk(
        &server,
        &token,
        means,
        "revoke",
        "reused",
        &status_body("in_person", IN_PERSON),
    )
    .await;
    assert_problem(&r, 422, "unprocessable");
    // ... and on another means.
    let r = helpdesk(
        &server,
        &token,
        &staff.own_means[ISSUER],
        "suspend",
        "reused",
        &status_body("in_person", IN_PERSON),
    )
    .await;
    assert_problem(&r, 422, "unprocessable");
    assert_eq!(state_of(&server, means).await, "suspended");
    assert_eq!(state_of(&server, &staff.own_means[ISSUER]).await, "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_1_missing_idempotency_key_is_400() {
    let (server, staff, token) = desk().await;
    let means = staff.holder_means.as_str();
    let body = status_body("in_person", IN_PERSON);
    let path = format!("/helpdesk/v1/means/{means}/suspend");
    let missing = call(&server, reqwest::Method::POST, &path, Some(&token), Some(&body), None).await;
    assert_problem(&missing, 400, "bad-request");
    let empty = helpdesk(&server, &token, means, "suspend", "", &body).await;
    assert_problem(&empty, 400, "bad-request");
    let too_long = helpdesk(&server, &token, means, "suspend", &"k".repeat(256), &body).await;
    assert_problem(&too_long, 400, "bad-request");
    assert_eq!(state_of(&server, means).await, "active");
}

// ---- caller verification ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_2_r_log_5_five_wrong_revocation_secrets_lock_the_method_and_every_failure_is_audited() {
    let (server, _, token) = desk().await;
    let issued = active_applicant_means(&server).await;
    let subject = format!("means:{}", issued.id);
    for n in 1..=5 {
        let wrong = helpdesk(
            &server,
            &token,
            &issued.id,
            "suspend",
            &format!("wrong-{n}"),
            &status_body("revocation_secret", "ZZZZ-ZZZZ-ZZZZ-ZZZZ"),
        )
        .await;
        assert_problem(&wrong, 403, "verification-failed");
        assert_eq!(
            count_events(&server, &subject, "helpdesk.revocation_secret_wrong").await,
            n
        );
    }
    // The right secret, sixth: still refused, the method is locked for this means.
    let right = helpdesk(
        &server,
        &token,
        &issued.id,
        "suspend",
        "right-6",
        &status_body("revocation_secret", &issued.revocation_secret),
    )
    .await;
    assert_problem(&right, 403, "verification-failed");
    assert_eq!(state_of(&server, &issued.id).await, "active");
    let locked: Vec<Value> = audit_events(&server, &subject)
        .await
        .into_iter()
        .filter(|r| r.event.event_type == "helpdesk.verification_failed")
        .map(|r| r.event.data)
        .collect();
    assert_eq!(locked.len(), 1, "{locked:?}");
    assert!(locked[0]["why"].as_str().unwrap().contains("locked"), "{locked:?}");
    assert_eq!(locked[0]["method"], "revocation_secret");

    // The lock is per method: a caller verified in person can still stop the means.
    let in_person = helpdesk_in_person(&server, &token, &issued.id, "suspend").await;
    assert_eq!(in_person.status, 200, "{}", in_person.body);
    // No secret is ever written to the audit log (R-LOG-5).
    let all = server.app.store.audit_records(1, 100_000).await.unwrap();
    for r in &all {
        let text = r.event.data.to_string();
        assert!(!text.contains(&issued.revocation_secret), "seq {}: {text}", r.seq);
        assert!(!text.contains("ZZZZ-ZZZZ"), "seq {}: {text}", r.seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_3_reactivation_is_refused_with_a_revocation_secret_or_a_law_enforcement_order() {
    let (server, _, token) = desk().await;
    let issued = active_applicant_means(&server).await;
    let suspended = helpdesk(
        &server,
        &token,
        &issued.id,
        "suspend",
        "s-1",
        &status_body("law_enforcement_order", "order 2026/17 of the prosecutor, art. 8"),
    )
    .await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    for (n, (method, evidence)) in [
        ("revocation_secret", issued.revocation_secret.as_str()),
        ("law_enforcement_order", "order 2026/18 lifting the measure"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = helpdesk(
            &server,
            &token,
            &issued.id,
            "reactivate",
            &format!("r-{n}"),
            &status_body(method, evidence),
        )
        .await;
        assert_problem(&r, 403, "verification-failed");
    }
    assert_eq!(state_of(&server, &issued.id).await, "suspended");
    let subject = format!("means:{}", issued.id);
    assert_eq!(count_events(&server, &subject, "helpdesk.verification_failed").await, 2);
    // A missing or empty evidence is refused the same way.
    let empty = helpdesk(
        &server,
        &token,
        &issued.id,
        "reactivate",
        "r-9",
        &status_body("in_person", " "),
    )
    .await;
    assert_problem(&empty, 403, "verification-failed");
    assert_eq!(state_of(&server, &issued.id).await, "suspended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_3_holder_id_token_reactivates_only_when_fresh() {
    let (server, staff, token) = desk().await;
    let means = staff.holder_means.as_str();
    let id_token = |tokens: &Value| tokens["id_token"].as_str().unwrap().to_owned();
    // The holder has a second means to authenticate with while the first is suspended
    // (stored directly: importing the same holder's password means again changes nothing).
    second_password_means(&server).await;

    // Issued before the suspension: proves nothing about who asks to undo it.
    let before = id_token(&login_tokens(&server, CONSOLE, HOLDER, PASSWORD, "openid").await);
    assert_eq!(helpdesk_in_person(&server, &token, means, "suspend").await.status, 200);
    server.app.clock.advance(1);
    let r = helpdesk(
        &server,
        &token,
        means,
        "reactivate",
        "h-0",
        &status_body("authenticated_holder", &before),
    )
    .await;
    assert_problem(&r, 403, "verification-failed");
    // Issued after it, but to an ordinary relying party rather than the operators' console.
    let elsewhere = id_token(&login_tokens(&server, "rp", HOLDER, PASSWORD, "openid").await);
    let r = helpdesk(
        &server,
        &token,
        means,
        "reactivate",
        "h-1",
        &status_body("authenticated_holder", &elsewhere),
    )
    .await;
    assert_problem(&r, 403, "verification-failed");
    // Somebody else's ID token does not verify this holder.
    let other = id_token(&login_tokens(&server, CONSOLE, ISSUER, OPERATOR_PASSWORD, "openid").await);
    let r = helpdesk(
        &server,
        &token,
        means,
        "reactivate",
        "h-2",
        &status_body("authenticated_holder", &other),
    )
    .await;
    assert_problem(&r, 403, "verification-failed");
    // Nor does a token that is not ours (a tampered signature).
    let fresh = id_token(&login_tokens(&server, CONSOLE, HOLDER, PASSWORD, "openid").await);
    let mut forged = fresh.clone();
    forged.pop();
    forged.push(if fresh.ends_with('A') { 'B' } else { 'A' });
    let r = helpdesk(
        &server,
        &token,
        means,
        "reactivate",
        "h-3",
        &status_body("authenticated_holder", &forged),
    )
    .await;
    assert_problem(&r, 403, "verification-failed");
    // A fresh console login of the holder after the suspension reactivates.
    let r = helpdesk(
        &server,
        &token,
        means,
        "reactivate",
        "h-4",
        &status_body("authenticated_holder", &fresh),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "active");
    let history = audit_events(&server, &format!("means:{means}")).await;
    let reactivated = history
        .iter()
        .rfind(|r| r.event.event_type == "means.reactivated")
        .unwrap();
    assert_eq!(reactivated.event.data["verification"], "authenticated_holder");
    assert!(
        !reactivated.event.data.to_string().contains(&fresh),
        "the ID token is not logged"
    );

    // Stale: a console token made after a new suspension, presented 11 minutes later.
    assert_eq!(helpdesk_in_person(&server, &token, means, "suspend").await.status, 200);
    server.app.clock.advance(1);
    let stale = id_token(&login_tokens(&server, CONSOLE, HOLDER, PASSWORD, "openid").await);
    server.app.clock.advance(11 * 60);
    let token = operator_token(&server, HELPDESK).await; // the old access token expired too
    let r = helpdesk(
        &server,
        &token,
        means,
        "reactivate",
        "h-5",
        &status_body("authenticated_holder", &stale),
    )
    .await;
    assert_problem(&r, 403, "verification-failed");
    assert_eq!(state_of(&server, means).await, "suspended");
}

// ---- concurrency ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_4_50_parallel_changes_end_consistent_with_a_gap_free_audit_chain() {
    let (server, staff, token) = desk().await;
    let means = staff.holder_means.clone();
    let server = std::sync::Arc::new(server);
    let mut tasks = Vec::new();
    for i in 0..50 {
        // Suspend and reactivate alternately, with revocations among the later ones.
        let command = match i {
            29 | 39 | 44 | 49 => "revoke",
            n if n % 2 == 0 => "suspend",
            _ => "reactivate",
        };
        let (server, token, means) = (server.clone(), token.clone(), means.clone());
        tasks.push(tokio::spawn(async move {
            let r = helpdesk(
                &server,
                &token,
                &means,
                command,
                &format!("par-{i}"),
                &status_body("in_person", IN_PERSON),
            )
            .await;
            (command, r.status, r.body)
        }));
    }
    let mut by_version: BTreeMap<i64, String> = BTreeMap::new();
    let mut statuses = BTreeMap::new();
    for task in tasks {
        let (command, status, body) = task.await.unwrap();
        assert!(matches!(status, 200 | 409 | 503), "{command}: {status} {body}");
        *statuses.entry(status).or_insert(0) += 1;
        if status == 200 {
            let state = body["state"].as_str().unwrap().to_owned();
            let expected = match command {
                "suspend" => "suspended",
                "revoke" => "revoked",
                _ => "active",
            };
            assert_eq!(state, expected, "{body}");
            let version = body["version"].as_i64().unwrap();
            assert!(
                by_version.insert(version, state).is_none(),
                "two successes with version {version}"
            );
        }
    }
    assert!(statuses.get(&200).copied().unwrap_or(0) >= 1, "{statuses:?}");

    // The successes form one history: versions 2..=n without gaps, each step allowed by
    // the state machine, nothing after a revocation.
    let stored = server.app.store.means(means.parse().unwrap()).await.unwrap().unwrap();
    let versions: Vec<i64> = by_version.keys().copied().collect();
    assert_eq!(versions, (2..=stored.version).collect::<Vec<_>>(), "{statuses:?}");
    let mut previous = "active".to_owned();
    for (version, state) in &by_version {
        let allowed = matches!(
            (previous.as_str(), state.as_str()),
            ("active", "suspended") | ("suspended", "active") | ("active" | "suspended", "revoked")
        );
        assert!(allowed, "version {version}: {previous} -> {state}");
        previous.clone_from(state);
    }
    assert_eq!(
        stored.status.as_str(),
        previous,
        "the final state is the last success's"
    );

    // The audit log has exactly these transitions, in the same order, and verifies.
    let transitions: Vec<String> = audit_events(&server, &format!("means:{means}"))
        .await
        .into_iter()
        .filter(|r| r.event.event_type != "means.imported" && r.event.event_type.starts_with("means."))
        .map(|r| r.event.data["to"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(transitions, by_version.values().cloned().collect::<Vec<_>>());
    let records = server.app.store.audit_records(1, 100_000).await.unwrap();
    assert!(!records.is_empty());
    eidgate::audit::verify_run(eidgate::audit::GENESIS_HASH, 1, &records)
        .unwrap_or_else(|(seq, why)| panic!("audit chain broken at seq {seq}: {why}"));
    assert_eq!(records.last().unwrap().seq, records.len() as i64);
}

// ---- OpenAPI -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_1_openapi_document_parses_and_lists_every_helpdesk_path() {
    let server = TestServer::start().await;
    let r = crate::support::server::http()
        .get(server.at("/helpdesk/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], "/helpdesk/v1");
    let paths = doc["paths"].as_object().unwrap();
    let expected: [(&str, &str); 8] = [
        ("/approvals", "get"),
        ("/approvals/{id}/approve", "post"),
        ("/approvals/{id}/reject", "post"),
        ("/holders", "get"),
        ("/means/{id}", "get"),
        ("/means/{id}/suspend", "post"),
        ("/means/{id}/revoke", "post"),
        ("/means/{id}/reactivate", "post"),
    ];
    let mut listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    listed.sort_unstable();
    let mut wanted: Vec<&str> = expected.iter().map(|(p, _)| *p).collect();
    wanted.sort_unstable();
    assert_eq!(listed, wanted);
    let means = eidgate::domain::ids::MeansId::new().to_string();
    for (path, method) in expected {
        let operation = &paths[path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        assert!(operation["responses"]["401"].is_object(), "{method} {path}");
        assert!(operation["responses"]["403"].is_object(), "{method} {path}");
        if method == "post" && path.starts_with("/means/") {
            let params = operation["parameters"].as_array().unwrap();
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header" && p["required"] == true),
                "{path}: Idempotency-Key"
            );
            assert!(operation["responses"]["409"].is_object(), "{path}");
        }
        // The documented route exists on the server (it asks for a token, not 404).
        let url = format!("/helpdesk/v1{}", path.replace("{id}", &means));
        let url = if path == "/holders" {
            format!("{url}?identifier={HOLDER}")
        } else {
            url
        };
        let answer = if method == "get" {
            call(&server, reqwest::Method::GET, &url, None, None, None).await
        } else {
            let body = status_body("in_person", IN_PERSON);
            call(&server, reqwest::Method::POST, &url, None, Some(&body), Some("k")).await
        };
        assert_eq!(answer.status, 401, "{method} {url}: {}", answer.body);
    }
    // Every verification method of the contract is in the request schema.
    let methods =
        &doc["components"]["schemas"]["StatusRequest"]["properties"]["verification"]["properties"]["method"]["enum"];
    for m in [
        "revocation_secret",
        "in_person",
        "authenticated_holder",
        "law_enforcement_order",
    ] {
        assert!(methods.as_array().unwrap().contains(&json!(m)), "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_4_access_tokens_from_before_a_suspension_stay_dead_after_reactivation() {
    let (server, staff, token) = desk().await;
    let means = staff.holder_means.as_str();
    let tokens = login_tokens(&server, "rp", HOLDER, PASSWORD, "openid").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let userinfo = |access: String| {
        let url = server.at("/userinfo");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(userinfo(access.clone()).await, 200);
    assert_eq!(helpdesk_in_person(&server, &token, means, "suspend").await.status, 200);
    assert_eq!(userinfo(access.clone()).await, 401);
    assert_eq!(
        helpdesk_in_person(&server, &token, means, "reactivate").await.status,
        200
    );
    assert_eq!(
        userinfo(access).await,
        401,
        "a token of before the suspension must not come back"
    );
    // A login after the reactivation works.
    server.app.clock.advance(1);
    let fresh = login_tokens(&server, "rp", HOLDER, PASSWORD, "openid").await;
    assert_eq!(userinfo(fresh["access_token"].as_str().unwrap().to_owned()).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_life_4_a_token_issued_in_the_same_second_after_a_reactivation_works() {
    let (server, staff, token) = desk().await;
    let means = staff.holder_means.as_str();
    assert_eq!(helpdesk_in_person(&server, &token, means, "suspend").await.status, 200);
    assert_eq!(
        helpdesk_in_person(&server, &token, means, "reactivate").await.status,
        200
    );
    // No clock advance: the new token is issued within the second of the reactivation.
    let fresh = login_tokens(&server, "rp", HOLDER, PASSWORD, "openid").await;
    let status = reqwest::Client::new()
        .get(server.at("/userinfo"))
        .bearer_auth(fresh["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

/// A second active password means (password [`PASSWORD`]) for [`HOLDER`].
async fn second_password_means(server: &TestServer) {
    use eidgate::domain::means::{EidMeans, MeansKind, MeansStatus};
    let store = &server.app.store;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let means = EidMeans {
        id: eidgate::domain::ids::MeansId::new(),
        holder: crate::support::operators::person_id(server, HOLDER).await,
        kind: MeansKind::Password,
        loa: eidgate::domain::loa::Loa::Low,
        status: MeansStatus::Active,
        valid_from: now,
        valid_until: now + 86_400,
        version: 1,
    };
    let phc = eidgate::authn::password::hash(&eidgate::domain::secret::Password::new(PASSWORD.into())).unwrap();
    let event = eidgate::audit::AuditEvent::new("means.imported", "test", format!("means:{}", means.id), json!({}));
    store
        .insert_imported_means(&means, &eidgate::store::Credential::PasswordHash(phc), None, event)
        .await
        .unwrap();
}
