//! The architecture (STYLE §1.2, issue 21), checked by machine on `src/`.
//!
//! Data flows one way: **transport → services → ports → domain**. A file imports (a
//! `crate::…` or `super::…` path, measured as `/work/shared/tools/architecture.py` does, see
//! `layering/scan.rs`) only files of its own layer or lower ones. Every file has exactly one
//! layer, the first row of this table that matches it:
//!
//! | files | layer | why |
//! | --- | --- | --- |
//! | `main.rs`, `lib.rs` | transport | crate roots: the binary, and the module list |
//! | `app.rs` | transport | composition root: builds every port and service, serves |
//! | `cli/` | transport | the command line is an edge like HTTP |
//! | `web/` | transport | server shell and router: may use every `*/http.rs` |
//! | `*/http.rs` | transport | a feature's HTTP handlers |
//! | `domain/` | domain | pure types and rules |
//! | `audit/mod.rs` | domain | the audit record and its hash chain: pure (serde, sha2, hex, time), persisted by `store/`, written by every service |
//! | `store/`, `ephemeral/`, `hsm/` | ports | durable state, short-lived state, keys |
//! | `clock.rs` | ports | the clock port: services read `now` here, domain rules take it as an argument |
//! | `random.rs` | ports | the CSPRNG (reads the OS, imports nothing); `hsm/` needs it, so it sits no higher |
//! | `config.rs`, `config/` | ports | read by `hsm/` and every layer above it, so it sits no higher; not pure (file, environment), so not domain. Section types it names belong to it, not to the features reading them |
//! | anything else | services | every other feature folder or file: `admin/`, `audit/` (but `mod.rs`), `authn/`, `backup/`, `delivery/`, `helpdesk/`, `lifecycle/`, `monitor/`, `oidc/`, `smartcard/`, `supervision/`, `jobs/`, … |
//!
//! The rules (each its own test, each with a self-test in `layering/selftest.rs` proving it
//! fires on a planted violation): no import cycle; `crate::app` named only by transport
//! files; the direction above; no `*/http.rs` importing another feature's `http.rs`;
//! services never build HTTP answers; the domain uses only [`DOMAIN_CRATES`]; the `# Layout`
//! table of `lib.rs` lists every module; no file in `src/` over 600 lines, none in `tests/`
//! over 800; and the crate placements: `axum`/`tower` only in transport files, `sqlx` only in
//! `store/`, `cryptoki` only in `hsm/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod rules;
mod scan;
mod selftest;

use scan::Sources;

/// The layers, lowest first: a file may import files of its own layer or a lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Layer {
    Domain,
    Ports,
    Services,
    Transport,
}

/// The table above, row by row: a folder (`x/`), a file name in any folder (`*/x.rs`) or one
/// file (`x.rs`); the first match wins, anything unmatched is a service.
const LAYERS: &[(&str, Layer)] = &[
    ("main.rs", Layer::Transport),
    ("lib.rs", Layer::Transport),
    ("app.rs", Layer::Transport),
    ("cli/", Layer::Transport),
    ("web/", Layer::Transport),
    ("*/http.rs", Layer::Transport),
    ("domain/", Layer::Domain),
    ("audit/mod.rs", Layer::Domain),
    ("store/", Layer::Ports),
    ("ephemeral/", Layer::Ports),
    ("hsm/", Layer::Ports),
    ("clock.rs", Layer::Ports),
    ("random.rs", Layer::Ports),
    ("config.rs", Layer::Ports),
    ("config/", Layer::Ports),
];

pub(crate) fn layer_of(rel: &str) -> Layer {
    LAYERS
        .iter()
        .find(|(pattern, _)| match pattern.strip_prefix("*/") {
            Some(name) => rel.ends_with(&format!("/{name}")),
            None if pattern.ends_with('/') => rel.starts_with(pattern),
            None => rel == *pattern,
        })
        .map_or(Layer::Services, |(_, layer)| *layer)
}

/// External crates the domain may use, from what `domain/` and `audit/mod.rs` use today:
/// `std`/`core`/`alloc` (without their I/O parts, [`DOMAIN_STD_DENIED`]); `serde`,
/// `serde_json` (wire forms and canonical records are data); `thiserror` (typed errors);
/// `time` (calendar arithmetic on given instants, never `now_utc`); `url` (redirect URIs are
/// domain values); `uuid` (typed ids; one exception to "no randomness": `Uuid::new_v4` in
/// `domain/ids.rs` draws from the OS generator through `getrandom`); `base64`, `hex`
/// (encodings); `sha2` (hash chain, fingerprints); `subtle` (constant-time comparison of
/// secrets); `zeroize` (secrets wiped on drop). Otherwise they compute on their arguments
/// only: no I/O, no clock. Anything else (tokio, sqlx, reqwest, axum, rand, …) fails.
pub(crate) const DOMAIN_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "serde",
    "serde_json",
    "thiserror",
    "time",
    "url",
    "uuid",
    "base64",
    "hex",
    "sha2",
    "subtle",
    "zeroize",
];

