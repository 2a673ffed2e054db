//! The smartcard (R-MEANS-3, R-ISS-2): personalisation by our CA, activation with the card
//! and a card login. The `smartcard/challenge` steps only hand out a one-time nonce
//! (classified in `audit_routes::NO_RECORD`); they are driven here as part of each ceremony.

use serde_json::json;

use super::Walk;
use crate::smartcard::{approved_card_means, personalise, post_raw, staffed, start, CardStandIn, CARD_HOLDER};
use crate::support::operators::{activation_start, activation_step};
use eidgate::audit::catalogue;

pub(crate) const ROUTES: &[&str] = &[
    "POST /activation/{id}/smartcard/token",
    "POST /admin/v1/means/{id}/certificate",
    "POST /authn/flows/{flow}/smartcard/token",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_1_smartcard_personalisation_activation_and_login_routes_write_their_records() {
    let (server, officers) = staffed(|_| {}).await;
    let (id, code) = approved_card_means(&server, &officers).await;
    let card = CardStandIn::new("p256").await;
    let mut walk = Walk::new(&server).await;
    personalise(&server, &officers, &id, &card).await;
    walk.check(
        "card personalised",
        &["POST /admin/v1/means/{id}/certificate"],
        &[catalogue::CERTIFICATE_ISSUED],
    )
    .await;

    let started = activation_start(&server, CARD_HOLDER, &code).await;
    assert_eq!(started.status, 200, "{}", started.body);
    let activation = started.body["activation"].as_str().unwrap().to_owned();
    let accept = json!({
        "terms_version": started.body["terms_version"],
        "security_advice_version": started.body["security_advice_version"],
    });
    assert_eq!(
        activation_step(&server, &activation, "accept", &accept).await.status,
        200
    );
    walk.skip().await;
    let challenge = activation_step(&server, &activation, "smartcard/challenge", &json!({})).await;
    assert_eq!(challenge.status, 200, "{}", challenge.body);
    walk.nothing("activation nonce").await;
    let token = card.sign(&server.url, challenge.body["nonce"].as_str().unwrap()).await;
    walk.skip().await;
    let (status, body) = post_raw(
        &server,
        &format!("/activation/{activation}/smartcard/token"),
        None,
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    walk.check(
        "card activated",
        &["POST /activation/{id}/smartcard/token"],
        &[catalogue::MEANS_ACTIVATED],
    )
    .await;

    let login = start(&server, "rp", None).await;
    walk.skip().await;
    let nonce = login.challenge(&server).await;
    walk.nothing("login nonce").await;
    let token = card.sign(&server.url, &nonce).await;
    walk.skip().await;
    let (status, body) = login.token(&server, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done", "{body}");
    walk.check(
        "card login",
        &["POST /authn/flows/{flow}/smartcard/token"],
        &[catalogue::LOGIN_SUCCESS],
    )
    .await;
    walk.finish(ROUTES);
}
