//! Store contract, the engine: ping and reconnect, connection errors, migrations.

use eidgate::domain::ids::PersonId;
use eidgate::domain::means::MeansStatus;
use eidgate::store::{AuditRepo, Backend, LifecycleRepo, SqlStore, Store, StoreError};

use super::*;
use crate::support::db::databases;

#[tokio::test]
async fn ping_reports_the_engine_and_reconnecting_keeps_the_data() {
    for (engine, url, store) in stores().await {
        store.ping().await.unwrap();
        let expected = if engine == "postgres" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        assert_eq!(store.backend(), expected);
        store.append(event("system.started", "s")).await.unwrap();
        store.close().await;
        // Migrations are idempotent and the chain survives a restart.
        let again = SqlStore::connect(&url, 2).await.unwrap();
        assert_eq!(
            again.append(event("system.started", "s2")).await.unwrap(),
            2,
            "{engine}"
        );
        assert_eq!(verified_chain(engine, &again).await.len(), 2, "{engine}");
        again.close().await;
    }
}

#[tokio::test]
async fn connect_errors_are_unavailable_and_hide_the_password() {
    // A server that hangs up at once (a refused connection would be retried until the
    // acquire timeout, as at a database restart).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let err = SqlStore::connect(&format!("postgres://eidgate:s3cr3t-pw@127.0.0.1:{port}/none"), 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cr3t-pw"));
    let err = SqlStore::connect("mysql://root:s3cr3t-pw@localhost/x", 1)
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("s3cr3t-pw"));
}

#[tokio::test]
async fn r_log_1_migration_2_upgrades_a_version_1_database_and_keeps_its_rows() {
    sqlx::any::install_default_drivers();
    for (engine, url) in databases().await {
        // Only 0001 applied, as a database of the previous release.
        let first = tempfile::tempdir().unwrap();
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(engine)
            .join("0001_init.sql");
        std::fs::copy(&source, first.path().join("0001_init.sql")).unwrap();
        let (holder, old) = {
            let options: sqlx::any::AnyConnectOptions =
                format!("{url}{}", if engine == "sqlite" { "?mode=rwc" } else { "" })
                    .parse()
                    .unwrap();
            let pool = sqlx::any::AnyPoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .unwrap();
            sqlx::migrate::Migrator::new(first.path())
                .await
                .unwrap()
                .run(&pool)
                .await
                .unwrap();
            let holder = PersonId::new();
            sqlx::query(
                "INSERT INTO persons (id, identifier_country, identifier_code, given_name, family_name, birthdate, \
                 proofing_loa, attributes, created_at) VALUES ($1, 'LT', '99', 'A', 'B', '1980-01-01', 'high', '{}', 1)",
            )
            .bind(holder.to_string())
            .execute(&pool)
            .await
            .unwrap();
            let old = means(holder, MeansStatus::Active);
            sqlx::query(
                "INSERT INTO means (id, holder_id, kind, loa, status, valid_from, valid_until, version, credential, \
                 created_at, updated_at) VALUES ($1, $2, 'totp', 'substantial', 'active', $3, $4, 1, NULL, 1, 1)",
            )
            .bind(old.id.to_string())
            .bind(holder.to_string())
            .bind(old.valid_from)
            .bind(old.valid_until)
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
            (holder, old)
        };

        let store = SqlStore::connect(&url, 2)
            .await
            .unwrap_or_else(|e| panic!("{engine}: {e}"));
        let record = store.means_record(old.id).await.unwrap().unwrap();
        assert_eq!(record.means, old, "{engine}");
        assert_eq!(
            (
                record.registered_by,
                record.approved_by,
                record.activation_code,
                record.revocation_secret
            ),
            (None, None, None, None),
            "{engine}: imported means have no lifecycle data"
        );
        assert_eq!(
            (record.activation_attempts, record.revocation_failures),
            (0, 0),
            "{engine}"
        );
        assert!(store.acceptances(holder).await.unwrap().is_empty(), "{engine}");
        store.close().await;
    }
}

#[test]
fn migrations_folders_have_identical_file_names() {
    let names = |engine: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(engine);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}
