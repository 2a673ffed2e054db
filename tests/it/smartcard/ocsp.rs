//! OCSP status of cards from an external CA (issue 4; R-AUTH-7; DESIGN "When a dependency
//! fails"). The responder is a real HTTP peer run here: it decodes our `OCSPRequest` with
//! RustCrypto `x509-ocsp`, answers for the CertID asked about, and signs with the test
//! CA's key (or, per test, a delegated responder's, a foreign key, a stale `thisUpdate`,
//! another nonce). Its clock is the server's test clock, so freshness is tested by moving
//! that clock, never by sleeping.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use der::asn1::{BitString, GeneralizedTime, Ia5String, OctetString};
use der::{Decode, Encode};
use eidgate::clock::Clock as _;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax};
use x509_cert::ext::Extension;
use x509_ocsp::{
    BasicOcspResponse, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse, ResponderId, ResponseData,
    RevokedInfo, SingleResponse,
};

use super::{assert_refused, card_attempt, card_cert, import_card, staffed, test_root, write_pem, CardStandIn, TestCa};
use crate::support::server::TestServer;

const ID_PKIX_OCSP_NONCE: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
const ID_AD_OCSP: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
const ECDSA_WITH_SHA256: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// What the test responder answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// `good`, signed by the CA, our nonce echoed.
    Good,
    /// `good`, signed by a delegated responder certificate (EKU OCSPSigning) of the CA.
    GoodByDelegate,
    /// `good`, signed by a certificate of the CA that lacks EKU OCSPSigning.
    GoodByNonResponder,
    /// `good`, without a nonce (RFC 5019 style).
    GoodWithoutNonce,
    /// `good`, signed by a key that is not the CA's.
    GoodByForeignKey,
    /// `good`, echoing another nonce.
    GoodWithOtherNonce,
    /// `good`, with `thisUpdate` ten minutes ago.
    Stale,
    /// `revoked`.
    Revoked,
    /// `unknown`.
    Unknown,
    /// HTTP 500.
    ServerError,
}

/// A running test responder: its URL and how many requests it answered.
struct Responder {
    url: String,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Peer {
    answer: Answer,
    /// PKCS#8 of the CA key.
    ca: Vec<u8>,
    /// PKCS#8 of the key and DER of the certificate of a delegated responder, if any.
    delegate: Option<(Vec<u8>, Vec<u8>)>,
    clock: Arc<eidgate::clock::SystemClock>,
    hits: Arc<AtomicUsize>,
}

impl Responder {
    async fn start(ca: &TestCa, answer: Answer, clock: Arc<eidgate::clock::SystemClock>) -> Responder {
        let delegate = match answer {
            Answer::GoodByDelegate | Answer::GoodByNonResponder => {
                let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
                let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
                params
                    .distinguished_name
                    .push(rcgen::DnType::CommonName, "Partner OCSP");
                params.extended_key_usages = if answer == Answer::GoodByDelegate {
                    vec![rcgen::ExtendedKeyUsagePurpose::OcspSigning]
                } else {
                    vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth]
                };
                let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
                Some((key.serialize_der(), cert.der().to_vec()))
            }
            _ => None,
        };
        let hits = Arc::new(AtomicUsize::new(0));
        let peer = Arc::new(Peer {
            answer,
            ca: ca.key.serialize_der(),
            delegate,
            clock,
            hits: hits.clone(),
        });
        let app = axum::Router::new()
            .route("/ocsp", axum::routing::post(respond))
            .with_state(peer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ocsp", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Responder { url, hits, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn respond(
    axum::extract::State(peer): axum::extract::State<Arc<Peer>>,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, [(&'static str, &'static str); 1], Vec<u8>) {
    peer.hits.fetch_add(1, Ordering::SeqCst);
    let headers = [("content-type", "application/ocsp-response")];
    if peer.answer == Answer::ServerError {
        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, headers, Vec::new());
    }
    let request = OcspRequest::from_der(&body).unwrap();
    (axum::http::StatusCode::OK, headers, peer.answer_to(&request))
}

impl Peer {
    fn answer_to(&self, request: &OcspRequest) -> Vec<u8> {
        let now = self.clock.now();
        let time = |t: i64| {
            OcspGeneralizedTime(GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(t as u64)).unwrap())
        };
        let cert_id = request.tbs_request.request_list[0].req_cert.clone();
        let cert_status = match self.answer {
            Answer::Revoked => CertStatus::Revoked(RevokedInfo {
                revocation_time: time(now - 3600),
                revocation_reason: None,
            }),
            Answer::Unknown => CertStatus::unknown(),
            _ => CertStatus::good(),
        };
        let this_update = if self.answer == Answer::Stale { now - 600 } else { now };
        let nonce = match (self.answer, request.nonce()) {
            (Answer::GoodWithoutNonce, _) | (_, None) => None,
            (Answer::GoodWithOtherNonce, Some(_)) => Some(OctetString::new(vec![9u8; 32]).unwrap()),
            (_, Some(n)) => Some(n.0),
        };
        let tbs = ResponseData {
            version: x509_ocsp::Version::V1,
            responder_id: ResponderId::ByKey(OctetString::new(vec![1u8; 20]).unwrap()),
            produced_at: time(now),
            responses: vec![SingleResponse {
                cert_id,
                cert_status,
                this_update: time(this_update),
                next_update: Some(time(now + 3600)),
                single_extensions: None,
            }],
            response_extensions: nonce.map(|n| {
                vec![Extension {
                    extn_id: ID_PKIX_OCSP_NONCE,
                    critical: false,
                    extn_value: OctetString::new(n.to_der().unwrap()).unwrap(),
                }]
            }),
        };
        let (signer, certs) = match (&self.answer, &self.delegate) {
            (Answer::GoodByForeignKey, _) => (
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                    .unwrap()
                    .serialize_der(),
                None,
            ),
            (_, Some((key, der))) => (key.clone(), Some(vec![x509_cert::Certificate::from_der(der).unwrap()])),
            _ => (self.ca.clone(), None),
        };
        let signing = p256::ecdsa::SigningKey::from_pkcs8_der(&signer).unwrap();
        let signature: p256::ecdsa::Signature = signing.sign(&tbs.to_der().unwrap());
        let basic = BasicOcspResponse {
            tbs_response_data: tbs,
            signature_algorithm: spki::AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
            signature: BitString::from_bytes(signature.to_der().as_bytes()).unwrap(),
            certs,
        };
        OcspResponse::successful(basic).unwrap().to_der().unwrap()
    }
}

