//! Connecting to the durable store (R-LOG-1, R-LOG-2, DESIGN "Storage"): the pool, its
//! durability settings (SQLite WAL + `synchronous=FULL`, PostgreSQL `synchronous_commit=on`,
//! both read back and checked before the store is used), the embedded migrations, and the
//! mapping of driver errors to [`StoreError`].
//!
//! Must not: start a store that could acknowledge a write it may lose, or put a database
//! password into an error (errors are scrubbed of the URL's password).

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::error::ErrorKind;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};

use super::{Backend, StoreError};

// Per-connection settings. `journal_mode=WAL` is persistent in the file and set once at
// start; these are per connection and must be re-applied on every new one.
const SQLITE_PER_CONNECTION: &[&str] = &[
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 5000",
];
const POSTGRES_PER_CONNECTION: &[&str] = &["SET synchronous_commit = on"];

/// How long a request waits for a pooled connection before failing closed.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

// ---------------------------------------------------------------------------------------
// Connecting

/// Opens a pool on `url`, applies and checks the durability settings and runs the pending
/// migrations (see [`super::SqlStore::connect`]). Errors never contain the URL's password.
pub(super) async fn connect(url: &str, max_connections: u32) -> Result<(AnyPool, Backend), StoreError> {
    let password = url_password(url);
    open(url, max_connections)
        .await
        .map_err(|e| redact(e, password.as_deref()))
}

async fn open(url: &str, max_connections: u32) -> Result<(AnyPool, Backend), StoreError> {
    sqlx::any::install_default_drivers();
    let backend = backend_of(url)?;
    let (url, in_memory) = match backend {
        Backend::Sqlite => prepare_sqlite(url)?,
        Backend::Postgres => (url.to_owned(), false),
    };
    let options: AnyConnectOptions = url
        .parse()
        .map_err(|_| StoreError::Unavailable("invalid database URL".into()))?;
    // Statement logging would put bound values (person data) into the logs.
    let options = options.disable_statement_logging();

    if backend == Backend::Sqlite && !in_memory {
        // WAL is a property of the file; switching needs the database to itself, so it is
        // done on one connection before the pool opens.
        let mut first = AnyConnection::connect_with(&options).await?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
            .fetch_one(&mut first)
            .await?;
        first.close().await?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "SQLite journal_mode is {mode}, not wal"
            )));
        }
    }

    let per_connection = match backend {
        Backend::Sqlite => SQLITE_PER_CONNECTION,
        Backend::Postgres => POSTGRES_PER_CONNECTION,
    };
    let mut pool_options = AnyPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                for statement in per_connection {
                    conn.execute(*statement).await?;
                }
                Ok(())
            })
        });
    if in_memory {
        // Every SQLite memory connection is its own database: keep exactly one, forever.
        pool_options = pool_options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    let pool = pool_options.connect_with(options).await?;

    check_durability(&pool, backend, in_memory).await?;
    let migrator = match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    migrator.run(&pool).await.map_err(migrate_error)?;
    Ok((pool, backend))
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::Unavailable(
            "database URL must start with sqlite: or postgres://".into(),
        ))
    }
}

/// Adds `mode=rwc` (create if missing) unless a mode is given, and creates the parent
/// directory of a file database. Returns the URL and whether it is an in-memory database.
fn prepare_sqlite(url: &str) -> Result<(String, bool), StoreError> {
    let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let has_mode = query.split('&').any(|pair| pair.starts_with("mode="));
    let in_memory = path == ":memory:" || query.split('&').any(|pair| pair == "mode=memory");
    if in_memory {
        return Ok((url.to_owned(), true));
    }
    // sqlx percent-decodes the path (`%20`, `%3F`), so the directory must match that.
    let path = percent_decode(path);
    if let Some(parent) = Path::new(&path).parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Unavailable(format!("cannot create the database directory: {e}")))?;
    }
    let url = match (has_mode, query.is_empty()) {
        (true, _) => url.to_owned(),
        (false, true) => format!("{url}?mode=rwc"),
        (false, false) => format!("{url}&mode=rwc"),
    };
    Ok((url, false))
}

