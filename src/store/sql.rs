//! [`SqlStore`]: every store trait over `sqlx::AnyPool`, one SQL text for SQLite and
//! PostgreSQL (R-AUTH-3, R-LOG-1, R-LOG-2, R-LIFE-4).
//!
//! Owns: the connection pool and its durability settings (SQLite WAL + `synchronous=FULL`,
//! PostgreSQL `synchronous_commit=on`, both checked at start), the embedded migrations,
//! the shared SQL (`const`s below) and the mapping of driver errors to [`StoreError`].
//!
//! **Audited writes.** Each one is a single transaction whose *first* statement locks the
//! audit chain head (`UPDATE audit_head SET seq = seq ... RETURNING`). On SQLite that
//! statement takes the database write lock at once, so a transaction never has to upgrade
//! a read lock (which fails with `SQLITE_BUSY` instead of waiting); on PostgreSQL it takes
//! the head's row lock. Writers therefore queue on the head, and the change, its audit
//! record (`seq + 1`, `hash = chain_hash(prev, …)`) and the new head commit together or
//! not at all: the chain is gap-free under concurrency and no change goes unrecorded.
//!
//! Must not: hold tokens or secrets in clear (tokens are SHA-256 fingerprints, passwords
//! argon2 PHC strings made by the caller), or put a database password in an error.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::error::ErrorKind;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Connection, Executor, Row, Transaction};

use super::rows::{self, audit_columns, means_columns, person_columns, refresh_columns};
use super::{
    AuditRepo, Backend, ClientRepo, Credential, GrantRepo, MeansRepo, PersonRepo, RefreshOutcome, RefreshRecord, Store,
    StoreError,
};
use crate::audit::{chain_hash, AuditEvent, AuditRecord};
use crate::domain::client::Client;
use crate::domain::ids::{ClientId, GrantId, MeansId, PersonId, PersonIdentifier};
use crate::domain::means::{EidMeans, MeansStatus};
use crate::domain::person::NaturalPerson;
use crate::domain::UnixTime;

// ---------------------------------------------------------------------------------------
// Shared SQL: `$n` placeholders work on both engines (SQLite binds `$n` by number).

/// Locks the chain head and reads it: the first statement of every audited transaction.
const LOCK_AUDIT_HEAD: &str = "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash";
/// Appends one audit record.
const INSERT_AUDIT: &str = "INSERT INTO audit_log (seq, time, event_type, actor, subject, data, prev_hash, hash) \
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// Moves the head to the record just appended.
const ADVANCE_AUDIT_HEAD: &str = "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1";
/// Records with `seq` in `[$1, $2)`.
const SELECT_AUDIT: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit_log WHERE seq >= $1 AND seq < $2 ORDER BY seq"
);

const SELECT_CLIENT: &str = "SELECT config FROM clients WHERE client_id = $1";
const UPSERT_CLIENT: &str = "INSERT INTO clients (client_id, config, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                             ON CONFLICT (client_id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at";

const SELECT_PERSON: &str = concat!("SELECT ", person_columns!(), " FROM persons WHERE id = $1");
const SELECT_PERSON_BY_IDENTIFIER: &str = concat!(
    "SELECT ",
    person_columns!(),
    " FROM persons WHERE identifier_country = $1 AND identifier_code = $2"
);
const INSERT_PERSON: &str = "INSERT INTO persons (id, identifier_country, identifier_code, given_name, family_name, \
                             birthdate, proofing_loa, attributes, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

const SELECT_MEANS: &str = concat!("SELECT ", means_columns!(), " FROM means WHERE id = $1");
/// Newest first; `created_at` has one-second resolution, so ties fall back to validity.
const SELECT_MEANS_OF_HOLDER: &str = concat!(
    "SELECT ",
    means_columns!(),
    " FROM means WHERE holder_id = $1 ORDER BY created_at DESC, valid_from DESC, id"
);
const SELECT_CREDENTIAL: &str = "SELECT credential FROM means WHERE id = $1";
const SELECT_MEANS_EXISTS: &str = "SELECT id FROM means WHERE id = $1";
const INSERT_MEANS: &str = "INSERT INTO means (id, holder_id, kind, loa, status, valid_from, valid_until, version, \
                            credential, created_at, updated_at) \
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)";
/// Optimistic transition: 0 rows means a stale version (or no such means).
const UPDATE_MEANS_STATUS: &str = concat!(
    "UPDATE means SET status = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4 RETURNING ",
    means_columns!()
);
/// R-LIFE-4: a means that is no longer active loses its live refresh tokens.
/// Expiry is not checked: an expired token cannot be used anyway, and revoking it too
/// keeps the rule simple ("nothing of this means refreshes again").
const REVOKE_MEANS_REFRESH: &str = "UPDATE refresh_tokens SET revoked_at = $1 \
                                    WHERE means_id = $2 AND revoked_at IS NULL AND used_at IS NULL";

