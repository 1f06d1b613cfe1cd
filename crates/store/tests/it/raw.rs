//! Cases that change the database behind the store's back, with plain SQL that both
//! backends accept: rows written by hand, migrations recorded as failed or missing.

use bourse_store::testing::TestDatabase;
use bourse_store::{Backend, InstrumentQuery, Store, StoreError};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;

use crate::fixtures::{perpetual, symbol};

/// Runs `case` on a fresh database of `backend`, which it gets too, for raw SQL.
async fn run(backend: Backend, case: impl AsyncFnOnce(&TestDatabase, &Store)) {
    let Some((db, store)) = crate::fresh(backend).await else {
        return;
    };
    case(&db, &store).await;
    crate::finish(db, store).await;
}

/// Executes `sql` on its own connection, as another program would.
async fn execute(db: &TestDatabase, sql: &'static str) {
    match db.backend() {
        Backend::Sqlite => {
            let mut conn = SqliteConnection::connect(db.url()).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = PgConnection::connect(db.url()).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
}

#[tokio::test]
async fn sqlite_rows_that_are_not_instruments_are_internal_errors() {
    run(
        Backend::Sqlite,
        rows_that_are_not_instruments_are_internal_errors,
    )
    .await;
}

#[tokio::test]
async fn postgres_rows_that_are_not_instruments_are_internal_errors() {
    run(
        Backend::Postgres,
        rows_that_are_not_instruments_are_internal_errors,
    )
    .await;
}

async fn rows_that_are_not_instruments_are_internal_errors(db: &TestDatabase, store: &Store) {
    store.migrate().await.unwrap();
    for s in ["A-PERP", "Z-PERP"] {
        store.insert_instrument(&perpetual(s)).await.unwrap();
    }
    // Both pass the table's checks; neither is a valid instrument (a lower-case asset
    // code; a minimum order size above the maximum).
    execute(
        db,
        "INSERT INTO instruments (symbol, kind, base_asset, quote_asset, settlement_asset, \
         tick_size, lot_size, min_order_size, max_order_size, contract_multiplier, status) \
         VALUES ('BAD-ASSET', 'perpetual', 'btc', 'USD', 'USDC', '0.5', '0.001', '0.001', \
         '1000', '1', 'active'), \
         ('BAD-SIZES', 'perpetual', 'BTC', 'USD', 'USDC', '0.5', '0.001', '10', '1', '1', \
         'active')",
    )
    .await;
    for bad in ["BAD-ASSET", "BAD-SIZES"] {
        assert!(
            matches!(
                store.get_instrument(&symbol(bad)).await,
                Err(StoreError::Internal)
            ),
            "{bad}"
        );
    }
    assert_eq!(
        store.get_instrument(&symbol("A-PERP")).await.unwrap(),
        Some(perpetual("A-PERP"))
    );
    let all = InstrumentQuery {
        limit: 10,
        ..InstrumentQuery::default()
    };
    assert!(matches!(
        store.list_instruments(&all).await,
        Err(StoreError::Internal)
    ));
    // Pages that do not contain a bad row still work; the look-ahead row that only
    // tells whether there is a next page is not converted.
    let first = store
        .list_instruments(&InstrumentQuery {
            limit: 1,
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!(first.items, [perpetual("A-PERP")]);
    assert_eq!(first.next, Some(symbol("A-PERP")));
    let last = store
        .list_instruments(&InstrumentQuery {
            after: Some(symbol("BAD-SIZES")),
            ..all
        })
        .await
        .unwrap();
    assert_eq!(last.items, [perpetual("Z-PERP")]);
}

#[tokio::test]
async fn sqlite_failed_or_missing_migration_is_not_migrated() {
    run(Backend::Sqlite, failed_or_missing_migration_is_not_migrated).await;
}

#[tokio::test]
async fn postgres_failed_or_missing_migration_is_not_migrated() {
    run(
        Backend::Postgres,
        failed_or_missing_migration_is_not_migrated,
    )
    .await;
}

async fn failed_or_missing_migration_is_not_migrated(db: &TestDatabase, store: &Store) {
    store.migrate().await.unwrap();
    store.readiness().await.unwrap();

    execute(db, "UPDATE _sqlx_migrations SET success = FALSE").await;
    assert!(matches!(
        store.readiness().await,
        Err(StoreError::NotMigrated)
    ));
    // sqlx refuses to migrate over a failed ("dirty") migration; the store says so
    // without details.
    assert!(matches!(store.migrate().await, Err(StoreError::Internal)));

    execute(db, "DELETE FROM _sqlx_migrations").await;
    assert!(matches!(
        store.readiness().await,
        Err(StoreError::NotMigrated)
    ));
}
