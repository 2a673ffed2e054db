//! Consistent snapshots of the whole database and their restore, for backups (R-SEC-7),
//! and the pool figures for `/metrics`. Generic over the schema: tables, columns and
//! foreign keys are read from the catalogue, so a table added by a later migration is
//! backed up without a change here.
//!
//! - Snapshot: one read transaction (SQLite: a WAL read transaction; PostgreSQL:
//!   `REPEATABLE READ, READ ONLY`), so every table is read at the same instant while the
//!   server keeps writing. Tables come parents first (foreign keys), and the rows of a
//!   self-referencing table parents first, so a restore inserts them in file order.
//! - Restore: only into a database that holds no data (the migrations' seed row of
//!   `audit_head` aside) and whose applied migrations are exactly the backup's; all in one
//!   transaction, so a failed restore leaves the target empty.
//!
//! Must not: restore over data, or commit a partial restore.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_util::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyTypeInfoKind;
use sqlx::{Row, ValueRef as _};

use super::{Backend, SqlStore, Store, StoreError};

mod restore;

/// One value of a row, typed as the engines store it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Cell {
    /// SQL NULL.
    #[serde(rename = "n")]
    Null,
    /// A boolean.
    #[serde(rename = "o")]
    Bool(bool),
    /// Any integer.
    #[serde(rename = "i")]
    Int(i64),
    /// A floating-point number.
    #[serde(rename = "f")]
    Real(f64),
    /// Text.
    #[serde(rename = "t")]
    Text(String),
    /// Bytes, base64 (standard alphabet).
    #[serde(rename = "b")]
    Blob(String),
}

/// A table of the snapshot: its name and columns, in the order rows carry them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Column names.
    pub columns: Vec<String>,
}

/// What a snapshot starts with: the engine, the applied migrations and the tables in
/// restore order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Versions of the applied migrations, ascending.
    pub migrations: Vec<i64>,
    /// Tables, parents before children.
    pub tables: Vec<TableInfo>,
}

/// One item of a snapshot stream after the header: a table starts, or a row of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Item {
    /// The rows that follow belong to this table.
    #[serde(rename = "table")]
    Table(String),
    /// A row, cells in the table's column order.
    #[serde(rename = "row")]
    Row(Vec<Cell>),
}

/// Snapshot and restore errors.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sink or source failed (file, HSM, format).
    #[error("{0}")]
    Io(String),
    /// The restore target holds data.
    #[error("the target database is not empty (table {0} has rows): restore only into an empty database")]
    NotEmpty(String),
    /// The backup does not fit the target's schema.
    #[error("schema mismatch: {0}")]
    Schema(String),
}

/// Receives a snapshot.
#[async_trait]
pub trait SnapshotSink: Send {
    /// The header, before any item.
    async fn header(&mut self, header: &SnapshotHeader) -> Result<(), SnapshotError>;
    /// The next item.
    async fn item(&mut self, item: Item) -> Result<(), SnapshotError>;
}

/// Supplies a snapshot to restore.
#[async_trait]
pub trait SnapshotSource: Send {
    /// The header.
    async fn header(&mut self) -> Result<SnapshotHeader, SnapshotError>;
    /// The next item; `None` at the authenticated end.
    async fn item(&mut self) -> Result<Option<Item>, SnapshotError>;
}

/// Rows per table, by name.
pub type RowCounts = BTreeMap<String, u64>;

/// Database pool figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open.
    pub open: u32,
    /// Of which idle.
    pub idle: u32,
    /// Configured maximum.
    pub max: u32,
}