const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (token_sha256, grant_id, client_id, person_id, means_id, \
                              grant_data, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// Single-use consumption: only one caller can flip `used_at` from NULL.
const CONSUME_REFRESH: &str = concat!(
    "UPDATE refresh_tokens SET used_at = $1 \
     WHERE token_sha256 = $2 AND client_id = $3 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
     RETURNING ",
    refresh_columns!()
);
/// After a failed consumption: was it this client's token, and already used?
const SELECT_REFRESH_USE: &str =
    "SELECT grant_id, used_at FROM refresh_tokens WHERE token_sha256 = $1 AND client_id = $2";
const SELECT_LIVE_REFRESH: &str = concat!(
    "SELECT ",
    refresh_columns!(),
    " FROM refresh_tokens WHERE token_sha256 = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2"
);
/// Revokes the tokens of a grant that are neither used nor revoked yet.
const REVOKE_GRANT: &str = "UPDATE refresh_tokens SET revoked_at = $1 \
                            WHERE grant_id = $2 AND revoked_at IS NULL AND used_at IS NULL";

const PING: &str = "SELECT 1";

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

/// The durable store over SQLite or PostgreSQL. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

/// Shows only the engine: the pool's options could carry the URL.
impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Opens a pool on `url` (`sqlite://path`, `sqlite::memory:` or `postgres://…`), applies
    /// and checks the durability settings, and runs the pending migrations.
    ///
    /// SQLite: the file and its parent directory are created if missing, the journal is
    /// switched to WAL once, and every connection runs `synchronous=FULL`,
    /// `foreign_keys=ON`, `busy_timeout=5000`. PostgreSQL: every connection runs
    /// `synchronous_commit=on`. Errors never contain the URL's password.
    pub async fn connect(url: &str, max_connections: u32) -> Result<SqlStore, StoreError> {
        let password = url_password(url);
        open(url, max_connections)
            .await
            .map_err(|e| redact(e, password.as_deref()))
    }

    /// Closes the pool: waits for checked-out connections to return, then closes them all.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins an audited transaction: locks the chain head first (see the module doc).
    async fn begin_audited(&self) -> Result<AuditedTx, StoreError> {
        let mut tx = self.pool.begin().await?;
        let head = sqlx::query(LOCK_AUDIT_HEAD)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::Corrupt("audit_head row is missing".into()))?;
        let seq: i64 = head.try_get("seq")?;
        let prev_hash = rows::hash32(head.try_get("hash")?)?;
        // Taken after the lock, so record times never go backwards along the chain.
        Ok(AuditedTx {
            tx,
            seq,
            prev_hash,
            now: now(),
        })
    }
}

/// An open transaction holding the audit chain head.
struct AuditedTx {
    tx: Transaction<'static, Any>,
    /// `seq` of the head when locked.
    seq: i64,
    /// `hash` of the head when locked.
    prev_hash: [u8; 32],
    /// The time of this change and of its audit record.
    now: UnixTime,
}

impl AuditedTx {
    /// Appends `event` as the next record, advances the head and commits. Dropping an
    /// `AuditedTx` without calling this rolls everything back.
    async fn commit(mut self, event: &AuditEvent) -> Result<i64, StoreError> {
        let seq = self.seq + 1;
        let hash = chain_hash(&self.prev_hash, seq, self.now, event);
        sqlx::query(INSERT_AUDIT)
            .bind(seq)
            .bind(self.now)
            .bind(event.event_type.as_str())
            .bind(event.actor.as_str())
            .bind(event.subject.as_str())
            .bind(rows::json_text(&event.data)?)
            .bind(self.prev_hash.to_vec())
            .bind(hash.to_vec())
            .execute(&mut *self.tx)
            .await?;
        let advanced = sqlx::query(ADVANCE_AUDIT_HEAD)
            .bind(seq)
            .bind(hash.to_vec())
            .execute(&mut *self.tx)
            .await?;
        if advanced.rows_affected() != 1 {
            return Err(StoreError::Corrupt("audit_head row is missing".into()));
        }
        self.tx.commit().await?;
        Ok(seq)
    }
}

