//! Trading over real TLS on SQLite and PostgreSQL: orders from placement to fills,
//! positions, the account and its ledger, market data, idempotency, ownership
//! (OWASP API1: another user's resource is a 404) and mass assignment.

use bourse_testkit::TestApp;
use serde_json::{Value, json};

use crate::assert_problem;
use crate::identity::{User, get, post, register_and_login};

pub const PERP: &str = "BTC-PERP";

/// An admin key that can run a market: prices and deposits.
pub async fn market_admin(app: &TestApp) -> String {
    app.admin_key(&["instruments:write", "instruments:read", "deposits:write"])
        .await
}

pub async fn admin_post(app: &TestApp, key: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.admin_url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn user_id(app: &TestApp, token: &str) -> String {
    let me: Value = get(app, "/v1/auth/me", token).await.json().await.unwrap();
    me["user_id"].as_str().unwrap().to_owned()
}

/// Sets BTC-PERP's mark and index to 50 000.
pub async fn set_prices(app: &TestApp, key: &str) {
    let r = admin_post(
        app,
        key,
        &format!("/admin/v1/instruments/{PERP}/prices"),
        json!({"mark": "50000", "index": "50000"}),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

pub async fn deposit(app: &TestApp, key: &str, token: &str, amount: &str) {
    let uid = user_id(app, token).await;
    let r = admin_post(
        app,
        key,
        "/admin/v1/deposits",
        json!({"user_id": uid, "asset": "USDC", "amount": amount, "tx_ref": uuid::Uuid::new_v4().to_string()}),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

/// A user with `amount` USDC deposited.
pub async fn funded_user(app: &TestApp, key: &str, amount: &str) -> User {
    let u = register_and_login(app).await;
    deposit(app, key, &u.access, amount).await;
    u
}

pub async fn order(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    post(app, "/v1/orders", Some(token), body).await
}

pub fn limit(side: &str, price: &str, qty: &str) -> Value {
    json!({"symbol": PERP, "side": side, "type": "limit", "price": price, "quantity": qty})
}

/// The body of an answer that must have `status`, as JSON (`null` when empty).
pub async fn json_of(r: reqwest::Response, status: u16) -> Value {
    let s = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(s, status, "{body}");
    if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap()
    }
}

pub async fn admin_get(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.client
        .get(app.admin_url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

pub async fn admin_put(app: &TestApp, key: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .put(app.admin_url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn a_resting_order_is_taken_and_everything_shows_it(app: TestApp) {
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let maker = funded_user(&app, &key, "100000").await;
    let taker = funded_user(&app, &key, "100000").await;

    let placed = json_of(
        order(&app, &maker.access, {
            let mut b = limit("sell", "50000.5", "0.010");
            b["client_order_id"] = json!("mk-1");
            b
        })
        .await,
        201,
    )
    .await;
    assert_eq!(placed["status"], "new");
    assert_eq!(placed["price"], "50000.5");
    assert_eq!(placed["quantity"], "0.01");
    assert_eq!(placed["leaves_quantity"], "0.01");
    let id = placed["order_id"].as_str().unwrap().to_owned();

    // Read-your-writes: the GET right after the POST sees it.
    let got = json_of(
        get(&app, &format!("/v1/orders/{id}"), &maker.access).await,
        200,
    )
    .await;
    assert_eq!(got["client_order_id"], "mk-1");
    assert_eq!(got["status"], "new");

    let book = json_of(
        get(&app, &format!("/v1/instruments/{PERP}/book?depth=5"), "").await,
        200,
    )
    .await;
    assert_eq!(book["asks"][0]["price"], "50000.5");
    assert_eq!(book["asks"][0]["quantity"], "0.01");

    // The taker buys 0.004 with a market order.
    let taken = json_of(
        order(
            &app,
            &taker.access,
            json!({"symbol": PERP, "side": "buy", "type": "market", "quantity": "0.004"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(taken["status"], "filled", "{taken}");
    assert_eq!(taken["fills"][0]["price"], "50000.5");
    assert_eq!(taken["fills"][0]["liquidity"], "taker");
    // 0.05% of 0.004 × 50000.5 = 0.100001
    assert_eq!(taken["fills"][0]["fee"], "0.100001");

    let got = json_of(
        get(&app, &format!("/v1/orders/{id}"), &maker.access).await,
        200,
    )
    .await;
    assert_eq!(got["status"], "partially_filled");
    assert_eq!(got["filled_quantity"], "0.004");
    assert_eq!(got["leaves_quantity"], "0.006");

    let fills = json_of(get(&app, "/v1/fills", &maker.access).await, 200).await;
    assert_eq!(fills["data"].as_array().unwrap().len(), 1);
    assert_eq!(fills["data"][0]["liquidity"], "maker");
    assert_eq!(fills["data"][0]["order_id"], id.as_str());
    assert_eq!(fills["data"][0]["side"], "sell");

    let pos = json_of(get(&app, "/v1/positions", &taker.access).await, 200).await;
    assert_eq!(pos["data"][0]["symbol"], PERP);
    assert_eq!(pos["data"][0]["size"], "0.004");
    assert_eq!(pos["data"][0]["average_entry_price"], "50000.5");
    let pos = json_of(get(&app, "/v1/positions", &maker.access).await, 200).await;
    assert_eq!(pos["data"][0]["size"], "-0.004");

    let acct = json_of(get(&app, "/v1/account", &taker.access).await, 200).await;
    assert_eq!(acct["settlement_asset"], "USDC");
    assert_eq!(acct["balances"][0]["balance"], "99999.899999");
    assert_eq!(acct["frozen"], false);
    assert!(acct["initial_margin"].as_str().unwrap() != "0");

    let ledger = json_of(
        get(&app, "/v1/account/ledger?reason=fee", &taker.access).await,
        200,
    )
    .await;
    assert_eq!(ledger["data"][0]["amount"], "-0.100001");
    let deposits = json_of(
        get(&app, "/v1/account/ledger?reason=deposit", &taker.access).await,
        200,
    )
    .await;
    assert_eq!(deposits["data"][0]["amount"], "100000");

    let trades = json_of(
        get(&app, &format!("/v1/instruments/{PERP}/trades"), "").await,
        200,
    )
    .await;
    assert_eq!(trades["data"][0]["price"], "50000.5");
    assert_eq!(trades["data"][0]["side"], "buy");
    let ticker = json_of(
        get(&app, &format!("/v1/instruments/{PERP}/ticker"), "").await,
        200,
    )
    .await;
    assert_eq!(ticker["last_price"], "50000.5");
    assert_eq!(ticker["best_ask"], "50000.5");
    assert_eq!(ticker["mark_price"], "50000");
    assert_eq!(ticker["volume_24h"], "0.004");
    assert_eq!(ticker["open_interest"], "0.004");

    // Amend, then cancel.
    let r = app
        .client
        .patch(app.url(&format!("/v1/orders/{id}")))
        .bearer_auth(&maker.access)
        .json(&json!({"price": "50001"}))
        .send()
        .await
        .unwrap();
    let amended = json_of(r, 200).await;
    assert_eq!(amended["price"], "50001");
    let r = app
        .client
        .delete(app.url(&format!("/v1/orders/{id}")))
        .bearer_auth(&maker.access)
        .send()
        .await
        .unwrap();
    let canceled = json_of(r, 200).await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["cancel_reason"], "requested");
    let open = json_of(
        get(&app, "/v1/orders?status=open", &maker.access).await,
        200,
    )
    .await;
    assert!(open["data"].as_array().unwrap().is_empty());
}
both!(a_resting_order_is_taken_and_everything_shows_it);

async fn pre_trade_checks_refuse_with_clear_codes(app: TestApp) {
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let u = funded_user(&app, &key, "1000").await;
    // 10 BTC at 50 000 needs 50 000 USDC of initial margin.
    assert_problem(
        order(&app, &u.access, limit("buy", "50000", "10")).await,
        422,
        "insufficient_margin",
    )
    .await;
    // Reduce-only without a position.
    let mut b = limit("sell", "50000", "0.001");
    b["reduce_only"] = json!(true);
    assert_problem(
        order(&app, &u.access, b).await,
        422,
        "reduce_only_would_increase",
    )
    .await;
    // Off tick, off lot, market with a price, unknown field (mass assignment), unknown symbol.
    let r = order(&app, &u.access, limit("buy", "50000.3", "0.001")).await;
    let p = assert_problem(r, 400, "validation_failed").await;
    assert_eq!(p["errors"][0]["code"], "price_not_on_tick");
    let r = order(&app, &u.access, limit("buy", "50000", "0.0015")).await;
    let p = assert_problem(r, 400, "validation_failed").await;
    assert_eq!(p["errors"][0]["pointer"], "/quantity");
    let mut b = limit("buy", "50000", "0.001");
    b["account_id"] = json!("someone-else");
    let p = assert_problem(order(&app, &u.access, b).await, 400, "validation_failed").await;
    assert_eq!(p["errors"][0]["code"], "unknown_field");
    let mut b = limit("buy", "50000", "0.001");
    b["filled_quantity"] = json!("0.001");
    assert_problem(order(&app, &u.access, b).await, 400, "validation_failed").await;
    let mut b = limit("buy", "1", "0.001");
    b["symbol"] = json!("NOPE-PERP");
    assert_problem(order(&app, &u.access, b).await, 404, "not_found").await;
    // Post-only that would take.
    let other = funded_user(&app, &key, "100000").await;
    assert_eq!(
        order(&app, &other.access, limit("sell", "50000", "0.002"))
            .await
            .status(),
        201
    );
    let mut b = limit("buy", "50000", "0.001");
    b["post_only"] = json!(true);
    assert_problem(order(&app, &u.access, b).await, 422, "post_only_would_take").await;
    // A duplicate open client_order_id.
    let mut b = limit("sell", "60000", "0.001");
    b["client_order_id"] = json!("dup");
    assert_eq!(order(&app, &other.access, b.clone()).await.status(), 201);
    assert_problem(
        order(&app, &other.access, b).await,
        409,
        "duplicate_client_order_id",
    )
    .await;
    // Halted instrument.
    let r = admin_post(
        &app,
        &key,
        &format!("/admin/v1/instruments/{PERP}/halt"),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_problem(
        order(&app, &u.access, limit("buy", "40000", "0.001")).await,
        409,
        "instrument_halted",
    )
    .await;
    let listed = json_of(get(&app, &format!("/v1/instruments/{PERP}"), "").await, 200).await;
    assert_eq!(listed["status"], "halted", "the catalog follows the core");
    let r = admin_post(
        &app,
        &key,
        &format!("/admin/v1/instruments/{PERP}/resume"),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        order(&app, &u.access, limit("buy", "40000", "0.001"))
            .await
            .status(),
        201
    );
    // Nothing a refused order asked for exists.
    let mine = json_of(get(&app, "/v1/orders", &u.access).await, 200).await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
}
both!(pre_trade_checks_refuse_with_clear_codes);

async fn idempotency_keys_replay_and_refuse_reuse(app: TestApp) {
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let u = funded_user(&app, &key, "100000").await;
    let send = |body: Value, k: &'static str| {
        app.client
            .post(app.url("/v1/orders"))
            .bearer_auth(&u.access)
            .header("idempotency-key", k)
            .json(&body)
            .send()
    };
    let first = send(limit("buy", "49000", "0.001"), "k-1").await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = send(limit("buy", "49000", "0.001"), "k-1").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    let other = send(limit("buy", "49001", "0.001"), "k-1").await.unwrap();
    assert_problem(other, 422, "idempotency_key_reused").await;
    // A rejection is replayed too, and still places nothing.
    let big = send(limit("buy", "49000", "100"), "k-2").await.unwrap();
    let refused = assert_problem(big, 422, "insufficient_margin").await;
    let big = send(limit("buy", "49000", "100"), "k-2").await.unwrap();
    assert_eq!(big.status(), 422);
    assert_eq!(big.headers()["idempotent-replayed"], "true");
    assert_eq!(big.headers()["content-type"], "application/problem+json");
    // The very same body, naming the request that was processed.
    let replayed: Value = big.json().await.unwrap();
    assert_eq!(replayed, refused);
    // Keys are per account: another user may use the same key.
    let v = funded_user(&app, &key, "100000").await;
    let r = app
        .client
        .post(app.url("/v1/orders"))
        .bearer_auth(&v.access)
        .header("idempotency-key", "k-1")
        .json(&limit("buy", "49000", "0.001"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("idempotent-replayed").is_none());
    let bad = app
        .client
        .post(app.url("/v1/orders"))
        .bearer_auth(&u.access)
        .header("idempotency-key", "x".repeat(65))
        .json(&limit("buy", "49000", "0.001"))
        .send()
        .await
        .unwrap();
    assert_problem(bad, 400, "validation_failed").await;
    let mine = json_of(get(&app, "/v1/orders", &u.access).await, 200).await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
}
both!(idempotency_keys_replay_and_refuse_reuse);

/// A client that gives up on every request after an artificial timeout and retries
/// with the same key until it gets an answer ends with exactly one order per key.
async fn retries_after_timeouts_make_no_duplicates(app: TestApp) {
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let u = funded_user(&app, &key, "1000000").await;
    let mut tasks = Vec::new();
    for n in 0..40 {
        let client = app.client.clone();
        let url = app.url("/v1/orders");
        let token = u.access.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"symbol": PERP, "side": "buy", "type": "limit",
                "price": format!("{}", 40000 + n), "quantity": "0.001",
                "client_order_id": format!("retry-{n}")});
            let idem = format!("retry-key-{n}");
            // The first attempts are cut off client-side almost at once (the server
            // may or may not have placed the order); later attempts wait.
            for attempt in 0..50u64 {
                let timeout =
                    std::time::Duration::from_millis(if attempt < 3 { 1 + attempt } else { 5_000 });
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("idempotency-key", &idem)
                    .timeout(timeout)
                    .json(&body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => return r.json::<Value>().await.unwrap(),
                    Ok(r) if r.status() == 409 || r.status() == 503 => {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    Ok(r) => panic!("unexpected {}: {}", r.status(), r.text().await.unwrap()),
                    Err(_) => {}
                }
            }
            panic!("no answer after 50 attempts");
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let v = t.await.unwrap();
        ids.push(v["order_id"].as_str().unwrap().to_owned());
    }
    let all = json_of(get(&app, "/v1/orders?limit=1000", &u.access).await, 200).await;
    let all = all["data"].as_array().unwrap();
    assert_eq!(all.len(), 40, "one order per key, no duplicates");
    for (n, id) in ids.iter().enumerate() {
        let matching: Vec<_> = all
            .iter()
            .filter(|o| o["client_order_id"] == format!("retry-{n}"))
            .collect();
        assert_eq!(matching.len(), 1);
        assert_eq!(matching[0]["order_id"], id.as_str());
    }
}
both!(retries_after_timeouts_make_no_duplicates);

async fn another_users_orders_and_fills_are_404(app: TestApp) {
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let a = funded_user(&app, &key, "100000").await;
    let b = funded_user(&app, &key, "100000").await;
    let placed = json_of(
        order(&app, &a.access, limit("sell", "50000", "0.002")).await,
        201,
    )
    .await;
    let id = placed["order_id"].as_str().unwrap().to_owned();
    json_of(
        order(&app, &a.access, limit("buy", "40000", "0.001")).await,
        201,
    )
    .await;
    let c = funded_user(&app, &key, "100000").await;
    json_of(
        order(&app, &c.access, limit("buy", "50000", "0.001")).await,
        201,
    )
    .await;

    // B cannot read, amend or cancel A's order: 404, the same as a missing one.
    assert_problem(
        get(&app, &format!("/v1/orders/{id}"), &b.access).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        get(&app, "/v1/orders/999999", &b.access).await,
        404,
        "not_found",
    )
    .await;
    let r = app
        .client
        .patch(app.url(&format!("/v1/orders/{id}")))
        .bearer_auth(&b.access)
        .json(&json!({"price": "50001"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
    let r = app
        .client
        .delete(app.url(&format!("/v1/orders/{id}")))
        .bearer_auth(&b.access)
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
    // B's cancel-all does not touch A's orders.
    let r = app
        .client
        .delete(app.url("/v1/orders"))
        .bearer_auth(&b.access)
        .send()
        .await
        .unwrap();
    let v = json_of(r, 200).await;
    assert!(v["canceled"].as_array().unwrap().is_empty());
    let still = json_of(get(&app, &format!("/v1/orders/{id}"), &a.access).await, 200).await;
    assert_eq!(still["status"], "partially_filled");
    // Lists, fills, positions and the ledger show only the caller's own.
    for path in ["/v1/orders", "/v1/fills", "/v1/positions"] {
        let v = json_of(get(&app, path, &b.access).await, 200).await;
        assert!(v["data"].as_array().unwrap().is_empty(), "{path}: {v}");
    }
    let v = json_of(
        get(&app, &format!("/v1/fills?order_id={id}"), &b.access).await,
        200,
    )
    .await;
    assert!(v["data"].as_array().unwrap().is_empty());
    let v = json_of(
        get(&app, "/v1/account/ledger?reason=fee", &b.access).await,
        200,
    )
    .await;
    assert!(v["data"].as_array().unwrap().is_empty());
    // Malformed ids are 400, never a lookup.
    let p = assert_problem(
        get(&app, "/v1/orders/1%20OR%201=1", &b.access).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(p["errors"][0]["pointer"], "/path/id");
    let r = app.client.get(app.url("/v1/orders")).send().await.unwrap();
    assert_problem(r, 401, "unauthorized").await;
}
both!(another_users_orders_and_fills_are_404);

async fn cancel_all_and_freeze_cancel_open_orders(app: TestApp) {
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let u = funded_user(&app, &key, "100000").await;
    for p in ["40000", "41000", "42000"] {
        json_of(order(&app, &u.access, limit("buy", p, "0.001")).await, 201).await;
    }
    let r = app
        .client
        .delete(app.url(&format!("/v1/orders?symbol={PERP}")))
        .bearer_auth(&u.access)
        .send()
        .await
        .unwrap();
    let v = json_of(r, 200).await;
    assert_eq!(v["canceled"].as_array().unwrap().len(), 3);
    json_of(
        order(&app, &u.access, limit("buy", "40000", "0.001")).await,
        201,
    )
    .await;
    // An admin freeze cancels the user's open orders in the core.
    let admin = app.admin_key(&["users:write"]).await;
    let uid = user_id(&app, &u.access).await;
    let r = admin_post(
        &app,
        &admin,
        &format!("/admin/v1/users/{uid}/freeze"),
        json!({}),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let book = json_of(
        get(&app, &format!("/v1/instruments/{PERP}/book"), "").await,
        200,
    )
    .await;
    assert!(book["bids"].as_array().unwrap().is_empty(), "{book}");
}
both!(cancel_all_and_freeze_cancel_open_orders);

/// A full engine queue answers 503 `overloaded` with `Retry-After` at once, and what it
/// refused was never placed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_engine_queue_sheds_orders_with_503_and_loses_nothing() {
    let app = TestApp::spawn_with(bourse_testkit::Db::Sqlite, |c| {
        c.engine.queue_capacity = 1;
        c.engine.max_batch = 1;
    })
    .await
    .unwrap();
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let u = funded_user(&app, &key, "1000000").await;
    let mut tasks = Vec::new();
    for n in 0..200 {
        let (client, url, token) = (app.client.clone(), app.url("/v1/orders"), u.access.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"symbol": PERP, "side": "buy", "type": "limit", "price": "40000",
                "quantity": "0.001", "client_order_id": format!("shed-{n}")});
            let r = client
                .post(&url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let v: Value = r.json().await.unwrap();
            (n, status, retry, v)
        }));
    }
    let (mut placed, mut shed) = (Vec::new(), Vec::new());
    for t in tasks {
        let (n, status, retry, v) = t.await.unwrap();
        match status {
            201 => placed.push(n),
            503 => {
                assert_eq!(v["code"], "overloaded", "{v}");
                assert_eq!(retry.as_deref(), Some("1"));
                shed.push(n);
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert!(
        !shed.is_empty(),
        "a one-slot queue under 200 concurrent orders shed none"
    );
    let all = json_of(get(&app, "/v1/orders?limit=1000", &u.access).await, 200).await;
    let ids: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["client_order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), placed.len());
    for n in shed {
        assert!(!ids.contains(&format!("shed-{n}").as_str()));
    }
}
