//! Key rollover (R-AUTH-6, issue 24): `hsm rotate` publishes the new ID-token key at once
//! and the server signs with it only `hsm.publish_ahead` later, so a relying party that
//! cached the JWKS right after the rotation verifies every token; `--now` switches at once;
//! `hsm list --json` shows when each key was published, became active and was retired.
//!
//! Time moves with the server's test clock (`SystemClock::advance`), which the HSM layer
//! uses to decide the active key: no sleeping.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use eidgate::clock::Clock;
use eidgate::hsm::{KeyInfo, KeyKind, KeyState, Pkcs11Hsm, Switch};
use p256::ecdsa::signature::Verifier as _;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::support::server::{jwt_part, tokens_for, TestServer};

/// The fixture RP.
const CLIENT_ID: &str = "rp";

/// The short `hsm.publish_ahead` of these tests.
const AHEAD: i64 = 600;

async fn start(publish_ahead: Duration) -> (TestServer, Arc<Pkcs11Hsm>) {
    let server = TestServer::start_with(|config| config.hsm.publish_ahead = publish_ahead).await;
    server.provision().await;
    let hsm = server.app.hsm.clone().unwrap();
    // `app::build` already gave the HSM the server's clock; a second clock is refused.
    assert!(!hsm.use_clock(server.app.clock.clone()));
    // To the second: no wall-clock second turns between the test's reading and the server's.
    server.app.clock.freeze();
    (server, hsm)
}

