//! The served OpenAPI documents equal the committed copies, and document every error.

use bourse_testkit::TestApp;
use serde_json::Value;

fn committed(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/update-openapi.sh", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn served_openapi_equals_committed_copies() {
    let app = TestApp::spawn().await;
    let public: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(public["openapi"], "3.1.0");
    assert_eq!(
        public,
        committed("openapi.json"),
        "docs/openapi.json is stale: run scripts/update-openapi.sh"
    );
    let admin: Value = app
        .client
        .get(app.admin_url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        admin,
        committed("openapi-admin.json"),
        "docs/openapi-admin.json is stale: run scripts/update-openapi.sh"
    );
    // Admin operations are not in the public document.
    assert!(
        !public["paths"]
            .as_object()
            .unwrap()
            .keys()
            .any(|p| p.starts_with("/admin"))
    );
    app.shutdown().await;
}

#[test]
fn every_operation_documents_success_and_errors_with_descriptions() {
    for doc in [bourse_api::openapi(), bourse_api::admin_openapi()] {
        let v = serde_json::to_value(&doc).unwrap();
        for (path, item) in v["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                // A browser navigation (external sign-in start) succeeds with a 303.
                assert!(
                    responses
                        .keys()
                        .any(|k| k.starts_with('2') || k.starts_with('3')),
                    "{method} {path}: no success"
                );
                for (status, r) in responses {
                    assert!(
                        !r["description"].as_str().unwrap_or_default().is_empty(),
                        "{method} {path} {status}"
                    );
                    if status.starts_with('4') || status.starts_with('5') {
                        assert!(
                            r["content"]["application/problem+json"].is_object(),
                            "{method} {path} {status}"
                        );
                    }
                }
                let takes_input = op.get("parameters").is_some() || op.get("requestBody").is_some();
                if takes_input {
                    assert!(
                        responses.contains_key("400"),
                        "{method} {path}: input but no 400"
                    );
                }
            }
        }
    }
}
