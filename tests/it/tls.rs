//! TLS by rustls (R-SEC-1): the embedded `dev` mode generates a certificate under the
//! data dir (key file 0600) and serves discovery over TLS with HSTS.

use eidgate::config::TlsMode;

use crate::support::server::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_sec_1_dev_tls_serves_https_with_a_generated_certificate() {
    let server = TestServer::start_with(|c| {
        c.tls.mode = TlsMode::Dev;
        c.issuer = c.issuer.replace("http://", "https://");
    })
    .await;
    let dir = server.app.config.data_dir.join("tls");
    let pem = std::fs::read(dir.join("dev-cert.pem")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("dev-key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let url = server.url.replace("http://", "https://");
    let r = client
        .get(format!("{url}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("strict-transport-security"));
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["issuer"], url);
    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::Client::new()
        .get(format!("{}/healthz", server.url))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}
