//! Every rejection is problem+json with a stable code and the request id, and a
//! rejected write stores nothing.

use bourse_testkit::TestApp;
use serde_json::{Value, json};

use crate::assert_problem;

fn instrument_body() -> Value {
    json!({
        "symbol": "SOL-PERP",
        "kind": "perpetual",
        "base_asset": "SOL",
        "quote_asset": "USD",
        "settlement_asset": "USDC",
        "tick_size": "0.01",
        "lot_size": "0.1",
        "min_order_size": "0.1",
        "max_order_size": "100000",
        "contract_multiplier": "1"
    })
}

async fn instrument_count(app: &TestApp) -> usize {
    let r: Value = app
        .client
        .get(app.url("/v1/instruments?limit=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn unknown_route_is_404_problem() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/v1/nope")).send().await.unwrap();
    assert_problem(r, 404, "not_found").await;
    let r = app
        .client
        .get(app.admin_url("/v1/nope"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
    app.shutdown().await;
}

#[tokio::test]
async fn admin_routes_are_not_on_the_public_listener() {
    let app = TestApp::spawn().await;
    let key = app.admin_key(&["instruments:write"]).await;
    let r = app
        .client
        .post(app.url("/admin/v1/instruments"))
        .bearer_auth(&key)
        .json(&instrument_body())
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
    app.shutdown().await;
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .delete(app.url("/v1/instruments"))
        .send()
        .await
        .unwrap();
    let allow = r.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET"), "{allow}");
    assert_problem(r, 405, "method_not_allowed").await;
    app.shutdown().await;
}

#[tokio::test]
async fn body_errors_are_problems_and_store_nothing() {
    let app = TestApp::spawn().await;
    let key = app.admin_key(&["instruments:write"]).await;
    let before = instrument_count(&app).await;
    let url = app.admin_url("/admin/v1/instruments");
    let post = |body: Vec<u8>, ct: &str| {
        app.client
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", ct)
            .body(body)
    };

    // 415: not JSON.
    let r = post(
        b"symbol=SOL-PERP".to_vec(),
        "application/x-www-form-urlencoded",
    )
    .send()
    .await
    .unwrap();
    assert_problem(r, 415, "unsupported_media_type").await;

    // 413: over the 64 KiB default, announced by Content-Length.
    let r = post(vec![b' '; 70 * 1024], "application/json")
        .send()
        .await
        .unwrap();
    assert_problem(r, 413, "payload_too_large").await;

    // 413: over the limit without Content-Length (chunked).
    let chunks: Vec<Result<http_body::Frame<hyper::body::Bytes>, std::io::Error>> = (0..80)
        .map(|_| {
            Ok(http_body::Frame::data(hyper::body::Bytes::from(vec![
                b' ';
                1024
            ])))
        })
        .collect();
    let r = app
        .client
        .post(&url)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(
            futures_util::stream::iter(chunks),
        )))
        .send()
        .await
        .unwrap();
    assert_problem(r, 413, "payload_too_large").await;

    // 400: malformed JSON.
    let r = post(br#"{"symbol": "SOL-PERP","#.to_vec(), "application/json")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed_json").await;

    // 400: unknown field (mass assignment of `status`), named by pointer.
    let mut b = instrument_body();
    b["status"] = json!("halted");
    b["owner"] = json!("me");
    let r = post(serde_json::to_vec(&b).unwrap(), "application/json")
        .send()
        .await
        .unwrap();
    let p = assert_problem(r, 400, "validation_failed").await;
    assert_eq!(p["errors"][0]["code"], "unknown_field");
    assert!(p["errors"][0]["pointer"].as_str().unwrap().starts_with('/'));

    // 400: duplicate key.
    let dup = br#"{"symbol":"SOL-PERP","symbol":"XRP-PERP","kind":"perpetual"}"#.to_vec();
    let r = post(dup, "application/json").send().await.unwrap();
    let p = assert_problem(r, 400, "validation_failed").await;
    assert_eq!(p["errors"][0]["code"], "duplicate_key");
    assert_eq!(p["errors"][0]["pointer"], "/symbol");

    // 400: deep nesting.
    let deep = format!("{{\"symbol\":{}1{}}}", "[".repeat(100), "]".repeat(100));
    let r = post(deep.into_bytes(), "application/json")
        .send()
        .await
        .unwrap();
    let p = assert_problem(r, 400, "validation_failed").await;
    assert_eq!(p["errors"][0]["code"], "too_deep");

    // 400: numbers where decimal strings belong, 1e400, control characters, bad UTF-8.
    for (field, raw, code) in [
        ("tick_size", "0.01", "invalid_type"),
        ("tick_size", "1e400", "out_of_range"),
        ("symbol", "\"SOL\\u0000PERP\"", "control_character"),
    ] {
        let text = serde_json::to_string(&instrument_body()).unwrap();
        let mut v: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
        v.remove(field);
        let mut body = serde_json::to_string(&v).unwrap();
        body.pop();
        body.push_str(&format!(",\"{field}\":{raw}}}"));
        let r = post(body.into_bytes(), "application/json")
            .send()
            .await
            .unwrap();
        let p = assert_problem(r, 400, "validation_failed").await;
        assert_eq!(p["errors"][0]["code"], code, "{field}={raw}: {p}");
        assert_eq!(p["errors"][0]["pointer"], format!("/{field}"), "{p}");
    }
    let r = post(b"{\"symbol\":\"\xff\"}".to_vec(), "application/json")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed_json").await;

    // 400: domain rules — tick size zero, negative, min above max.
    for (field, val, code) in [
        ("tick_size", "0", "not_positive"),
        ("lot_size", "-0.1", "not_positive"),
        ("min_order_size", "0.15", "size_bounds"),
        ("symbol", "sol/../perp", "invalid_symbol"),
    ] {
        let mut b = instrument_body();
        b[field] = json!(val);
        let r = post(serde_json::to_vec(&b).unwrap(), "application/json")
            .send()
            .await
            .unwrap();
        let p = assert_problem(r, 400, "validation_failed").await;
        assert_eq!(p["errors"][0]["code"], code, "{field}={val}: {p}");
    }

    assert_eq!(instrument_count(&app).await, before, "nothing was stored");

    // And a good body is accepted (so the rejections above were about the body).
    let r = post(
        serde_json::to_vec(&instrument_body()).unwrap(),
        "application/json",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let r = post(
        serde_json::to_vec(&instrument_body()).unwrap(),
        "application/json",
    )
    .send()
    .await
    .unwrap();
    assert_problem(r, 409, "conflict").await;
    assert_eq!(instrument_count(&app).await, before + 1);
    app.shutdown().await;
}

#[tokio::test]
async fn admin_keys_are_required_and_scoped() {
    let app = TestApp::spawn().await;
    let url = app.admin_url("/admin/v1/instruments");
    let r = app
        .client
        .post(&url)
        .json(&instrument_body())
        .send()
        .await
        .unwrap();
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.starts_with("Bearer"), "{www}");
    assert_problem(r, 401, "unauthorized").await;
    let r = app
        .client
        .post(&url)
        .bearer_auth("bak_forged")
        .json(&instrument_body())
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "unauthorized").await;
    let read_only = app.admin_key(&["instruments:read"]).await;
    let r = app
        .client
        .post(&url)
        .bearer_auth(&read_only)
        .json(&instrument_body())
        .send()
        .await
        .unwrap();
    assert_problem(r, 403, "insufficient_scope").await;
    let writer = app.admin_key(&["instruments:write"]).await;
    app.revoke_admin_key(&writer).await;
    let r = app
        .client
        .post(&url)
        .bearer_auth(&writer)
        .json(&instrument_body())
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "unauthorized").await;
    app.shutdown().await;
}
