//! The dependency rule (STYLE §1.2), checked by machine: transport crates only in
//! transport files, SQL only in `store/`, PKCS#11 only in `hsm/`, no I/O in `domain/`.

use std::path::{Path, PathBuf};

pub(crate) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Code lines only: doc and line comments dropped.
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn uses(text: &str, krate: &str) -> bool {
    text.contains(&format!("{krate}::")) || text.contains(&format!("use {krate}"))
}

fn check(krate: &str, allowed: impl Fn(&str) -> bool) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files
        .into_iter()
        .filter_map(|f| {
            let rel = f.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            (uses(&code(&f), krate) && !allowed(&rel)).then_some(rel)
        })
        .collect()
}

#[test]
fn layering_axum_and_tower_only_in_transport_files() {
    let transport = |f: &str| f.ends_with("/http.rs") || f.starts_with("web/") || f == "app.rs";
    for krate in ["axum", "tower", "tower_http", "axum_server"] {
        assert_eq!(
            check(krate, transport),
            Vec::<String>::new(),
            "{krate} outside transport files"
        );
    }
}

#[test]
fn layering_sql_only_in_store() {
    assert_eq!(check("sqlx", |f| f.starts_with("store/")), Vec::<String>::new());
}

#[test]
fn layering_pkcs11_only_in_hsm() {
    assert_eq!(check("cryptoki", |f| f.starts_with("hsm/")), Vec::<String>::new());
}

#[test]
fn layering_webauthn_crate_only_in_authn_webauthn() {
    assert_eq!(check("webauthn_rp", |f| f == "authn/webauthn.rs"), Vec::<String>::new());
}

#[test]
fn layering_domain_does_no_io() {
    for krate in [
        "tokio", "sqlx", "cryptoki", "axum", "reqwest", "redis", "std::fs", "std::net",
    ] {
        assert_eq!(
            check(krate, |f| !f.starts_with("domain/")),
            Vec::<String>::new(),
            "{krate} in domain/"
        );
    }
}

#[test]
fn layering_the_checker_sees_a_violation() {
    assert!(uses("fn f() { let _ = sqlx::query(\"\"); }", "sqlx"));
    assert!(!uses("// sqlx::query", "tokio"));
}
