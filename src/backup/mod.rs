//! Encrypted, authenticated backups of the whole database, taken while the server runs,
//! and their restore into an empty database (R-SEC-7).
//!
//! The content is a consistent snapshot ([`crate::store::snapshot`]) as JSON lines,
//! sealed with AES-256-GCM inside the HSM under the active `data-wrap-<n>` key (the
//! [`Sealer`]; the key never leaves the token, so a backup opens only where that key
//! exists: the HSM's own backup or replication carries it, see the key ceremony).
//!
//! File format (version 1):
//! ```text
//! EIDGATE-BACKUP 1 <backup id>\n
//! frame*   where frame = kind (1 byte: M, D or E) || length (u32 BE) || sealed bytes
//! ```
//! - `M` (once, first): the manifest: format, backup id, time, eidgate version, engine,
//!   applied migrations, tables and columns in restore order.
//! - `D` (0..n): up to 1 MiB of JSON lines, each a table start or a row.
//! - `E` (once, last): the trailer: number of `D` frames, rows per table, SHA-256 of all
//!   `D` plaintexts.
//!
//! Each frame is sealed with the AAD `eidgate-backup/1/<id>/<kind>/<index>`, so a frame
//! that is changed, moved, dropped or taken from another backup fails to open, and a
//! file cut short has no valid `E` frame. Restore stops at the first such failure, and
//! as it restores in one transaction, nothing is kept.
//!
//! Must not: write any plaintext of the database to the file, or restore a file whose
//! end was not authenticated.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::hsm::{HsmError, Sealer};
use crate::store::snapshot::{Item, RowCounts, SnapshotError, SnapshotHeader, SnapshotSink, SnapshotSource};
use crate::store::SqlStore;

/// The first line's prefix.
pub const MAGIC: &str = "EIDGATE-BACKUP 1";
/// Plaintext bytes per data frame (a frame ends after the line that passes this).
const CHUNK: usize = 1 << 20;
/// The largest frame a reader accepts (a malformed length cannot exhaust memory).
const MAX_FRAME: usize = 64 << 20;
/// The longest first line.
const MAX_MAGIC_LINE: usize = 128;

/// What a backup says about itself (sealed, frame `M`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// File format version (1).
    pub format: u32,
    /// Random id, also in the first line and in every frame's AAD.
    pub backup_id: String,
    /// When the snapshot was taken (UTC seconds).
    pub created_at: i64,
    /// The eidgate version that wrote it.
    pub eidgate_version: String,
    /// Engine, migrations, tables.
    pub snapshot: SnapshotHeader,
}

/// The authenticated end (sealed, frame `E`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trailer {
    /// Number of `D` frames.
    pub chunks: u64,
    /// Rows per table.
    pub rows: RowCounts,
    /// Hex SHA-256 of the concatenated `D` plaintexts.
    pub sha256: String,
}

/// Backup and restore errors.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The database side failed, or the target is not empty, or the schema differs.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The HSM could not seal.
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// File I/O.
    #[error("backup file: {0}")]
    Io(#[from] std::io::Error),
}

/// The result of a backup or a restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The backup id.
    pub backup_id: String,
    /// Rows per table.
    pub rows: RowCounts,
    /// Total rows.
    pub total_rows: u64,
    /// Applied migrations (the newest).
    pub schema_version: Option<i64>,
}

fn aad(id: &str, kind: u8, index: u64) -> Vec<u8> {
    format!("eidgate-backup/1/{id}/{}/{index}", char::from(kind)).into_bytes()
}

