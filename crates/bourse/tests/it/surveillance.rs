//! The surveillance pipeline against a running server (issue 7, docs/risk-detection.md):
//! trades between linked accounts raise `wash_trading`; repeated wrong second factors
//! raise `failed_second_factor`, whose action puts withdrawals on hold until the risk
//! desk lifts it; alerts are listed, resolved and lifted through the admin API, each
//! answer asserting status and problem code.

use std::time::{Duration, Instant};

use bourse_auth::totp::code_at;
use bourse_testkit::{Db, TestApp};
use serde_json::{Value, json};

use crate::assert_problem;
use crate::identity::{enable_totp, fresh_totp_step, get, now, post, register_and_login, step_up};
use crate::trading::{
    admin_get, admin_post, funded_user, limit, market_admin, order, set_prices, user_id,
};

async fn spawn(db: Db) -> Option<TestApp> {
    TestApp::spawn_with(db, |c| c.surveillance.enabled = true).await
}

/// `n` sign-ins with the right password and a wrong second factor, each refused.
async fn wrong_second_factors(app: &TestApp, email: &str, password: &str, n: usize) {
    for _ in 0..n {
        let r = post(
            app,
            "/v1/auth/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await;
        let v: Value = r.json().await.unwrap();
        let challenge = v["challenge"].as_str().expect("mfa_required").to_owned();
        let r = post(
            app,
            "/v1/auth/login/mfa",
            None,
            json!({"challenge": challenge, "code": "000000"}),
        )
        .await;
        assert!(matches!(r.status().as_u16(), 401 | 429), "{}", r.status());
    }
}

/// The first alert of `rule`, once the pipeline has raised it (at most 10 s).
async fn alert_of(app: &TestApp, key: &str, rule: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = admin_get(app, key, &format!("/admin/v1/risk/alerts?rule={rule}")).await;
        assert_eq!(r.status(), 200);
        let page: Value = r.json().await.unwrap();
        if let Some(a) = page["data"].as_array().unwrap().first() {
            return a.clone();
        }
        assert!(Instant::now() < deadline, "no {rule} alert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wash_trades_raise_an_alert_the_desk_resolves(app: TestApp) {
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let risk = app.admin_key(&["risk:read", "risk:write"]).await;
    let a = funded_user(&app, &key, "100000").await;
    let b = funded_user(&app, &key, "100000").await;
    let (a_id, b_id) = (
        user_id(&app, &a.access).await,
        user_id(&app, &b.access).await,
    );

    // Reading needs `risk:read`; nothing is raised before anyone trades.
    let r = admin_get(&app, &key, "/admin/v1/risk/alerts").await;
    assert_problem(r, 403, "insufficient_scope").await;
    let page: Value = admin_get(&app, &risk, "/admin/v1/risk/alerts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"], json!([]), "{page}");

    // Two users seen from the same address trade with each other three times.
    for _ in 0..3 {
        let r = order(&app, &a.access, limit("sell", "50000", "0.5")).await;
        assert_eq!(r.status(), 201);
        let r = order(&app, &b.access, limit("buy", "50000", "0.5")).await;
        assert_eq!(r.status(), 201);
    }
    let alert = alert_of(&app, &risk, "wash_trading").await;
    assert_eq!(alert["action"], "notify", "{alert}");
    assert_eq!(alert["action_state"], "none", "{alert}");
    assert_eq!(alert["status"], "open", "{alert}");
    let users = alert["subjects"]["users"].as_array().unwrap();
    assert!(
        users.contains(&json!(a_id)) && users.contains(&json!(b_id)),
        "{alert}"
    );
    assert!(!alert["evidence"].as_array().unwrap().is_empty(), "{alert}");
    let id = alert["id"].as_str().unwrap().to_owned();

    // Filters and the single read.
    let mine: Value = admin_get(
        &app,
        &risk,
        &format!("/admin/v1/risk/alerts?user_id={a_id}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        mine["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id.as_str())
    );
    let r = admin_get(&app, &risk, "/admin/v1/risk/alerts?status=bogus").await;
    assert_problem(r, 400, "validation_failed").await;
    let r = admin_get(
        &app,
        &risk,
        "/admin/v1/risk/alerts/00000000-0000-0000-0000-000000000000",
    )
    .await;
    assert_problem(r, 404, "not_found").await;

    // Resolving needs `risk:write`, a note, and an open alert; a notify alert has no
    // action to lift.
    let path = format!("/admin/v1/risk/alerts/{id}/resolve");
    let r = admin_post(&app, &key, &path, json!({"note": "x"})).await;
    assert_problem(r, 403, "insufficient_scope").await;
    let r = admin_post(&app, &risk, &path, json!({"note": "  "})).await;
    assert_problem(r, 400, "validation_failed").await;
    let r = admin_post(
        &app,
        &risk,
        &path,
        json!({"note": "same owner testing; warned"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["status"], "resolved", "{done}");
    assert_eq!(done["resolution"], "same owner testing; warned", "{done}");
    assert!(done["resolved_by"].is_string(), "{done}");
    let r = admin_post(&app, &risk, &path, json!({"note": "again"})).await;
    assert_problem(r, 409, "alert_not_open").await;
    let r = admin_post(
        &app,
        &risk,
        &format!("/admin/v1/risk/alerts/{id}/lift"),
        json!({}),
    )
    .await;
    assert_problem(r, 409, "action_not_in_force").await;
    app.shutdown().await;
}

mod wash {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = super::spawn(bourse_testkit::Db::Sqlite).await.unwrap();
        super::wash_trades_raise_an_alert_the_desk_resolves(app).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = super::spawn(bourse_testkit::Db::Postgres).await {
            super::wash_trades_raise_an_alert_the_desk_resolves(app).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_second_factors_put_withdrawals_on_hold_until_lifted() {
    let app = spawn(Db::Sqlite).await.unwrap();
    let risk = app.admin_key(&["risk:read", "risk:write"]).await;
    let u = register_and_login(&app).await;
    let uid = user_id(&app, &u.access).await;
    let (secret, _) = enable_totp(&app, &u.access).await;
    fresh_totp_step().await;
    let r = step_up(&app, &u.access, &code_at(&secret, now())).await;
    assert_eq!(r.status(), 200);
    let stepped = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Someone with the password guesses second factors: five wrong codes.
    wrong_second_factors(&app, &u.email, &u.password, 5).await;
    let alert = alert_of(&app, &risk, "failed_second_factor").await;
    assert_eq!(alert["action"], "freeze_withdrawals", "{alert}");
    assert_eq!(alert["action_state"], "applied", "{alert}");
    assert_eq!(alert["subjects"]["users"], json!([uid]), "{alert}");

    // Withdrawals are on hold, even with a fresh second factor.
    let w = json!({"asset": "USDC", "amount": "10", "address_id": "00000000-0000-0000-0000-000000000000"});
    let r = post(&app, "/v1/wallet/withdrawals", Some(&stepped), w.clone()).await;
    assert_problem(r, 403, "withdrawals_frozen").await;

    // The desk lifts it; the request is judged on its merits again.
    let id = alert["id"].as_str().unwrap();
    let r = admin_post(
        &app,
        &risk,
        &format!("/admin/v1/risk/alerts/{id}/lift"),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let lifted: Value = r.json().await.unwrap();
    assert_eq!(lifted["action_state"], "lifted", "{lifted}");
    let r = post(&app, "/v1/wallet/withdrawals", Some(&stepped), w).await;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_ne!(body["code"], "withdrawals_frozen", "{body}");
    assert!((400..500).contains(&status), "{status} {body}");
    let r = admin_post(
        &app,
        &risk,
        &format!("/admin/v1/risk/alerts/{id}/lift"),
        json!({}),
    )
    .await;
    assert_problem(r, 409, "action_not_in_force").await;
    let _ = get;
    app.shutdown().await;
}

/// A complete two-factor sign-in (password, then a recovery code) from `agent`.
async fn login_with_agent(app: &TestApp, email: &str, password: &str, code: &str, agent: &str) {
    let r = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("user-agent", agent)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let challenge = v["challenge"].as_str().expect("mfa_required");
    let r = app
        .client
        .post(app.url("/v1/auth/login/mfa"))
        .header("user-agent", agent)
        .json(&json!({"challenge": challenge, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_requires_a_second_factor_newer_than_the_alert() {
    let app = spawn(Db::Sqlite).await.unwrap();
    let risk = app.admin_key(&["risk:read", "risk:write"]).await;
    let u = register_and_login(&app).await;
    let (secret, recovery) = enable_totp(&app, &u.access).await;
    fresh_totp_step().await;
    let r = step_up(&app, &u.access, &code_at(&secret, now())).await;
    assert_eq!(r.status(), 200);
    let stepped = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let address = |label: &str| json!({"asset": "USDC", "address": "0x8ba1f109551bd432803012645ac136ddd64dba72", "label": label});
    let r = post(
        &app,
        "/v1/wallet/addresses",
        Some(&stepped),
        address("first"),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Sign-ins from a known device, then from one never seen: `new_device`, step-up.
    login_with_agent(
        &app,
        &u.email,
        &u.password,
        &recovery[1],
        "trader-desktop/1.0",
    )
    .await;
    login_with_agent(
        &app,
        &u.email,
        &u.password,
        &recovery[2],
        "unknown-tablet/9.9",
    )
    .await;
    let alert = alert_of(&app, &risk, "new_device").await;
    assert_eq!(alert["action"], "step_up", "{alert}");
    assert_eq!(alert["action_state"], "applied", "{alert}");

    // The second factor from before the alert no longer counts…
    let r = post(
        &app,
        "/v1/wallet/addresses",
        Some(&stepped),
        address("second"),
    )
    .await;
    assert_problem(r, 401, "insufficient_user_authentication").await;
    // …a new one does.
    let r = step_up(&app, &stepped, &recovery[0]).await;
    assert_eq!(r.status(), 200);
    let again = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post(
        &app,
        "/v1/wallet/addresses",
        Some(&again),
        address("second"),
    )
    .await;
    assert_ne!(r.status(), 401, "{}", r.text().await.unwrap());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halt_trading_action_stops_order_entry_until_the_desk_lifts_it() {
    let app = TestApp::spawn_with(Db::Sqlite, |c| {
        c.surveillance.enabled = true;
        c.surveillance.rules.failed_second_factor.action = bourse_surveillance::Action::HaltTrading;
    })
    .await
    .unwrap();
    let key = market_admin(&app).await;
    set_prices(&app, &key).await;
    let risk = app.admin_key(&["risk:read", "risk:write"]).await;
    let u = funded_user(&app, &key, "100000").await;
    enable_totp(&app, &u.access).await;
    let r = order(&app, &u.access, limit("buy", "49000", "0.01")).await;
    assert_eq!(r.status(), 201);
    wrong_second_factors(&app, &u.email, &u.password, 5).await;
    let alert = alert_of(&app, &risk, "failed_second_factor").await;
    assert_eq!(alert["action"], "halt_trading", "{alert}");
    // The pipeline turns the kill switch on right after storing the alert.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = order(&app, &u.access, limit("buy", "49000", "0.01")).await;
        if r.status() == 403 {
            assert_problem(r, 403, "account_kill_switch").await;
            break;
        }
        assert!(Instant::now() < deadline, "trading not halted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Only the desk can lift it: the user cannot, lifting the alert's action can.
    let r = post(
        &app,
        "/v1/account/kill-switch",
        Some(&u.access),
        json!({"active": false}),
    )
    .await;
    assert_problem(r, 403, "kill_switch_admin_only").await;
    let id = alert["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let a: Value = admin_get(&app, &risk, &format!("/admin/v1/risk/alerts/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if a["action_state"] == "applied" {
            break;
        }
        assert!(Instant::now() < deadline, "{a}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = admin_post(
        &app,
        &risk,
        &format!("/admin/v1/risk/alerts/{id}/lift"),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = order(&app, &u.access, limit("buy", "49000", "0.01")).await;
    assert_eq!(r.status(), 201);
    app.shutdown().await;
}