/// The JWKS as a relying party fetches (and caches) it.
async fn fetch_jwks(server: &TestServer) -> Vec<Value> {
    let set: Value = reqwest::get(server.at("/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    set["keys"].as_array().unwrap().clone()
}

fn kids(keys: &[Value]) -> Vec<String> {
    keys.iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

/// A fresh ID token for the fixture RP: `(kid, iat, compact JWS)`.
async fn id_token(server: &TestServer) -> (String, i64, String) {
    let tokens = tokens_for(server, CLIENT_ID).await;
    let jwt = tokens["id_token"].as_str().unwrap().to_owned();
    let kid = jwt_part(&jwt, 0)["kid"].as_str().unwrap().to_owned();
    let iat = jwt_part(&jwt, 1)["iat"].as_i64().unwrap();
    (kid, iat, jwt)
}

/// Verifies an ES256 JWS with the key of its `kid` in `keys` (an RP's cached JWKS),
/// independently of the library; false when the kid is not there ("Key not found").
fn verifies_with(keys: &[Value], jwt: &str) -> bool {
    let kid = jwt_part(jwt, 0)["kid"].as_str().unwrap().to_owned();
    let Some(jwk) = keys.iter().find(|k| k["kid"] == kid.as_str()) else {
        return false;
    };
    let b64 = |v: &Value| URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap();
    let mut sec1 = vec![0x04];
    sec1.extend(b64(&jwk["x"]));
    sec1.extend(b64(&jwk["y"]));
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
    key.verify(input.as_bytes(), &signature).is_ok()
}

async fn rotate(hsm: &Arc<Pkcs11Hsm>, switch: Switch) -> KeyInfo {
    let rotating = hsm.clone();
    tokio::task::spawn_blocking(move || rotating.rotate(KeyKind::OidcEc, switch))
        .await
        .unwrap()
        .unwrap()
}

fn listed(hsm: &Pkcs11Hsm, label: &str) -> KeyInfo {
    hsm.list_keys().into_iter().find(|k| k.label == label).unwrap()
}

#[tokio::test]
async fn r_auth_6_issue_24_rotate_publishes_at_once_and_signs_only_after_publish_ahead() {
    let (server, hsm) = start(Duration::from_secs(AHEAD as u64)).await;
    let clock = server.app.clock.clone();
    let (old_kid, _, _) = id_token(&server).await;

    let new = rotate(&hsm, Switch::AfterPublishAhead).await;
    let rotated_at = clock.now();
    assert_eq!(new.published_at.unwrap().unix_timestamp(), rotated_at);
    let advance_to = |at: i64| clock.advance(at - clock.now());
    assert_eq!(new.state, KeyState::Pending);
    let new_kid = new.kid.clone().unwrap().0;
    // Published at once: an RP that fetches the JWKS now caches both keys.
    let cached = fetch_jwks(&server).await;
    assert!(kids(&cached).contains(&new_kid), "new key published at once");
    assert!(kids(&cached).contains(&old_kid));
    let first_published = HashMap::from([(new_kid.clone(), rotated_at)]);

    // Until publish_ahead has passed, the old key signs, to the last second.
    let mut tokens = Vec::new();
    tokens.push(id_token(&server).await);
    advance_to(rotated_at + AHEAD - 1);
    tokens.push(id_token(&server).await);
    for (kid, _, jwt) in &tokens {
        assert_eq!(kid, &old_kid);
        assert!(verifies_with(&cached, jwt));
    }
    assert_eq!(listed(&hsm, &new.label).state, KeyState::Pending);

    // Then the new one, which the RP's cached JWKS already holds.
    advance_to(rotated_at + AHEAD);
    let (kid, iat, jwt) = id_token(&server).await;
    assert_eq!(kid, new_kid);
    assert!(
        verifies_with(&cached, &jwt),
        "the RP's JWKS cached before the switch verifies"
    );
    assert!(verifies_with(&fetch_jwks(&server).await, &jwt));
    tokens.push((kid, iat, jwt));

    // Every token signed by a rotated-in key names a key published at least publish_ahead
    // before the token was issued (the first key is older than any token).
    let rotated_in: Vec<_> = tokens
        .iter()
        .filter(|(kid, ..)| first_published.contains_key(kid))
        .collect();
    assert_eq!(rotated_in.len(), 1);
    for (kid, iat, _) in rotated_in {
        let lead = iat - first_published[kid];
        assert!(lead >= AHEAD, "{kid} used {lead}s after its publication");
    }

    // The old key is retired from the switch and stays published for retired_key_publish.
    let old = listed(&hsm, "oidc-sign-1");
    let new = listed(&hsm, &new.label);
    assert_eq!(new.state, KeyState::Active);
    assert_eq!(old.state, KeyState::Published);
    assert_eq!(old.retired_at, new.active_at);
    assert_eq!(
        new.active_at.unwrap().unix_timestamp() - new.published_at.unwrap().unix_timestamp(),
        AHEAD
    );
    let publish = server.app.config.hsm.retired_key_publish.as_secs() as i64;
    assert_eq!(
        old.unpublished_at.unwrap().unix_timestamp(),
        old.retired_at.unwrap().unix_timestamp() + publish
    );
    // Until every token it signed has expired: one second before the end it is still in
    // the JWKS (after a refresh, as the periodic job does), at the end it is gone.
    advance_to(rotated_at + AHEAD + publish - 1);
    hsm.refresh_keys().await.unwrap();
    assert!(kids(&fetch_jwks(&server).await).contains(&old_kid));
    advance_to(rotated_at + AHEAD + publish);
    hsm.refresh_keys().await.unwrap();
    let keys = kids(&fetch_jwks(&server).await);
    assert!(!keys.contains(&old_kid) && keys.contains(&new_kid));
    assert_eq!(listed(&hsm, "oidc-sign-1").state, KeyState::Retired);
}

#[tokio::test]
async fn r_auth_6_issue_24_rotate_now_switches_at_once() {
    let (server, hsm) = start(Duration::from_secs(3600)).await;
    let (old_kid, _, _) = id_token(&server).await;

    let new = rotate(&hsm, Switch::Now).await;
    assert_eq!(new.state, KeyState::Active);
    let new_kid = new.kid.clone().unwrap().0;
    let (kid, _, jwt) = id_token(&server).await;
    assert_eq!(kid, new_kid, "no waiting for publish_ahead");
    let keys = fetch_jwks(&server).await;
    assert!(verifies_with(&keys, &jwt));
    assert!(kids(&keys).contains(&old_kid), "tokens of the old key still verify");
    assert_eq!(new.published_at, new.active_at);
    assert_eq!(listed(&hsm, "oidc-sign-1").retired_at, new.active_at);
}

#[tokio::test]
async fn r_auth_6_issue_24_rotate_now_after_a_scheduled_rotation_retires_both_at_once() {
    let (server, hsm) = start(Duration::from_secs(3600)).await;
    let scheduled = rotate(&hsm, Switch::AfterPublishAhead).await;
    assert_eq!(scheduled.state, KeyState::Pending);
    // The key that signs now is compromised: `--now` replaces it and the scheduled one.
    let now = rotate(&hsm, Switch::Now).await;
    let (kid, _, _) = id_token(&server).await;
    assert_eq!(Some(kid), now.kid.map(|k| k.0));
    for label in ["oidc-sign-1", "oidc-sign-2"] {
        let key = listed(&hsm, label);
        assert_eq!(key.state, KeyState::Published, "{label}");
        assert_eq!(key.retired_at, now.active_at, "{label}");
    }
    // An hour later, when key 2 was due, key 3 still signs.
    server.app.clock.advance(3600);
    let (kid, _, _) = id_token(&server).await;
    assert_eq!(listed(&hsm, "oidc-sign-3").kid.map(|k| k.0), Some(kid));
}

fn eidgate(data_dir: &std::path::Path, token_label: &str, config: &std::path::Path) -> Command {
    crate::support::softhsm::softhsm_conf();
    let mut c = Command::new(env!("CARGO_BIN_EXE_eidgate"));
    c.env("EIDGATE_DATA_DIR", data_dir)
        .env("EIDGATE_LOG", "warn")
        .env("EIDGATE_CONFIG", config)
        .env("EIDGATE_HSM_TOKEN_LABEL", token_label);
    c
}

fn run_json(mut command: Command) -> Value {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn time_of(key: &Value, field: &str) -> Option<i64> {
    key[field]
        .as_str()
        .map(|at| OffsetDateTime::parse(at, &Rfc3339).unwrap().unix_timestamp())
}

#[test]
fn r_auth_6_issue_24_cli_rotate_and_list_show_published_active_and_retiring_times() {
    let dir = tempfile::tempdir().unwrap();
    let (hsm, _hsm_dir) = crate::support::softhsm::hsm_config("cli-rollover");
    let config = dir.path().join("eidgate.toml");
    std::fs::write(
        &config,
        "[hsm]\npublish_ahead = \"10m\"\nretired_key_publish = \"2h\"\n",
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let mut command = eidgate(dir.path(), &hsm.token_label, &config);
        command.args(args);
        run_json(command)
    };

    let rotated = cli(&["hsm", "rotate", "--kind", "oidc-sign", "--json"]);
    assert_eq!(rotated["label"], "oidc-sign-2");
    assert_eq!(rotated["state"], "pending");
    let listing = cli(&["hsm", "list", "--json"]);
    let key = |label: &str| {
        listing["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["label"] == label)
            .unwrap_or_else(|| panic!("{label} not in {listing}"))
            .clone()
    };
    let (old, new) = (key("oidc-sign-1"), key("oidc-sign-2"));
    assert_eq!(old["state"], "active");
    assert_eq!(new["state"], "pending");
    let published = time_of(&new, "published_at").unwrap();
    let active = time_of(&new, "active_at").unwrap();
    assert_eq!(active - published, 600, "hsm.publish_ahead from the config file");
    assert_eq!(
        time_of(&old, "retired_at"),
        Some(active),
        "retiring when the new key starts"
    );
    assert_eq!(time_of(&old, "unpublished_at"), Some(active + 7200));
    assert_eq!(new["retired_at"], Value::Null);
    // The first key was made active by `open`, published and active at once.
    assert_eq!(time_of(&old, "published_at"), time_of(&old, "active_at"));

    let switched = cli(&["hsm", "rotate", "--kind", "oidc-sign", "--now", "--json"]);
    assert_eq!(switched["label"], "oidc-sign-3");
    assert_eq!(switched["state"], "active");
    assert_eq!(time_of(&switched, "published_at"), time_of(&switched, "active_at"));
    let listing = cli(&["hsm", "list", "--json"]);
    let states: Vec<(&str, &str)> = listing["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kind"] == "oidc-sign")
        .map(|k| (k["label"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("oidc-sign-3", "active"),
            ("oidc-sign-2", "published"),
            ("oidc-sign-1", "published")
        ]
    );
}