fn now() -> UnixTime {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// ---------------------------------------------------------------------------------------
// Connecting

async fn open(url: &str, max_connections: u32) -> Result<SqlStore, StoreError> {
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
    Ok(SqlStore { pool, backend })
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

// ---------------------------------------------------------------------------------------
// Repositories

#[async_trait]
impl ClientRepo for SqlStore {
    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query(SELECT_CLIENT)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::client).transpose()
    }

    async fn upsert_client(&self, client: &Client, audit: AuditEvent) -> Result<(), StoreError> {
        let config = rows::json_text(client)?;
        let mut tx = self.begin_audited().await?;
        sqlx::query(UPSERT_CLIENT)
            .bind(client.client_id.as_str())
            .bind(config)
            .bind(tx.now)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }
}

#[async_trait]
impl PersonRepo for SqlStore {
    async fn person(&self, id: PersonId) -> Result<Option<NaturalPerson>, StoreError> {
        let row = sqlx::query(SELECT_PERSON)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::person).transpose()
    }

    async fn person_by_identifier(&self, identifier: &PersonIdentifier) -> Result<Option<NaturalPerson>, StoreError> {
        let row = sqlx::query(SELECT_PERSON_BY_IDENTIFIER)
            .bind(identifier.country())
            .bind(identifier.code())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::person).transpose()
    }

    async fn insert_person(&self, person: &NaturalPerson, audit: AuditEvent) -> Result<(), StoreError> {
        let attributes = rows::json_text(&person.attributes)?;
        let mut tx = self.begin_audited().await?;
        sqlx::query(INSERT_PERSON)
            .bind(person.id.to_string())
            .bind(person.identifier.country())
            .bind(person.identifier.code())
            .bind(person.given_name.as_str())
            .bind(person.family_name.as_str())
            .bind(person.birthdate.as_str())
            .bind(person.proofing_loa.short())
            .bind(attributes)
            .bind(tx.now)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }
}

#[async_trait]
impl MeansRepo for SqlStore {
    async fn means(&self, id: MeansId) -> Result<Option<EidMeans>, StoreError> {
        let row = sqlx::query(SELECT_MEANS)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::means).transpose()
    }

    async fn means_of_holder(&self, holder: PersonId) -> Result<Vec<EidMeans>, StoreError> {
        let found = sqlx::query(SELECT_MEANS_OF_HOLDER)
            .bind(holder.to_string())
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::means).collect()
    }

    async fn credential(&self, id: MeansId) -> Result<Credential, StoreError> {
        let row = sqlx::query(SELECT_CREDENTIAL)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        rows::credential(&row)
    }

    async fn insert_means(
        &self,
        means: &EidMeans,
        credential: &Credential,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        sqlx::query(INSERT_MEANS)
            .bind(means.id.to_string())
            .bind(means.holder.to_string())
            .bind(means.kind.as_str())
            .bind(means.loa.short())
            .bind(means.status.as_str())
            .bind(means.valid_from)
            .bind(means.valid_until)
            .bind(means.version)
            .bind(rows::credential_text(credential))
            .bind(tx.now)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn set_status(
        &self,
        id: MeansId,
        expected_version: i64,
        status: MeansStatus,
        audit: AuditEvent,
    ) -> Result<EidMeans, StoreError> {
        let mut tx = self.begin_audited().await?;
        let updated = sqlx::query(UPDATE_MEANS_STATUS)
            .bind(status.as_str())
            .bind(tx.now)
            .bind(id.to_string())
            .bind(expected_version)
            .fetch_optional(&mut *tx.tx)
            .await?;
        let Some(updated) = updated else {
            // Nothing changed; dropping `tx` rolls back (no audit record).
            let exists = sqlx::query(SELECT_MEANS_EXISTS)
                .bind(id.to_string())
                .fetch_optional(&mut *tx.tx)
                .await?;
            return Err(if exists.is_some() {
                StoreError::Conflict
            } else {
                StoreError::NotFound
            });
        };
        let means = rows::means(&updated)?;
        if status != MeansStatus::Active {
            sqlx::query(REVOKE_MEANS_REFRESH)
                .bind(tx.now)
                .bind(id.to_string())
                .execute(&mut *tx.tx)
                .await?;
        }
        tx.commit(&audit).await?;
        Ok(means)
    }
}

