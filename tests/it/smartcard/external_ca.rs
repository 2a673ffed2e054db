//! Cards of external CAs (`trusted_ca_files`): untrusted CA, wrong EKU or key usage,
//! self-issued intermediates, no revocation status, the generic problem type (R-AUTH-7).

use super::*;

#[tokio::test]
async fn r_auth_7_certificate_from_an_untrusted_ca_is_refused() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let rogue = test_root("Rogue CA");
    let other = CardStandIn::new("p256").await;
    let pem = card_cert(&rogue, &other.csr().await, |_| {});
    other.store(&pem).await;
    import_card(&server, &pem).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let answer = login.token(&server, &other.sign(&server.url, &nonce).await).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "untrusted_issuer", &good).await;
}

#[tokio::test]
async fn r_auth_7_wrong_eku_or_key_usage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_root("Partner CA");
    let file = write_pem(&dir, "partner.pem", &[&ca.cert.pem()]);
    let (server, officers) = staffed(|c| c.smartcard.trusted_ca_files = vec![file.into()]).await;
    let (_, card) = active_card(&server, &officers).await;
    for (reason, adjust) in [
        (
            "extended_key_usage",
            Box::new(|p: &mut rcgen::CertificateParams| {
                p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth]
            }) as Box<dyn FnOnce(&mut rcgen::CertificateParams)>,
        ),
        (
            "key_usage",
            Box::new(|p: &mut rcgen::CertificateParams| p.key_usages = vec![rcgen::KeyUsagePurpose::KeyEncipherment]),
        ),
    ] {
        let other = CardStandIn::new("p256").await;
        let pem = card_cert(&ca, &other.csr().await, adjust);
        other.store(&pem).await;
        let login = start(&server, "rp", None).await;
        let nonce = login.challenge(&server).await;
        let answer = login.token(&server, &other.sign(&server.url, &nonce).await).await;
        let good = card.sign(&server.url, &nonce).await;
        assert_refused(&server, &login, answer, reason, &good).await;
    }
}

#[tokio::test]
async fn r_auth_7_chain_with_a_self_issued_intermediate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = test_root("Partner Root");
    // Same name as the root (self-issued), another key, signed by the root.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = ca_params("Partner Root")
        .signed_by(&key, &root.cert, &root.key)
        .unwrap();
    let intermediate = TestCa { cert, key };
    let file = write_pem(&dir, "partner.pem", &[&root.cert.pem(), &intermediate.cert.pem()]);
    let (server, officers) = staffed(|c| c.smartcard.trusted_ca_files = vec![file.into()]).await;
    let (_, card) = active_card(&server, &officers).await;
    let other = CardStandIn::new("p256").await;
    let pem = card_cert(&intermediate, &other.csr().await, |_| {});
    other.store(&pem).await;
    import_card(&server, &pem).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let answer = login.token(&server, &other.sign(&server.url, &nonce).await).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "self_issued_intermediate", &good).await;
}

#[tokio::test]
async fn r_auth_7_external_ca_card_is_refused_without_revocation_status() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_root("Partner CA");
    let file = write_pem(&dir, "partner.pem", &[&ca.cert.pem()]);
    let (server, officers) = staffed(|c| c.smartcard.trusted_ca_files = vec![file.into()]).await;
    let (_, card) = active_card(&server, &officers).await;

    // No distribution point at all: unknown status, refused (fail closed).
    let bare = CardStandIn::new("p256").await;
    let pem = card_cert(&ca, &bare.csr().await, |_| {});
    bare.store(&pem).await;
    import_card(&server, &pem).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let answer = login.token(&server, &bare.sign(&server.url, &nonce).await).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "revocation_status_unknown", &good).await;

    // A distribution point nobody answers at: refused too.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/gone.crl", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = CardStandIn::new("p256").await;
    let pem = card_cert(&ca, &unreachable.csr().await, |p| {
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint { uris: vec![dead_url] }];
    });
    unreachable.store(&pem).await;
    import_card(&server, &pem).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let answer = login.token(&server, &unreachable.sign(&server.url, &nonce).await).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "revocation_status_unknown", &good).await;

    // A current CRL of the CA: a listed card is refused, an unlisted one logs in.
    let listed_card = CardStandIn::new("p256").await;
    let fine_card = CardStandIn::new("p256").await;
    let listed_serial = [0x11u8; 16];
    let (crl_url, server_task) = serve_bytes(crl_of(&ca, &[&listed_serial])).await;
    let listed_pem = card_cert(&ca, &listed_card.csr().await, |p| {
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&listed_serial));
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec![crl_url.clone()],
        }];
    });
    listed_card.store(&listed_pem).await;
    import_card(&server, &listed_pem).await;
    let fine_pem = card_cert(&ca, &fine_card.csr().await, |p| {
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint { uris: vec![crl_url] }];
    });
    fine_card.store(&fine_pem).await;
    import_card(&server, &fine_pem).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let answer = login.token(&server, &listed_card.sign(&server.url, &nonce).await).await;
    let good = card.sign(&server.url, &nonce).await;
    assert_refused(&server, &login, answer, "certificate_revoked", &good).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let (status, body) = login.token(&server, &fine_card.sign(&server.url, &nonce).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done");
    server_task.abort();
    let records = server.app.store.audit_after(0, 1_000_000).await.unwrap();
    assert!(records.iter().any(|r| r.event.event_type == "certificate.imported"));
}

#[tokio::test]
async fn r_auth_7_problem_type_of_a_refusal_is_the_generic_one() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let generic = problem_type_base(&server).await;
    assert_eq!(generic, answer_type(), "same problem type as a wrong password");
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let token = card.sign("https://other.example", &nonce).await;
    let (status, body) = login.token(&server, &token).await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], generic.as_str());
    assert!(body.get("detail").is_none() || !body["detail"].to_string().contains("signature"));
}
