//! Issue 17 attack 3 (R-LOG-2, R-SEC-6): a forged export bundle. `eidgate audit
//! verify-bundle FILE --trust KEYS` accepts only bundles (and checkpoints) signed by the
//! trusted audit keys (the JWKS `/audit/keys` publishes, or PEM), never by a key the bundle
//! carries, and every `kid` must be the RFC 7638 thumbprint of its key.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use eidgate::audit::export::{Bundle, BundleSignature};
use eidgate::audit::{chain_hash, chained_message, AuditEvent, CheckpointKind, Link};
use eidgate::config::HsmConfig;
use eidgate::hsm::AuditPublicKey;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey as _;

use crate::audit::{eidgate, signed_log};

/// The `audit-sign` keys of the token in `config`, written as the JWKS `/audit/keys`
/// publishes; returns the file.
pub(crate) async fn published_keys(config: HsmConfig, dir: &Path) -> PathBuf {
    let data_dir = dir.to_owned();
    let hsm = tokio::task::spawn_blocking(move || eidgate::hsm::Pkcs11Hsm::open(&config, &data_dir).unwrap())
        .await
        .unwrap();
    let keys = eidgate::hsm::AuditSigner::audit_keys(&hsm);
    let file = dir.join("audit-keys.json");
    std::fs::write(&file, eidgate::audit::trust::jwks(&keys).to_string()).unwrap();
    file
}

fn public(key: &SigningKey) -> AuditPublicKey {
    let point = p256::PublicKey::from(key.verifying_key()).to_sec1_bytes();
    let (x, y) = (
        URL_SAFE_NO_PAD.encode(&point[1..33]),
        URL_SAFE_NO_PAD.encode(&point[33..65]),
    );
    AuditPublicKey {
        kid: eidgate::audit::trust::thumbprint(&x, &y).unwrap(),
        x,
        y,
    }
}

fn sign(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let signature: Signature = key.sign(message);
    signature.to_bytes().to_vec()
}

fn sign_bundle(bundle: &mut Bundle, key: &SigningKey, kid: &str) {
    bundle.signature = None;
    let mut input = b"eidgate-audit-bundle\n".to_vec();
    input.extend(serde_json::to_vec(&*bundle).unwrap());
    bundle.signature = Some(BundleSignature {
        kid: kid.to_owned(),
        value: URL_SAFE_NO_PAD.encode(sign(key, &input)),
    });
}

