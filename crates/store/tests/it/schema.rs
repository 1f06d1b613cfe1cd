//! Migrations, readiness and closing.

use bourse_store::{InstrumentQuery, Store, StoreError};

use crate::fixtures::{perpetual, symbol};

on_both_backends!(
    migrate_twice_is_a_no_op,
    ready_after_migrate,
    not_migrated_before_migrate,
    unavailable_after_close,
);

async fn migrate_twice_is_a_no_op(store: &Store) {
    store.migrate().await.unwrap();
    store
        .insert_instrument(&perpetual("BTC-PERP"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.readiness().await.unwrap();
    // The second run changed nothing: the row is still there.
    assert_eq!(
        store.get_instrument(&symbol("BTC-PERP")).await.unwrap(),
        Some(perpetual("BTC-PERP"))
    );
}

async fn ready_after_migrate(store: &Store) {
    store.migrate().await.unwrap();
    store.readiness().await.unwrap();
    // Readiness only reads: asking again gives the same answer.
    store.readiness().await.unwrap();
}

async fn not_migrated_before_migrate(store: &Store) {
    assert!(matches!(
        store.readiness().await,
        Err(StoreError::NotMigrated)
    ));
    store.migrate().await.unwrap();
    store.readiness().await.unwrap();
}

async fn unavailable_after_close(store: &Store) {
    store.migrate().await.unwrap();
    store.readiness().await.unwrap();
    store.close().await;
    let started = std::time::Instant::now();
    assert!(matches!(
        store.readiness().await,
        Err(StoreError::Unavailable)
    ));
    assert!(matches!(
        store.get_instrument(&symbol("BTC-PERP")).await,
        Err(StoreError::Unavailable)
    ));
    assert!(matches!(
        store.insert_instrument(&perpetual("BTC-PERP")).await,
        Err(StoreError::Unavailable)
    ));
    let q = InstrumentQuery {
        limit: 10,
        ..InstrumentQuery::default()
    };
    assert!(matches!(
        store.list_instruments(&q).await,
        Err(StoreError::Unavailable)
    ));
    assert!(matches!(
        store.migrate().await,
        Err(StoreError::Unavailable)
    ));
    // A closed pool fails at once rather than after the acquire timeout.
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}
