//! The restore half of [`super`]: one transaction into an empty database whose
//! migrations match the snapshot's; NULLs bound with the target column's type; identity
//! sequences moved past the restored values (PostgreSQL).

use std::collections::{HashMap, HashSet};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sqlx::any::AnyTypeInfoKind;
use sqlx::Row;

use super::{
    catalogue, quote, Cell, Item, RowCounts, SnapshotError, SnapshotSource, TableInfo, Tx, MAX_PARAMS, SEEDED,
};
use crate::store::{Backend, SqlStore, Store, StoreError};

impl SqlStore {
    /// Restores a snapshot into this database, which must be empty and migrated to
    /// exactly the snapshot's migrations (R-SEC-7). One transaction: all or nothing.
    pub async fn restore(&self, source: &mut dyn SnapshotSource) -> Result<RowCounts, SnapshotError> {
        let backend = self.backend();
        let header = source.header().await?;
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let target = catalogue(&mut tx, backend).await?;
        if target.migrations != header.migrations {
            return Err(SnapshotError::Schema(format!(
                "the backup was taken at migrations {:?}, this database is at {:?}: restore with the eidgate version that made the backup",
                header.migrations.last(),
                target.migrations.last()
            )));
        }
        let target_columns: HashMap<&str, HashSet<&str>> = target
            .tables
            .iter()
            .map(|t| (t.name.as_str(), t.columns.iter().map(String::as_str).collect()))
            .collect();
        for table in &header.tables {
            let Some(columns) = target_columns.get(table.name.as_str()) else {
                return Err(SnapshotError::Schema(format!(
                    "table {} does not exist here",
                    table.name
                )));
            };
            if let Some(missing) = table.columns.iter().find(|c| !columns.contains(c.as_str())) {
                return Err(SnapshotError::Schema(format!(
                    "column {}.{missing} does not exist here",
                    table.name
                )));
            }
        }
        for table in &target.tables {
            if SEEDED.contains(&table.name.as_str()) {
                continue;
            }
            let sql = format!("SELECT COUNT(*) FROM {}", quote(&table.name));
            let n: i64 = sqlx::query_scalar(&sql)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from)?;
            if n > 0 {
                return Err(SnapshotError::NotEmpty(table.name.clone()));
            }
        }
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_head")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        if head != 0 {
            return Err(SnapshotError::NotEmpty("audit_head".into()));
        }
        if backend == Backend::Sqlite {
            // Foreign keys checked at commit: the file order already puts parents first.
            sqlx::query("PRAGMA defer_foreign_keys = ON")
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        }
        for table in header.tables.iter().rev() {
            if SEEDED.contains(&table.name.as_str()) {
                sqlx::query(&format!("DELETE FROM {}", quote(&table.name)))
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?;
            }
        }

        let tables: HashMap<&str, &TableInfo> = header.tables.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut counts = RowCounts::new();
        let mut current: Option<&TableInfo> = None;
        let mut batch: Vec<Vec<Cell>> = Vec::new();
        let mut kinds: Vec<AnyTypeInfoKind> = Vec::new();
        while let Some(item) = source.item().await? {
            match item {
                Item::Table(name) => {
                    if let Some(table) = current {
                        insert(&mut tx, backend, table, &kinds, &mut batch).await?;
                    }
                    let table = tables
                        .get(name.as_str())
                        .copied()
                        .ok_or_else(|| SnapshotError::Schema(format!("rows for table {name}, not in the manifest")))?;
                    counts.insert(name.clone(), 0);
                    kinds = column_kinds(&mut tx, backend, &name, &table.columns).await?;
                    current = Some(table);
                }
                Item::Row(row) => {
                    let table = current.ok_or_else(|| SnapshotError::Schema("a row before any table".into()))?;
                    if row.len() != table.columns.len() {
                        return Err(SnapshotError::Schema(format!(
                            "a row of {} has the wrong width",
                            table.name
                        )));
                    }
                    if let Some(n) = counts.get_mut(&table.name) {
                        *n += 1;
                    }
                    batch.push(row);
                    if (batch.len() + 1) * table.columns.len() > MAX_PARAMS {
                        insert(&mut tx, backend, table, &kinds, &mut batch).await?;
                    }
                }
            }
        }
        if let Some(table) = current {
            insert(&mut tx, backend, table, &kinds, &mut batch).await?;
        }
        if backend == Backend::Postgres {
            reset_identities(&mut tx).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(counts)
    }
}