/// The attacker's bundle: record 4 changed, every later hash recomputed, the checkpoints
/// re-signed and the bundle signed with the attacker's own key, which it carries.
fn forge(genuine: &Bundle, key: &SigningKey, claimed_kid: Option<&str>) -> Bundle {
    let mut b = genuine.clone();
    let mut prev: Option<[u8; 32]> = None;
    for r in &mut b.records {
        if r.seq == 4 {
            r.subject = "thing:evil".into();
        }
        let prev_hash = prev.unwrap_or_else(|| hex::decode(&r.prev_hash).unwrap().try_into().unwrap());
        let event = AuditEvent::new(&r.event_type, r.actor.clone(), r.subject.clone(), r.data.clone());
        let hash = chain_hash(&prev_hash, r.seq, r.time, &event);
        r.prev_hash = hex::encode(prev_hash);
        r.hash = hex::encode(hash);
        prev = Some(hash);
    }
    let mine = public(key);
    let kid = claimed_kid.unwrap_or(&mine.kid).to_owned();
    for c in &mut b.checkpoints {
        let record = b.records.iter().find(|r| r.seq == c.seq).unwrap();
        c.hash = record.hash.clone();
        c.kid = kid.clone();
        let hash: [u8; 32] = hex::decode(&c.hash).unwrap().try_into().unwrap();
        let link = Link {
            position: c.position.unwrap(),
            records: c.records.unwrap(),
            prev_seq: c.prev_seq.unwrap(),
            prev: hex::decode(c.prev.as_ref().unwrap()).unwrap().try_into().unwrap(),
        };
        let message = chained_message(CheckpointKind::Checkpoint, c.seq, &hash, c.time, &link);
        c.signature = URL_SAFE_NO_PAD.encode(sign(key, &message));
    }
    b.keys = vec![AuditPublicKey {
        kid: kid.clone(),
        ..mine
    }];
    sign_bundle(&mut b, key, &kid);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_log_2_r_sec_6_verify_bundle_accepts_only_the_trusted_audit_keys() {
    let (hsm, data) = crate::support::softhsm::hsm_config("bundle");
    let token = hsm.token_label.clone();
    // The token is made in this process first: a module initialised here does not see
    // tokens that a CLI process creates later.
    let jwks = published_keys(hsm, data.path()).await;
    let (_, db) = crate::support::db::databases().await.remove(0);
    signed_log(data.path(), &token, &db).await;
    let file = crate::audit::export_today(data.path(), &token, &db);
    let genuine: Bundle = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(genuine.checkpoints.len(), 1);
    assert!(
        genuine.checkpoints[0].position.is_some(),
        "chained checkpoints are exported"
    );

    let trusted = eidgate::audit::trust::parse(&std::fs::read_to_string(&jwks).unwrap()).unwrap();
    let pem: String = trusted
        .iter()
        .map(|k| {
            let sec1 = [
                vec![4u8],
                URL_SAFE_NO_PAD.decode(&k.x).unwrap(),
                URL_SAFE_NO_PAD.decode(&k.y).unwrap(),
            ]
            .concat();
            p256::PublicKey::from_sec1_bytes(&sec1)
                .unwrap()
                .to_public_key_pem(p256::pkcs8::LineEnding::LF)
                .unwrap()
        })
        .collect();
    let pem_file = data.path().join("audit-keys.pem");
    std::fs::write(&pem_file, pem).unwrap();

    let attacker = SigningKey::random(&mut rand::rngs::OsRng);
    let attacker_file = data.path().join("attacker.json");
    std::fs::write(
        &attacker_file,
        eidgate::audit::trust::jwks(&[public(&attacker)]).to_string(),
    )
    .unwrap();
    let write = |name: &str, b: &Bundle| {
        let path = data.path().join(name);
        std::fs::write(&path, serde_json::to_vec(b).unwrap()).unwrap();
        path
    };
    let forged = write("forged.json", &forge(&genuine, &attacker, None));
    // The attacker names the genuine kid for their own key.
    let spoofed = write("spoofed.json", &forge(&genuine, &attacker, Some(&trusted[0].kid)));
    let check = |bundle: &Path, keys: &Path| {
        // No database and no HSM: a wrong URL and token prove neither is used.
        let out = eidgate(data.path(), "no-such-token", "sqlite:///nonexistent/x.db")
            .args(["audit", "verify-bundle"])
            .arg(bundle)
            .arg("--trust")
            .arg(keys)
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{} {}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )
    };
    let (code, line) = check(&file, &jwks);
    assert_eq!(code, Some(0), "{line}");
    assert!(line.starts_with("OK records=10 checkpoints=1"), "{line}");
    let (code, line) = check(&file, &pem_file);
    assert_eq!(code, Some(0), "PEM trust: {line}");

    let (code, line) = check(&forged, &jwks);
    assert_eq!(code, Some(1), "forged bundle accepted: {line}");
    assert!(line.contains("not by a trusted audit key"), "{line}");
    let (code, line) = check(&spoofed, &jwks);
    assert_eq!(code, Some(1), "spoofed kid accepted: {line}");
    assert!(line.contains("is not the thumbprint"), "{line}");
    let (code, line) = check(&file, &attacker_file);
    assert_eq!(code, Some(1), "genuine bundle under a foreign key: {line}");
    // A trust file whose kid is not its key's thumbprint is refused outright.
    let mut lying: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&jwks).unwrap()).unwrap();
    lying["keys"][0]["kid"] = "made-up".into();
    let lying_file = data.path().join("lying.json");
    std::fs::write(&lying_file, lying.to_string()).unwrap();
    let (code, line) = check(&file, &lying_file);
    assert_ne!(code, Some(0), "{line}");
    assert!(line.contains("not the RFC 7638 thumbprint"), "{line}");
}
