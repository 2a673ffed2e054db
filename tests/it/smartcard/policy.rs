//! Certificate policies per trusted card CA (issue 25; R-AUTH-7): a `trusted_ca_files`
//! entry with `policies` accepts only card certificates whose policies all lie in that
//! set. A certificate of another product of the same CA (here a "mobile-ID" policy) is
//! refused as `certificate_policy`, before any revocation check, and the challenge is
//! spent.

use der::Encode;
use eidgate::config::TrustedCaFile;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::CertificatePolicies;

use crate::support::operators::state_of;

use super::{active_card, assert_refused, card_cert, import_card, staffed, start, test_root, write_pem, CardStandIn};

/// The smartcard product's policy of the partner CA.
const CARD_POLICY: &str = "1.3.6.1.4.1.99999.1.1";
/// The same CA's mobile-ID product.
const MOBILE_POLICY: &str = "1.3.6.1.4.1.99999.2.1";

/// A certificatePolicies extension naming `oids`.
fn policies(oids: &[&str]) -> rcgen::CustomExtension {
    let value = CertificatePolicies(
        oids.iter()
            .map(|o| PolicyInformation {
                policy_identifier: der::asn1::ObjectIdentifier::new_unwrap(o),
                policy_qualifiers: None,
            })
            .collect(),
    );
    rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 32], value.to_der().unwrap())
}

#[tokio::test]
async fn r_auth_7_card_certificate_outside_the_cas_policies_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_root("Partner CA");
    let file = write_pem(&dir, "partner.pem", &[&ca.cert.pem()]);
    let (server, officers) = staffed(|c| {
        c.smartcard.trusted_ca_files = vec![TrustedCaFile::Entry {
            file,
            policies: vec![CARD_POLICY.into()],
        }]
    })
    .await;
    let (_, card) = active_card(&server, &officers).await;
    for (reason, oids) in [
        ("certificate_policy", vec![MOBILE_POLICY]),
        ("certificate_policy", vec![CARD_POLICY, MOBILE_POLICY]),
        ("certificate_policy", vec![]),
        // Within the set, the card passes the policy check and reaches the revocation
        // check (no OCSP or CRL here: unknown status, refused as such).
        ("revocation_status_unknown", vec![CARD_POLICY]),
    ] {
        let other = CardStandIn::new("p256").await;
        let extensions = if oids.is_empty() { vec![] } else { vec![policies(&oids)] };
        let pem = card_cert(&ca, &other.csr().await, move |p| p.custom_extensions = extensions);
        other.store(&pem).await;
        let means = import_card(&server, &pem).await;
        let login = start(&server, "rp", None).await;
        let nonce = login.challenge(&server).await;
        let answer = login.token(&server, &other.sign(&server.url, &nonce).await).await;
        assert!(answer.1.get("redirect_to").is_none(), "no code: {}", answer.1);
        let good = card.sign(&server.url, &nonce).await;
        assert_refused(&server, &login, answer, reason, &good).await;
        // The means is untouched.
        assert_eq!(state_of(&server, &means).await, "active", "{oids:?}");
    }
}
