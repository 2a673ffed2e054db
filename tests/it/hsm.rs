//! The PKCS#11 signer against a real SoftHSMv2 token (R-AUTH-6, R-AUTH-7, R-SEC-2): keys
//! generated in the token and never readable, signatures that verify with the published
//! JWKS using independent verifiers (`p256`, `rsa`), rotation, session recovery, token
//! isolation, concurrency, PIN handling. Each test has a token of its own
//! (`support::softhsm::hsm_config`).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use eidgate::config::HsmConfig;
use eidgate::domain::client::SigningAlg;
use eidgate::hsm::{HsmError, KeyKind, KeyState, Kid, Pkcs11Hsm, Signer, Switch};
use p256::ecdsa::signature::Verifier as _;
use secrecy::SecretString;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::softhsm::hsm_config;

const MESSAGE: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJMVC9MVC8zODAwMTA4NTcxOCJ9";

async fn open_with(config: HsmConfig, dir: &TempDir) -> Result<Pkcs11Hsm, HsmError> {
    let data_dir = dir.path().to_owned();
    tokio::task::spawn_blocking(move || Pkcs11Hsm::open(&config, &data_dir))
        .await
        .unwrap()
}

async fn open(hint: &str) -> (Pkcs11Hsm, HsmConfig, TempDir) {
    let (config, dir) = hsm_config(hint);
    let hsm = open_with(clone_config(&config), &dir).await.unwrap();
    (hsm, config, dir)
}

fn clone_config(config: &HsmConfig) -> HsmConfig {
    HsmConfig {
        module: config.module.clone(),
        token_label: config.token_label.clone(),
        pin_file: config.pin_file.clone(),
        auto_init: config.auto_init,
        sessions: config.sessions,
        max_in_flight: config.max_in_flight,
        key_refresh: config.key_refresh,
        retired_key_publish: config.retired_key_publish,
        publish_ahead: config.publish_ahead,
        pin_env: None,
    }
}

fn user_pin(config: &HsmConfig) -> String {
    std::fs::read_to_string(config.pin_file.as_ref().unwrap())
        .unwrap()
        .trim()
        .to_owned()
}

fn jwks(hsm: &Pkcs11Hsm) -> Vec<Value> {
    let bytes = hsm.jwks_json();
    let set: Value = serde_json::from_slice(&bytes).unwrap();
    set["keys"].as_array().unwrap().clone()
}

fn jwk<'a>(keys: &'a [Value], kid: &Kid) -> &'a Value {
    keys.iter()
        .find(|k| k["kid"] == kid.0.as_str())
        .unwrap_or_else(|| panic!("kid {} not in JWKS", kid.0))
}

fn b64(value: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(value.as_str().unwrap()).unwrap()
}

/// RFC 7638 thumbprint computed here, independently of the library.
fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str().unwrap() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        ),
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk["e"].as_str().unwrap(),
            jwk["n"].as_str().unwrap()
        ),
        other => panic!("unexpected kty {other}"),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn es256_verifies(jwk: &Value, message: &[u8], signature: &[u8]) -> bool {
    let mut sec1 = vec![0x04];
    sec1.extend(b64(&jwk["x"]));
    sec1.extend(b64(&jwk["y"]));
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let Ok(signature) = p256::ecdsa::Signature::from_slice(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

fn rsa_key(jwk: &Value) -> rsa::RsaPublicKey {
    rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&b64(&jwk["n"])),
        rsa::BigUint::from_bytes_be(&b64(&jwk["e"])),
    )
    .unwrap()
}

