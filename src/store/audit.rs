//! The audit chain's integrity data (R-LOG-2, R-LOG-4, R-LOG-6): keyset paging over the
//! records, the chain head, signed checkpoints and prune anchors, and the cursors of the
//! jobs that read the chain (external sink and alerts).
//!
//! Checkpoints are not chained records: they sign the chain. The HSM signs, the caller
//! (`audit::checkpoint`) hands the signed value here.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::rows::{self, audit_columns};
use super::sql::SqlStore;
use super::{AuditRepo, Backend, Store as _, StoreError};
use crate::audit::{AuditEvent, AuditRecord, Checkpoint, CheckpointKind, Link};

/// Records with `seq` in `[$1, $2)`.
const SELECT_AUDIT: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit_log WHERE seq >= $1 AND seq < $2 ORDER BY seq"
);
const SELECT_AUDIT_AFTER: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
);
const SELECT_HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";
const INSERT_CHECKPOINT: &str = "INSERT INTO audit_checkpoints \
     (kind, seq, hash, time, kid, signature, chain_pos, records, prev_seq, prev_digest) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
/// Anchors sort before checkpoints at the same seq ("prune" > "checkpoint" would not).
const SELECT_CHECKPOINTS: &str = "SELECT kind, seq, hash, time, kid, signature, chain_pos, records, prev_seq, \
                                  prev_digest FROM audit_checkpoints \
                                  ORDER BY seq, CASE kind WHEN 'prune' THEN 0 ELSE 1 END";
/// The newest of the signed chain (served by the unique index on `chain_pos`).
const SELECT_CHAIN_TIP: &str = "SELECT kind, seq, hash, time, kid, signature, chain_pos, records, prev_seq, \
                                prev_digest FROM audit_checkpoints WHERE chain_pos IS NOT NULL \
                                ORDER BY chain_pos DESC LIMIT 1";
const DELETE_PRUNED: &str = "DELETE FROM audit_log WHERE seq <= $1";
/// Served by the primary key `(kind, seq)`.
const SELECT_LAST_CHECKPOINT: &str = "SELECT kind, seq, hash, time, kid, signature, chain_pos, records, \
                                      prev_seq, prev_digest FROM audit_checkpoints \
                                      WHERE kind = $1 ORDER BY seq DESC LIMIT 1";
/// The first checkpoint at or after a seq (served by the primary key `(kind, seq)`).
const SELECT_COVERING: &str = "SELECT kind, seq, hash, time, kid, signature, chain_pos, records, prev_seq, \
                               prev_digest FROM audit_checkpoints WHERE kind = 'checkpoint' AND seq >= $1 \
                               ORDER BY seq LIMIT 1";
const SELECT_CHECKPOINTS_IN: &str = "SELECT kind, seq, hash, time, kid, signature, chain_pos, records, \
                                     prev_seq, prev_digest FROM audit_checkpoints WHERE seq > $1 AND seq <= $2 \
                                     ORDER BY seq, CASE kind WHEN 'prune' THEN 0 ELSE 1 END";
const SELECT_CURSOR: &str = "SELECT value FROM audit_cursors WHERE name = $1";
const UPSERT_CURSOR: &str = "INSERT INTO audit_cursors (name, value) VALUES ($1, $2) \
                             ON CONFLICT (name) DO UPDATE SET value = excluded.value";

async fn audit_after(store: &SqlStore, after: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    let found: Vec<AnyRow> = sqlx::query(SELECT_AUDIT_AFTER)
        .bind(after)
        .bind(limit)
        .fetch_all(&store.pool)
        .await?;
    found.iter().map(rows::audit_record).collect()
}

async fn audit_head(store: &SqlStore) -> Result<(i64, [u8; 32]), StoreError> {
    let row = sqlx::query(SELECT_HEAD)
        .fetch_optional(&store.pool)
        .await?
        .ok_or_else(|| StoreError::Corrupt("audit_head row is missing".into()))?;
    Ok((row.try_get("seq")?, rows::hash32(row.try_get("hash")?)?))
}

async fn insert_checkpoint(store: &SqlStore, checkpoint: &Checkpoint) -> Result<(), StoreError> {
    let link = checkpoint.link.as_ref();
    sqlx::query(INSERT_CHECKPOINT)
        .bind(checkpoint.kind.as_str())
        .bind(checkpoint.seq)
        .bind(checkpoint.hash.to_vec())
        .bind(checkpoint.time)
        .bind(checkpoint.kid.as_str())
        .bind(checkpoint.signature.clone())
        .bind(link.map(|l| l.position))
        .bind(link.map(|l| l.records))
        .bind(link.map(|l| l.prev_seq))
        .bind(link.map(|l| l.prev.to_vec()))
        .execute(&store.pool)
        .await?;
    Ok(())
}

async fn chain_tip(store: &SqlStore) -> Result<Option<Checkpoint>, StoreError> {
    let row = sqlx::query(SELECT_CHAIN_TIP).fetch_optional(&store.pool).await?;
    row.as_ref().map(checkpoint).transpose()
}

