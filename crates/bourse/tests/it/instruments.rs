//! Reference data over the public API, on SQLite and on PostgreSQL.

use bourse_testkit::{Db, TestApp};
use serde_json::Value;

use crate::assert_problem;

async fn get(app: &TestApp, path: &str) -> Value {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

async fn demo_instruments_are_listed_and_paginated(app: TestApp) {
    let all = get(&app, "/v1/instruments").await;
    let data = all["data"].as_array().unwrap();
    assert_eq!(data.len(), 5, "{all}");
    assert_eq!(all["next_cursor"], Value::Null);
    let kinds: Vec<&str> = data.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "perpetual").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "future").count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == "option").count(), 2);
    // Money and sizes are decimal strings.
    for i in data {
        for f in [
            "tick_size",
            "lot_size",
            "min_order_size",
            "max_order_size",
            "contract_multiplier",
        ] {
            assert!(i[f].is_string(), "{f} in {i}");
        }
    }
    let symbols: Vec<String> = data
        .iter()
        .map(|i| i["symbol"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = symbols.clone();
    sorted.sort();
    assert_eq!(symbols, sorted, "ordered by symbol");

    // Walk pages of 2: every instrument exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/instruments?limit=2&cursor={c}"),
            None => "/v1/instruments?limit=2".to_owned(),
        };
        let page = get(&app, &path).await;
        for i in page["data"].as_array().unwrap() {
            seen.push(i["symbol"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, symbols);

    let opts = get(&app, "/v1/instruments?kind=option").await;
    let opts = opts["data"].as_array().unwrap();
    assert_eq!(opts.len(), 2);
    assert!(
        opts.iter()
            .all(|o| o["strike"].is_string() && o["expiry"].is_string())
    );
    let rights: Vec<&str> = opts
        .iter()
        .map(|o| o["option_right"].as_str().unwrap())
        .collect();
    assert!(rights.contains(&"call") && rights.contains(&"put"));
    let active = get(&app, "/v1/instruments?status=active&kind=perpetual").await;
    assert_eq!(active["data"].as_array().unwrap().len(), 2);
    let halted = get(&app, "/v1/instruments?status=halted").await;
    assert_eq!(halted["data"].as_array().unwrap().len(), 0);

    // A million rows asked for: capped, not refused.
    let capped = get(&app, "/v1/instruments?limit=1000000").await;
    assert_eq!(capped["data"].as_array().unwrap().len(), 5);

    let btc = get(&app, "/v1/instruments/BTC-PERP").await;
    assert_eq!(btc["symbol"], "BTC-PERP");
    assert_eq!(btc["kind"], "perpetual");
    assert_eq!(btc["settlement_asset"], "USDC");
    app.shutdown().await;
}

#[tokio::test]
async fn sqlite_demo_instruments_are_listed_and_paginated() {
    demo_instruments_are_listed_and_paginated(TestApp::spawn().await).await;
}

#[tokio::test]
async fn postgres_demo_instruments_are_listed_and_paginated() {
    if let Some(app) = TestApp::spawn_with(Db::Postgres, |_| {}).await {
        demo_instruments_are_listed_and_paginated(app).await;
    }
}

#[tokio::test]
async fn bad_queries_and_paths_are_clean_4xx() {
    let app = TestApp::spawn().await;
    for (q, code, pointer) in [
        ("kind=swap", "invalid_value", "/query/kind"),
        ("limit=0", "out_of_range", "/query/limit"),
        ("limit=-1", "invalid_value", "/query/limit"),
        ("limit=abc", "invalid_value", "/query/limit"),
        ("cursor=not-ours", "invalid_cursor", "/query/cursor"),
        ("sort=symbol", "unknown_field", "/query/sort"),
        ("limit=1&limit=2", "duplicate_key", "/query/limit"),
    ] {
        let r = app
            .client
            .get(app.url(&format!("/v1/instruments?{q}")))
            .send()
            .await
            .unwrap();
        let p = assert_problem(r, 400, "validation_failed").await;
        assert_eq!(p["errors"][0]["code"], code, "{q}: {p}");
        assert_eq!(p["errors"][0]["pointer"], pointer, "{q}: {p}");
    }
    let r = app
        .client
        .get(app.url("/v1/instruments/NOPE-PERP"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
    for hostile in [
        "btc-perp",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "BTC'%20OR%201=1--",
        "..%2F..%2Fetc%2Fpasswd",
        &"A".repeat(300),
    ] {
        let r = app
            .client
            .get(app.url(&format!("/v1/instruments/{hostile}")))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(status == 400 || status == 404, "{hostile}: {status}");
        assert!(
            !text.contains("<script>"),
            "nothing echoed unencoded: {text}"
        );
        assert!(!text.to_lowercase().contains("sql"), "{text}");
    }
    app.shutdown().await;
}
