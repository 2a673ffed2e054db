//! The helpdesk console's session routes (issue 24): logging out of the console revokes
//! its tokens and writes `logout` (R-LOG-1). Opening and renewing the session redeem a code
//! or refresh token whose issuance was recorded, as `POST /token` does (`audit_routes`).

use super::Walk;
use crate::helpdesk_console::{console_login, open_session, page_post};
use crate::support::operators::{provision_staff, HELPDESK, OPERATOR_PASSWORD};
use crate::support::server::TestServer;
use eidgate::audit::catalogue;

pub(crate) const ROUTES: &[&str] = &["POST /helpdesk/session/logout"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_1_the_helpdesk_console_logout_writes_its_record() {
    let server = TestServer::start().await;
    provision_staff(&server).await;
    let (browser, code, verifier) = console_login(&server, HELPDESK, OPERATOR_PASSWORD, None).await;
    let (opened, _) = open_session(&server, &browser, &code, &verifier).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let token = opened.body["access_token"].as_str().unwrap().to_owned();
    let mut walk = Walk::new(&server).await;
    let (out, _) = page_post(&server, &browser, "/helpdesk/session/logout", None, Some(&token)).await;
    assert_eq!(out.status, 204, "{}", out.body);
    walk.check(
        "helpdesk console logout",
        &["POST /helpdesk/session/logout"],
        &[catalogue::LOGOUT],
    )
    .await;
    walk.finish(ROUTES);
}
