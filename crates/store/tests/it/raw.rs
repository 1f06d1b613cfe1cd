//! Cases that change the database behind the store's back, with plain SQL that both
//! backends accept: rows written by hand, migrations recorded as failed or missing.

use bourse_store::testing::TestDatabase;
use bourse_store::{
    Backend, InstrumentQuery, RotateOutcome, Store, StoreError, UserRecord, UserStatus,
};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;

use crate::fixtures::{at, hash, new_session, new_user, perpetual, symbol};

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

#[tokio::test]
async fn sqlite_deleting_a_user_removes_everything_of_theirs() {
    run(
        Backend::Sqlite,
        deleting_a_user_removes_everything_of_theirs,
    )
    .await;
}

#[tokio::test]
async fn postgres_deleting_a_user_removes_everything_of_theirs() {
    run(
        Backend::Postgres,
        deleting_a_user_removes_everything_of_theirs,
    )
    .await;
}

/// The identity tables hang off `users` with ON DELETE CASCADE: an account removed by
/// hand (there is no API for it) leaves no session, token, secret or code behind.
async fn deleting_a_user_removes_everything_of_theirs(db: &TestDatabase, store: &Store) {
    store.migrate().await.unwrap();
    // The id the raw SQL below names.
    let gone = UserRecord {
        id: "user-to-delete".to_owned(),
        email: "gone@example.com".to_owned(),
        password_hash: "hash".to_owned(),
        status: UserStatus::Active,
        created_at: at(0),
        password_changed_at: at(0),
        mfa_changed_at: None,
    };
    store.insert_user(&gone).await.unwrap();
    let kept = new_user(store, "kept@example.com").await;
    for user in [&gone.id, &kept.id] {
        let session = new_session(store, user, at(0)).await;
        store
            .insert_refresh_token(&hash(&format!("t-{user}")), &session.id, at(0), at(1000))
            .await
            .unwrap();
        store
            .put_pending_totp(user, b"sealed", at(0))
            .await
            .unwrap();
        store
            .confirm_totp(user, 1, at(0), &[hash(&format!("rc-{user}"))])
            .await
            .unwrap();
        store
            .insert_mfa_challenge(&hash(&format!("c-{user}")), user, at(1000))
            .await
            .unwrap();
    }
    let gone_session = store.list_sessions(&gone.id, 10).await.unwrap()[0]
        .id
        .clone();

    execute(db, "DELETE FROM users WHERE id = 'user-to-delete'").await;

    assert_eq!(store.get_user(&gone.id).await.unwrap(), None);
    assert_eq!(store.get_session(&gone_session).await.unwrap(), None);
    assert!(store.list_sessions(&gone.id, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .rotate_refresh_token(&hash(&format!("t-{}", gone.id)), &hash("n1"), at(1), at(2))
            .await
            .unwrap(),
        RotateOutcome::Unknown
    );
    assert_eq!(store.get_totp(&gone.id).await.unwrap(), None);
    assert_eq!(store.remaining_recovery_codes(&gone.id).await.unwrap(), 0);
    assert_eq!(
        store
            .get_mfa_challenge(&hash(&format!("c-{}", gone.id)), at(1))
            .await
            .unwrap(),
        None
    );
    // The other user keeps everything.
    assert!(store.get_user(&kept.id).await.unwrap().is_some());
    assert_eq!(store.list_sessions(&kept.id, 10).await.unwrap().len(), 1);
    assert!(matches!(
        store
            .rotate_refresh_token(&hash(&format!("t-{}", kept.id)), &hash("n2"), at(1), at(2))
            .await
            .unwrap(),
        RotateOutcome::Rotated { .. }
    ));
    assert!(store.get_totp(&kept.id).await.unwrap().is_some());
    assert_eq!(store.remaining_recovery_codes(&kept.id).await.unwrap(), 1);
    assert!(
        store
            .get_mfa_challenge(&hash(&format!("c-{}", kept.id)), at(1))
            .await
            .unwrap()
            .is_some()
    );
}
