//! Test databases for the store contract (R-LOG-1, R-LOG-2, R-LIFE-4, R-AUTH-3): every call
//! gets its own fresh database, so tests run in parallel without sharing state.
//!
//! SQLite always (a new file under one per-process directory in `CARGO_TARGET_TMPDIR`).
//! PostgreSQL when `EIDGATE_TEST_DATABASE_URL` points at a server: a new database
//! `eidgate_t_<random>` is created there for each call. When `CI` is set that variable is
//! mandatory: CI must run both engines, and a missing one fails instead of skipping.

use std::path::PathBuf;
use std::sync::OnceLock;

use sqlx::{AnyConnection, Connection, Executor};

/// The variable naming the PostgreSQL server for tests (any database on it; the
/// connecting role must be allowed to `CREATE DATABASE`).
pub const POSTGRES_ENV: &str = "EIDGATE_TEST_DATABASE_URL";

/// `(engine name, URL)` of a fresh, empty database on each engine under test.
pub async fn databases() -> Vec<(&'static str, String)> {
    let mut all = vec![("sqlite", sqlite_url())];
    match std::env::var(POSTGRES_ENV) {
        Ok(server) if !server.is_empty() => all.push(("postgres", fresh_postgres(&server).await)),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{POSTGRES_ENV} is not set but CI is: CI must run the store tests on PostgreSQL too \
             (e.g. {POSTGRES_ENV}=postgres://postgres@127.0.0.1:5432/postgres)"
        ),
        _ => {}
    }
    all
}

/// A URL for a new SQLite file; the store creates it.
fn sqlite_url() -> String {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    // One directory per test process, kept after the run (under target/tmp) so a failing
    // test's database can be inspected.
    let dir = DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("eidgate-it-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("create the SQLite test directory")
            .keep()
    });
    let file = dir.join(format!("{}.db", uuid::Uuid::new_v4().simple()));
    format!("sqlite://{}", file.display())
}

/// Creates `eidgate_t_<random>` on the server and returns its URL.
async fn fresh_postgres(server: &str) -> String {
    sqlx::any::install_default_drivers();
    let mut url = url::Url::parse(server).unwrap_or_else(|_| panic!("{POSTGRES_ENV} is not a URL"));
    let mut admin = AnyConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV}: cannot connect: {e}"));
    let name = format!("eidgate_t_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV}: cannot create database {name}: {e}"));
    admin.close().await.ok();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A fresh PostgreSQL database for a test server (`EIDGATE_TEST_SERVER_DB=postgres`);
/// the server is `EIDGATE_TEST_DATABASE_URL`, which must then be set.
pub async fn postgres() -> String {
    let server =
        std::env::var(POSTGRES_ENV).unwrap_or_else(|_| panic!("EIDGATE_TEST_SERVER_DB=postgres needs {POSTGRES_ENV}"));
    fresh_postgres(&server).await
}