/// Writes an encrypted backup of `store` to `out` (R-SEC-7): one consistent snapshot,
/// readable while the server writes.
pub async fn write<W: AsyncWrite + Unpin + Send>(
    store: &SqlStore,
    sealer: &dyn Sealer,
    out: W,
    now: i64,
) -> Result<Summary, BackupError> {
    let backup_id = uuid::Uuid::new_v4().to_string();
    let mut writer = SealingWriter {
        out,
        sealer,
        id: backup_id.clone(),
        now,
        buf: Vec::with_capacity(CHUNK + 4096),
        chunks: 0,
        hasher: Sha256::new(),
        schema_version: None,
    };
    writer
        .out
        .write_all(format!("{MAGIC} {backup_id}\n").as_bytes())
        .await?;
    let rows = store.snapshot(&mut writer).await?;
    writer.flush_chunk().await?;
    let trailer = Trailer {
        chunks: writer.chunks,
        rows: rows.clone(),
        sha256: hex::encode(std::mem::take(&mut writer.hasher).finalize()),
    };
    let bytes = serde_json::to_vec(&trailer).map_err(|e| SnapshotError::Io(e.to_string()))?;
    writer.frame(b'E', 0, &bytes).await?;
    writer.out.flush().await?;
    Ok(Summary {
        backup_id,
        total_rows: rows.values().sum(),
        rows,
        schema_version: writer.schema_version,
    })
}

/// Restores a backup from `input` into `store`, which must be empty (R-SEC-7).
pub async fn restore<R: AsyncRead + Unpin + Send>(
    store: &SqlStore,
    sealer: &dyn Sealer,
    input: R,
) -> Result<Summary, BackupError> {
    let mut reader = OpeningReader::new(input, sealer);
    let rows = store.restore(&mut reader).await?;
    let manifest = reader
        .manifest
        .as_ref()
        .ok_or_else(|| SnapshotError::Io("no manifest".into()))?;
    Ok(Summary {
        backup_id: manifest.backup_id.clone(),
        total_rows: rows.values().sum(),
        rows,
        schema_version: manifest.snapshot.migrations.last().copied(),
    })
}

/// Opens and authenticates every frame of a backup without touching a database, handing
/// the content to `sink`; returns the manifest and the rows per table.
pub async fn read<R: AsyncRead + Unpin + Send>(
    sealer: &dyn Sealer,
    input: R,
    sink: &mut dyn SnapshotSink,
) -> Result<(Manifest, Summary), BackupError> {
    let mut reader = OpeningReader::new(input, sealer);
    let header = reader.header().await?;
    sink.header(&header).await?;
    while let Some(item) = reader.item().await? {
        sink.item(item).await?;
    }
    let manifest = reader
        .manifest
        .clone()
        .ok_or_else(|| SnapshotError::Io("no manifest".into()))?;
    let rows = reader.counts.clone();
    let summary = Summary {
        backup_id: manifest.backup_id.clone(),
        total_rows: rows.values().sum(),
        rows,
        schema_version: manifest.snapshot.migrations.last().copied(),
    };
    Ok((manifest, summary))
}

/// [`read`] without a consumer: checks that the whole backup opens and authenticates.
pub async fn check<R: AsyncRead + Unpin + Send>(
    sealer: &dyn Sealer,
    input: R,
) -> Result<(Manifest, Summary), BackupError> {
    read(sealer, input, &mut Discard).await
}

struct Discard;

#[async_trait]
impl SnapshotSink for Discard {
    async fn header(&mut self, _: &SnapshotHeader) -> Result<(), SnapshotError> {
        Ok(())
    }
    async fn item(&mut self, _: Item) -> Result<(), SnapshotError> {
        Ok(())
    }
}

struct SealingWriter<'a, W> {
    out: W,
    sealer: &'a dyn Sealer,
    id: String,
    now: i64,
    buf: Vec<u8>,
    chunks: u64,
    hasher: Sha256,
    schema_version: Option<i64>,
}

