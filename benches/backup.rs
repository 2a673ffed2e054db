//! Backup and restore throughput (R-SEC-7): a SQLite database with `EIDGATE_BENCH_ROWS`
//! persons (default 50,000, loaded through a restore of synthetic rows), then
//! `backup::write` (snapshot + HSM sealing), `backup::check` (opening every frame) and
//! `backup::restore` into a fresh database, each timed once. The HSM is the embedded
//! SoftHSM token under a temp dir. Run: `cargo bench --bench backup`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use async_trait::async_trait;
use eidgate::config::Config;
use eidgate::store::snapshot::{Cell, Item, SnapshotError, SnapshotHeader, SnapshotSink, SnapshotSource};
use eidgate::store::SqlStore;

/// Captures the header of a snapshot (the schema of a migrated database).
#[derive(Default)]
struct Schema(Option<SnapshotHeader>);

#[async_trait]
impl SnapshotSink for Schema {
    async fn header(&mut self, header: &SnapshotHeader) -> Result<(), SnapshotError> {
        self.0 = Some(header.clone());
        Ok(())
    }
    async fn item(&mut self, _: Item) -> Result<(), SnapshotError> {
        Ok(())
    }
}

/// The audit head seed and `rows` synthetic persons.
struct Synthetic {
    header: SnapshotHeader,
    rows: usize,
    next: usize,
    items: std::collections::VecDeque<Item>,
}

impl Synthetic {
    fn new(header: SnapshotHeader, rows: usize) -> Self {
        let head = header.tables.iter().find(|t| t.name == "audit_head").unwrap();
        let seed = head
            .columns
            .iter()
            .map(|c| match c.as_str() {
                "id" => Cell::Int(1),
                "seq" => Cell::Int(0),
                _ => Cell::Blob("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()),
            })
            .collect();
        let items = [
            Item::Table("audit_head".into()),
            Item::Row(seed),
            Item::Table("persons".into()),
        ]
        .into();
        Self {
            header,
            rows,
            next: 0,
            items,
        }
    }

    fn person(&self, i: usize) -> Vec<Cell> {
        let table = self.header.tables.iter().find(|t| t.name == "persons").unwrap();
        table
            .columns
            .iter()
            .map(|c| match c.as_str() {
                "id" => Cell::Text(uuid::Uuid::new_v4().to_string()),
                "identifier_country" => Cell::Text("LT".into()),
                "identifier_code" => Cell::Text(format!("{i:011}")),
                "given_name" => Cell::Text("Jonas".into()),
                "family_name" => Cell::Text(format!("Jonaitis-{i}")),
                "birthdate" => Cell::Text("1980-01-08".into()),
                "proofing_loa" => Cell::Text("high".into()),
                "attributes" => Cell::Text(r#"{"gender":"male","place_of_birth":{"country":"LT"}}"#.into()),
                "created_at" => Cell::Int(1_760_000_000),
                _ => Cell::Null,
            })
            .collect()
    }
}

#[async_trait]
impl SnapshotSource for Synthetic {
    async fn header(&mut self) -> Result<SnapshotHeader, SnapshotError> {
        Ok(self.header.clone())
    }
    async fn item(&mut self) -> Result<Option<Item>, SnapshotError> {
        if let Some(item) = self.items.pop_front() {
            return Ok(Some(item));
        }
        if self.next == self.rows {
            return Ok(None);
        }
        self.next += 1;
        Ok(Some(Item::Row(self.person(self.next))))
    }
}

fn main() {
    let rows: usize = std::env::var("EIDGATE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(rows));
}

async fn run(rows: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Default::default()
    };
    config.finish().unwrap();
    let (_, hsm) = eidgate::app::open_hsm(config).await.unwrap();
    let source = SqlStore::connect(&format!("sqlite://{}/source.db", dir.path().display()), 4)
        .await
        .unwrap();
    let mut schema = Schema::default();
    source.snapshot(&mut schema).await.unwrap();
    let started = Instant::now();
    source
        .restore(&mut Synthetic::new(schema.0.unwrap(), rows))
        .await
        .unwrap();
    let load = started.elapsed();

    let started = Instant::now();
    let mut file = Vec::new();
    let summary = eidgate::backup::write(&source, hsm.as_ref(), &mut file, 0)
        .await
        .unwrap();
    let backup = started.elapsed();
    assert_eq!(summary.rows["persons"], rows as u64);

    let started = Instant::now();
    eidgate::backup::check(hsm.as_ref(), file.as_slice()).await.unwrap();
    let check = started.elapsed();

    let target = SqlStore::connect(&format!("sqlite://{}/target.db", dir.path().display()), 4)
        .await
        .unwrap();
    let started = Instant::now();
    let restored = eidgate::backup::restore(&target, hsm.as_ref(), file.as_slice())
        .await
        .unwrap();
    let restore = started.elapsed();
    assert_eq!(restored.rows["persons"], rows as u64);

    let mb = file.len() as f64 / 1_048_576.0;
    println!("backup bench: {rows} persons, backup file {mb:.1} MiB (SQLite, SoftHSM AES-GCM)");
    println!("| step | time | rows/s | MiB/s |");
    println!("| --- | ---: | ---: | ---: |");
    for (step, t) in [
        ("load (synthetic restore)", load),
        ("backup write", backup),
        ("check", check),
        ("restore", restore),
    ] {
        let s = t.as_secs_f64();
        println!("| {step} | {:.2} s | {:.0} | {:.1} |", s, rows as f64 / s, mb / s);
    }
}
