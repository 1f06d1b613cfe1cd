//! Opening a store: URLs, SQLite settings, unreachable servers.

use std::time::{Duration, Instant};

use bourse_store::testing::TestDatabase;
use bourse_store::{Backend, InstrumentQuery, Store, StoreError};
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

use crate::fixtures::{perpetual, symbol};

#[tokio::test]
async fn unsupported_urls_are_bad_and_do_not_echo_passwords() {
    for url in [
        "mysql://root:hunter2@127.0.0.1:3306/bourse",
        "mariadb://root:hunter2@db/bourse",
        "POSTGRES://u:hunter2@127.0.0.1/bourse",
        "http://u:hunter2@example.invalid/",
        "root:hunter2@127.0.0.1/bourse",
        "",
        "sqlite://",
        // The right scheme, but not a URL sqlx can read (the port is not a number).
        "postgres://u:hunter2@127.0.0.1:port/bourse",
    ] {
        match Store::connect(url).await {
            Err(StoreError::BadUrl(message)) => {
                assert!(!message.contains("hunter2"), "{url:?} gave {message:?}");
                let shown = StoreError::BadUrl(message).to_string();
                assert!(!shown.contains("hunter2"), "{shown}");
            }
            other => panic!("{url:?}: expected BadUrl, got {other:?}"),
        }
    }
    match Store::connect("mysql://root:hunter2@127.0.0.1:3306/bourse").await {
        Err(StoreError::BadUrl(message)) => {
            assert!(
                message.contains("mysql://***@127.0.0.1:3306/bourse"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_within_seconds() {
    let started = Instant::now();
    // Port 1 on loopback: nothing listens there.
    let result = Store::connect("postgres://postgres:hunter2@127.0.0.1:1/bourse").await;
    assert!(matches!(result, Err(StoreError::Unavailable)), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() {
    let db = TestDatabase::sqlite();
    let path = db.url().strip_prefix("sqlite://").unwrap().to_owned();
    assert!(!std::path::Path::new(&path).exists());
    let store = Store::connect(db.url()).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(std::path::Path::new(&path).exists());
    // The journal mode is stored in the file: another connection sees it.
    let mut other = SqliteConnection::connect(db.url()).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    other.close().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn sqlite_url_without_slashes_opens_the_same_file() {
    let db = TestDatabase::sqlite();
    let path = db.url().strip_prefix("sqlite://").unwrap().to_owned();
    let store = Store::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    store
        .insert_instrument(&perpetual("BTC-PERP"))
        .await
        .unwrap();
    store.close().await;

    let again = Store::connect(&format!("sqlite:{path}")).await.unwrap();
    again.readiness().await.unwrap();
    assert_eq!(
        again.get_instrument(&symbol("BTC-PERP")).await.unwrap(),
        Some(perpetual("BTC-PERP"))
    );
    again.close().await;
}

#[tokio::test]
async fn sqlite_in_memory_database_is_shared_by_the_pool() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    store.readiness().await.unwrap();
    assert_eq!(
        store
            .seed_demo_instruments(time::macros::datetime!(2026-11-20 12:00 UTC))
            .await
            .unwrap(),
        5
    );
    // Many reads at once use several pooled connections; all see the same database.
    let reads: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .list_instruments(&InstrumentQuery {
                        limit: 10,
                        ..InstrumentQuery::default()
                    })
                    .await
                    .map(|page| page.items.len())
            })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap().unwrap(), 5);
    }
    store.close().await;
}

#[tokio::test]
async fn postgres_readiness_is_unavailable_once_the_database_is_gone() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let store = Store::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    store.readiness().await.unwrap();
    // Drops the database WITH (FORCE), ending the store's sessions.
    db.cleanup().await;
    let started = Instant::now();
    assert!(matches!(
        store.readiness().await,
        Err(StoreError::Unavailable)
    ));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    store.close().await;
}

#[tokio::test]
async fn store_debug_shows_no_url() {
    let db = TestDatabase::sqlite();
    let store = Store::connect(db.url()).await.unwrap();
    let shown = format!("{store:?}");
    assert!(shown.contains("Sqlite"), "{shown}");
    assert!(!shown.contains(db.url()), "{shown}");
    store.close().await;
}