impl<W: AsyncWrite + Unpin + Send> SealingWriter<'_, W> {
    async fn frame(&mut self, kind: u8, index: u64, plaintext: &[u8]) -> Result<(), SnapshotError> {
        let sealed = self
            .sealer
            .seal(plaintext, &aad(&self.id, kind, index))
            .await
            .map_err(|e| SnapshotError::Io(format!("sealing in the HSM: {e}")))?;
        let len = u32::try_from(sealed.len()).map_err(|_| SnapshotError::Io("frame too large".into()))?;
        let io = |e: std::io::Error| SnapshotError::Io(format!("writing the backup: {e}"));
        self.out.write_all(&[kind]).await.map_err(io)?;
        self.out.write_all(&len.to_be_bytes()).await.map_err(io)?;
        self.out.write_all(&sealed).await.map_err(io)?;
        Ok(())
    }

    async fn flush_chunk(&mut self) -> Result<(), SnapshotError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = zeroize::Zeroizing::new(std::mem::take(&mut self.buf));
        self.hasher.update(chunk.as_slice());
        self.chunks += 1;
        self.frame(b'D', self.chunks, &chunk).await
    }
}

#[async_trait]
impl<W: AsyncWrite + Unpin + Send> SnapshotSink for SealingWriter<'_, W> {
    async fn header(&mut self, header: &SnapshotHeader) -> Result<(), SnapshotError> {
        self.schema_version = header.migrations.last().copied();
        let manifest = Manifest {
            format: 1,
            backup_id: self.id.clone(),
            created_at: self.now,
            eidgate_version: env!("CARGO_PKG_VERSION").to_owned(),
            snapshot: header.clone(),
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| SnapshotError::Io(e.to_string()))?;
        self.frame(b'M', 0, &bytes).await
    }

    async fn item(&mut self, item: Item) -> Result<(), SnapshotError> {
        serde_json::to_writer(&mut self.buf, &item).map_err(|e| SnapshotError::Io(e.to_string()))?;
        self.buf.push(b'\n');
        if self.buf.len() >= CHUNK {
            self.flush_chunk().await?;
        }
        Ok(())
    }
}

struct OpeningReader<'a, R> {
    input: R,
    sealer: &'a dyn Sealer,
    id: Option<String>,
    manifest: Option<Manifest>,
    chunk: zeroize::Zeroizing<Vec<u8>>,
    pos: usize,
    chunks: u64,
    hasher: Sha256,
    counts: RowCounts,
    table: Option<String>,
    ended: bool,
}

fn tampered(what: &str) -> SnapshotError {
    SnapshotError::Io(format!(
        "the backup is damaged or was altered ({what}); nothing was restored"
    ))
}

impl<'a, R: AsyncRead + Unpin + Send> OpeningReader<'a, R> {
    fn new(input: R, sealer: &'a dyn Sealer) -> Self {
        Self {
            input,
            sealer,
            id: None,
            manifest: None,
            chunk: zeroize::Zeroizing::new(Vec::new()),
            pos: 0,
            chunks: 0,
            hasher: Sha256::new(),
            counts: BTreeMap::new(),
            table: None,
            ended: false,
        }
    }

