//! SoftHSM for integration tests (STYLE §1.8): one token directory per test binary,
//! pointed at by `SOFTHSM2_CONF` once per process before the module is loaded, and a
//! fresh token label per call, so tests never share a token and need no `#[serial]`.
//! Covers the fixtures of R-AUTH-6 and R-SEC-2 tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use eidgate::config::HsmConfig;
use eidgate::hsm::init::{render_softhsm_conf, SOFTHSM2_CONF};
use tempfile::TempDir;

/// The PKCS#11 module under test (`EIDGATE_TEST_PKCS11_MODULE` overrides).
pub fn module() -> PathBuf {
    std::env::var_os("EIDGATE_TEST_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

static CONF: OnceLock<PathBuf> = OnceLock::new();
static NEXT_LABEL: AtomicU32 = AtomicU32::new(1);

/// Points `SOFTHSM2_CONF` at this process's token directory (under cargo's
/// `CARGO_TARGET_TMPDIR`), once, and returns the conf path. A child process started by a
/// test inherits the variable and so the same tokens.
pub fn softhsm_conf() -> &'static Path {
    CONF.get_or_init(|| {
        let base = tempfile::Builder::new()
            .prefix("softhsm-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir for SoftHSM tokens")
            .keep();
        let tokens = base.join("tokens");
        std::fs::create_dir_all(&tokens).expect("token dir");
        let conf = base.join("softhsm2.conf");
        std::fs::write(&conf, render_softhsm_conf(&tokens)).expect("softhsm2.conf");
        // Before any test loads the module: every caller goes through this OnceLock first.
        std::env::set_var(SOFTHSM2_CONF, &conf);
        conf
    })
}

/// An `HsmConfig` for a token of its own: label `<hint>-<n>` (unique in the process, at
/// most 32 bytes), `auto_init = true`, two sessions, PIN file in a fresh temp dir that
/// is also the data dir. Keep the `TempDir` alive as long as the HSM.
pub fn hsm_config(label_hint: &str) -> (HsmConfig, TempDir) {
    softhsm_conf();
    let dir = tempfile::tempdir().expect("data dir");
    let hint: String = label_hint
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(20)
        .collect();
    let label = format!("{hint}-{}", NEXT_LABEL.fetch_add(1, Ordering::Relaxed));
    let config = HsmConfig {
        module: module(),
        token_label: label,
        pin_file: Some(dir.path().join("hsm-user.pin")),
        auto_init: true,
        sessions: 2,
        max_in_flight: 0,
        key_refresh: Duration::from_secs(30),
        retired_key_publish: Duration::from_secs(3600),
        publish_ahead: Duration::from_secs(3600),
        pin_env: None,
    };
    (config, dir)
}
