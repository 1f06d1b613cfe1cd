//! The store suite. Every case in `schema`, `instruments`, `trading` and the identity
//! modules runs twice, on SQLite and on PostgreSQL, each time against a fresh database
//! that is removed afterwards.
//!
//! PostgreSQL is `BOURSE_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! When it is not reachable the PostgreSQL half is skipped with a note on stderr, except
//! with `CI=true`, where it fails.

use bourse_store::testing::TestDatabase;
use bourse_store::{Backend, Store};

/// Generates, for each named `async fn case(store: &Store)` of the calling module, a test
/// `sqlite::case` and a test `postgres::case`, each on a fresh database. With a leading
/// `multi_thread:` the tests run on a multi-threaded runtime (for cases that race
/// requests against each other).
macro_rules! on_both_backends {
    (multi_thread: $($case:ident),+ $(,)?) => {
        on_both_backends!(@tests [tokio::test(flavor = "multi_thread", worker_threads = 4)] $($case),+);
    };
    (@tests [$test:meta] $($case:ident),+) => {
        mod sqlite {
            $(
                #[$test]
                async fn $case() {
                    let Some((db, store)) = crate::fresh(bourse_store::Backend::Sqlite).await else {
                        return;
                    };
                    super::$case(&store).await;
                    crate::finish(db, store).await;
                }
            )+
        }
        mod postgres {
            $(
                #[$test]
                async fn $case() {
                    let Some((db, store)) = crate::fresh(bourse_store::Backend::Postgres).await else {
                        return;
                    };
                    super::$case(&store).await;
                    crate::finish(db, store).await;
                }
            )+
        }
    };
    ($($case:ident),+ $(,)?) => {
        on_both_backends!(@tests [tokio::test] $($case),+);
    };
}

mod addresses;
mod admin_keys;
mod connect;
mod fixtures;
mod idempotency;
mod instruments;
mod login_throttle;
mod mfa_challenges;
mod raw;
mod refresh_tokens;
mod schema;
mod sessions;
mod signing_keys;
mod testing;
mod totp;
mod trading;
mod users;

/// A fresh database on `backend` and a store connected to it (not migrated), or `None`
/// when PostgreSQL is not reachable outside CI.
pub async fn fresh(backend: Backend) -> Option<(TestDatabase, Store)> {
    let db = match backend {
        Backend::Sqlite => TestDatabase::sqlite(),
        Backend::Postgres => TestDatabase::postgres().await?,
    };
    let store = Store::connect(db.url())
        .await
        .expect("connect to a fresh test database");
    assert_eq!(store.backend(), backend);
    Some((db, store))
}

/// Closes the store, then removes the database.
pub async fn finish(db: TestDatabase, store: Store) {
    store.close().await;
    db.cleanup().await;
}