    /// Reads and opens the next frame: its kind and plaintext; `None` at end of file. A
    /// `D` frame must be number `next_data`; `M` and `E` frames are number 0.
    async fn frame(&mut self, next_data: u64) -> Result<Option<(u8, zeroize::Zeroizing<Vec<u8>>)>, SnapshotError> {
        let id = self.id.clone().ok_or_else(|| tampered("no header"))?;
        let mut kind = [0u8; 1];
        match self.input.read_exact(&mut kind).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(SnapshotError::Io(format!("reading the backup: {e}"))),
        }
        let mut len = [0u8; 4];
        self.input
            .read_exact(&mut len)
            .await
            .map_err(|_| tampered("truncated frame"))?;
        let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
        if len > MAX_FRAME {
            return Err(tampered("frame length"));
        }
        let mut sealed = vec![0u8; len];
        self.input
            .read_exact(&mut sealed)
            .await
            .map_err(|_| tampered("truncated frame"))?;
        let plain = self
            .sealer
            .open(&sealed, &aad(&id, kind[0], if kind[0] == b'D' { next_data } else { 0 }))
            .await
            .map_err(|_| tampered("a frame does not authenticate"))?;
        Ok(Some((kind[0], plain)))
    }

    async fn read_magic(&mut self) -> Result<(), SnapshotError> {
        let mut line = Vec::with_capacity(64);
        loop {
            let mut byte = [0u8; 1];
            self.input
                .read_exact(&mut byte)
                .await
                .map_err(|_| SnapshotError::Io("not an eidgate backup (no header line)".into()))?;
            if byte[0] == b'\n' {
                break;
            }
            line.push(byte[0]);
            if line.len() > MAX_MAGIC_LINE {
                return Err(SnapshotError::Io("not an eidgate backup".into()));
            }
        }
        let line = String::from_utf8(line).map_err(|_| SnapshotError::Io("not an eidgate backup".into()))?;
        let id = line
            .strip_prefix(MAGIC)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or_else(|| SnapshotError::Io("not an eidgate backup of format 1".into()))?;
        self.id = Some(id.to_owned());
        Ok(())
    }

    fn next_line(&mut self) -> Option<Result<Item, SnapshotError>> {
        if self.pos >= self.chunk.len() {
            return None;
        }
        let rest = &self.chunk[self.pos..];
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let line = &rest[..end];
        self.pos += end + 1;
        Some(serde_json::from_slice::<Item>(line).map_err(|_| tampered("a line does not parse")))
    }
}

#[async_trait]
impl<R: AsyncRead + Unpin + Send> SnapshotSource for OpeningReader<'_, R> {
    async fn header(&mut self) -> Result<SnapshotHeader, SnapshotError> {
        self.read_magic().await?;
        let (kind, plain) = self.frame(0).await?.ok_or_else(|| tampered("no manifest"))?;
        if kind != b'M' {
            return Err(tampered("the first frame is not the manifest"));
        }
        let manifest: Manifest = serde_json::from_slice(&plain).map_err(|_| tampered("manifest"))?;
        if manifest.format != 1 || Some(&manifest.backup_id) != self.id.as_ref() {
            return Err(tampered("manifest id"));
        }
        let header = manifest.snapshot.clone();
        self.manifest = Some(manifest);
        Ok(header)
    }

    async fn item(&mut self) -> Result<Option<Item>, SnapshotError> {
        loop {
            if self.ended {
                return Ok(None);
            }
            if let Some(item) = self.next_line() {
                let item = item?;
                match &item {
                    Item::Table(name) => {
                        self.counts.insert(name.clone(), 0);
                        self.table = Some(name.clone());
                    }
                    Item::Row(_) => {
                        let table = self.table.as_ref().ok_or_else(|| tampered("a row before any table"))?;
                        if let Some(n) = self.counts.get_mut(table) {
                            *n += 1;
                        }
                    }
                }
                return Ok(Some(item));
            }
            // The next frame: data (numbered from 1) or the end.
            let next = self.chunks + 1;
            let (kind, plain) = self
                .frame(next)
                .await?
                .ok_or_else(|| tampered("the end frame is missing: the file was cut short"))?;
            match kind {
                b'D' => {
                    self.hasher.update(plain.as_slice());
                    self.chunks = next;
                    self.chunk = plain;
                    self.pos = 0;
                }
                b'E' => {
                    let trailer: Trailer = serde_json::from_slice(&plain).map_err(|_| tampered("trailer"))?;
                    let digest = hex::encode(std::mem::take(&mut self.hasher).finalize());
                    if trailer.chunks != self.chunks || trailer.sha256 != digest || trailer.rows != self.counts {
                        return Err(tampered("the trailer does not match the content"));
                    }
                    let mut extra = [0u8; 1];
                    if self
                        .input
                        .read(&mut extra)
                        .await
                        .map_err(|e| SnapshotError::Io(e.to_string()))?
                        != 0
                    {
                        return Err(tampered("bytes after the end frame"));
                    }
                    self.ended = true;
                }
                _ => return Err(tampered("a frame out of place")),
            }
        }
    }
}
