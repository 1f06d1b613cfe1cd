//! Risk controls over real TLS (issue 7, docs/risk.md): pre-trade limits per instrument
//! and per user, the exchange and account kill switches, the dead man's switch, the
//! circuit breaker with its automatic resume, and market-maker protection, each
//! asserting status and problem code; and the settings survive a restart (replay).

use std::time::{Duration, Instant};

use bourse_testkit::TestApp;
use serde_json::{Value, json};

use crate::assert_problem;
use crate::identity::{get, post};
use crate::trading::{
    PERP, admin_get, admin_post, admin_put, funded_user, json_of, limit, market_admin, order,
    set_prices, user_id,
};

async fn placed(app: &TestApp, token: &str, body: Value) -> String {
    let v = json_of(order(app, token, body).await, 201).await;
    v["order_id"].as_str().unwrap().to_owned()
}

/// Polls the order until its status is `want` (at most `within`).
async fn order_status(app: &TestApp, token: &str, id: &str, want: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = json_of(get(app, &format!("/v1/orders/{id}"), token).await, 200).await;
        if v["status"] == want || Instant::now() > deadline {
            assert_eq!(v["status"], want, "{v}");
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn limits_and_kill_switches(app: TestApp) {
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let risk = app.admin_key(&["risk:write", "risk:read"]).await;
    let a = funded_user(&app, &key, "100000").await;
    let b = funded_user(&app, &key, "100000").await;
    let a_id = user_id(&app, &a.access).await;
    let limits_path = format!("/admin/v1/instruments/{PERP}/limits");

    // Changing risk settings needs `risk:write`.
    let r = admin_put(&app, &key, &limits_path, json!({"price_band_bps": 500})).await;
    assert_problem(r, 403, "insufficient_scope").await;
    // Bad values are field errors, before anything reaches the core.
    for (body, pointer) in [
        (json!({"price_band_bps": 0}), "/price_band_bps"),
        (
            json!({"max_order_quantity": "0.0001"}),
            "/max_order_quantity",
        ),
        (json!({"max_open_orders": 0}), "/max_open_orders"),
        (json!({"max_order_notional": "-5"}), "/max_order_notional"),
    ] {
        let e = assert_problem(
            admin_put(&app, &risk, &limits_path, body).await,
            400,
            "validation_failed",
        )
        .await;
        assert_eq!(e["errors"][0]["pointer"], pointer, "{e}");
    }
    let r = admin_put(&app, &risk, &limits_path, json!({"unknown": 1})).await;
    assert_eq!(r.status(), 400);

    // 5% band around the mark of 50 000, at most 1 BTC per order, 3 resting orders.
    let v = json_of(
        admin_put(
            &app,
            &risk,
            &limits_path,
            json!({"price_band_bps": 500, "max_order_quantity": "1", "max_open_orders": 3,
                   "max_order_notional": "60000", "max_position": "5"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(v["limits"]["price_band_bps"], 500, "{v}");
    assert_eq!(v["limits"]["max_order_quantity"], "1", "{v}");
    assert_eq!(v["limits"]["max_order_notional"], "60000", "{v}");

    assert_problem(
        order(&app, &a.access, limit("buy", "47000", "0.01")).await,
        422,
        "price_band",
    )
    .await;
    assert_problem(
        order(&app, &a.access, limit("buy", "49000", "2")).await,
        422,
        "max_order_quantity",
    )
    .await;
    // 1.3 BTC would also break the quantity limit; 1 BTC at 49 000 is within every limit.
    let first = placed(&app, &a.access, limit("buy", "49000", "1")).await;
    // 1 BTC at 52 000 is 52 000 of notional: fine; at 47 600 the band is the limit.
    let second = placed(&app, &a.access, limit("buy", "48000", "0.01")).await;
    let _third = placed(&app, &a.access, limit("buy", "48000", "0.01")).await;
    assert_problem(
        order(&app, &a.access, limit("buy", "48000", "0.01")).await,
        422,
        "max_open_orders",
    )
    .await;

    // A tighter limit for user A only; B is not affected.
    let user_limits = format!("/admin/v1/users/{a_id}/limits/{PERP}");
    let r = admin_put(
        &app,
        &risk,
        &user_limits,
        json!({"max_order_quantity": "0.005"}),
    )
    .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let r = app
        .client
        .delete(app.url(&format!("/v1/orders/{second}")))
        .bearer_auth(&a.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_problem(
        order(&app, &a.access, limit("buy", "48000", "0.01")).await,
        422,
        "max_order_quantity",
    )
    .await;
    let b_order = placed(&app, &b.access, limit("sell", "51000", "0.01")).await;
    let mine = json_of(get(&app, "/v1/account/risk", &a.access).await, 200).await;
    assert_eq!(mine["limits"][0]["symbol"], PERP, "{mine}");
    assert_eq!(
        mine["limits"][0]["limits"]["max_order_quantity"], "0.005",
        "{mine}"
    );
    assert_eq!(mine["kill_switch"], Value::Null, "{mine}");
    let admin_view = json_of(
        admin_get(&app, &risk, &format!("/admin/v1/users/{a_id}/risk")).await,
        200,
    )
    .await;
    assert_eq!(admin_view["limits"], mine["limits"]);
    let r = app
        .client
        .delete(app.admin_url(&user_limits))
        .bearer_auth(&risk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // The exchange-wide kill switch: no new orders, cancels still work.
    let ks = json_of(
        admin_post(
            &app,
            &risk,
            "/admin/v1/kill-switch",
            json!({"active": true}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ks["active"], true);
    assert_problem(
        order(&app, &b.access, limit("sell", "51000", "0.01")).await,
        409,
        "kill_switch",
    )
    .await;
    let r = app
        .client
        .delete(app.url(&format!("/v1/orders/{b_order}")))
        .bearer_auth(&b.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "cancels work under the kill switch");
    json_of(
        admin_post(
            &app,
            &risk,
            "/admin/v1/kill-switch",
            json!({"active": false}),
        )
        .await,
        200,
    )
    .await;
    assert_problem(
        admin_post(
            &app,
            &risk,
            "/admin/v1/kill-switch",
            json!({"active": false}),
        )
        .await,
        409,
        "kill_switch_unchanged",
    )
    .await;

    // A's own kill switch cancels A's orders and blocks new ones until A lifts it.
    let v = json_of(
        post(
            &app,
            "/v1/account/kill-switch",
            Some(&a.access),
            json!({"active": true}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(v["kill_switch"], "owner", "{v}");
    let o = order_status(&app, &a.access, &first, "canceled", Duration::from_secs(5)).await;
    assert_eq!(o["cancel_reason"], "account_kill_switch", "{o}");
    assert_problem(
        order(&app, &a.access, limit("buy", "49000", "0.01")).await,
        403,
        "account_kill_switch",
    )
    .await;
    json_of(
        post(
            &app,
            "/v1/account/kill-switch",
            Some(&a.access),
            json!({"active": false}),
        )
        .await,
        200,
    )
    .await;
    placed(&app, &a.access, limit("buy", "49000", "0.01")).await;

    // An operator's switch only an operator lifts.
    let r = admin_post(
        &app,
        &risk,
        &format!("/admin/v1/users/{a_id}/kill-switch"),
        json!({"active": true}),
    )
    .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_problem(
        post(
            &app,
            "/v1/account/kill-switch",
            Some(&a.access),
            json!({"active": false}),
        )
        .await,
        403,
        "kill_switch_admin_only",
    )
    .await;
    let r = admin_post(
        &app,
        &risk,
        &format!("/admin/v1/users/{a_id}/kill-switch"),
        json!({"active": false}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = admin_post(
        &app,
        &risk,
        "/admin/v1/users/00000000-0000-0000-0000-000000000000/kill-switch",
        json!({"active": true}),
    )
    .await;
    assert_problem(r, 404, "not_found").await;
    app.shutdown().await;
}
both!(limits_and_kill_switches);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_man_switch_and_circuit_breaker_fire_on_time_and_survive_a_restart() {
    let mut app = TestApp::spawn().await;
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let risk = app.admin_key(&["risk:write", "risk:read"]).await;
    let a = funded_user(&app, &key, "100000").await;
    let b = funded_user(&app, &key, "100000").await;

    // Dead man's switch: armed for 1 s and not renewed, it cancels A's orders.
    for bad in [json!({"timeout_ms": 10}), json!({"timeout_ms": 100000000})] {
        assert_problem(
            post(&app, "/v1/orders/cancel-after", Some(&a.access), bad).await,
            400,
            "validation_failed",
        )
        .await;
    }
    let resting = placed(&app, &a.access, limit("buy", "49000", "0.01")).await;
    let armed = json_of(
        post(
            &app,
            "/v1/orders/cancel-after",
            Some(&a.access),
            json!({"timeout_ms": 1000}),
        )
        .await,
        200,
    )
    .await;
    assert!(armed["deadline"].is_string(), "{armed}");
    let o = order_status(
        &app,
        &a.access,
        &resting,
        "canceled",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o["cancel_reason"], "dead_man_switch", "{o}");
    let mine = json_of(get(&app, "/v1/account/risk", &a.access).await, 200).await;
    assert_eq!(
        mine["cancel_after"],
        Value::Null,
        "fired and disarmed: {mine}"
    );
    // Renewed in time, it does not fire; 0 disarms it.
    let kept = placed(&app, &a.access, limit("buy", "49000", "0.01")).await;
    for _ in 0..4 {
        json_of(
            post(
                &app,
                "/v1/orders/cancel-after",
                Some(&a.access),
                json!({"timeout_ms": 1000}),
            )
            .await,
            200,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let off = json_of(
        post(
            &app,
            "/v1/orders/cancel-after",
            Some(&a.access),
            json!({"timeout_ms": 0}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(off["deadline"], Value::Null);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    order_status(&app, &a.access, &kept, "new", Duration::ZERO).await;

    // Circuit breaker: 1% from the window's reference halts BTC-PERP for 1 s.
    let breaker = format!("/admin/v1/instruments/{PERP}/circuit-breaker");
    let v = json_of(
        admin_put(
            &app,
            &risk,
            &breaker,
            json!({"max_move_bps": 100, "window_secs": 60, "cool_off_secs": 1}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(v["circuit_breaker"]["max_move_bps"], 100, "{v}");
    // A trade at 50 000 anchors the reference.
    placed(&app, &a.access, limit("sell", "50000", "0.01")).await;
    placed(&app, &b.access, limit("buy", "50000", "0.01")).await;
    // A trade at 51 000 would be 2% away: the breaker trips instead.
    placed(&app, &a.access, limit("sell", "51000", "0.01")).await;
    let r = order(&app, &b.access, limit("buy", "51000", "0.01")).await;
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert!(status == 201 || status == 409, "{status} {body}");
    let v = json_of(
        admin_get(&app, &risk, &format!("/admin/v1/instruments/{PERP}/risk")).await,
        200,
    )
    .await;
    assert!(v["breaker_halted_until"].is_string(), "{v}");
    assert_problem(
        order(&app, &b.access, limit("buy", "49000", "0.01")).await,
        409,
        "instrument_halted",
    )
    .await;
    // The risk clock resumes it after the cool-off.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = order(&app, &b.access, limit("buy", "49000", "0.01")).await;
        if r.status() == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not resumed: {}",
            r.text().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Settings are journaled: after a restart the core has them again.
    json_of(
        post(
            &app,
            "/v1/account/kill-switch",
            Some(&a.access),
            json!({"active": true}),
        )
        .await,
        200,
    )
    .await;
    app.restart().await;
    let mine = json_of(get(&app, "/v1/account/risk", &a.access).await, 200).await;
    assert_eq!(mine["kill_switch"], "owner", "{mine}");
    let v = json_of(
        admin_get(&app, &risk, &format!("/admin/v1/instruments/{PERP}/risk")).await,
        200,
    )
    .await;
    assert_eq!(v["circuit_breaker"]["max_move_bps"], 100, "{v}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_maker_protection_cancels_the_groups_quotes_and_freezes_until_reset() {
    let app = TestApp::spawn().await;
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let risk = app.admin_key(&["risk:write", "risk:read"]).await;
    let mm = funded_user(&app, &key, "100000").await;
    let taker = funded_user(&app, &key, "100000").await;
    let quote = |side: &str, price: &str| {
        json!({"symbol": PERP, "side": side, "type": "limit", "price": price,
               "quantity": "0.002", "mmp": true})
    };

    // Without a group and a config, an MMP quote is refused.
    assert_problem(
        order(&app, &mm.access, quote("sell", "50100")).await,
        409,
        "mmp_not_configured",
    )
    .await;
    let v = json_of(
        admin_put(
            &app,
            &risk,
            &format!("/admin/v1/instruments/{PERP}/mmp-group"),
            json!({"group": "BTC"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(v["mmp_group"], "BTC", "{v}");
    for bad in [
        json!({"interval_ms": 0, "max_quantity": 2}),
        json!({"interval_ms": 1000}),
        json!({"interval_ms": 1000, "max_delta": "-1"}),
    ] {
        assert_problem(
            app.client
                .put(app.url("/v1/account/mmp/BTC"))
                .bearer_auth(&mm.access)
                .json(&bad)
                .send()
                .await
                .unwrap(),
            400,
            "validation_failed",
        )
        .await;
    }
    // At most 2 lots (0.002 BTC) traded by quotes per minute, frozen until reset.
    let v = json_of(
        app.client
            .put(app.url("/v1/account/mmp/BTC"))
            .bearer_auth(&mm.access)
            .json(&json!({"interval_ms": 60000, "max_quantity": 2, "freeze_ms": 0}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(v["mmp"][0]["group"], "BTC", "{v}");
    assert_eq!(v["mmp"][0]["frozen"], false, "{v}");

    let q1 = placed(&app, &mm.access, quote("sell", "50100")).await;
    let q2 = placed(&app, &mm.access, quote("sell", "50200")).await;
    let q3 = placed(&app, &mm.access, quote("buy", "49900")).await;
    let plain = placed(&app, &mm.access, limit("buy", "49800", "0.001")).await;
    // The taker lifts the first quote: 2 lots, the limit: every other quote goes.
    placed(&app, &taker.access, limit("buy", "50100", "0.002")).await;
    order_status(&app, &mm.access, &q1, "filled", Duration::from_secs(5)).await;
    for q in [&q2, &q3] {
        let o = order_status(&app, &mm.access, q, "canceled", Duration::from_secs(5)).await;
        assert_eq!(o["cancel_reason"], "mmp", "{o}");
    }
    // An order that is not a quote stays, and new quotes are refused until a reset.
    order_status(&app, &mm.access, &plain, "new", Duration::ZERO).await;
    assert_problem(
        order(&app, &mm.access, quote("sell", "50300")).await,
        409,
        "mmp_frozen",
    )
    .await;
    let v = json_of(get(&app, "/v1/account/risk", &mm.access).await, 200).await;
    assert_eq!(v["mmp"][0]["frozen"], true, "{v}");
    assert_eq!(v["mmp"][0]["frozen_until"], Value::Null, "{v}");
    let v = json_of(
        post(
            &app,
            "/v1/account/mmp/BTC/reset",
            Some(&mm.access),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(v["mmp"][0]["frozen"], false, "{v}");
    placed(&app, &mm.access, quote("sell", "50300")).await;
    app.shutdown().await;
}

/// The size of `who`'s BTC-PERP position, "0" when flat, once the read model has it.
async fn perp_size(app: &TestApp, token: &str) -> String {
    let v = json_of(get(app, "/v1/positions", token).await, 200).await;
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == PERP)
        .map_or_else(
            || "0".to_owned(),
            |p| p["size"].as_str().unwrap().to_owned(),
        )
}

async fn liquidation_closes_against_the_book_and_the_fund_takes_the_rest(app: TestApp) {
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let risk = app.admin_key(&["risk:write", "risk:read"]).await;
    let fund = funded_user(&app, &key, "1000000").await;
    let trader = funded_user(&app, &key, "1000").await;
    let maker = funded_user(&app, &key, "1000000").await;
    let fund_id = user_id(&app, &fund.access).await;

    // Without `risk:write` nobody names the fund; a user without an account cannot be it.
    let r = app
        .client
        .put(app.admin_url("/admin/v1/insurance-fund"))
        .bearer_auth(&key)
        .json(&json!({"user_id": fund_id}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 403, "insufficient_scope").await;
    let r = admin_put(
        &app,
        &risk,
        "/admin/v1/insurance-fund",
        json!({"user_id": fund_id}),
    )
    .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());

    // The trader goes long 0.1 BTC at 50 000 with 1 000 USDC of collateral.
    placed(&app, &maker.access, limit("sell", "50000", "0.1")).await;
    placed(&app, &trader.access, limit("buy", "50000", "0.1")).await;
    let resting = placed(&app, &trader.access, limit("buy", "30000", "0.01")).await;
    assert_eq!(perp_size(&app, &trader.access).await, "0.1");
    // Bids for half of it at 41 000.
    placed(&app, &maker.access, limit("buy", "41000", "0.05")).await;

    // The mark falls to 41 000: equity ≈ 100 USDC, maintenance 205: liquidated.
    let r = admin_post(
        &app,
        &key,
        &format!("/admin/v1/instruments/{PERP}/prices"),
        json!({"mark": "41000"}),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let o = order_status(
        &app,
        &trader.access,
        &resting,
        "canceled",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o["cancel_reason"], "liquidation", "{o}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while perp_size(&app, &trader.access).await != "0" {
        assert!(
            Instant::now() < deadline,
            "the trader's position is not closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The book took 0.05 (the maker is now long 0.05 besides its 0.1 short)…
    assert_eq!(perp_size(&app, &maker.access).await, "-0.05");
    // …and the fund took over the other 0.05.
    assert_eq!(perp_size(&app, &fund.access).await, "0.05");
    // The trader's equity never goes below zero.
    let acct = json_of(get(&app, "/v1/account", &trader.access).await, 200).await;
    let equity = acct["equity"].as_str().unwrap();
    assert!(!equity.starts_with('-'), "{acct}");
    app.shutdown().await;
}
both!(liquidation_closes_against_the_book_and_the_fund_takes_the_rest);