/// Inserts the batched rows of `table` in one statement and empties the batch.
async fn insert(
    tx: &mut Tx,
    backend: Backend,
    table: &TableInfo,
    kinds: &[AnyTypeInfoKind],
    batch: &mut Vec<Vec<Cell>>,
) -> Result<(), SnapshotError> {
    if batch.is_empty() {
        return Ok(());
    }
    let width = table.columns.len();
    let columns = table.columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let mut n = 0;
    let values = batch
        .iter()
        .map(|_| {
            let row = (0..width)
                .map(|_| {
                    n += 1;
                    format!("${n}")
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    // Identity columns (PostgreSQL `GENERATED ALWAYS`) keep their backed-up values.
    let overriding = if backend == Backend::Postgres {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO {} ({columns}){overriding} VALUES {values}",
        quote(&table.name)
    );
    let mut query = sqlx::query(&sql);
    for row in batch.drain(..) {
        for (i, cell) in row.into_iter().enumerate() {
            query = match cell {
                Cell::Null => match kinds.get(i).copied().unwrap_or(AnyTypeInfoKind::Text) {
                    AnyTypeInfoKind::Bool => query.bind(Option::<bool>::None),
                    AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
                        query.bind(Option::<i64>::None)
                    }
                    AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => query.bind(Option::<f64>::None),
                    AnyTypeInfoKind::Blob => query.bind(Option::<Vec<u8>>::None),
                    AnyTypeInfoKind::Null | AnyTypeInfoKind::Text => query.bind(Option::<String>::None),
                },
                Cell::Bool(v) => query.bind(v),
                Cell::Int(v) => query.bind(v),
                Cell::Real(v) => query.bind(v),
                Cell::Text(v) => query.bind(v),
                Cell::Blob(v) => query.bind(
                    STANDARD
                        .decode(v)
                        .map_err(|_| SnapshotError::Schema(format!("a blob in {} is not base64", table.name)))?,
                ),
            };
        }
    }
    query.execute(&mut **tx).await.map_err(StoreError::from)?;
    Ok(())
}

/// The kind of each of `columns` of `table` in this database, from its declared type
/// (a NULL must be bound with the column's type on PostgreSQL).
async fn column_kinds(
    tx: &mut Tx,
    backend: Backend,
    table: &str,
    columns: &[String],
) -> Result<Vec<AnyTypeInfoKind>, SnapshotError> {
    let sql = match backend {
        Backend::Sqlite => "SELECT name, type FROM pragma_table_info($1)",
        Backend::Postgres => {
            "SELECT column_name::text AS name, data_type::text AS type FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    let rows = sqlx::query(sql)
        .bind(table.to_owned())
        .fetch_all(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    let mut declared = HashMap::new();
    for row in rows {
        let name: String = row.try_get("name").map_err(StoreError::from)?;
        let ty: String = row.try_get("type").map_err(StoreError::from)?;
        declared.insert(name, kind_of_declared(&ty));
    }
    Ok(columns
        .iter()
        .map(|c| declared.get(c).copied().unwrap_or(AnyTypeInfoKind::Text))
        .collect())
}

fn kind_of_declared(ty: &str) -> AnyTypeInfoKind {
    let ty = ty.to_ascii_lowercase();
    if ty.contains("int") {
        AnyTypeInfoKind::BigInt
    } else if ty.contains("bool") {
        AnyTypeInfoKind::Bool
    } else if ty.contains("bytea") || ty.contains("blob") {
        AnyTypeInfoKind::Blob
    } else if ty.contains("real") || ty.contains("double") || ty.contains("float") || ty.contains("numeric") {
        AnyTypeInfoKind::Double
    } else {
        AnyTypeInfoKind::Text
    }
}

/// Moves every identity sequence past the restored values.
async fn reset_identities(tx: &mut Tx) -> Result<(), SnapshotError> {
    let rows = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
    )
    .fetch_all(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    for row in rows {
        let table: String = row.try_get("t").map_err(StoreError::from)?;
        let column: String = row.try_get("c").map_err(StoreError::from)?;
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({col}), 0) + 1, false)::text FROM {tab}",
            col = quote(&column),
            tab = quote(&table)
        );
        sqlx::query(&sql)
            .bind(quote(&table))
            .bind(column)
            .fetch_all(&mut **tx)
            .await
            .map_err(StoreError::from)?;
    }
    Ok(())
}
