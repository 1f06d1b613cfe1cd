//! Money in and out over real TLS, on SQLite and PostgreSQL: admin deposits (credited
//! once per tx_ref), withdrawals (step-up, whitelist cool-down, funds held at once,
//! insufficient funds), approval (dual approval above the threshold by two different
//! keys), rejection (funds return), ownership (404) and admin scopes.

use bourse_auth::totp::code_at;
use bourse_testkit::TestApp;
use serde_json::{Value, json};

use crate::assert_problem;
use crate::identity::{enable_totp, fresh_totp_step, get, now, post, register_and_login, step_up};
use crate::trading::{admin_get, admin_post, json_of};

const ADDRESS: &str = "0x8ba1f109551bd432803012645ac136ddd64dba72";

/// Runs one case on both backends with a whitelist cool-down of 0 (addresses are
/// usable at once) and dual approval above 10 000 USDC.
macro_rules! both_no_cooldown {
    ($case:ident) => {
        pub mod $case {
            fn adjust(c: &mut bourse::Config) {
                c.wallet.address_cooldown_secs = 0;
                c.wallet.dual_approval_above = "10000".into();
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = bourse_testkit::TestApp::spawn_with(bourse_testkit::Db::Sqlite, adjust)
                    .await
                    .expect("SQLite is always available");
                super::$case(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) =
                    bourse_testkit::TestApp::spawn_with(bourse_testkit::Db::Postgres, adjust).await
                {
                    super::$case(app).await;
                }
            }
        }
    };
}

struct Stepped {
    /// A plain access token (no fresh second factor).
    access: String,
    /// A stepped-up token (`acr=mfa`, fresh).
    stepped: String,
    user_id: String,
}

/// A user with 2FA and a stepped-up token.
async fn stepped_user(app: &TestApp) -> Stepped {
    let u = register_and_login(app).await;
    let (secret, _) = enable_totp(app, &u.access).await;
    fresh_totp_step().await;
    let r = step_up(app, &u.access, &code_at(&secret, now())).await;
    assert_eq!(r.status(), 200);
    let stepped = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    bourse_testkit::plant_canary(&stepped);
    let me: Value = get(app, "/v1/auth/me", &u.access)
        .await
        .json()
        .await
        .unwrap();
    Stepped {
        access: u.access,
        stepped,
        user_id: me["user_id"].as_str().unwrap().to_owned(),
    }
}

async fn deposit(app: &TestApp, key: &str, user_id: &str, amount: &str, tx_ref: &str) -> Value {
    json_of(
        admin_post(
            app,
            key,
            "/admin/v1/deposits",
            json!({"user_id": user_id, "asset": "USDC", "amount": amount, "tx_ref": tx_ref}),
        )
        .await,
        201,
    )
    .await
}

async fn add_address(app: &TestApp, stepped: &str) -> Value {
    json_of(
        post(
            app,
            "/v1/wallet/addresses",
            Some(stepped),
            json!({"asset": "USDC", "address": ADDRESS, "label": "cold"}),
        )
        .await,
        201,
    )
    .await
}

async fn withdraw(app: &TestApp, token: &str, amount: &str, address_id: &str) -> reqwest::Response {
    post(
        app,
        "/v1/wallet/withdrawals",
        Some(token),
        json!({"asset": "USDC", "amount": amount, "address_id": address_id}),
    )
    .await
}

