//! Liveness and readiness, including a database that goes away.

use bourse_testkit::{Db, TestApp};

use crate::assert_problem;

#[tokio::test]
async fn healthz_and_readyz_answer_200_when_all_is_well() {
    let app = TestApp::spawn().await;
    for base in [app.url(""), app.admin_url("")] {
        let r = app
            .client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = app
            .client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["status"],
            "ready"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn readyz_is_503_when_the_postgres_database_is_gone() {
    let Some(app) = TestApp::spawn_with(Db::Postgres, |_| {}).await else {
        return;
    };
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Drop the database out from under the running server.
    let url = app.database_url().unwrap().to_owned();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let admin = url.rsplit_once('/').unwrap().0.to_owned() + "/postgres";
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    // The name is ours (bourse_test_<uuid>), not user input.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    let retry = r.headers().get("retry-after").cloned();
    let p = assert_problem(r, 503, "not_ready").await;
    assert!(retry.is_some());
    let detail = p["detail"].as_str().unwrap();
    assert!(
        !detail.contains("postgres://"),
        "no connection string leaks: {detail}"
    );
    // Liveness is unaffected.
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn readyz_is_503_when_the_sqlite_pool_is_closed() {
    let app = TestApp::spawn().await;
    app.running().store.close().await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_problem(r, 503, "not_ready").await;
    app.shutdown().await;
}