/// Tables that are never part of a snapshot (the migrator's own bookkeeping).
const SKIPPED: &[&str] = &["_sqlx_migrations", "sqlite_sequence"];
/// Tables a fresh migration fills with a seed row, replaced on restore.
const SEEDED: &[&str] = &["audit_head"];
/// Bound parameters per multi-row INSERT (under SQLite's historic 999).
const MAX_PARAMS: usize = 900;

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl SqlStore {
    /// Pool figures for `/metrics`.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }

    /// Reads every table in one consistent snapshot into `sink` (R-SEC-7). Returns the
    /// rows per table.
    pub async fn snapshot(&self, sink: &mut dyn SnapshotSink) -> Result<RowCounts, SnapshotError> {
        let backend = self.backend();
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        if backend == Backend::Postgres {
            // Must be the first statement of the transaction: fixes the snapshot.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        }
        let header = catalogue(&mut tx, backend).await?;
        sink.header(&header).await?;
        let foreign = foreign_keys(&mut tx, backend).await?;
        let mut counts = RowCounts::new();
        for table in &header.tables {
            sink.item(Item::Table(table.name.clone())).await?;
            let columns = table.columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
            let sql = format!("SELECT {columns} FROM {}", quote(&table.name));
            let self_refs: Vec<(usize, usize)> = foreign
                .iter()
                .filter(|fk| fk.child == table.name && fk.parent == table.name)
                .filter_map(|fk| {
                    let col = table.columns.iter().position(|c| *c == fk.column)?;
                    let parent = table.columns.iter().position(|c| *c == fk.parent_column)?;
                    Some((col, parent))
                })
                .collect();
            let mut n = 0u64;
            if self_refs.is_empty() {
                let mut rows = sqlx::query(&sql).fetch(&mut *tx);
                while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
                    sink.item(Item::Row(cells(&row)?)).await?;
                    n += 1;
                }
            } else {
                let rows = sqlx::query(&sql).fetch_all(&mut *tx).await.map_err(StoreError::from)?;
                let rows = rows.iter().map(cells).collect::<Result<Vec<_>, _>>()?;
                for row in parents_first(rows, &self_refs) {
                    sink.item(Item::Row(row)).await?;
                    n += 1;
                }
            }
            counts.insert(table.name.clone(), n);
        }
        tx.rollback().await.map_err(StoreError::from)?;
        Ok(counts)
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Tables (parents first) with their columns, and the applied migrations.
async fn catalogue(tx: &mut Tx, backend: Backend) -> Result<SnapshotHeader, SnapshotError> {
    let (tables_sql, columns_sql) = match backend {
        Backend::Sqlite => (
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            "SELECT name FROM pragma_table_info($1) ORDER BY cid",
        ),
        Backend::Postgres => (
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        ),
    };
    let names: Vec<String> = sqlx::query_scalar(tables_sql)
        .fetch_all(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    let names: Vec<String> = names.into_iter().filter(|n| !SKIPPED.contains(&n.as_str())).collect();
    let foreign = foreign_keys(tx, backend).await?;
    let mut tables = Vec::with_capacity(names.len());
    for name in parents_first_tables(&names, &foreign) {
        let columns: Vec<String> = sqlx::query_scalar(columns_sql)
            .bind(name.clone())
            .fetch_all(&mut **tx)
            .await
            .map_err(StoreError::from)?;
        tables.push(TableInfo { name, columns });
    }
    let migrations: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut **tx)
            .await
            .map_err(StoreError::from)?;
    Ok(SnapshotHeader {
        backend: match backend {
            Backend::Sqlite => "sqlite".into(),
            Backend::Postgres => "postgres".into(),
        },
        migrations,
        tables,
    })
}

/// A single-column foreign key.
#[derive(Clone, Debug)]
struct ForeignKey {
    child: String,
    column: String,
    parent: String,
    parent_column: String,
}

async fn foreign_keys(tx: &mut Tx, backend: Backend) -> Result<Vec<ForeignKey>, SnapshotError> {
    let rows = match backend {
        Backend::Sqlite => sqlx::query(
            "SELECT m.name AS child, f.\"from\" AS col, f.\"table\" AS parent, COALESCE(f.\"to\", '') AS parent_col \
                 FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&mut **tx)
        .await,
        Backend::Postgres => {
            sqlx::query(
                "SELECT c.conrelid::regclass::text AS child, a.attname::text AS col, \
                        c.confrelid::regclass::text AS parent, af.attname::text AS parent_col \
                 FROM pg_constraint c \
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
                 JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1] \
                 WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace",
            )
            .fetch_all(&mut **tx)
            .await
        }
    }
    .map_err(StoreError::from)?;
    rows.iter()
        .map(|r| {
            Ok(ForeignKey {
                child: r.try_get("child").map_err(StoreError::from)?,
                column: r.try_get("col").map_err(StoreError::from)?,
                parent: r.try_get("parent").map_err(StoreError::from)?,
                parent_column: r.try_get("parent_col").map_err(StoreError::from)?,
            })
        })
        .collect()
}

/// Table names ordered so that every table comes after the tables it references (a
/// cycle, which the schema does not have, ends the ordering by name).
fn parents_first_tables(names: &[String], foreign: &[ForeignKey]) -> Vec<String> {
    let mut done: Vec<String> = Vec::with_capacity(names.len());
    let mut left: Vec<&String> = names.iter().collect();
    while !left.is_empty() {
        let ready: Vec<&String> = left
            .iter()
            .copied()
            .filter(|t| {
                foreign
                    .iter()
                    .filter(|fk| fk.child == **t && fk.parent != **t)
                    .all(|fk| done.contains(&fk.parent) || !names.contains(&fk.parent))
            })
            .collect();
        if ready.is_empty() {
            done.extend(left.iter().map(|t| (*t).clone()));
            break;
        }
        left.retain(|t| !ready.contains(t));
        done.extend(ready.into_iter().cloned());
    }
    done
}

/// Rows of a self-referencing table, each after the row it references.
fn parents_first(rows: Vec<Vec<Cell>>, self_refs: &[(usize, usize)]) -> Vec<Vec<Cell>> {
    let key = |c: &Cell| serde_json::to_string(c).unwrap_or_default();
    let mut placed: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(rows.len());
    let mut left = rows;
    loop {
        let before = left.len();
        let (ready, rest): (Vec<_>, Vec<_>) = left.into_iter().partition(|row| {
            self_refs.iter().all(|(col, _)| match row.get(*col) {
                None | Some(Cell::Null) => true,
                Some(v) => placed.contains(&key(v)),
            })
        });
        for row in ready {
            for (_, parent) in self_refs {
                if let Some(v) = row.get(*parent) {
                    placed.insert(key(v));
                }
            }
            out.push(row);
        }
        left = rest;
        if left.is_empty() || left.len() == before {
            out.extend(left);
            return out;
        }
    }
}

fn cells(row: &sqlx::any::AnyRow) -> Result<Vec<Cell>, SnapshotError> {
    let corrupt = |e: sqlx::Error| SnapshotError::Store(StoreError::from(e));
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i).map_err(corrupt)?;
            if raw.is_null() {
                return Ok(Cell::Null);
            }
            let kind = raw.type_info().kind();
            Ok(match kind {
                AnyTypeInfoKind::Null => Cell::Null,
                AnyTypeInfoKind::Bool => Cell::Bool(row.try_get(i).map_err(corrupt)?),
                AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
                    Cell::Int(row.try_get(i).map_err(corrupt)?)
                }
                AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => Cell::Real(row.try_get(i).map_err(corrupt)?),
                AnyTypeInfoKind::Text => Cell::Text(row.try_get(i).map_err(corrupt)?),
                AnyTypeInfoKind::Blob => {
                    let bytes: Vec<u8> = row.try_get(i).map_err(corrupt)?;
                    Cell::Blob(STANDARD.encode(bytes))
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fk(child: &str, parent: &str) -> ForeignKey {
        ForeignKey {
            child: child.into(),
            column: "x".into(),
            parent: parent.into(),
            parent_column: "id".into(),
        }
    }

    #[test]
    fn tables_come_after_their_parents() {
        let names: Vec<String> = ["means", "mandates", "persons", "notices"].map(String::from).to_vec();
        let foreign = [
            fk("means", "persons"),
            fk("notices", "means"),
            fk("mandates", "mandates"),
            fk("mandates", "persons"),
        ];
        let order = parents_first_tables(&names, &foreign);
        let at = |n: &str| order.iter().position(|t| t == n).unwrap();
        assert!(at("persons") < at("means") && at("means") < at("notices") && at("persons") < at("mandates"));
    }

    #[test]
    fn self_referencing_rows_come_after_their_parent() {
        let row = |id: &str, parent: Option<&str>| {
            vec![
                Cell::Text(id.into()),
                parent.map_or(Cell::Null, |p| Cell::Text(p.into())),
            ]
        };
        let rows = vec![row("c", Some("b")), row("b", Some("a")), row("a", None)];
        let ordered = parents_first(rows, &[(1, 0)]);
        let ids: Vec<_> = ordered.iter().map(|r| r[0].clone()).collect();
        assert_eq!(
            ids,
            vec![Cell::Text("a".into()), Cell::Text("b".into()), Cell::Text("c".into())]
        );
    }
}