/// The AIA extension naming `url` as OCSP responder.
fn aia(url: &str) -> rcgen::CustomExtension {
    let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
        access_method: ID_AD_OCSP,
        access_location: GeneralName::UniformResourceIdentifier(Ia5String::new(url).unwrap()),
    }]);
    rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], aia.to_der().unwrap())
}

/// A server trusting a fresh partner CA, with operators (to import cards).
async fn partner(adjust: impl FnOnce(&mut eidgate::config::Config)) -> (TestServer, tempfile::TempDir, TestCa) {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_root("Partner CA");
    let file = write_pem(&dir, "partner.pem", &[&ca.cert.pem()]);
    let (server, _) = staffed(|c| {
        c.smartcard.trusted_ca_files = vec![file.into()];
        adjust(c);
    })
    .await;
    (server, dir, ca)
}

/// A card of `ca`, imported, whose certificate `adjust` shapes.
async fn partner_card(
    server: &TestServer,
    ca: &TestCa,
    adjust: impl FnOnce(&mut rcgen::CertificateParams),
) -> CardStandIn {
    let card = CardStandIn::new("p256").await;
    let pem = card_cert(ca, &card.csr().await, adjust);
    card.store(&pem).await;
    import_card(server, &pem).await;
    card
}

/// A card of `ca` naming `url` in its AIA.
async fn card_with_responder(server: &TestServer, ca: &TestCa, url: &str) -> CardStandIn {
    let url = url.to_owned();
    partner_card(server, ca, move |p| p.custom_extensions = vec![aia(&url)]).await
}

/// One login attempt of `card`, refused with audit reason `reason` (the card's own token
/// replayed afterwards shows the challenge was consumed).
async fn refused(server: &TestServer, card: &CardStandIn, reason: &str) {
    let (login, token, answer) = card_attempt(server, card).await;
    assert_refused(server, &login, answer, reason, &token).await;
}

/// One login attempt of `card` that succeeds.
async fn logs_in(server: &TestServer, card: &CardStandIn) {
    let (_, _, (status, body)) = card_attempt(server, card).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], "done");
}

#[tokio::test]
async fn r_auth_7_external_card_good_by_ocsp_logs_in() {
    let (server, _dir, ca) = partner(|_| {}).await;
    let responder = Responder::start(&ca, Answer::Good, server.app.clock.clone()).await;
    let card = card_with_responder(&server, &ca, &responder.url).await;
    logs_in(&server, &card).await;
    assert_eq!(responder.hits(), 1, "asked the AIA responder");
}

#[tokio::test]
async fn r_auth_7_external_card_revoked_by_ocsp_is_refused() {
    let (server, _dir, ca) = partner(|_| {}).await;
    let responder = Responder::start(&ca, Answer::Revoked, server.app.clock.clone()).await;
    let card = card_with_responder(&server, &ca, &responder.url).await;
    refused(&server, &card, "certificate_revoked").await;
    assert_eq!(responder.hits(), 1);
}