fn rs256_verifies(jwk: &Value, message: &[u8], signature: &[u8]) -> bool {
    let key = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(rsa_key(jwk));
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

fn ps256_verifies(jwk: &Value, message: &[u8], signature: &[u8]) -> bool {
    // Salt length = digest length (32), MGF1-SHA256, as RFC 7518 §3.5 requires.
    let key = rsa::pss::VerifyingKey::<Sha256>::new(rsa_key(jwk));
    let Ok(signature) = rsa::pss::Signature::try_from(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

#[tokio::test]
async fn r_auth_6_private_key_cannot_be_read_from_the_token() {
    let (hsm, config, _dir) = open("sensitive").await;
    let context = eidgate::hsm::pkcs11::context(&config.module).unwrap();
    let session = context.open_ro_session(hsm.slot()).unwrap();
    match session.login(UserType::User, Some(&AuthPin::new(user_pin(&config)))) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    for (label, secret_part) in [
        ("oidc-sign-1", AttributeType::Value),
        ("oidc-sign-rsa-1", AttributeType::PrivateExponent),
    ] {
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .unwrap();
        assert_eq!(found.len(), 1, "{label}: exactly one private key object");
        let key = found[0];

        let info = session.get_attribute_info(key, &[secret_part]).unwrap();
        assert!(
            matches!(info[0], AttributeInfo::Sensitive | AttributeInfo::Unavailable),
            "{label}: {secret_part:?} must not be readable, got {:?}",
            info[0]
        );
        let read = session.get_attributes(key, &[secret_part]).unwrap();
        assert!(read.is_empty(), "{label}: private material returned: {read:?}");

        let flags = session
            .get_attributes(
                key,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                    AttributeType::Private,
                    AttributeType::Token,
                ],
            )
            .unwrap();
        for expected in [
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::AlwaysSensitive(true),
            Attribute::NeverExtractable(true),
            Attribute::Private(true),
            Attribute::Token(true),
        ] {
            assert!(flags.contains(&expected), "{label}: {expected:?} missing in {flags:?}");
        }
    }
}

#[tokio::test]
async fn r_auth_6_es256_signature_verifies_with_the_published_jwk() {
    let (hsm, _config, _dir) = open("es256").await;
    let (kid, signature) = hsm.sign(SigningAlg::ES256, MESSAGE).await.unwrap();
    assert_eq!(signature.len(), 64, "JWS ES256 is r||s");
    let keys = jwks(&hsm);
    let key = jwk(&keys, &kid);
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert_eq!(thumbprint(key), kid.0, "kid is the RFC 7638 thumbprint");
    assert_eq!(hsm.active_kid(SigningAlg::ES256), Some(kid));
    assert!(es256_verifies(key, MESSAGE, &signature));
    assert!(!es256_verifies(key, b"tampered", &signature));
}

#[tokio::test]
async fn r_auth_6_rs256_signature_verifies_with_the_published_jwk() {
    let (hsm, _config, _dir) = open("rs256").await;
    let (kid, signature) = hsm.sign(SigningAlg::RS256, MESSAGE).await.unwrap();
    let keys = jwks(&hsm);
    let key = jwk(&keys, &kid);
    assert_eq!(key["kty"], "RSA");
    assert!(key.get("alg").is_none(), "the RSA key serves RS256 and PS256");
    assert_eq!(thumbprint(key), kid.0);
    assert!(rs256_verifies(key, MESSAGE, &signature));
    assert!(!rs256_verifies(key, b"tampered", &signature));
    assert!(!ps256_verifies(key, MESSAGE, &signature));
}

#[tokio::test]
async fn r_auth_6_ps256_signature_verifies_with_the_published_jwk() {
    let (hsm, _config, _dir) = open("ps256").await;
    let (kid, first) = hsm.sign(SigningAlg::PS256, MESSAGE).await.unwrap();
    let (_, second) = hsm.sign(SigningAlg::PS256, MESSAGE).await.unwrap();
    assert_ne!(first, second, "PSS is salted with fresh randomness");
    let keys = jwks(&hsm);
    let key = jwk(&keys, &kid);
    assert!(ps256_verifies(key, MESSAGE, &first));
    assert!(ps256_verifies(key, MESSAGE, &second));
    assert!(!ps256_verifies(key, b"tampered", &first));
    assert!(!rs256_verifies(key, MESSAGE, &first));
}

#[tokio::test]
async fn r_auth_7_keys_are_p256_and_rsa_3072_with_e_65537() {
    let (hsm, _config, _dir) = open("lengths").await;
    let keys = jwks(&hsm);
    assert_eq!(keys.len(), 2);
    let ec = keys.iter().find(|k| k["kty"] == "EC").unwrap();
    assert_eq!(ec["crv"], "P-256");
    assert_eq!(b64(&ec["x"]).len(), 32);
    let rsa = keys.iter().find(|k| k["kty"] == "RSA").unwrap();
    let n = b64(&rsa["n"]);
    assert_eq!(n.len(), 384, "3072-bit modulus");
    assert!(n[0] & 0x80 != 0, "top bit set: exactly 3072 bits");
    assert_eq!(rsa["e"], "AQAB");
}

#[tokio::test]
async fn r_auth_6_rotation_keeps_the_old_key_published_and_signs_with_the_new_kid() {
    let (hsm, config, dir) = open("rotate").await;
    let (old_kid, _) = hsm.sign(SigningAlg::ES256, MESSAGE).await.unwrap();
    let (rsa_kid, _) = hsm.sign(SigningAlg::RS256, MESSAGE).await.unwrap();

    let rotating = hsm.clone();
    let new = tokio::task::spawn_blocking(move || rotating.rotate(KeyKind::OidcEc, Switch::Now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.label, "oidc-sign-2");
    assert_eq!(new.state, KeyState::Active);

    let (new_kid, signature) = hsm.sign(SigningAlg::ES256, MESSAGE).await.unwrap();
    assert_ne!(new_kid, old_kid);
    assert_eq!(Some(&new_kid), new.kid.as_ref());
    let keys = jwks(&hsm);
    assert_eq!(keys.len(), 3, "new EC, old EC, RSA");
    assert!(es256_verifies(jwk(&keys, &new_kid), MESSAGE, &signature));
    jwk(&keys, &old_kid);
    let (same_rsa_kid, _) = hsm.sign(SigningAlg::RS256, MESSAGE).await.unwrap();
    assert_eq!(same_rsa_kid, rsa_kid, "rotating EC leaves RSA alone");

    let listed = hsm.list_keys();
    let old = listed.iter().find(|k| k.label == "oidc-sign-1").unwrap();
    assert_eq!(old.state, KeyState::Published);
    assert!(old.retired_at.is_some());

    // The retirement lives in the token: another instance with a zero publication window
    // reads it and no longer publishes the old key.
    let mut zero_window = clone_config(&config);
    zero_window.retired_key_publish = Duration::ZERO;
    let other = open_with(zero_window, &dir).await.unwrap();
    let keys = jwks(&other);
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k["kid"] != old_kid.0.as_str()));
    let old = other
        .list_keys()
        .into_iter()
        .find(|k| k.label == "oidc-sign-1")
        .unwrap();
    assert_eq!(old.state, KeyState::Retired);
    let (kid, _) = other.sign(SigningAlg::ES256, MESSAGE).await.unwrap();
    assert_eq!(kid, new_kid);
}

#[tokio::test]
async fn r_auth_6_a_reopened_session_still_signs_after_all_sessions_close() {
    let (hsm, _config, _dir) = open("fault").await;
    let keys = jwks(&hsm);
    hsm.sign(SigningAlg::ES256, MESSAGE).await.unwrap();
    hsm.check().await.unwrap();
    let before = hsm.session_reopens();

    hsm.close_all_sessions_for_fault_test();
    // Both pooled sessions are broken; each is replaced on its next use.
    for _ in 0..4 {
        let (kid, signature) = hsm.sign(SigningAlg::ES256, MESSAGE).await.unwrap();
        assert!(es256_verifies(jwk(&keys, &kid), MESSAGE, &signature));
    }
    assert!(hsm.session_reopens() > before, "the fault was seen and repaired");

    hsm.close_all_sessions_for_fault_test();
    hsm.check().await.unwrap();
    let (kid, signature) = hsm.sign(SigningAlg::RS256, MESSAGE).await.unwrap();
    assert!(rs256_verifies(jwk(&keys, &kid), MESSAGE, &signature));
}

#[tokio::test]
async fn r_auth_6_two_tokens_in_one_process_are_independent() {
    let (a, config_a, _dir_a) = open("two-a").await;
    let (b, config_b, _dir_b) = open("two-b").await;
    assert_ne!(config_a.token_label, config_b.token_label);
    assert_ne!(a.slot(), b.slot());
    assert_ne!(user_pin(&config_a), user_pin(&config_b));

    let (kid_a, signature_a) = a.sign(SigningAlg::ES256, MESSAGE).await.unwrap();
    let (kid_b, _) = b.sign(SigningAlg::ES256, MESSAGE).await.unwrap();
    assert_ne!(kid_a, kid_b);
    let keys_b = jwks(&b);
    assert!(keys_b.iter().all(|k| k["kid"] != kid_a.0.as_str()));
    let ec_b = keys_b.iter().find(|k| k["kty"] == "EC").unwrap();
    assert!(!es256_verifies(ec_b, MESSAGE, &signature_a));

    let rotating = a.clone();
    tokio::task::spawn_blocking(move || rotating.rotate(KeyKind::OidcEc, Switch::Now))
        .await
        .unwrap()
        .unwrap();
    b.refresh_keys().await.unwrap();
    assert_eq!(jwks(&b), keys_b, "rotating token a leaves token b alone");
    assert!(b.list_keys().iter().all(|k| k.generation == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_auth_6_concurrent_signing_from_many_tasks() {
    let (config, dir) = hsm_config("concurrent");
    let mut config = config;
    config.max_in_flight = 4;
    let hsm = Arc::new(open_with(config, &dir).await.unwrap());
    let keys = jwks(&hsm);

    let mut tasks = Vec::new();
    for task in 0..48u32 {
        let hsm = Arc::clone(&hsm);
        tasks.push(tokio::spawn(async move {
            let mut signed = Vec::new();
            for i in 0..4u32 {
                let alg = if (task + i) % 16 == 0 {
                    SigningAlg::RS256
                } else {
                    SigningAlg::ES256
                };
                let message = format!("task {task} message {i}").into_bytes();
                let (kid, signature) = hsm.sign(alg, &message).await.unwrap();
                signed.push((alg, kid, message, signature));
            }
            signed
        }));
    }
    let mut count = 0;
    for task in tasks {
        for (alg, kid, message, signature) in task.await.unwrap() {
            let key = jwk(&keys, &kid);
            let ok = match alg {
                SigningAlg::ES256 => es256_verifies(key, &message, &signature),
                _ => rs256_verifies(key, &message, &signature),
            };
            assert!(ok, "signature {count} does not verify");
            count += 1;
        }
    }
    assert_eq!(count, 192);
}

#[tokio::test]
async fn r_sec_2_pin_files_are_mode_0600() {
    let (hsm, config, dir) = open("pinfiles").await;
    let user = config.pin_file.clone().unwrap();
    let so = dir.path().join("hsm-so.pin");
    for path in [&user, &so] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    let user_pin = user_pin(&config);
    let so_pin = std::fs::read_to_string(&so).unwrap();
    assert!(user_pin.len() >= 32, "a random PIN of 256 bits");
    assert_ne!(user_pin, so_pin.trim());
    drop(hsm);
}

#[tokio::test]
async fn r_sec_2_debug_never_shows_the_pin() {
    let (hsm, config, _dir) = open("debug").await;
    let pin = user_pin(&config);
    let mut with_env = clone_config(&config);
    with_env.pin_env = Some(SecretString::from(pin.clone()));
    for shown in [format!("{hsm:?}"), format!("{config:?}"), format!("{with_env:?}")] {
        assert!(!shown.contains(&pin), "PIN in Debug output: {shown}");
    }
    assert!(format!("{hsm:?}").contains(&config.token_label));
}

#[tokio::test]
async fn r_sec_2_the_pin_from_the_environment_comes_before_the_file() {
    let (hsm, config, dir) = open("pinorder").await;
    let pin = user_pin(&config);
    drop(hsm);

    // Right PIN in the environment, wrong one in the file: the environment wins.
    let wrong_file = dir.path().join("wrong.pin");
    std::fs::write(&wrong_file, "not-the-pin").unwrap();
    let mut env_first = clone_config(&config);
    env_first.pin_file = Some(wrong_file.clone());
    env_first.pin_env = Some(SecretString::from(pin.clone()));
    open_with(env_first, &dir).await.unwrap();

    // Wrong PIN in the environment, right one in the file: login fails, nothing falls back.
    let mut wrong_env = clone_config(&config);
    wrong_env.pin_env = Some(SecretString::from("not-the-pin".to_owned()));
    let error = open_with(wrong_env, &dir).await.unwrap_err();
    assert!(!format!("{error}").contains(&pin));
}

/// Starts this test binary again to run `child_process_rotates_the_ec_key` on the token of
/// `config`: a second process with its own module load, like the CLI next to a server.
fn rotate_in_a_child_process(config: &HsmConfig) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hsm::child_process_rotates_the_ec_key",
            "--ignored",
            "--test-threads=1",
        ])
        .env("EIDGATE_TEST_CHILD_TOKEN", &config.token_label)
        .env("EIDGATE_TEST_CHILD_PIN_FILE", config.pin_file.as_ref().unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs only in a child process started by `rotate_in_a_child_process`: opens the token
/// without `auto_init` (generating the first keys if there are none) and rotates the EC key
/// as `hsm rotate` does: published now, active `hsm.publish_ahead` (default 1 h) later.
#[tokio::test]
#[ignore = "helper run in a child process"]
async fn child_process_rotates_the_ec_key() {
    let (Ok(label), Ok(pin_file)) = (
        std::env::var("EIDGATE_TEST_CHILD_TOKEN"),
        std::env::var("EIDGATE_TEST_CHILD_PIN_FILE"),
    ) else {
        return;
    };
    let config = HsmConfig {
        module: crate::support::softhsm::module(),
        token_label: label,
        pin_file: Some(pin_file.into()),
        auto_init: false,
        sessions: 1,
        ..HsmConfig::default()
    };
    let data_dir = std::env::temp_dir();
    let hsm = tokio::task::spawn_blocking(move || Pkcs11Hsm::open(&config, &data_dir))
        .await
        .unwrap()
        .unwrap();
    let info = tokio::task::spawn_blocking(move || hsm.rotate(KeyKind::OidcEc, Switch::AfterPublishAhead))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.label, "oidc-sign-2");
    assert_eq!(info.state, KeyState::Pending);
}

#[tokio::test]
async fn r_auth_6_issue_24_rotation_by_another_process_is_published_at_refresh_and_signs_at_its_time() {
    let (hsm, config, _dir) = open("crossproc").await;
    let clock = Arc::new(eidgate::clock::SystemClock::default());
    assert!(hsm.use_clock(clock.clone()));
    let (old_kid, _) = hsm.sign(SigningAlg::ES256, MESSAGE).await.unwrap();

    rotate_in_a_child_process(&config);

    assert_eq!(jwks(&hsm).len(), 2, "nothing changes before the refresh");
    hsm.refresh_keys().await.unwrap();
    // Published here from the refresh, decided from the times the child wrote in the token.
    let keys = jwks(&hsm);
    assert_eq!(keys.len(), 3, "new EC, old EC, RSA");
    let new = hsm.list_keys().into_iter().find(|k| k.label == "oidc-sign-2").unwrap();
    assert_eq!(new.state, KeyState::Pending);
    let new_kid = new.kid.unwrap();
    jwk(&keys, &new_kid);
    let (still_old, _) = hsm.sign(SigningAlg::ES256, MESSAGE).await.unwrap();
    assert_eq!(still_old, old_kid, "the old key signs until publish_ahead has passed");

    // An hour later by this process's clock, without a refresh: the new key signs.
    clock.advance(3600);
    let (kid, signature) = hsm.sign(SigningAlg::ES256, MESSAGE).await.unwrap();
    assert_eq!(kid, new_kid);
    assert!(es256_verifies(jwk(&keys, &new_kid), MESSAGE, &signature));
    jwk(&keys, &old_kid);
}

#[tokio::test]
async fn r_auth_6_a_token_made_by_init_token_sh_opens_without_auto_init() {
    let (config, dir) = hsm_config("script");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/hsm-config/init-token.sh");
    let status = Command::new("sh")
        .arg(script)
        .arg(dir.path())
        .arg(&config.token_label)
        .env("EIDGATE_HSM_PIN_FILE", config.pin_file.as_ref().unwrap())
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let mode = std::fs::metadata(config.pin_file.as_ref().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // SoftHSM builds its slot list at C_Initialize, so a token created by another process
    // afterwards is only visible to a process that loads the module later: open it in a
    // child, as eidgate starting after the operator's script would.
    rotate_in_a_child_process(&config);
}

#[tokio::test]
async fn r_auth_6_every_key_kind_is_generated_non_extractable_inside_the_token() {
    let (hsm, config, _dir) = open("kinds").await;
    let jwks_before = jwks(&hsm);
    // `data-wrap-1` exists from the start (it seals TOTP seeds, R-AUTH-3); a rotation
    // makes generation 2, and what the old key sealed still opens.
    assert!(hsm
        .list_keys()
        .iter()
        .any(|k| k.label == "data-wrap-1" && k.state == KeyState::Active));
    let sealed = eidgate::hsm::Sealer::seal(&hsm, b"a totp seed of 20 b", b"means-1")
        .await
        .unwrap();
    for kind in [KeyKind::AuditSign, KeyKind::Ca, KeyKind::DataWrap] {
        let rotating = hsm.clone();
        // Kinds outside the JWKS switch at once even when a rotation publishes ahead.
        let info = tokio::task::spawn_blocking(move || rotating.rotate(kind, Switch::AfterPublishAhead))
            .await
            .unwrap()
            .unwrap();
        // `open` generates `data-wrap-1` and `audit-sign-1` itself, so rotating them makes the second.
        let generation = if matches!(kind, KeyKind::DataWrap | KeyKind::AuditSign) {
            2
        } else {
            1
        };
        assert_eq!(info.label, kind.label(generation));
        assert_eq!(info.state, KeyState::Active);
        assert_eq!(info.kid.is_some(), kind != KeyKind::DataWrap, "{kind}");
    }
    assert_eq!(jwks(&hsm), jwks_before, "only OIDC keys are published");
    let opened = eidgate::hsm::Sealer::open(&hsm, &sealed, b"means-1").await.unwrap();
    assert_eq!(opened.as_slice(), b"a totp seed of 20 b");
    assert!(eidgate::hsm::Sealer::open(&hsm, &sealed, b"means-2").await.is_err());
    let resealed = eidgate::hsm::Sealer::seal(&hsm, b"x", b"").await.unwrap();
    assert_eq!(&resealed[1..5], &2u32.to_be_bytes(), "new values use the active key");

    let context = eidgate::hsm::pkcs11::context(&config.module).unwrap();
    let session = context.open_ro_session(hsm.slot()).unwrap();
    match session.login(UserType::User, Some(&AuthPin::new(user_pin(&config)))) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    for (label, class) in [
        ("audit-sign-1", ObjectClass::PRIVATE_KEY),
        ("ca-1", ObjectClass::PRIVATE_KEY),
        ("data-wrap-1", ObjectClass::SECRET_KEY),
    ] {
        let found = session
            .find_objects(&[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())])
            .unwrap();
        assert_eq!(found.len(), 1, "{label}");
        assert!(session
            .get_attributes(found[0], &[AttributeType::Value])
            .unwrap()
            .is_empty());
        let flags = session
            .get_attributes(found[0], &[AttributeType::Sensitive, AttributeType::Extractable])
            .unwrap();
        assert!(flags.contains(&Attribute::Sensitive(true)) && flags.contains(&Attribute::Extractable(false)));
    }
    let ca = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(b"ca-1".to_vec()),
        ])
        .unwrap();
    let params = session.get_attributes(ca[0], &[AttributeType::EcParams]).unwrap();
    assert_eq!(
        params,
        vec![Attribute::EcParams(vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22])],
        "ca keys are P-384"
    );
}
