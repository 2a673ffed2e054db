//! Every refusal of a card login: replayed, expired or foreign nonces, wrong origin,
//! foreign keys, malformed or oversized tokens, certificates out of validity, cards of
//! suspended or revoked means, and the CRL (R-AUTH-5, R-AUTH-7, R-MEANS-3, R-SEC-5,
//! R-LIFE-4, R-LOG-1).

use serde_json::{json, Value};
use x509_parser::prelude::FromDer;

use super::*;
use crate::support::operators::helpdesk_in_person;
use crate::support::server::client_entry;

#[tokio::test]
async fn r_auth_5_replayed_nonce_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    // A client that asks for consent keeps the flow open after the ceremony.
    server
        .import(json!({"clients": [client_entry("asks", json!({"consent": "always"}))]}))
        .await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "asks", None).await;
    let nonce = login.challenge(&server).await;
    let token = card.sign(&server.url, &nonce).await;
    let (status, body) = login.token(&server, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "consent", "{body}");
    let replay = login.token(&server, &token).await;
    assert_eq!(replay.0, 401, "{}", replay.1);
    assert_eq!(last_reason(&server).await, "nonce_replayed");
}

#[tokio::test]
async fn r_auth_5_expired_nonce_is_refused() {
    let (server, officers) = staffed(|c| c.smartcard.nonce_ttl = std::time::Duration::from_secs(60)).await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let token = card.sign(&server.url, &nonce).await;
    server.app.clock.advance(61);
    let answer = login.token(&server, &token).await;
    assert_refused(&server, &login, answer, "nonce_expired", &token).await;
}

#[tokio::test]
async fn r_auth_5_nonce_from_another_flow_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let first = start(&server, "rp", None).await;
    let other = start(&server, "rp", None).await;
    let first_nonce = first.challenge(&server).await;
    let other_nonce = other.challenge(&server).await;
    let token_for_first = card.sign(&server.url, &first_nonce).await;
    let answer = other.token(&server, &token_for_first).await;
    let good = card.sign(&server.url, &other_nonce).await;
    assert_refused(&server, &other, answer, "signature_invalid", &good).await;
    // A flow that never asked for a challenge has none to match.
    let third = start(&server, "rp", None).await;
    let answer = third.token(&server, &token_for_first).await;
    assert_eq!(answer.0, 401);
    assert_eq!(last_reason(&server).await, "nonce_missing");
}

#[tokio::test]
async fn r_auth_5_wrong_origin_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let phished = card.sign("https://id.example.evil", &nonce).await;
    let answer = login.token(&server, &phished).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "signature_invalid", &good).await;
}

#[tokio::test]
async fn r_means_3_signature_by_another_key_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (id, card) = active_card(&server, &officers).await;
    let copy = CardStandIn::new("p256").await;
    let cert = server
        .app
        .store
        .card_certificates_of(id.parse().unwrap())
        .await
        .unwrap();
    copy.store(&eidgate::smartcard::certificate_pem(&cert[0].der)).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let answer = login.token(&server, &copy.sign(&server.url, &nonce).await).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "signature_invalid", &good).await;
}

#[tokio::test]
async fn r_auth_7_algorithm_hash_mismatch_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    // A P-256 card key named ES384 (hash SHA-384): the algorithm does not fit the key.
    let mismatch = card.sign_as(&server.url, &nonce, "ES384").await;
    let answer = login.token(&server, &mismatch).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "algorithm_key_mismatch", &good).await;
    // Relabelling a good ES256 signature as ES384 fails the same way.
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let good = card.sign(&server.url, &nonce).await;
    let relabelled = good.replace("\"ES256\"", "\"ES384\"");
    let answer = login.token(&server, &relabelled).await;
    assert_refused(&server, &login, answer, "algorithm_key_mismatch", &good).await;
}

#[tokio::test]
async fn r_auth_5_truncated_or_malformed_base64_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    for field in ["signature", "unverifiedCertificate"] {
        let login = start(&server, "rp", None).await;
        let nonce = login.challenge(&server).await;
        let good = card.sign(&server.url, &nonce).await;
        let mut token: Value = serde_json::from_str(&good).unwrap();
        let value = token[field].as_str().unwrap().to_owned();
        token[field] = json!(value[..value.len() - 1]);
        let answer = login.token(&server, &token.to_string()).await;
        assert_refused(&server, &login, answer, "malformed_base64", &good).await;
    }
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let good = card.sign(&server.url, &nonce).await;
    let mut token: Value = serde_json::from_str(&good).unwrap();
    token["signature"] = json!(token["signature"].as_str().unwrap().replace(['+', '/'], "-"));
    token["signature"] = json!(format!("{}*", &token["signature"].as_str().unwrap()[1..]));
    let answer = login.token(&server, &token.to_string()).await;
    assert_refused(&server, &login, answer, "malformed_base64", &good).await;
}