#[tokio::test]
async fn r_auth_7_ocsp_unknown_or_server_error_is_refused() {
    let (server, _dir, ca) = partner(|_| {}).await;
    for answer in [Answer::Unknown, Answer::ServerError] {
        let responder = Responder::start(&ca, answer, server.app.clock.clone()).await;
        let card = card_with_responder(&server, &ca, &responder.url).await;
        refused(&server, &card, "revocation_status_unknown").await;
        assert_eq!(responder.hits(), 1, "{answer:?}");
    }
}

#[tokio::test]
async fn r_auth_7_ocsp_responder_down_fails_closed() {
    let (server, _dir, ca) = partner(|_| {}).await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/ocsp", closed.local_addr().unwrap());
    drop(closed);
    // The card also names a CRL that would vouch for it: OCSP failing is not a reason to
    // use it (no silent downgrade of freshness).
    let crl = super::crl_of(&ca, &[]);
    let (crl_url, crl_task) = super::serve_bytes(crl).await;
    let card = partner_card(&server, &ca, |p| {
        p.custom_extensions = vec![aia(&dead_url)];
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint { uris: vec![crl_url] }];
    })
    .await;
    refused(&server, &card, "revocation_status_unknown").await;
    crl_task.abort();
    // DESIGN "When a dependency fails": an external OCSP/CRL outage raises an alert.
    eidgate::jobs::audit_pass(&server.app.jobs, i64::MAX).await.unwrap();
    let sink = std::fs::read_to_string(server.app.audit.sink_path()).unwrap_or_default();
    let rules: Vec<String> = sink
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["event_type"] == "alert.raised")
        .map(|l| l["data"]["rule"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(rules.iter().any(|r| r == "revocation_status_unavailable"), "{rules:?}");
}

#[tokio::test]
async fn r_auth_7_stale_ocsp_response_is_refused() {
    let (server, _dir, ca) = partner(|_| {}).await;
    let responder = Responder::start(&ca, Answer::Stale, server.app.clock.clone()).await;
    let card = card_with_responder(&server, &ca, &responder.url).await;
    refused(&server, &card, "revocation_status_unknown").await;
    assert_eq!(responder.hits(), 1);
}

#[tokio::test]
async fn r_auth_7_ocsp_response_signed_by_another_key_is_refused() {
    let (server, _dir, ca) = partner(|_| {}).await;
    for answer in [Answer::GoodByForeignKey, Answer::GoodByNonResponder] {
        let responder = Responder::start(&ca, answer, server.app.clock.clone()).await;
        let card = card_with_responder(&server, &ca, &responder.url).await;
        refused(&server, &card, "revocation_status_unknown").await;
        assert_eq!(responder.hits(), 1, "{answer:?}");
    }
}

#[tokio::test]
async fn r_auth_7_ocsp_response_of_a_delegated_responder_is_accepted() {
    let (server, _dir, ca) = partner(|_| {}).await;
    let responder = Responder::start(&ca, Answer::GoodByDelegate, server.app.clock.clone()).await;
    let card = card_with_responder(&server, &ca, &responder.url).await;
    logs_in(&server, &card).await;
}

#[tokio::test]
async fn r_auth_7_ocsp_answer_must_echo_the_nonce_of_the_request() {
    // Issue 25: an answer without our nonce could be a replay of an old "good".
    let (server, _dir, ca) = partner(|_| {}).await;
    let without = Responder::start(&ca, Answer::GoodWithoutNonce, server.app.clock.clone()).await;
    let card = card_with_responder(&server, &ca, &without.url).await;
    refused(&server, &card, "revocation_status_unknown").await;
    assert_eq!(without.hits(), 1, "the responder was asked");
    let other = Responder::start(&ca, Answer::GoodWithOtherNonce, server.app.clock.clone()).await;
    let card = card_with_responder(&server, &ca, &other.url).await;
    refused(&server, &card, "revocation_status_unknown").await;
}

#[tokio::test]
async fn r_auth_7_ocsp_nonce_may_be_absent_only_for_a_responder_configured_so() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_root("Partner CA");
    let file = write_pem(&dir, "partner.pem", &[&ca.cert.pem()]);
    let clock = Arc::new(eidgate::clock::SystemClock::default());
    let without = Responder::start(&ca, Answer::GoodWithoutNonce, clock.clone()).await;
    let other = Responder::start(&ca, Answer::GoodWithOtherNonce, clock).await;
    let listed = vec![without.url.clone(), other.url.clone()];
    let (server, _) = staffed(|c| {
        c.smartcard.trusted_ca_files = vec![file.into()];
        c.smartcard.ocsp_nonce_optional = listed;
    })
    .await;
    let card = card_with_responder(&server, &ca, &without.url).await;
    logs_in(&server, &card).await;
    // Listed or not, a nonce that is there must be ours.
    let card = card_with_responder(&server, &ca, &other.url).await;
    refused(&server, &card, "revocation_status_unknown").await;
}