/// Reads the settings back through the pool (so through `after_connect`): a store that
/// would acknowledge a write it can lose does not start.
async fn check_durability(pool: &AnyPool, backend: Backend, in_memory: bool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    match backend {
        Backend::Sqlite => {
            let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await?;
            let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut *conn).await?;
            let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *conn).await?;
            // 2 = FULL, 3 = EXTRA.
            if synchronous < 2 {
                return Err(StoreError::Unavailable(format!(
                    "SQLite synchronous is {synchronous}, not FULL"
                )));
            }
            if foreign_keys != 1 {
                return Err(StoreError::Unavailable("SQLite foreign_keys is off".into()));
            }
            if !in_memory && !journal.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Unavailable(format!(
                    "SQLite journal_mode is {journal}, not wal"
                )));
            }
        }
        Backend::Postgres => {
            let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(&mut *conn)
                .await?;
            if setting != "on" {
                return Err(StoreError::Unavailable(format!(
                    "PostgreSQL synchronous_commit is {setting}, not on"
                )));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Errors

/// Driver errors, normalised at the port: constraint violations are `Conflict`, rows
/// that do not decode are `Corrupt`, everything else (connection, pool, I/O, timeouts,
/// `SQLITE_BUSY`) is `Unavailable`, which callers treat as fail closed.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation => StoreError::Conflict,
                _ => StoreError::Unavailable(format!("database error: {}", db.message())),
            },
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(error.to_string()),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

fn migrate_error(error: MigrateError) -> StoreError {
    match error {
        MigrateError::Execute(e) => match StoreError::from(e) {
            // A constraint failing inside a migration is a broken database, not a conflict.
            StoreError::Conflict | StoreError::NotFound => StoreError::Corrupt("migration failed".into()),
            other => other,
        },
        MigrateError::VersionMissing(_) | MigrateError::VersionMismatch(_) | MigrateError::Dirty(_) => {
            StoreError::Corrupt(format!("migrations: {error}"))
        }
        other => StoreError::Unavailable(format!("migrations: {other}")),
    }
}

/// The password of a URL as written (percent-encoded), if any.
fn url_password(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed.password().filter(|p| !p.is_empty()).map(str::to_owned)
}

/// Removes a password (and its percent-decoded form) from an error message, in case a
/// driver ever echoes the connection string.
fn redact(error: StoreError, password: Option<&str>) -> StoreError {
    let Some(password) = password else {
        return error;
    };
    let scrub = |message: String| {
        let decoded = percent_decode(password);
        message
            .replace(password, "[redacted]")
            .replace(decoded.as_str(), "[redacted]")
    };
    match error {
        StoreError::Unavailable(m) => StoreError::Unavailable(scrub(m)),
        StoreError::Corrupt(m) => StoreError::Corrupt(scrub(m)),
        other => other,
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode_unless_given() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/db.sqlite");
        let url = format!("sqlite://{}", file.display());
        let (prepared, memory) = prepare_sqlite(&url).unwrap();
        assert_eq!(prepared, format!("{url}?mode=rwc"));
        assert!(!memory);
        assert!(file.parent().unwrap().is_dir());
        let (prepared, _) = prepare_sqlite(&format!("{url}?mode=ro")).unwrap();
        assert!(prepared.ends_with("?mode=ro"));
        assert!(prepare_sqlite("sqlite::memory:").unwrap().1);
        let spaced = dir.path().join("a b/db.sqlite");
        let encoded = format!("sqlite://{}", spaced.display()).replace(' ', "%20");
        prepare_sqlite(&encoded).unwrap();
        assert!(spaced.parent().unwrap().is_dir());
    }

    #[test]
    fn passwords_are_redacted_from_errors() {
        let password = url_password("postgres://u:p%40ss@db.example/x");
        assert_eq!(password.as_deref(), Some("p%40ss"));
        let error = redact(
            StoreError::Unavailable("cannot connect to u:p@ss@db and p%40ss".into()),
            password.as_deref(),
        );
        let StoreError::Unavailable(message) = error else {
            panic!("kind changed");
        };
        assert!(!message.contains("p@ss") && !message.contains("p%40ss"), "{message}");
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(matches!(backend_of("mysql://x"), Err(StoreError::Unavailable(_))));
        assert_eq!(backend_of("postgresql://x/y").unwrap(), Backend::Postgres);
    }
}