/// The user's USDC cash balance and withdrawal hold, from `GET /v1/account`.
async fn balance(app: &TestApp, token: &str) -> (String, String) {
    let a = json_of(get(app, "/v1/account", token).await, 200).await;
    let b = a["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "USDC")
        .cloned()
        .unwrap_or(json!({"balance": "0", "held": "0"}));
    (
        b["balance"].as_str().unwrap().to_owned(),
        b["held"].as_str().unwrap().to_owned(),
    )
}

async fn withdrawal(app: &TestApp, token: &str, id: &str) -> Value {
    json_of(
        get(app, &format!("/v1/wallet/withdrawals/{id}"), token).await,
        200,
    )
    .await
}

both!(deposits_are_credited_once_and_need_their_scope);
async fn deposits_are_credited_once_and_need_their_scope(app: TestApp) {
    let key = app.admin_key(&["deposits:write"]).await;
    let u = register_and_login(&app).await;
    let me: Value = get(&app, "/v1/auth/me", &u.access)
        .await
        .json()
        .await
        .unwrap();
    let uid = me["user_id"].as_str().unwrap().to_owned();

    let d = deposit(&app, &key, &uid, "1000.5", "0xfeed:1").await;
    assert_eq!(d["state"], "credited", "{d}");
    assert_eq!(d["amount"], "1000.5");
    assert_eq!(d["asset"], "USDC");
    assert_eq!(d["tx_ref"], "0xfeed:1");
    assert_eq!(d["user_id"], uid.as_str());
    // The same transaction again is refused and credits nothing.
    let r = admin_post(
        &app,
        &key,
        "/admin/v1/deposits",
        json!({"user_id": uid, "asset": "USDC", "amount": "1000.5", "tx_ref": "0xfeed:1"}),
    )
    .await;
    assert_problem(r, 409, "duplicate_deposit").await;
    let (bal, held) = balance(&app, &u.access).await;
    assert_eq!(bal, "1000.5");
    assert_eq!(held, "0");
    let list = json_of(get(&app, "/v1/wallet/deposits", &u.access).await, 200).await;
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(data[0]["state"], "credited");
    assert_eq!(data[0]["id"], d["id"]);
    assert!(list["next_cursor"].is_null());

    // Refusals: unknown user, another asset, too many decimals, unknown fields.
    let r = admin_post(
        &app,
        &key,
        "/admin/v1/deposits",
        json!({"user_id": "01900000-0000-7000-8000-000000000000", "asset": "USDC", "amount": "1", "tx_ref": "x1"}),
    )
    .await;
    assert_problem(r, 404, "not_found").await;
    for (body, pointer, code) in [
        (
            json!({"user_id": uid, "asset": "BTC", "amount": "1", "tx_ref": "x2"}),
            "/asset",
            "unsupported_asset",
        ),
        (
            json!({"user_id": uid, "asset": "USDC", "amount": "1.0000001", "tx_ref": "x3"}),
            "/amount",
            "too_many_decimals",
        ),
        (
            json!({"user_id": uid, "asset": "USDC", "amount": "1", "tx_ref": "x4", "state": "credited"}),
            "/state",
            "unknown_field",
        ),
    ] {
        let p = assert_problem(
            admin_post(&app, &key, "/admin/v1/deposits", body).await,
            400,
            "validation_failed",
        )
        .await;
        assert_eq!(p["errors"][0]["pointer"], pointer, "{p}");
        assert_eq!(p["errors"][0]["code"], code, "{p}");
    }

    // Scopes: a key without `deposits:write` is refused, no key is 401.
    let reader = app.admin_key(&["users:read", "withdrawals:approve"]).await;
    let r = admin_post(
        &app,
        &reader,
        "/admin/v1/deposits",
        json!({"user_id": uid, "asset": "USDC", "amount": "5", "tx_ref": "x5"}),
    )
    .await;
    assert_problem(r, 403, "insufficient_scope").await;
    let r = app
        .client
        .post(app.admin_url("/admin/v1/deposits"))
        .json(&json!({"user_id": uid, "asset": "USDC", "amount": "5", "tx_ref": "x6"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "unauthorized").await;
    // A user token is not an admin credential, and the public listener has no admin routes.
    let r = admin_post(
        &app,
        &u.access,
        "/admin/v1/deposits",
        json!({"user_id": uid, "asset": "USDC", "amount": "5", "tx_ref": "x7"}),
    )
    .await;
    assert_problem(r, 401, "unauthorized").await;
    let r = post(
        &app,
        "/admin/v1/deposits",
        Some(&key),
        json!({"user_id": uid, "asset": "USDC", "amount": "5", "tx_ref": "x8"}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let list = json_of(get(&app, "/v1/wallet/deposits", &u.access).await, 200).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "nothing else credited"
    );
    app.shutdown().await;
}

both!(a_withdrawal_waits_for_the_address_cool_down);
async fn a_withdrawal_waits_for_the_address_cool_down(app: TestApp) {
    let key = app.admin_key(&["deposits:write"]).await;
    let u = stepped_user(&app).await;
    deposit(&app, &key, &u.user_id, "100", "cool:1").await;
    let a = add_address(&app, &u.stepped).await;
    assert_eq!(a["usable"], false);
    let id = a["id"].as_str().unwrap();
    let p = assert_problem(
        withdraw(&app, &u.stepped, "10", id).await,
        409,
        "address_not_usable",
    )
    .await;
    // The stored time (whole seconds), as the list shows it.
    let listed = json_of(get(&app, "/v1/wallet/addresses", &u.access).await, 200).await;
    let usable_at = listed["data"][0]["usable_at"].as_str().unwrap();
    assert!(
        p["detail"].as_str().unwrap().contains(usable_at),
        "{p} {usable_at}"
    );
    // Nothing was requested or held.
    let list = json_of(get(&app, "/v1/wallet/withdrawals", &u.access).await, 200).await;
    assert!(list["data"].as_array().unwrap().is_empty(), "{list}");
    let (bal, held) = balance(&app, &u.access).await;
    assert_eq!((bal.as_str(), held.as_str()), ("100", "0"));
    app.shutdown().await;
}

both_no_cooldown!(withdrawals_need_step_up_hold_funds_and_are_private);
async fn withdrawals_need_step_up_hold_funds_and_are_private(app: TestApp) {
    let key = app.admin_key(&["deposits:write"]).await;
    let approver = app.admin_key(&["withdrawals:approve"]).await;
    let alice = stepped_user(&app).await;
    let bob = stepped_user(&app).await;
    deposit(&app, &key, &alice.user_id, "1000", "alice:1").await;
    let a = add_address(&app, &alice.stepped).await;
    assert_eq!(a["usable"], true);
    let address_id = a["id"].as_str().unwrap().to_owned();

    // A plain token is not enough: the RFC 9470 challenge.
    let r = withdraw(&app, &alice.access, "100", &address_id).await;
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.contains("insufficient_user_authentication"), "{www}");
    assert_problem(r, 401, "insufficient_user_authentication").await;
    // Bad input and mass assignment.
    for (body, pointer, code) in [
        (
            json!({"asset": "USDC", "amount": "0", "address_id": address_id}),
            "/amount",
            "out_of_range",
        ),
        (
            json!({"asset": "USDC", "amount": "1.0000001", "address_id": address_id}),
            "/amount",
            "too_many_decimals",
        ),
        (
            json!({"asset": "USDC", "amount": "1", "address_id": address_id, "state": "approved"}),
            "/state",
            "unknown_field",
        ),
        (
            json!({"asset": "USDC", "amount": "1", "address_id": "../../etc"}),
            "/address_id",
            "invalid_id",
        ),
    ] {
        let p = assert_problem(
            post(&app, "/v1/wallet/withdrawals", Some(&alice.stepped), body).await,
            400,
            "validation_failed",
        )
        .await;
        assert_eq!(p["errors"][0]["pointer"], pointer, "{p}");
        assert_eq!(p["errors"][0]["code"], code, "{p}");
    }
    // An address that is not hers (Bob's, or none at all) is not found.
    let b = add_address(&app, &bob.stepped).await;
    let r = withdraw(&app, &alice.stepped, "100", b["id"].as_str().unwrap()).await;
    assert_problem(r, 404, "not_found").await;
    let r = withdraw(
        &app,
        &alice.stepped,
        "100",
        "01900000-0000-7000-8000-000000000000",
    )
    .await;
    assert_problem(r, 404, "not_found").await;
    // Another asset than the address's.
    let r = post(
        &app,
        "/v1/wallet/withdrawals",
        Some(&alice.stepped),
        json!({"asset": "BTC", "amount": "1", "address_id": address_id}),
    )
    .await;
    assert_problem(r, 409, "address_not_usable").await;

    // Requested: durable, funds held at once.
    let r = withdraw(&app, &alice.stepped, "250.25", &address_id).await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let w = json_of(r, 201).await;
    let wid = w["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/wallet/withdrawals/{wid}"));
    assert_eq!(w["state"], "pending", "{w}");
    assert_eq!(w["amount"], "250.25");
    assert_eq!(w["asset"], "USDC");
    assert_eq!(w["address_id"], address_id.as_str());
    assert_eq!(w["address"], ADDRESS);
    assert!(w["reason"].is_null());
    let (bal, held) = balance(&app, &alice.access).await;
    assert_eq!((bal.as_str(), held.as_str()), ("749.75", "250.25"));
    assert_eq!(
        withdrawal(&app, &alice.access, &wid).await["state"],
        "pending"
    );

    // More than is left: 422, recorded as rejected, nothing more held.
    let p = assert_problem(
        withdraw(&app, &alice.stepped, "749.76", &address_id).await,
        422,
        "insufficient_funds",
    )
    .await;
    assert!(!p["detail"].as_str().unwrap().is_empty());
    // A user who never deposited has no funds either.
    let r = withdraw(&app, &bob.stepped, "1", b["id"].as_str().unwrap()).await;
    assert_problem(r, 422, "insufficient_funds").await;
    let (bal, held) = balance(&app, &alice.access).await;
    assert_eq!((bal.as_str(), held.as_str()), ("749.75", "250.25"));
    let list = json_of(
        get(&app, "/v1/wallet/withdrawals", &alice.access).await,
        200,
    )
    .await;
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{list}");
    assert_eq!(data[0]["state"], "rejected", "newest first: {list}");
    assert_eq!(data[0]["reason"], "insufficient_funds");
    assert_eq!(data[1]["id"], wid.as_str());
    // Paging.
    let page = json_of(
        get(&app, "/v1/wallet/withdrawals?limit=1", &alice.access).await,
        200,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let page = json_of(
        get(
            &app,
            &format!("/v1/wallet/withdrawals?limit=1&cursor={cursor}"),
            &alice.access,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(page["data"][0]["id"], wid.as_str());
    let r = get(&app, "/v1/wallet/withdrawals?cursor=zzz", &alice.access).await;
    assert_problem(r, 400, "validation_failed").await;

    // Bob neither sees nor reads it: 404, the same as an id that never existed.
    let r = get(&app, &format!("/v1/wallet/withdrawals/{wid}"), &bob.access).await;
    assert_problem(r, 404, "not_found").await;
    let r = get(&app, "/v1/wallet/withdrawals/999999", &bob.access).await;
    assert_problem(r, 404, "not_found").await;
    let r = get(&app, "/v1/wallet/withdrawals/abc", &bob.access).await;
    assert_problem(r, 400, "validation_failed").await;
    let bobs = json_of(get(&app, "/v1/wallet/withdrawals", &bob.access).await, 200).await;
    assert_eq!(
        bobs["data"].as_array().unwrap().len(),
        1,
        "only his refused one"
    );
    let bobs = json_of(get(&app, "/v1/wallet/deposits", &bob.access).await, 200).await;
    assert!(bobs["data"].as_array().unwrap().is_empty());

    // The admin sees it with its owner; one approval completes a small one.
    let pending = json_of(
        admin_get(&app, &approver, "/admin/v1/withdrawals?state=pending").await,
        200,
    )
    .await;
    let mine: Vec<&Value> = pending["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["id"] == wid.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{pending}");
    assert_eq!(mine[0]["user_id"], alice.user_id.as_str());
    assert_eq!(mine[0]["approvals_required"], 1);
    let r = admin_get(&app, &approver, "/admin/v1/withdrawals?state=bogus").await;
    assert_problem(r, 400, "validation_failed").await;
    let done = json_of(
        admin_post(
            &app,
            &approver,
            &format!("/admin/v1/withdrawals/{wid}/approve"),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["approvals"].as_array().unwrap().len(), 1);
    assert_eq!(
        withdrawal(&app, &alice.access, &wid).await["state"],
        "completed"
    );
    let (bal, held) = balance(&app, &alice.access).await;
    assert_eq!((bal.as_str(), held.as_str()), ("749.75", "0"));
    // Final: neither approved nor rejected again.
    let r = admin_post(
        &app,
        &approver,
        &format!("/admin/v1/withdrawals/{wid}/approve"),
        json!({}),
    )
    .await;
    assert_problem(r, 409, "invalid_state").await;
    let r = admin_post(
        &app,
        &approver,
        &format!("/admin/v1/withdrawals/{wid}/reject"),
        json!({"reason": "too late"}),
    )
    .await;
    assert_problem(r, 409, "invalid_state").await;
    let r = admin_post(
        &app,
        &approver,
        "/admin/v1/withdrawals/999999/approve",
        json!({}),
    )
    .await;
    assert_problem(r, 404, "not_found").await;
    app.shutdown().await;
}

both_no_cooldown!(large_withdrawals_need_two_keys_and_rejection_returns_funds);
async fn large_withdrawals_need_two_keys_and_rejection_returns_funds(app: TestApp) {
    let key = app.admin_key(&["deposits:write"]).await;
    let first = app.admin_key(&["withdrawals:approve"]).await;
    let second = app.admin_key(&["withdrawals:approve"]).await;
    let u = stepped_user(&app).await;
    deposit(&app, &key, &u.user_id, "1000000", "big:1").await;
    let a = add_address(&app, &u.stepped).await;
    let address_id = a["id"].as_str().unwrap().to_owned();

    // Above the threshold: two different keys; the same key twice counts once.
    let w = json_of(withdraw(&app, &u.stepped, "500000", &address_id).await, 201).await;
    let wid = w["id"].as_str().unwrap().to_owned();
    let approve = |k: String| {
        let app = &app;
        let wid = wid.clone();
        async move {
            admin_post(
                app,
                &k,
                &format!("/admin/v1/withdrawals/{wid}/approve"),
                json!({}),
            )
            .await
        }
    };
    let once = json_of(approve(first.clone()).await, 202).await;
    assert_eq!(once["state"], "pending", "{once}");
    assert_eq!(once["approvals_required"], 2);
    assert_eq!(once["approvals"].as_array().unwrap().len(), 1);
    let twice = json_of(approve(first.clone()).await, 202).await;
    assert_eq!(twice["approvals"].as_array().unwrap().len(), 1, "{twice}");
    assert_eq!(withdrawal(&app, &u.access, &wid).await["state"], "pending");
    let (bal, held) = balance(&app, &u.access).await;
    assert_eq!((bal.as_str(), held.as_str()), ("500000", "500000"));
    // A key without the scope cannot approve.
    let r = approve(key.clone()).await;
    assert_problem(r, 403, "insufficient_scope").await;
    let done = json_of(approve(second.clone()).await, 200).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["approvals"].as_array().unwrap().len(), 2);
    let (bal, held) = balance(&app, &u.access).await;
    assert_eq!((bal.as_str(), held.as_str()), ("500000", "0"));

    // Rejection returns the funds and keeps the reason.
    let w = json_of(withdraw(&app, &u.stepped, "300", &address_id).await, 201).await;
    let rid = w["id"].as_str().unwrap().to_owned();
    let (bal, held) = balance(&app, &u.access).await;
    assert_eq!((bal.as_str(), held.as_str()), ("499700", "300"));
    let r = admin_post(
        &app,
        &first,
        &format!("/admin/v1/withdrawals/{rid}/reject"),
        json!({"reason": ""}),
    )
    .await;
    assert_problem(r, 400, "validation_failed").await;
    let r = admin_post(
        &app,
        &key,
        &format!("/admin/v1/withdrawals/{rid}/reject"),
        json!({"reason": "screening"}),
    )
    .await;
    assert_problem(r, 403, "insufficient_scope").await;
    let rejected = json_of(
        admin_post(
            &app,
            &first,
            &format!("/admin/v1/withdrawals/{rid}/reject"),
            json!({"reason": "address failed screening"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rejected["state"], "rejected", "{rejected}");
    assert_eq!(rejected["reason"], "address failed screening");
    let seen = withdrawal(&app, &u.access, &rid).await;
    assert_eq!(seen["state"], "rejected");
    assert_eq!(seen["reason"], "address failed screening");
    let (bal, held) = balance(&app, &u.access).await;
    assert_eq!((bal.as_str(), held.as_str()), ("500000", "0"));
    let r = admin_post(
        &app,
        &second,
        &format!("/admin/v1/withdrawals/{rid}/approve"),
        json!({}),
    )
    .await;
    assert_problem(r, 409, "invalid_state").await;
    let r = admin_post(
        &app,
        &first,
        &format!("/admin/v1/withdrawals/{rid}/reject"),
        json!({"reason": "again"}),
    )
    .await;
    assert_problem(r, 409, "invalid_state").await;
    // The released funds can be withdrawn again.
    let w = json_of(withdraw(&app, &u.stepped, "500000", &address_id).await, 201).await;
    assert_eq!(w["state"], "pending");
    let completed = json_of(
        admin_get(&app, &first, "/admin/v1/withdrawals?state=completed").await,
        200,
    )
    .await;
    assert!(
        completed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == wid.as_str()),
        "{completed}"
    );
    app.shutdown().await;
}

both!(the_engine_status_needs_instruments_read);
async fn the_engine_status_needs_instruments_read(app: TestApp) {
    let reader = app.admin_key(&["instruments:read"]).await;
    let v = json_of(admin_get(&app, &reader, "/admin/v1/engine").await, 200).await;
    let hash = v["state_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 16, "{v}");
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{v}");
    for k in [
        "durable_seq",
        "projected_seq",
        "commands",
        "journaled",
        "commits",
    ] {
        assert!(v[k].is_u64(), "{k}: {v}");
    }
    let other = app.admin_key(&["users:read"]).await;
    let r = admin_get(&app, &other, "/admin/v1/engine").await;
    assert_problem(r, 403, "insufficient_scope").await;
    // A deposit moves the durable sequence number and changes the hash.
    let key = app.admin_key(&["deposits:write"]).await;
    let u = register_and_login(&app).await;
    let me: Value = get(&app, "/v1/auth/me", &u.access)
        .await
        .json()
        .await
        .unwrap();
    deposit(&app, &key, me["user_id"].as_str().unwrap(), "5", "eng:1").await;
    let after = json_of(admin_get(&app, &reader, "/admin/v1/engine").await, 200).await;
    assert!(
        after["durable_seq"].as_u64() > v["durable_seq"].as_u64(),
        "{after}"
    );
    assert_ne!(after["state_hash"], v["state_hash"]);
    app.shutdown().await;
}

both!(instruments_are_run_through_the_admin_api);
async fn instruments_are_run_through_the_admin_api(app: TestApp) {
    let key = app.admin_key(&["instruments:write"]).await;
    let sym = "SOL-PERP";
    let spec = json!({
        "symbol": sym, "kind": "perpetual", "base_asset": "SOL", "quote_asset": "USD",
        "settlement_asset": "USDC", "tick_size": "0.01", "lot_size": "0.1",
        "min_order_size": "0.1", "max_order_size": "100000", "contract_multiplier": "1",
        "initial_margin": "0.2", "maintenance_margin": "0.1", "maker_fee": "0", "taker_fee": "0.001",
    });
    // Rates are exact fractions in range.
    for (field, value, code) in [
        ("initial_margin", "0.1000001", "too_many_decimals"),
        ("maintenance_margin", "0.3", "out_of_range"),
        ("taker_fee", "0.2", "out_of_range"),
        ("maker_fee", "-0.0001", "out_of_range"),
        ("initial_margin", "1e-1", "invalid_decimal"),
    ] {
        let mut b = spec.clone();
        b[field] = json!(value);
        let p = assert_problem(
            admin_post(&app, &key, "/admin/v1/instruments", b).await,
            400,
            "validation_failed",
        )
        .await;
        assert_eq!(p["errors"][0]["pointer"], format!("/{field}"), "{p}");
        assert_eq!(p["errors"][0]["code"], code, "{p}");
    }
    // Not representable exactly in micro-units of USDC.
    let mut b = spec.clone();
    b["tick_size"] = json!("0.0000001");
    b["lot_size"] = json!("0.1");
    b["min_order_size"] = json!("0.1");
    let p = assert_problem(
        admin_post(&app, &key, "/admin/v1/instruments", b).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(p["errors"][0]["code"], "not_representable", "{p}");
    let r = app
        .client
        .get(app.url(&format!("/v1/instruments/{sym}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "nothing was stored");

    let r = admin_post(&app, &key, "/admin/v1/instruments", spec.clone()).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let base = format!("/admin/v1/instruments/{sym}");
    let v = json_of(
        admin_post(&app, &key, &format!("{base}/halt"), json!({})).await,
        200,
    )
    .await;
    assert_eq!(v["status"], "halted", "{v}");
    let r = admin_post(&app, &key, &format!("{base}/halt"), json!({})).await;
    assert_problem(r, 409, "invalid_status_transition").await;
    let v = json_of(
        admin_post(&app, &key, &format!("{base}/resume"), json!({})).await,
        200,
    )
    .await;
    assert_eq!(v["status"], "active");
    // Prices: on tick, at least one.
    let r = admin_post(&app, &key, &format!("{base}/prices"), json!({})).await;
    assert_problem(r, 400, "validation_failed").await;
    let r = admin_post(
        &app,
        &key,
        &format!("{base}/prices"),
        json!({"mark": "150.005"}),
    )
    .await;
    let p = assert_problem(r, 400, "validation_failed").await;
    assert_eq!(p["errors"][0]["pointer"], "/mark");
    // Funding needs a mark price first.
    let r = admin_post(
        &app,
        &key,
        &format!("{base}/funding"),
        json!({"rate": "0.0001"}),
    )
    .await;
    assert_problem(r, 409, "no_mark_price").await;
    let v = json_of(
        admin_post(
            &app,
            &key,
            &format!("{base}/prices"),
            json!({"mark": "150.25", "index": "150.2"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(v["mark"], "150.25", "{v}");
    assert_eq!(v["index"], "150.2");
    for (rate, code) in [
        ("1.5", "out_of_range"),
        ("0.0000000001", "too_many_decimals"),
    ] {
        let r = admin_post(
            &app,
            &key,
            &format!("{base}/funding"),
            json!({"rate": rate}),
        )
        .await;
        let p = assert_problem(r, 400, "validation_failed").await;
        assert_eq!(p["errors"][0]["code"], code, "{p}");
    }
    let v = json_of(
        admin_post(
            &app,
            &key,
            &format!("{base}/funding"),
            json!({"rate": "-0.000125"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(v["funding"]["rate"], "-0.000125", "{v}");
    assert_eq!(v["funding"]["mark"], "150.25");
    assert_eq!(v["funding"]["paid_by_longs"], "0");
    // A perpetual never settles.
    let r = admin_post(&app, &key, &format!("{base}/settle"), json!({})).await;
    assert_problem(r, 409, "wrong_instrument_kind").await;
    let r = admin_post(
        &app,
        &key,
        "/admin/v1/instruments/NOPE-PERP/halt",
        json!({}),
    )
    .await;
    assert_problem(r, 404, "not_found").await;
    // Scope.
    let reader = app.admin_key(&["instruments:read"]).await;
    let r = admin_post(&app, &reader, &format!("{base}/halt"), json!({})).await;
    assert_problem(r, 403, "insufficient_scope").await;
    app.shutdown().await;
}

both!(freezing_a_user_freezes_the_trading_account);
async fn freezing_a_user_freezes_the_trading_account(app: TestApp) {
    let users = app.admin_key(&["users:write"]).await;
    let money = app.admin_key(&["deposits:write"]).await;
    // Never deposited (no account in the core yet): still fine, twice.
    let u = register_and_login(&app).await;
    let me: Value = get(&app, "/v1/auth/me", &u.access)
        .await
        .json()
        .await
        .unwrap();
    let uid = me["user_id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let r = admin_post(
            &app,
            &users,
            &format!("/admin/v1/users/{uid}/freeze"),
            json!({}),
        )
        .await;
        assert_eq!(r.status(), 204);
    }
    let r = admin_post(
        &app,
        &users,
        &format!("/admin/v1/users/{uid}/unfreeze"),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 204);
    // With an account in the core: freezing and unfreezing repeat harmlessly.
    deposit(&app, &money, &uid, "10", "frz:1").await;
    for path in ["freeze", "freeze", "unfreeze", "unfreeze"] {
        let r = admin_post(
            &app,
            &users,
            &format!("/admin/v1/users/{uid}/{path}"),
            json!({}),
        )
        .await;
        assert_eq!(r.status(), 204, "{path}");
    }
    app.shutdown().await;
}
