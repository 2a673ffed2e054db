//! The `eidgate` binary as an operator uses it: `import` provisions a data dir from one
//! JSON file, `migrate` is idempotent, `hsm list --json` shows the keys, a bad config
//! exits non-zero with a message (DESIGN "More contracts": CLI).

use std::process::Command;

use serde_json::Value;

fn eidgate(data_dir: &std::path::Path) -> Command {
    crate::support::softhsm::softhsm_conf();
    let mut c = Command::new(env!("CARGO_BIN_EXE_eidgate"));
    c.env("EIDGATE_DATA_DIR", data_dir)
        .env("EIDGATE_LOG", "warn")
        .env_remove("EIDGATE_CONFIG");
    c
}

#[test]
fn cli_import_migrate_and_hsm_list_work_on_a_fresh_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (hsm, _hsm_dir) = crate::support::softhsm::hsm_config("cli");
    let file = dir.path().join("import.json");
    std::fs::write(&file, crate::support::server::fixture().to_string()).unwrap();

    let out = eidgate(dir.path())
        .env("EIDGATE_HSM_TOKEN_LABEL", &hsm.token_label)
        .args(["migrate", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = eidgate(dir.path()).args(["migrate"]).output().unwrap();
    assert!(
        out.status.success(),
        "migrate twice: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = eidgate(dir.path())
        .args(["import", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["clients"], 1);
    assert_eq!(report["persons"], 1);
    assert_eq!(report["means"], 1);
    // Again: nothing created (issue 24); `--update` changes nothing that is equal either.
    for args in [&["import", "--json"][..], &["import", "--json", "--update"][..]] {
        let out = eidgate(dir.path()).args(args).arg(&file).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let again: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(again["created"]["means"], 0, "{again}");
        assert_eq!(again["unchanged"]["means"], 1, "{again}");
        assert_eq!(again["unchanged"]["clients"], 1, "{again}");
    }
    // A misspelt client field: refused naming the client, exit non-zero.
    let mut misspelt = crate::support::server::fixture();
    misspelt["clients"][0]["client_nmae"] = "Test RP".into();
    let bad = dir.path().join("misspelt.json");
    std::fs::write(&bad, misspelt.to_string()).unwrap();
    let out = eidgate(dir.path()).arg("import").arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("client rp: unknown field `client_nmae`"), "{stderr}");
    // The secret and the password are not in the database file in clear (R-AUTH-3).
    let db = std::fs::read(dir.path().join("eidgate.db")).unwrap();
    let wal = std::fs::read(dir.path().join("eidgate.db-wal")).unwrap_or_default();
    for haystack in [&db, &wal] {
        let text = String::from_utf8_lossy(haystack);
        assert!(!text.contains(crate::support::server::SECRET));
        assert!(!text.contains(crate::support::server::PASSWORD));
    }

    let out = eidgate(dir.path())
        .env("EIDGATE_HSM_TOKEN_LABEL", &hsm.token_label)
        .args(["hsm", "list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"oidc-sign-1"), "{listed}");
}

#[test]
fn cli_import_refuses_an_invalid_document_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    let mut doc = crate::support::server::fixture();
    doc["means"][0]["loa"] = "high".into();
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = eidgate(dir.path()).args(["import"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be high"));
}

#[test]
fn cli_bad_config_exits_non_zero_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("eidgate.toml");
    std::fs::write(&conf, "issuer = \"not a url\"\n").unwrap();
    let out = eidgate(dir.path())
        .args(["migrate", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("issuer"));
}

#[test]
fn r_auth_3_r_auth_6_cli_import_seals_totp_seeds_in_the_hsm() {
    let dir = tempfile::tempdir().unwrap();
    let (hsm, _hsm_dir) = crate::support::softhsm::hsm_config("cli-totp");
    let file = dir.path().join("import.json");
    let seed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let mut doc = crate::support::server::fixture();
    doc["means"].as_array_mut().unwrap().push(serde_json::json!({
        "holder": crate::support::server::HOLDER, "kind": "totp", "loa": "substantial",
        "password": "amber lantern seventeen", "totp_secret": seed
    }));
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = eidgate(dir.path())
        .env("EIDGATE_HSM_TOKEN_LABEL", &hsm.token_label)
        .args(["import", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["means"], 2);
    let mut all = std::fs::read(dir.path().join("eidgate.db")).unwrap();
    all.extend(std::fs::read(dir.path().join("eidgate.db-wal")).unwrap_or_default());
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("totp1:"), "a sealed TOTP credential was stored");
    for secret in [seed, "12345678901234567890", "amber lantern seventeen"] {
        assert!(!text.contains(secret), "{secret} readable in the database");
    }

    // A malformed seed is refused before anything is written.
    let bad = dir.path().join("bad.json");
    doc["means"][1]["totp_secret"] = "not base32!".into();
    std::fs::write(&bad, doc.to_string()).unwrap();
    let out = eidgate(dir.path())
        .env("EIDGATE_HSM_TOKEN_LABEL", &hsm.token_label)
        .args(["import"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("base32"));
}
