//! The audit trail against a running server: every request on both listeners leaves a
//! record (actor, route template, status, problem code), sensitive actions carry their
//! details and no secret, `bourse audit verify` names tampered records, and the two
//! read endpoints answer only what they should.

use std::time::Duration;

use bourse_store::{AuditQuery, AuditRecord};
use bourse_testkit::TestApp;
use serde_json::{Value, json};

use crate::assert_problem;
use crate::cli::{bourse, run};
use crate::identity::{get, post, register_and_login};
use crate::trading::{PERP, admin_post, limit, market_admin, order, set_prices, user_id};

/// Every record, oldest first.
async fn records(app: &TestApp) -> Vec<AuditRecord> {
    let mut all = app
        .running()
        .store
        .list_audit(&AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    all.reverse();
    all
}

/// The record of request `rid`, once the writer has stored it.
pub(crate) async fn record_of(app: &TestApp, rid: &str) -> AuditRecord {
    for _ in 0..200 {
        if let Some(r) = records(app)
            .await
            .into_iter()
            .find(|r| r.entry.request_id == rid)
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no audit record for request {rid}");
}

fn rid(what: &str) -> String {
    format!("{what}-{}", uuid::Uuid::new_v4().simple())
}

async fn admin_key_id(app: &TestApp, secret: &str) -> String {
    let hash = bourse_auth::admin_key::hash_presented(secret).unwrap();
    app.running()
        .store
        .find_admin_key(&hash)
        .await
        .unwrap()
        .unwrap()
        .id
}

fn details(r: &AuditRecord) -> Value {
    serde_json::from_str(r.entry.details.as_deref().unwrap_or("null")).unwrap()
}

async fn every_request_is_audited(app: TestApp) {
    let u = register_and_login(&app).await;
    let me: Value = get(&app, "/v1/auth/me", &u.access)
        .await
        .json()
        .await
        .unwrap();

    // An authenticated 200: the actor comes from the token.
    let id = rid("me");
    let r = app
        .client
        .get(app.url("/v1/auth/me"))
        .bearer_auth(&u.access)
        .header("x-request-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rec = record_of(&app, &id).await;
    let e = &rec.entry;
    assert_eq!(e.listener, "public");
    assert_eq!(e.method, "GET");
    assert_eq!(e.route, "/v1/auth/me");
    assert_eq!(e.status, 200);
    assert_eq!(e.problem_code, None);
    assert_eq!(e.user_id.as_deref(), me["user_id"].as_str());
    assert_eq!(e.session_id.as_deref(), me["session_id"].as_str());
    assert_eq!(e.client_id, None);
    assert_eq!(e.source_ip.as_deref(), Some("127.0.0.1"));
    assert!(e.latency_us > 0 && e.ts_us > 0, "{e:?}");

    // A 401 with a bad token: the route template, never the raw path or query.
    let id = rid("badtoken");
    let r = app
        .client
        .get(app.url("/v1/orders/12345?leak=query-canary"))
        .bearer_auth("eyJhbGciOiJFZERTQSJ9.bad-token-canary.sig")
        .header("x-request-id", &id)
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "invalid_token").await;
    let e = record_of(&app, &id).await.entry;
    assert_eq!(
        (e.route.as_str(), e.status, e.problem_code.as_deref()),
        ("/v1/orders/{id}", 401, Some("invalid_token"))
    );
    assert_eq!(e.user_id, None);

    // A 404 of no route at all.
    let id = rid("nowhere");
    let r = app
        .client
        .get(app.url("/v1/no/such/route?token=route-canary"))
        .header("x-request-id", &id)
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
    let e = record_of(&app, &id).await.entry;
    assert_eq!(
        (e.route.as_str(), e.status, e.problem_code.as_deref()),
        ("(unmatched)", 404, Some("not_found"))
    );

    // A 422 from the engine, with the caller named.
    let key = market_admin(&app).await;
    let key_id = admin_key_id(&app, &key).await;
    set_prices(&app, &key).await;
    let id = rid("margin");
    let r = app
        .client
        .post(app.url("/v1/orders"))
        .bearer_auth(&u.access)
        .header("x-request-id", &id)
        .json(&limit("buy", "50000", "1"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 422, "unknown_account").await;
    let e = record_of(&app, &id).await.entry;
    assert_eq!(
        (e.route.as_str(), e.status, e.problem_code.as_deref()),
        ("/v1/orders", 422, Some("unknown_account"))
    );
    assert_eq!(e.user_id.as_deref(), me["user_id"].as_str());
    let _ = order; // (the helper sends without a request id)

    // Login failure and success are actions with their outcome and user.
    let id = rid("loginbad");
    let r = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("x-request-id", &id)
        .json(&json!({"email": u.email, "password": "wrong-password-canary-1"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "invalid_credentials").await;
    let rec = record_of(&app, &id).await;
    assert_eq!(rec.entry.action.as_deref(), Some("auth.login"));
    assert_eq!(details(&rec)["result"], "failure");
    assert_eq!(details(&rec)["email"], u.email.as_str());
    // Nobody proved who they are, but the attempt was on this account.
    assert_eq!(rec.entry.user_id, None);
    assert_eq!(rec.entry.subject_user_id.as_deref(), me["user_id"].as_str());
    let id = rid("loginok");
    let r = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("x-request-id", &id)
        .json(&json!({"email": u.email, "password": u.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    let rec = record_of(&app, &id).await;
    assert_eq!(rec.entry.action.as_deref(), Some("auth.login"));
    assert_eq!(details(&rec)["result"], "success");
    assert_eq!(details(&rec)["user_id"], me["user_id"]);
    assert_eq!(rec.entry.user_id.as_deref(), me["user_id"].as_str());
    let second_access = second["access_token"].as_str().unwrap().to_owned();
    bourse_testkit::plant_canary(&second_access);

    let id = rid("logout");
    let r = app
        .client
        .post(app.url("/v1/auth/logout"))
        .bearer_auth(&second_access)
        .header("x-request-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let rec = record_of(&app, &id).await;
    assert_eq!(rec.entry.action.as_deref(), Some("auth.logout"));
    assert!(details(&rec)["session_id"].is_string());

    // Admin actions name the key and carry their details.
    let id = rid("halt");
    let r = app
        .client
        .post(app.admin_url(&format!("/admin/v1/instruments/{PERP}/halt")))
        .bearer_auth(&key)
        .header("x-request-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let rec = record_of(&app, &id).await;
    assert_eq!(rec.entry.listener, "admin");
    assert_eq!(rec.entry.admin_key_id.as_deref(), Some(key_id.as_str()));
    assert_eq!(rec.entry.route, "/admin/v1/instruments/{symbol}/halt");
    assert_eq!(rec.entry.action.as_deref(), Some("admin.instrument_halt"));
    assert_eq!(details(&rec)["symbol"], PERP);
    let uid = user_id(&app, &u.access).await;
    let id = rid("deposit");
    let r = app
        .client
        .post(app.admin_url("/admin/v1/deposits"))
        .bearer_auth(&key)
        .header("x-request-id", &id)
        .json(&json!({"user_id": uid, "asset": "USDC", "amount": "125", "tx_ref": "tx-audit-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let rec = record_of(&app, &id).await;
    assert_eq!(rec.entry.action.as_deref(), Some("admin.deposit_credit"));
    assert_eq!(
        details(&rec),
        json!({"user_id": uid, "asset": "USDC", "amount": "125", "tx_ref": "tx-audit-1"})
    );
    let prices = records(&app)
        .await
        .into_iter()
        .find(|r| r.entry.action.as_deref() == Some("admin.instrument_prices"))
        .expect("the price change is audited");
    assert_eq!(details(&prices)["mark"], "50000");

    // A refused admin call is audited on the admin listener too.
    let id = rid("adminbad");
    let r = app
        .client
        .get(app.admin_url("/admin/v1/users"))
        .bearer_auth("bak_not-a-real-key-canary")
        .header("x-request-id", &id)
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "unauthorized").await;
    let e = record_of(&app, &id).await.entry;
    assert_eq!(
        (e.listener.as_str(), e.status, e.problem_code.as_deref()),
        ("admin", 401, Some("unauthorized"))
    );

    // No secret anywhere in the trail.
    let all = format!("{:?}", records(&app).await);
    for secret in [
        u.password.as_str(),
        u.access.as_str(),
        u.refresh.as_str(),
        second_access.as_str(),
        key.as_str(),
        "wrong-password-canary-1",
        "bad-token-canary",
        "query-canary",
        "route-canary",
        "bak_not-a-real-key-canary",
    ] {
        assert!(!all.contains(secret), "a secret reached the audit trail");
    }
    app.shutdown().await;
}
both!(every_request_is_audited);

async fn exec(app: &TestApp, sql: &'static str) -> Result<(), sqlx::Error> {
    match app.database_url() {
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await?;
            sqlx::raw_sql(sql).execute(&pool).await?;
            pool.close().await;
        }
        None => {
            let url = format!(
                "sqlite://{}",
                app.config.data_dir.join("bourse.db").display()
            );
            let pool = sqlx::SqlitePool::connect(&url).await?;
            sqlx::raw_sql(sql).execute(&pool).await?;
            pool.close().await;
        }
    }
    Ok(())
}

fn verify(app: &TestApp) -> (i32, String) {
    verify_with(app, &[])
}

/// `bourse audit ARGS` on the app's database: exit code, stdout, stderr.
fn audit_cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let mut cmd = bourse();
    cmd.arg("audit")
        .args(args)
        .arg("--data-dir")
        .arg(&app.config.data_dir);
    if let Some(url) = app.database_url() {
        cmd.args(["--database-url", url]);
    }
    run(&mut cmd)
}

fn verify_with(app: &TestApp, anchors: &[&str]) -> (i32, String) {
    let mut args = vec!["verify"];
    for a in anchors {
        args.extend(["--anchor", a]);
    }
    let (code, out, err) = audit_cli(app, &args);
    (code, format!("{out}{err}"))
}

async fn tampering_is_caught_by_audit_verify(mut app: TestApp) {
    for _ in 0..8 {
        let r = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = app
        .client
        .get(app.admin_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Stop: the writer stores everything before the server is down.
    app.running.take().unwrap().shutdown().await;

    let (code, out) = verify(&app);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: 9 audit records in 1 chain(s)"), "{out}");

    // The application cannot change the log.
    assert!(
        exec(&app, "UPDATE audit_log SET status = 1 WHERE seq = 3")
            .await
            .is_err()
    );
    assert!(
        exec(&app, "DELETE FROM audit_log WHERE seq = 3")
            .await
            .is_err()
    );
    // Someone who can drop the guard can; verify names what they did.
    let drop_guard = if app.database_url().is_some() {
        "DROP TRIGGER audit_log_append_only ON audit_log"
    } else {
        "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete"
    };
    exec(&app, drop_guard).await.unwrap();

    // (a) an edited field
    exec(
        &app,
        "UPDATE audit_log SET route = route || 'x' WHERE seq = 3",
    )
    .await
    .unwrap();
    let (code, out) = verify(&app);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("record seq 3 was changed"), "{out}");
    exec(
        &app,
        "UPDATE audit_log SET route = substr(route, 1, length(route) - 1) WHERE seq = 3",
    )
    .await
    .unwrap();
    let (code, out) = verify(&app);
    assert_eq!(code, 0, "restored: {out}");

    // (b) two records swapped
    let swap = "UPDATE audit_log SET seq = -4 WHERE seq = 4; \
                UPDATE audit_log SET seq = 4 WHERE seq = 5; \
                UPDATE audit_log SET seq = 5 WHERE seq = -4";
    exec(&app, swap).await.unwrap();
    let (code, out) = verify(&app);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("record seq 4 does not follow record seq 3"),
        "{out}"
    );
    exec(&app, swap).await.unwrap();
    let (code, out) = verify(&app);
    assert_eq!(code, 0, "swapped back: {out}");

    // The head, written down outside the database.
    let (code, head, err) = audit_cli(&app, &["head"]);
    assert_eq!(code, 0, "{head}{err}");
    let head = head.trim().to_owned();
    let anchor: bourse_store::AuditAnchor = head.parse().unwrap_or_else(|e| panic!("{head}: {e}"));
    assert_eq!(anchor.seq, 9, "{head}");
    let (code, out) = verify_with(&app, &[&head]);
    assert_eq!(code, 0, "anchored, untouched: {out}");
    let (code, out) = verify_with(&app, &["nonsense"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("CHAIN:SEQ:HASH"), "{out}");
    let records_before: Vec<AuditRecord> = {
        let store = bourse::open_store(&app.config).await.unwrap();
        let mut all = store
            .list_audit(&AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        store.close().await;
        all.reverse();
        all
    };
    assert_eq!(records_before.len(), 9);

    // (c) a record removed
    exec(&app, "DELETE FROM audit_log WHERE seq = 6")
        .await
        .unwrap();
    let (code, out) = verify(&app);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("record seq 6 is missing"), "{out}");

    // (d) records cut off the end: the chain alone still links up, the anchor does not.
    exec(&app, "DELETE FROM audit_log WHERE seq >= 6")
        .await
        .unwrap();
    let (code, out) = verify(&app);
    assert_eq!(code, 0, "a shorter chain links up by itself: {out}");
    assert!(out.contains("OK: 5 audit records"), "{out}");
    let (code, out) = verify_with(&app, &[&head]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("record seq 9 is anchored but the chain ends at seq 5"),
        "{out}"
    );

    // (e) the whole chain recomputed with one record changed: every link holds, only
    // the anchor shows it.
    exec(&app, "DELETE FROM audit_log").await.unwrap();
    let chain = anchor.chain_id.clone();
    let mut forged_head = bourse_store::ChainHead::genesis();
    let forged: Vec<AuditRecord> = records_before
        .iter()
        .map(|r| {
            let mut e = r.entry.clone();
            if r.seq == 2 {
                e.status = 204;
            }
            forged_head.seal(&chain, e)
        })
        .collect();
    let store = bourse::open_store(&app.config).await.unwrap();
    store.append_audit(&forged).await.unwrap();
    store.close().await;
    let (code, out) = verify(&app);
    assert_eq!(code, 0, "a recomputed chain links up by itself: {out}");
    let (code, out) = verify_with(&app, &[&head]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("record seq 9 does not have its anchored hash"),
        "{out}"
    );
    app.shutdown().await;
}
both!(tampering_is_caught_by_audit_verify);

async fn audit_endpoints_answer_by_scope_and_owner(app: TestApp) {
    let a = register_and_login(&app).await;
    let b = register_and_login(&app).await;
    let a_id = user_id(&app, &a.access).await;
    let b_id = user_id(&app, &b.access).await;

    // Someone tries A's password: A sees the failed attempt in their own activity.
    let r = app
        .client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": a.email, "password": "guessed-password-canary-2"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "invalid_credentials").await;
    let failed = |e: &Value| e["action"] == "auth.login" && e["details"]["result"] == "failure";

    // A user's own security events, never another user's.
    let mut mine = Value::Null;
    for _ in 0..200 {
        let r = get(&app, "/v1/account/activity", &a.access).await;
        assert_eq!(r.status(), 200);
        mine = r.json().await.unwrap();
        if mine["data"].as_array().unwrap().iter().any(failed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let events = mine["data"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "auth.login" && e["details"]["result"] == "success"),
        "{mine}"
    );
    assert!(events.iter().any(failed), "{mine}");
    for e in events {
        let action = e["action"].as_str().unwrap();
        assert!(
            action.starts_with("auth.") || action.starts_with("wallet."),
            "{e}"
        );
        assert_ne!(e["details"]["user_id"], b_id.as_str(), "{e}");
    }
    let theirs: Value = get(&app, "/v1/account/activity?limit=1000", &b.access)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        theirs["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["details"]["user_id"] != a_id.as_str()),
        "{theirs}"
    );
    assert_problem(
        get(&app, "/v1/account/activity?limit=0", &a.access).await,
        400,
        "validation_failed",
    )
    .await;
    let r = app
        .client
        .get(app.url("/v1/account/activity"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "unauthorized").await;

    // The admin query needs `audit:read`.
    let other = app.admin_key(&["users:read"]).await;
    let admin_get = |key: String, q: &str| {
        let url = app.admin_url(&format!("/admin/v1/audit{q}"));
        let client = app.client.clone();
        async move { client.get(url).bearer_auth(key).send().await.unwrap() }
    };
    assert_problem(admin_get(other, "").await, 403, "insufficient_scope").await;
    let key = app.admin_key(&["audit:read"]).await;
    let r = admin_get(key.clone(), &format!("?actor={a_id}&action=auth.login")).await;
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    let data = page["data"].as_array().unwrap();
    assert!(!data.is_empty(), "{page}");
    for rec in data {
        assert_eq!(rec["actor"]["user_id"], a_id.as_str(), "{rec}");
        assert_eq!(rec["action"], "auth.login", "{rec}");
        assert_eq!(rec["route"], "/v1/auth/login", "{rec}");
        assert_eq!(rec["hash"].as_str().unwrap().len(), 64, "{rec}");
    }

    // Time range and cursor.
    let future: Value = admin_get(key.clone(), "?from=2999-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(future["data"], json!([]), "{future}");
    let first: Value = admin_get(key.clone(), "?limit=1")
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().expect("more than one record");
    let next: Value = admin_get(key.clone(), &format!("?limit=1&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(
        first["data"][0]["request_id"],
        next["data"][0]["request_id"]
    );
    assert!(first["data"][0]["seq"].as_i64() > next["data"][0]["seq"].as_i64());

    // Bad parameters are problems with stable codes.
    for (q, code) in [
        ("?from=yesterday", "invalid_time"),
        (
            "?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
            "invalid_range",
        ),
        ("?limit=100000", "out_of_range"),
        ("?cursor=zzz", "invalid_cursor"),
        ("?actor=%3Cscript%3E", "invalid_value"),
    ] {
        let body = assert_problem(admin_get(key.clone(), q).await, 400, "validation_failed").await;
        assert_eq!(body["errors"][0]["code"], code, "{q}: {body}");
    }
    let _ = admin_post;
    let _ = post;
    app.shutdown().await;
}
both!(audit_endpoints_answer_by_scope_and_owner);