#[async_trait]
impl GrantRepo for SqlStore {
    async fn insert_refresh(&self, record: &RefreshRecord) -> Result<(), StoreError> {
        insert_refresh(&mut *self.pool.acquire().await?, record).await
    }

    /// The replacement is bound to the consumed token's grant, client, person and means
    /// whatever the caller put in those fields, so rotation can never move a token to
    /// another grant. It keeps its own fingerprint, times and `grant_data` (a JSON `null`
    /// there means "inherit the consumed token's"). `Rotated` carries the consumed record.
    async fn rotate_refresh(
        &self,
        token_sha256: &str,
        client: &ClientId,
        now: UnixTime,
        replacement: &RefreshRecord,
    ) -> Result<RefreshOutcome, StoreError> {
        // The first statement writes, so SQLite takes its write lock here (no upgrade).
        let mut tx = self.pool.begin().await?;
        let consumed = sqlx::query(CONSUME_REFRESH)
            .bind(now)
            .bind(token_sha256)
            .bind(client.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = consumed {
            let old = rows::refresh(&row)?;
            let new = RefreshRecord {
                token_sha256: replacement.token_sha256.clone(),
                grant_id: old.grant_id,
                client_id: old.client_id.clone(),
                person_id: old.person_id,
                means_id: old.means_id,
                grant_data: if replacement.grant_data.is_null() {
                    old.grant_data.clone()
                } else {
                    replacement.grant_data.clone()
                },
                created_at: replacement.created_at,
                expires_at: replacement.expires_at,
            };
            insert_refresh(&mut tx, &new).await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Rotated(old));
        }

        let known = sqlx::query(SELECT_REFRESH_USE)
            .bind(token_sha256)
            .bind(client.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(known) = known else {
            return Ok(RefreshOutcome::Invalid);
        };
        let used_at: Option<i64> = known.try_get("used_at")?;
        if used_at.is_none() {
            // Expired or revoked, never used: nothing to do.
            return Ok(RefreshOutcome::Invalid);
        }
        // Reuse of a consumed token: someone holds a copy. Revoke the whole grant.
        let grant_text: String = known.try_get("grant_id")?;
        let grant = grant_text
            .parse::<GrantId>()
            .map_err(|e| StoreError::Corrupt(format!("refresh_tokens.grant_id: {e}")))?;
        sqlx::query(REVOKE_GRANT)
            .bind(now)
            .bind(grant_text)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Reused(grant))
    }

    async fn refresh(&self, token_sha256: &str, now: UnixTime) -> Result<Option<RefreshRecord>, StoreError> {
        let row = sqlx::query(SELECT_LIVE_REFRESH)
            .bind(token_sha256)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::refresh).transpose()
    }

    /// Counts as live (and marks revoked) the tokens that are neither used nor revoked.
    /// Expiry is not looked at: this method has no caller clock, and an expired token
    /// is refused by every read anyway.
    async fn revoke_grant(&self, grant: GrantId) -> Result<u64, StoreError> {
        let revoked = sqlx::query(REVOKE_GRANT)
            .bind(now())
            .bind(grant.to_string())
            .execute(&self.pool)
            .await?;
        Ok(revoked.rows_affected())
    }
}

async fn insert_refresh(conn: &mut AnyConnection, record: &RefreshRecord) -> Result<(), StoreError> {
    sqlx::query(INSERT_REFRESH)
        .bind(record.token_sha256.as_str())
        .bind(record.grant_id.to_string())
        .bind(record.client_id.as_str())
        .bind(record.person_id.to_string())
        .bind(record.means_id.to_string())
        .bind(rows::json_text(&record.grant_data)?)
        .bind(record.created_at)
        .bind(record.expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

#[async_trait]
impl AuditRepo for SqlStore {
    async fn append(&self, event: AuditEvent) -> Result<i64, StoreError> {
        self.begin_audited().await?.commit(&event).await
    }

    async fn audit_records(&self, from: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let found: Vec<AnyRow> = sqlx::query(SELECT_AUDIT)
            .bind(from)
            .bind(from.saturating_add(limit))
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::audit_record).collect()
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(PING).execute(&self.pool).await?;
        Ok(())
    }
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
