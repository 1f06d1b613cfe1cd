//! The withdrawal whitelist over real TLS, on SQLite and PostgreSQL: step-up, scopes,
//! ownership (404, not 403), mass assignment, cool-down.

use bourse_auth::totp::code_at;
use bourse_testkit::TestApp;
use serde_json::{Value, json};

use crate::assert_problem;
use crate::identity::{enable_totp, fresh_totp_step, get, now, post, register_and_login, step_up};

const ADDRESS: &str = "0x8ba1f109551bd432803012645ac136ddd64dba72";

/// A user with 2FA and a stepped-up token.
async fn stepped_user(app: &TestApp) -> (String, String) {
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
    (u.access, stepped)
}

async fn list(app: &TestApp, token: &str) -> Vec<Value> {
    let v: Value = get(app, "/v1/wallet/addresses", token)
        .await
        .json()
        .await
        .unwrap();
    v["data"].as_array().unwrap().clone()
}

both!(adding_an_address_needs_step_up_and_waits_for_the_cool_down);
async fn adding_an_address_needs_step_up_and_waits_for_the_cool_down(app: TestApp) {
    // Without 2FA at all.
    let plain = register_and_login(&app).await;
    let body = json!({"asset": "USDC", "address": ADDRESS, "label": "cold"});
    let r = post(
        &app,
        "/v1/wallet/addresses",
        Some(&plain.access),
        body.clone(),
    )
    .await;
    assert_problem(r, 403, "mfa_enrollment_required").await;
    // With 2FA, but no fresh second factor.
    let (access, stepped) = stepped_user(&app).await;
    let r = post(&app, "/v1/wallet/addresses", Some(&access), body.clone()).await;
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    assert_problem(r, 401, "insufficient_user_authentication").await;
    assert!(list(&app, &access).await.is_empty(), "nothing was stored");
    // Mass assignment and bad input.
    for (extra, pointer, code) in [
        (
            json!({"user_id": "someone-else"}),
            "/user_id",
            "unknown_field",
        ),
        (
            json!({"usable_at": "2020-01-01T00:00:00Z"}),
            "/usable_at",
            "unknown_field",
        ),
        (json!({"address": "short"}), "/address", "invalid_address"),
        (
            json!({"address": "0x<script>alert(1)</script>000000000"}),
            "/address",
            "invalid_address",
        ),
        (json!({"asset": "usdc!"}), "/asset", "invalid_asset"),
    ] {
        let mut b = body.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        let r = post(&app, "/v1/wallet/addresses", Some(&stepped), b).await;
        let p = assert_problem(r, 400, "validation_failed").await;
        assert_eq!(p["errors"][0]["pointer"], pointer, "{p}");
        assert_eq!(p["errors"][0]["code"], code, "{p}");
        assert!(!p.to_string().contains("<script>"), "not echoed");
    }
    assert!(list(&app, &access).await.is_empty(), "nothing was stored");
    // Stepped up: added, usable only after the 24 h cool-down.
    let r = post(&app, "/v1/wallet/addresses", Some(&stepped), body.clone()).await;
    assert_eq!(r.status(), 201);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["usable"], false);
    let created = time::OffsetDateTime::parse(
        a["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let usable = time::OffsetDateTime::parse(
        a["usable_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((usable - created).whole_seconds(), 86_400);
    let r = post(&app, "/v1/wallet/addresses", Some(&stepped), body).await;
    assert_problem(r, 409, "conflict").await;
    // Reading needs no step-up.
    let l = list(&app, &access).await;
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["address"], ADDRESS);
    app.shutdown().await;
}

both!(another_users_address_is_not_found);
async fn another_users_address_is_not_found(app: TestApp) {
    let (alice, alice_stepped) = stepped_user(&app).await;
    let (bob, bob_stepped) = stepped_user(&app).await;
    let r = post(
        &app,
        "/v1/wallet/addresses",
        Some(&alice_stepped),
        json!({"asset": "USDC", "address": ADDRESS, "label": "a"}),
    )
    .await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Bob neither sees nor deletes it: 404, the same as an id that never existed.
    assert!(list(&app, &bob).await.is_empty());
    let r = app
        .client
        .delete(app.url(&format!("/v1/wallet/addresses/{id}")))
        .bearer_auth(&bob_stepped)
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
    let r = app
        .client
        .delete(app.url("/v1/wallet/addresses/01900000-0000-7000-8000-000000000000"))
        .bearer_auth(&bob_stepped)
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
    assert_eq!(list(&app, &alice).await.len(), 1);
    // Deleting is sensitive too.
    let r = app
        .client
        .delete(app.url(&format!("/v1/wallet/addresses/{id}")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "insufficient_user_authentication").await;
    let r = app
        .client
        .delete(app.url(&format!("/v1/wallet/addresses/{id}")))
        .bearer_auth(&alice_stepped)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(list(&app, &alice).await.is_empty());
    app.shutdown().await;
}
