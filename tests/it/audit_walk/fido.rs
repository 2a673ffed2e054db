//! FIDO2 / WebAuthn (R-MEANS-4, R-ISS-3): the key's registration at activation and a login
//! with it. The `webauthn/start` steps only hand out a one-time challenge (classified in
//! `audit_routes::NO_RECORD`); they are driven here as part of each ceremony.

use serde_json::json;

use super::{flow_step, Walk};
use crate::support::authenticator::{Attest, SoftKey};
use crate::support::operators::{
    activation_start, activation_step, issue_kind, operator_token, provision_staff, register, ISSUER, REGISTRAR,
};
use crate::support::server::{auth_params, authorize_url, browser, pkce, set_param, start_login, TestServer};
use eidgate::audit::catalogue;

pub(crate) const ROUTES: &[&str] = &[
    "POST /activation/{id}/webauthn/finish",
    "POST /authn/flows/{flow}/webauthn/finish",
];

const ALICE: &str = "LT/LT/48001010011";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_1_fido_activation_and_login_routes_write_their_records() {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let registrar = operator_token(&server, REGISTRAR).await;
    let issuer = operator_token(&server, ISSUER).await;
    register(&server, &registrar, ALICE, "high").await;
    let issued = issue_kind(&server, &registrar, &issuer, ALICE, "fido", "substantial").await;
    let mut walk = Walk::new(&server).await;

    let started = activation_start(&server, ALICE, &issued.activation_code).await;
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
    let options = activation_step(&server, &activation, "webauthn/start", &json!({})).await;
    assert_eq!(options.status, 200, "{}", options.body);
    walk.nothing("registration options").await;
    let mut key = SoftKey::new(server.app.config.origin());
    let response = key.register(&options.body, &Attest::None);
    let done = activation_step(&server, &activation, "webauthn/finish", &response).await;
    assert_eq!(done.status, 200, "{}", done.body);
    walk.check(
        "FIDO2 key registered at activation",
        &["POST /activation/{id}/webauthn/finish"],
        &[catalogue::FIDO_CREDENTIAL_REGISTERED, catalogue::MEANS_ACTIVATED],
    )
    .await;

    let holder = browser();
    let (_, challenge) = pkce();
    let mut params = auth_params("rp", &challenge);
    set_param(
        &mut params,
        "acr_values",
        Some("http://eidas.europa.eu/LoA/substantial"),
    );
    let flow = start_login(&holder, &authorize_url(&server, &params)).await;
    walk.skip().await;
    let options = flow_step(&server, &holder, &flow, "webauthn/start", json!({})).await;
    assert_eq!(options.status, 200, "{}", options.body);
    walk.nothing("assertion options").await;
    let done = flow_step(&server, &holder, &flow, "webauthn/finish", key.assert(&options.body)).await;
    assert_eq!(done.body["next"], "done", "{}", done.body);
    walk.check(
        "FIDO2 login",
        &["POST /authn/flows/{flow}/webauthn/finish"],
        &[catalogue::LOGIN_SUCCESS],
    )
    .await;
    walk.finish(ROUTES);
}
