//! End-to-end tests of the bourse server over real TLS with a real database.

/// Runs one async case (`async fn case(app: TestApp)`) on both backends, each with a
/// fresh server and database: `case::sqlite` and `case::postgres`.
macro_rules! both {
    ($case:ident) => {
        pub mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$case(bourse_testkit::TestApp::spawn().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) =
                    bourse_testkit::TestApp::spawn_with(bourse_testkit::Db::Postgres, |_| {}).await
                {
                    super::$case(app).await;
                }
            }
        }
    };
}

mod abuse;
mod audit;
mod browser;
mod cli;
mod crash;
mod errors;
mod headers;
mod identity;
mod instruments;
mod oidc;
mod openapi;
mod ratelimit;
mod readiness;
mod risk;
mod surveillance;
mod trading;
mod transport;
mod wallet;
mod wallet_trading;

use reqwest::Response;
use serde_json::Value;

/// Asserts a problem+json answer with this status and code; returns the body.
pub async fn assert_problem(resp: Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let rid = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["type"].as_str().unwrap().ends_with(code), "{body}");
    assert!(!body["title"].as_str().unwrap().is_empty());
    assert!(!body["detail"].as_str().unwrap().is_empty());
    assert_eq!(
        body["request_id"],
        rid.as_str(),
        "request id in body and header"
    );
    assert!(!rid.is_empty());
    body
}