/// `std` modules that do I/O (besides `std::time::{SystemTime, Instant}`, the clock).
pub(crate) const DOMAIN_STD_DENIED: &[&str] = &["fs", "net", "io", "process", "env", "thread"];

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

fn load(dir: &str) -> Sources {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            (rel, std::fs::read_to_string(&f).unwrap())
        })
        .collect()
}

/// Every `.rs` file under `src/`, by path relative to it.
fn src() -> &'static Sources {
    static SRC: OnceLock<Sources> = OnceLock::new();
    SRC.get_or_init(|| load("src"))
}

/// Every crate name the package can use: `std`, `core`, `alloc` and its dependencies.
fn externals() -> BTreeSet<String> {
    let manifest: toml::Table = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let mut tables: Vec<&toml::Table> = Vec::new();
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        tables.extend(manifest.get(section).and_then(|t| t.as_table()));
        for target in manifest
            .get("target")
            .and_then(|t| t.as_table())
            .into_iter()
            .flat_map(|t| t.values())
        {
            tables.extend(target.get(section).and_then(|t| t.as_table()));
        }
    }
    let deps = tables.into_iter().flat_map(|t| t.keys()).map(|k| k.replace('-', "_"));
    deps.chain(["std", "core", "alloc"].map(String::from)).collect()
}

fn holds(rule: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "{rule}: {} violation(s):\n  {}",
        violations.len(),
        violations.join("\n  ")
    );
}

#[test]
fn layering_no_import_cycle() {
    holds("import cycles among src/ files", rules::import_cycles(src()));
}

#[test]
fn layering_crate_app_named_only_by_transport() {
    holds(
        "crate::app named outside app.rs, cli/, web/, */http.rs",
        rules::app_outside_root(src()),
    );
}

#[test]
fn layering_imports_point_down() {
    holds(
        "import against the direction transport → services → ports → domain",
        rules::direction(src()),
    );
}

#[test]
fn layering_no_http_file_imports_another_features_http_file() {
    holds(
        "*/http.rs importing another feature's http.rs",
        rules::http_imports_http(src()),
    );
}

#[test]
fn layering_services_build_no_http_answers() {
    holds("HTTP answer built in a service file", rules::services_build_http(src()));
}

#[test]
fn layering_domain_uses_only_allowlisted_crates() {
    holds(
        "domain outside its allowlist",
        rules::domain_crates(src(), &externals()),
    );
}

#[test]
fn layering_lib_layout_table_lists_every_module() {
    holds("lib.rs # Layout table", rules::layout_map(&src()["lib.rs"]));
}

#[test]
fn layering_no_src_file_over_600_lines() {
    holds("src/ files over 600 lines", rules::too_long(src(), 600));
}

#[test]
fn layering_no_test_file_over_800_lines() {
    holds("tests/ files over 800 lines", rules::too_long(&load("tests"), 800));
}

#[test]
fn layering_axum_and_tower_only_in_transport_files() {
    for krate in ["axum", "tower", "tower_http", "axum_server"] {
        holds(
            &format!("{krate} outside transport files"),
            rules::crate_outside(src(), krate, transport_crates_allowed),
        );
    }
}

/// Where `axum`/`tower` may appear: `*/http.rs`, `web/`, `app.rs`.
fn transport_crates_allowed(rel: &str) -> bool {
    rel.ends_with("/http.rs") || rel.starts_with("web/") || rel == "app.rs"
}

#[test]
fn layering_sql_only_in_store() {
    holds(
        "sqlx outside store/",
        rules::crate_outside(src(), "sqlx", |f| f.starts_with("store/")),
    );
}

#[test]
fn layering_pkcs11_only_in_hsm() {
    holds(
        "cryptoki outside hsm/",
        rules::crate_outside(src(), "cryptoki", |f| f.starts_with("hsm/")),
    );
}

#[test]
fn layering_webauthn_crate_only_in_authn_webauthn() {
    holds(
        "webauthn_rp outside authn/webauthn.rs",
        rules::crate_outside(src(), "webauthn_rp", |f| f == "authn/webauthn.rs"),
    );
}
