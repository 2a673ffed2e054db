//! A card issued, personalised, activated and logging in at LoA high; the card key signs
//! only after the holder's PIN (R-MEANS-3, R-MEANS-4, R-ISS-2).

use serde_json::{json, Value};
use x509_parser::prelude::FromDer;

use super::*;
use crate::support::operators::{activation_start, activation_step, post};
use crate::support::server::{exchange, jwt_part, query, REDIRECT};

#[tokio::test]
async fn r_means_3_card_issued_end_to_end_logs_in_at_high_with_sc_hwk_pin() {
    let (server, officers) = staffed(|_| {}).await;
    let (id, code) = approved_card_means(&server, &officers).await;
    let card = CardStandIn::new("p256").await;
    let issued = personalise(&server, &officers, &id, &card).await;
    // The certificate: our CA, the person's identifier, digitalSignature, clientAuth, CRL URL.
    let pem = issued["certificate_pem"].as_str().unwrap();
    let der = eidgate::smartcard::pem_certificates(pem).remove(0);
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
    assert!(
        cert.subject().to_string().contains("PNOLT-48707070707"),
        "{}",
        cert.subject()
    );
    assert!(cert.key_usage().unwrap().unwrap().value.digital_signature());
    assert!(cert.extended_key_usage().unwrap().unwrap().value.client_auth);
    assert_eq!(
        eidgate::smartcard::x509::serial_hex(cert.raw_serial()),
        issued["serial"].as_str().unwrap()
    );
    assert!(cert.raw_serial().len() >= 16, "random 128-bit serial");
    let ca = crate::support::server::http()
        .get(server.at("/smartcard/ca.crt"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (_, ca) = x509_parser::certificate::X509Certificate::from_der(&ca).unwrap();
    cert.verify_signature(Some(ca.public_key())).unwrap();
    assert_eq!(cert.issuer(), ca.subject());
    let ext = format!("{:?}", cert.extensions());
    assert!(
        ext.contains(&format!("{}/smartcard/crl", server.url)),
        "CRL distribution point"
    );
    // The serial is recorded with the means.
    let recorded = server
        .app
        .store
        .card_certificates_of(id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].serial, issued["serial"].as_str().unwrap());
    // A second CSR for the same means is refused.
    let again = post(
        &server,
        &format!("/admin/v1/means/{id}/certificate"),
        &officers.personaliser,
        &json!({ "csr": card.csr().await }),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.body);

    let activated = activate_card(&server, &code, &card).await;
    assert_eq!(activated["state"], "active");

    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let token = card.sign(&server.url, &nonce).await;
    let (status, body) = login.token(&server, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done", "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(REDIRECT));
    let code = query(&back, "code").unwrap();
    let tokens = exchange(&server, "rp", &code, &login.verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let claims = jwt_part(tokens.body["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["acr"], "http://eidas.europa.eu/LoA/high", "{claims}");
    let amr: Vec<&str> = claims["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for method in ["sc", "hwk", "pin", "mfa"] {
        assert!(amr.contains(&method), "{amr:?}");
    }
}

#[tokio::test]
async fn r_iss_2_card_activation_needs_the_card_of_the_means() {
    let (server, officers) = staffed(|_| {}).await;
    let (id, code) = approved_card_means(&server, &officers).await;
    let card = CardStandIn::new("p256").await;
    personalise(&server, &officers, &id, &card).await;
    // Another card with a copy of the certificate but its own key cannot activate.
    let thief = CardStandIn::new("p256").await;
    let cert = server
        .app
        .store
        .card_certificates_of(id.parse().unwrap())
        .await
        .unwrap();
    thief.store(&eidgate::smartcard::certificate_pem(&cert[0].der)).await;
    let started = activation_start(&server, CARD_HOLDER, &code).await;
    let activation = started.body["activation"].as_str().unwrap().to_owned();
    let accept = json!({
        "terms_version": started.body["terms_version"],
        "security_advice_version": started.body["security_advice_version"],
    });
    activation_step(&server, &activation, "accept", &accept).await;
    let challenge = activation_step(&server, &activation, "smartcard/challenge", &json!({})).await;
    let forged = thief.sign(&server.url, challenge.body["nonce"].as_str().unwrap()).await;
    let refused = post_raw(
        &server,
        &format!("/activation/{activation}/smartcard/token"),
        None,
        &forged,
    )
    .await;
    assert_eq!(refused.0, 401, "{}", refused.1);
    let records = server
        .app
        .store
        .audit_by_subject(&format!("means:{id}"), 1000)
        .await
        .unwrap();
    let failure = records
        .iter()
        .rev()
        .find(|r| r.event.event_type == "activation.failed")
        .unwrap();
    assert_eq!(failure.event.data["reason"], "signature_invalid");
    assert_eq!(crate::support::operators::state_of(&server, &id).await, "issued");
    // The real card activates.
    let challenge = activation_step(&server, &activation, "smartcard/challenge", &json!({})).await;
    let token = card.sign(&server.url, challenge.body["nonce"].as_str().unwrap()).await;
    let done = post_raw(
        &server,
        &format!("/activation/{activation}/smartcard/token"),
        None,
        &token,
    )
    .await;
    assert_eq!(done.0, 200, "{}", done.1);
    assert_eq!(crate::support::operators::state_of(&server, &id).await, "active");
}

#[tokio::test]
async fn loa_request_high_with_a_card_gives_acr_high() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "rp", Some("http://eidas.europa.eu/LoA/high")).await;
    let info: Value = login
        .browser
        .get(server.at(&format!("/authn/flows/{}", login.flow)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["requested_loa"], "high");
    assert!(
        info["methods"].as_array().unwrap().contains(&json!("smartcard")),
        "{info}"
    );
    let nonce = login.challenge(&server).await;
    let (status, body) = login.token(&server, &card.sign(&server.url, &nonce).await).await;
    assert_eq!(status, 200, "{body}");
    let back = url::Url::parse(body["redirect_to"].as_str().unwrap()).unwrap();
    let tokens = exchange(&server, "rp", &query(&back, "code").unwrap(), &login.verifier).await;
    let claims = jwt_part(tokens.body["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["acr"], "http://eidas.europa.eu/LoA/high");
}

#[tokio::test]
async fn r_means_4_the_card_key_signs_only_after_the_holders_pin() {
    let (server, officers) = staffed(|_| {}).await;
    let (_, card) = active_card(&server, &officers).await;
    let login = start(&server, "rp", None).await;
    let nonce = login.challenge(&server).await;
    let args = [
        "sign-challenge",
        "--origin",
        server.url.as_str(),
        "--nonce",
        nonce.as_str(),
    ];
    let wrong = card.output_with_pin(&args, "not-the-pin").await;
    assert!(!wrong.status.success(), "a wrong PIN must not sign");
    assert!(wrong.stdout.is_empty());
    let (status, body) = login.token(&server, &card.sign(&server.url, &nonce).await).await;
    assert_eq!(status, 200, "{body}");
}