#[tokio::test]
async fn r_auth_7_configured_ocsp_responder_serves_cards_without_aia() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_root("Partner CA");
    let file = write_pem(&dir, "partner.pem", &[&ca.cert.pem()]);
    // The responder must exist before the server reads its URL from the config.
    let clock = Arc::new(eidgate::clock::SystemClock::default());
    let responder = Responder::start(&ca, Answer::Revoked, clock).await;
    let url = responder.url.clone();
    let (server, _) = staffed(|c| {
        c.smartcard.trusted_ca_files = vec![file.into()];
        c.smartcard.ocsp_responder = Some(url);
    })
    .await;
    let card = partner_card(&server, &ca, |_| {}).await;
    refused(&server, &card, "certificate_revoked").await;
    assert_eq!(responder.hits(), 1, "asked the configured responder");
}

#[tokio::test]
async fn r_auth_7_fresh_ocsp_response_is_cached() {
    let (server, _dir, ca) = partner(|_| {}).await;
    let responder = Responder::start(&ca, Answer::Good, server.app.clock.clone()).await;
    let card = card_with_responder(&server, &ca, &responder.url).await;
    logs_in(&server, &card).await;
    logs_in(&server, &card).await;
    assert_eq!(responder.hits(), 1, "the second login used the cached answer");
    // Past `ocsp_max_age` (120 s) the answer is no longer fresh: asked again.
    server.app.clock.advance(121);
    logs_in(&server, &card).await;
    assert_eq!(responder.hits(), 2, "a stale cached answer is not reused");
}

/// An HTTP peer whose answers `openssl ocsp` makes (an independent RFC 6960 responder):
/// each request is written to a file and answered from `index` (an OpenSSL CA database)
/// with the CA as signer.
async fn openssl_responder(dir: &std::path::Path, ca: &TestCa, index: &str) -> Responder {
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.join("ca.key"), ca.key.serialize_pem()).unwrap();
    std::fs::write(dir.join("index.txt"), index).unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let state = (dir.to_owned(), hits.clone());
    let app = axum::Router::new()
        .route(
            "/ocsp",
            axum::routing::post(
                |axum::extract::State((dir, hits)): axum::extract::State<(std::path::PathBuf, Arc<AtomicUsize>)>,
                 body: axum::body::Bytes| async move {
                    let n = hits.fetch_add(1, Ordering::SeqCst);
                    let request = dir.join(format!("req-{n}.der"));
                    let response = dir.join(format!("resp-{n}.der"));
                    std::fs::write(&request, &body).unwrap();
                    let out = tokio::process::Command::new("openssl")
                        .current_dir(&dir)
                        .args(["ocsp", "-index", "index.txt", "-CA", "ca.pem", "-rsigner", "ca.pem"])
                        .args(["-rkey", "ca.key", "-ndays", "1", "-reqin"])
                        .arg(&request)
                        .arg("-respout")
                        .arg(&response)
                        .output()
                        .await
                        .unwrap();
                    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                    std::fs::read(&response).unwrap()
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ocsp", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Responder { url, hits, task }
}

#[tokio::test]
async fn r_auth_7_openssl_ocsp_responder_good_and_revoked() {
    let (server, dir, ca) = partner(|_| {}).await;
    let (good_serial, revoked_serial) = ([0x42u8; 16], [0x43u8; 16]);
    // OpenSSL CA database: V(alid) / R(evoked), expiry, revocation time, serial, file, DN.
    let index = format!(
        "V\t391231235959Z\t\t{}\tunknown\t/CN=good\nR\t391231235959Z\t240101000000Z,keyCompromise\t{}\tunknown\t/CN=revoked\n",
        hex::encode_upper(good_serial),
        hex::encode_upper(revoked_serial),
    );
    let responder = openssl_responder(dir.path(), &ca, &index).await;
    let with = |serial: [u8; 16]| {
        let url = responder.url.clone();
        move |p: &mut rcgen::CertificateParams| {
            p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
            p.custom_extensions = vec![aia(&url)];
        }
    };
    let good = partner_card(&server, &ca, with(good_serial)).await;
    logs_in(&server, &good).await;
    let revoked = partner_card(&server, &ca, with(revoked_serial)).await;
    refused(&server, &revoked, "certificate_revoked").await;
    // A serial OpenSSL does not know: `unknown`, refused.
    let stranger = partner_card(&server, &ca, with([0x44u8; 16])).await;
    refused(&server, &stranger, "revocation_status_unknown").await;
    assert_eq!(responder.hits(), 3);
}