#[tokio::test]
async fn r_sec_5_oversized_token_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let good = card.sign(&server.url, &nonce).await;
    let mut token: Value = serde_json::from_str(&good).unwrap();
    token["padding"] = json!("x".repeat(10_001));
    let answer = login.token(&server, &token.to_string()).await;
    assert_refused(&server, &login, answer, "token_size", &good).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let good = card.sign(&server.url, &nonce).await;
    let answer = login.token(&server, r#"{"format":"web-eid:1.0"}"#).await;
    assert_refused(&server, &login, answer, "token_size", &good).await;
    // The format is parsed exactly.
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let good = card.sign(&server.url, &nonce).await;
    let answer = login
        .token(&server, &good.replace("\"web-eid:1.0\"", "\"web-eid:10.0\""))
        .await;
    assert_refused(&server, &login, answer, "unsupported_format", &good).await;
}

#[tokio::test]
async fn r_means_3_expired_or_not_yet_valid_certificate_is_refused() {
    let (server, officers) = staffed(|c| c.smartcard.certificate_validity = std::time::Duration::from_secs(3600)).await;
    let (_, card) = active_card(&server, &officers).await;
    server.app.clock.advance(2 * 3600);
    let (login, token, answer) = card_attempt(&server, &card).await;
    assert_refused(&server, &login, answer, "certificate_expired", &token).await;

    server.app.clock.advance(-2 * 3600 - 600);
    let (login, token, answer) = card_attempt(&server, &card).await;
    assert_refused(&server, &login, answer, "certificate_not_yet_valid", &token).await;
}

#[tokio::test]
async fn r_life_4_card_of_a_suspended_or_revoked_means_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (id, card) = active_card(&server, &officers).await;
    let suspended = helpdesk_in_person(&server, &officers.helpdesk, &id, "suspend").await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    let (login, token, answer) = card_attempt(&server, &card).await;
    assert_refused(&server, &login, answer, "means_not_active", &token).await;

    let revoked = helpdesk_in_person(&server, &officers.helpdesk, &id, "revoke").await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let (login, token, answer) = card_attempt(&server, &card).await;
    assert_refused(&server, &login, answer, "means_not_active", &token).await;
}

/// Issue 22: the verified path of a card is cached by its fingerprint; its status is not.
/// A card that has just logged in (path cached) is refused at the very next login after a
/// suspension, and again after a revocation, though its path comes from the cache.
#[tokio::test]
async fn r_life_4_card_with_a_cached_path_is_refused_at_once_after_suspension_or_revocation() {
    let (server, officers) = staffed(|_| {}).await;
    let (id, card) = active_card(&server, &officers).await;
    let trust = &server.app.smartcard.trust;
    let (_, _, (status, body)) = card_attempt(&server, &card).await;
    assert_eq!(status, 200, "{body}");
    let (_, _, (status, body)) = card_attempt(&server, &card).await;
    assert_eq!(status, 200, "{body}");
    let hits = trust.cached_path_hits();
    assert!(hits >= 1, "the second login took the path from the cache");

    let suspended = helpdesk_in_person(&server, &officers.helpdesk, &id, "suspend").await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    let (login, token, answer) = card_attempt(&server, &card).await;
    assert_refused(&server, &login, answer, "means_not_active", &token).await;
    assert!(trust.cached_path_hits() > hits, "refused with the path from the cache");

    let revoked = helpdesk_in_person(&server, &officers.helpdesk, &id, "revoke").await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let (login, token, answer) = card_attempt(&server, &card).await;
    assert_refused(&server, &login, answer, "means_not_active", &token).await;
}

#[tokio::test]
async fn r_log_1_crl_lists_a_revoked_card_and_verifies_against_the_ca() {
    let (server, officers) = staffed(|_| {}).await;
    let (id, _card) = active_card(&server, &officers).await;
    let serial = server
        .app
        .store
        .card_certificates_of(id.parse().unwrap())
        .await
        .unwrap()[0]
        .serial
        .clone();
    let http = crate::support::server::http();
    let fetch = |path: &'static str| {
        let http = http.clone();
        let url = server.at(path);
        async move { http.get(url).send().await.unwrap().bytes().await.unwrap().to_vec() }
    };
    let ca_der = fetch("/smartcard/ca.crt").await;
    let (_, ca) = x509_parser::certificate::X509Certificate::from_der(&ca_der).unwrap();
    let listed = |crl_der: &[u8]| {
        let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(crl_der).unwrap();
        crl.verify_signature(ca.public_key()).unwrap();
        assert_eq!(crl.issuer(), ca.subject());
        assert!(crl.next_update().is_some());
        crl.iter_revoked_certificates()
            .map(|r| eidgate::smartcard::x509::serial_hex(r.raw_serial()))
            .collect::<Vec<_>>()
    };
    assert!(!listed(&fetch("/smartcard/crl").await).contains(&serial));
    let revoked = helpdesk_in_person(&server, &officers.helpdesk, &id, "revoke").await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let crl = fetch("/smartcard/crl").await;
    assert!(listed(&crl).contains(&serial), "the revoked card's serial is listed");
    // The CA key is P-384 and lives in the HSM (ca-1).
    let curve = ca.public_key().algorithm.parameters.as_ref().unwrap().as_oid().unwrap();
    assert_eq!(curve.to_id_string(), "1.3.132.0.34", "P-384");
    let records = server.app.store.audit_after(0, 1_000_000).await.unwrap();
    assert!(records.iter().any(|r| r.event.event_type == "certificate.crl_signed"));
    assert!(records
        .iter()
        .any(|r| r.event.event_type == "key.generated" && r.event.subject == "key:ca-1"));
}