async fn checkpoints(store: &SqlStore) -> Result<Vec<Checkpoint>, StoreError> {
    let found: Vec<AnyRow> = sqlx::query(SELECT_CHECKPOINTS).fetch_all(&store.pool).await?;
    found.iter().map(checkpoint).collect()
}

async fn last_checkpoint(store: &SqlStore, kind: CheckpointKind) -> Result<Option<Checkpoint>, StoreError> {
    let row = sqlx::query(SELECT_LAST_CHECKPOINT)
        .bind(kind.as_str())
        .fetch_optional(&store.pool)
        .await?;
    row.as_ref().map(checkpoint).transpose()
}

async fn checkpoint_covering(store: &SqlStore, seq: i64) -> Result<Option<Checkpoint>, StoreError> {
    let row = sqlx::query(SELECT_COVERING)
        .bind(seq)
        .fetch_optional(&store.pool)
        .await?;
    row.as_ref().map(checkpoint).transpose()
}

async fn checkpoints_in(store: &SqlStore, after: i64, up_to: i64) -> Result<Vec<Checkpoint>, StoreError> {
    let found: Vec<AnyRow> = sqlx::query(SELECT_CHECKPOINTS_IN)
        .bind(after)
        .bind(up_to)
        .fetch_all(&store.pool)
        .await?;
    found.iter().map(checkpoint).collect()
}

fn checkpoint(row: &AnyRow) -> Result<Checkpoint, StoreError> {
    let kind: String = row.try_get("kind")?;
    let position: Option<i64> = row.try_get("chain_pos")?;
    let link = match position {
        None => None,
        Some(position) => Some(Link {
            position,
            records: row
                .try_get::<Option<i64>, _>("records")?
                .ok_or_else(|| StoreError::Corrupt("chained checkpoint without records".into()))?,
            prev_seq: row
                .try_get::<Option<i64>, _>("prev_seq")?
                .ok_or_else(|| StoreError::Corrupt("chained checkpoint without prev_seq".into()))?,
            prev: rows::hash32(
                row.try_get::<Option<Vec<u8>>, _>("prev_digest")?
                    .ok_or_else(|| StoreError::Corrupt("chained checkpoint without prev_digest".into()))?,
            )?,
        }),
    };
    Ok(Checkpoint {
        kind: CheckpointKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("checkpoint kind {kind:?}")))?,
        seq: row.try_get("seq")?,
        hash: rows::hash32(row.try_get("hash")?)?,
        time: row.try_get("time")?,
        kid: row.try_get("kid")?,
        signature: row.try_get("signature")?,
        link,
    })
}

async fn audit_cursor(store: &SqlStore, name: &str) -> Result<i64, StoreError> {
    let row = sqlx::query(SELECT_CURSOR)
        .bind(name)
        .fetch_optional(&store.pool)
        .await?;
    match row {
        Some(row) => Ok(row.try_get("value")?),
        None => Ok(0),
    }
}

async fn set_audit_cursor(store: &SqlStore, name: &str, value: i64) -> Result<(), StoreError> {
    sqlx::query(UPSERT_CURSOR)
        .bind(name)
        .bind(value)
        .execute(&store.pool)
        .await?;
    Ok(())
}

async fn prune_audit(store: &SqlStore, up_to: i64) -> Result<u64, StoreError> {
    let mut conn = store.pool.acquire().await?;
    let sqlite = store.backend() == Backend::Sqlite;
    if sqlite {
        // Overwrite the freed pages with zeros: the records are destroyed, not just unlinked.
        sqlx::query("PRAGMA secure_delete = ON").execute(&mut *conn).await?;
    }
    let deleted = sqlx::query(DELETE_PRUNED).bind(up_to).execute(&mut *conn).await;
    if sqlite {
        sqlx::query("PRAGMA secure_delete = OFF").execute(&mut *conn).await?;
    }
    Ok(deleted?.rows_affected())
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

    async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        audit_after(self, after, limit).await
    }

    async fn audit_head(&self) -> Result<(i64, [u8; 32]), StoreError> {
        audit_head(self).await
    }

    async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        insert_checkpoint(self, checkpoint).await
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        checkpoints(self).await
    }

    async fn last_checkpoint(&self, kind: CheckpointKind) -> Result<Option<Checkpoint>, StoreError> {
        last_checkpoint(self, kind).await
    }

    async fn chain_tip(&self) -> Result<Option<Checkpoint>, StoreError> {
        chain_tip(self).await
    }

    async fn checkpoint_covering(&self, seq: i64) -> Result<Option<Checkpoint>, StoreError> {
        checkpoint_covering(self, seq).await
    }

    async fn checkpoints_in(&self, after: i64, up_to: i64) -> Result<Vec<Checkpoint>, StoreError> {
        checkpoints_in(self, after, up_to).await
    }

    async fn audit_cursor(&self, name: &str) -> Result<i64, StoreError> {
        audit_cursor(self, name).await
    }

    async fn set_audit_cursor(&self, name: &str, value: i64) -> Result<(), StoreError> {
        set_audit_cursor(self, name, value).await
    }

    async fn prune_audit(&self, up_to: i64) -> Result<u64, StoreError> {
        prune_audit(self, up_to).await
    }
}
