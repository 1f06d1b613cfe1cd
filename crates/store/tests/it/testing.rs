//! The test databases themselves: they must not outlive their test.

use bourse_store::testing::{DEFAULT_TEST_PG_URL, TestDatabase};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

async fn postgres_database_exists(name: &str) -> bool {
    let admin_url =
        std::env::var("BOURSE_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_TEST_PG_URL.to_owned());
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    let exists = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    exists
}

fn database_name(db: &TestDatabase) -> String {
    let name = db.url().rsplit('/').next().unwrap().to_owned();
    assert!(name.starts_with("bourse_test_"), "{name}");
    name
}

#[tokio::test]
async fn postgres_database_is_dropped_by_cleanup() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let name = database_name(&db);
    assert!(postgres_database_exists(&name).await);
    db.cleanup().await;
    assert!(!postgres_database_exists(&name).await);
}

#[tokio::test]
async fn postgres_database_is_dropped_when_a_test_forgets_cleanup() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let name = database_name(&db);
    // A session still open on it, as after a failed assertion in a test.
    let mut session = PgConnection::connect(db.url()).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut session).await.unwrap();
    // Dropped inside this runtime, without awaiting anything.
    drop(db);
    assert!(!postgres_database_exists(&name).await);
    drop(session);
}

#[tokio::test]
async fn sqlite_folder_is_removed_with_the_database() {
    let db = TestDatabase::sqlite();
    let path = std::path::PathBuf::from(db.url().strip_prefix("sqlite://").unwrap());
    let store = bourse_store::Store::connect(db.url()).await.unwrap();
    store.close().await;
    assert!(path.exists());
    db.cleanup().await;
    assert!(!path.parent().unwrap().exists());
}
