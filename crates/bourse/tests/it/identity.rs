//! Identity over real TLS, on SQLite and PostgreSQL: security.md sections
//! Authentication, Two-factor, Data and secrets, and the admin part of Authorization.
//! Every refusal asserts the status, the problem code, `WWW-Authenticate` where it
//! applies, and that nothing changed.

use std::time::{Duration, Instant};

use bourse_auth::totp::{TotpSecret, code_at};
use bourse_testkit::{TestApp, plant_canary};
use serde_json::{Value, json};

use crate::assert_problem;

pub fn password() -> String {
    let p = format!("canary-pw-{}", uuid::Uuid::new_v4().simple());
    plant_canary(&p);
    p
}

pub fn email() -> String {
    format!(
        "t{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub async fn post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut r = app.client.post(app.url(path)).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

pub async fn get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The first login step's JSON answer.
pub async fn login_json(app: &TestApp, email: &str, password: &str) -> Value {
    post(
        app,
        "/v1/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
    .json()
    .await
    .unwrap()
}

pub struct User {
    pub email: String,
    pub password: String,
    pub access: String,
    pub refresh: String,
}

pub async fn register_and_login(app: &TestApp) -> User {
    let (email, password) = (email(), password());
    let r = post(
        app,
        "/v1/auth/register",
        None,
        json!({"email": email, "password": password}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v: Value = login_json(app, &email, &password).await;
    assert_eq!(v["status"], "authenticated", "{v}");
    let (access, refresh) = (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    );
    plant_canary(&access);
    plant_canary(&refresh);
    User {
        email,
        password,
        access,
        refresh,
    }
}

pub fn base32_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = alphabet
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("base32") as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

/// Enrols and confirms TOTP with the previous step's code (so that the current step is
/// still free); returns the secret and the recovery codes.
pub async fn enable_totp(app: &TestApp, token: &str) -> (TotpSecret, Vec<String>) {
    let r = post(app, "/v1/auth/2fa/totp", Some(token), json!(null)).await;
    assert_eq!(r.status(), 201);
    let e: Value = r.json().await.unwrap();
    let b32 = e["secret"].as_str().unwrap();
    plant_canary(b32);
    assert!(
        e["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    assert!(e["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = TotpSecret::from_bytes(&base32_decode(b32)).unwrap();
    fresh_totp_step().await;
    let code = code_at(&secret, now() - 30);
    let r = post(
        app,
        "/v1/auth/2fa/totp/confirm",
        Some(token),
        json!({"code": code}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let codes: Vec<String> = r.json::<Value>().await.unwrap()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    for c in &codes {
        plant_canary(c);
    }
    (secret, codes)
}

/// Waits, when the current 30 s TOTP step ends within 8 s, until the next one begins:
/// the tests below reason about "the current step" across several requests.
pub async fn fresh_totp_step() {
    let into = now().rem_euclid(30);
    if into >= 22 {
        tokio::time::sleep(Duration::from_secs((31 - into) as u64)).await;
    }
}

pub async fn step_up(app: &TestApp, token: &str, code: &str) -> reqwest::Response {
    post(app, "/v1/auth/step-up", Some(token), json!({"code": code})).await
}

fn assert_invalid_token(resp: &reqwest::Response) {
    let www = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(www.starts_with("Bearer realm=\"bourse\""), "{www}");
    assert!(www.contains("error=\"invalid_token\""), "{www}");
}

// ---------------------------------------------------------------- registration, login

both!(registration_validates_and_normalises);
async fn registration_validates_and_normalises(app: TestApp) {
    let pw = password();
    for (body, pointer, code) in [
        (
            json!({"email": "not-an-email", "password": pw}),
            "/email",
            "invalid_email",
        ),
        (
            json!({"email": email(), "password": "short"}),
            "/password",
            "password_too_short",
        ),
        (
            json!({"email": email(), "password": "password1234"}),
            "/password",
            "password_common",
        ),
        (
            json!({"email": email(), "password": "x".repeat(129)}),
            "/password",
            "password_too_long",
        ),
    ] {
        let r = post(&app, "/v1/auth/register", None, body).await;
        let p = assert_problem(r, 400, "validation_failed").await;
        assert_eq!(p["errors"][0]["pointer"], pointer, "{p}");
        assert_eq!(p["errors"][0]["code"], code, "{p}");
    }
    let e = email();
    let r = post(
        &app,
        "/v1/auth/register",
        None,
        json!({"email": format!("  {}  ", e.to_uppercase()), "password": pw}),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["email"], e.as_str());
    let r = post(
        &app,
        "/v1/auth/register",
        None,
        json!({"email": e, "password": password()}),
    )
    .await;
    assert_problem(r, 409, "email_taken").await;
    // Mass assignment: extra fields are refused, not applied.
    let r = post(
        &app,
        "/v1/auth/register",
        None,
        json!({"email": email(), "password": pw, "status": "active"}),
    )
    .await;
    let p = assert_problem(r, 400, "validation_failed").await;
    assert_eq!(p["errors"][0]["code"], "unknown_field");
    // Stored as Argon2id, never the password.
    let user = app
        .running()
        .store
        .find_user_by_email(&e)
        .await
        .unwrap()
        .unwrap();
    assert!(
        user.password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        user.password_hash
    );
    assert!(!user.password_hash.contains(&pw));
    app.shutdown().await;
}

both!(unknown_user_and_wrong_password_look_the_same);
async fn unknown_user_and_wrong_password_look_the_same(app: TestApp) {
    let u = register_and_login(&app).await;
    let mut times = [Vec::new(), Vec::new()];
    let mut bodies = Vec::new();
    for round in 0..4 {
        for (i, email) in [u.email.clone(), email()].into_iter().enumerate() {
            let started = Instant::now();
            let r = post(
                &app,
                "/v1/auth/login",
                None,
                json!({"email": email, "password": format!("wrong-password-{round}")}),
            )
            .await;
            times[i].push(started.elapsed());
            let p = assert_problem(r, 401, "invalid_credentials").await;
            bodies.push((p["detail"].clone(), p["title"].clone()));
        }
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "same answer: {bodies:?}"
    );
    // Both do one Argon2id verification; without the dummy hash the unknown user would
    // answer an order of magnitude faster.
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    let (known, unknown) = (median(&mut times[0]), median(&mut times[1]));
    let ratio = known / unknown;
    assert!(
        (0.33..3.0).contains(&ratio),
        "known {known:.4}s vs unknown {unknown:.4}s"
    );
    app.shutdown().await;
}

both!(failed_logins_back_off_per_account);
async fn failed_logins_back_off_per_account(app: TestApp) {
    let u = register_and_login(&app).await;
    for _ in 0..5 {
        let r = post(
            &app,
            "/v1/auth/login",
            None,
            json!({"email": u.email, "password": "not-the-password"}),
        )
        .await;
        assert_problem(r, 401, "invalid_credentials").await;
    }
    // Locked now: even the right password is refused, with Retry-After.
    let r = post(
        &app,
        "/v1/auth/login",
        None,
        json!({"email": u.email, "password": u.password}),
    )
    .await;
    let retry: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_problem(r, 429, "login_throttled").await;
    app.shutdown().await;
}

// ---------------------------------------------------------------- JWT attacks

fn b64(v: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

fn claims_for(app: &TestApp, sub: &str, sid: &str) -> Value {
    let t = now();
    json!({
        "iss": app.config.public_url, "aud": "bourse-api", "sub": sub, "exp": t + 300, "iat": t,
        "nbf": t, "jti": uuid::Uuid::new_v4().to_string(), "scope": "read trade wallet", "sid": sid,
        "auth_time": t, "acr": "mfa", "amr": ["pwd", "otp"]
    })
}

fn sign_ed(header: &Value, claims: &Value, der: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(serde_json::to_string(header).unwrap().as_bytes()),
        b64(serde_json::to_string(claims).unwrap().as_bytes())
    );
    let key = jsonwebtoken::EncodingKey::from_ed_der(der);
    let sig = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::EdDSA,
    )
    .unwrap();
    format!("{signing_input}.{sig}")
}

both!(forged_and_broken_tokens_are_refused);
async fn forged_and_broken_tokens_are_refused(app: TestApp) {
    let u = register_and_login(&app).await;
    let me: Value = get(&app, "/v1/auth/me", &u.access)
        .await
        .json()
        .await
        .unwrap();
    let (sub, sid) = (
        me["user_id"].as_str().unwrap().to_owned(),
        me["session_id"].as_str().unwrap().to_owned(),
    );
    let (kid, der) = app.signing_key().await;
    let good_header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
    let good = claims_for(&app, &sub, &sid);
    // Our own key and claims: accepted (so the refusals below are about what they change).
    let ok = sign_ed(&good_header, &good, &der);
    assert_eq!(get(&app, "/v1/auth/me", &ok).await.status(), 200);

    let attacker = bourse_auth::jwt::SigningKey::generate("google-2026".into()).unwrap();
    let mut cases: Vec<(&str, String)> = Vec::new();
    // alg none.
    cases.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"at+jwt"}"#),
            b64(good.to_string().as_bytes())
        ),
    ));
    // HS256 keyed with our public key (algorithm confusion).
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public_x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            alg: jsonwebtoken::Algorithm::HS256,
            typ: Some("at+jwt".into()),
            kid: Some(kid.clone()),
            ..Default::default()
        },
        &good,
        &jsonwebtoken::EncodingKey::from_secret(public_x.as_bytes()),
    )
    .unwrap();
    cases.push(("HS256 with the public key", hs));
    // Unknown kid, and a foreign issuer's key advertised through jku/x5u (ignored).
    cases.push((
        "unknown kid",
        sign_ed(
            &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "nope"}),
            &good,
            attacker.pkcs8_der(),
        ),
    ));
    cases.push((
        "jku/x5u pointing at the attacker",
        sign_ed(
            &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "google-2026", "jku": "https://evil.example/jwks.json", "x5u": "https://evil.example/cert.pem"}),
            &good,
            attacker.pkcs8_der(),
        ),
    ));
    // A Google-style ID token: another issuer, another key, typ JWT.
    let mut google = good.clone();
    google["iss"] = json!("https://accounts.google.com");
    google["aud"] = json!("bourse-google-client-id");
    cases.push((
        "Google ID token",
        sign_ed(
            &json!({"alg": "EdDSA", "typ": "JWT", "kid": "google-2026"}),
            &google,
            attacker.pkcs8_der(),
        ),
    ));
    // Our key, bad claims or header.
    for (name, field, value) in [
        ("expired", "exp", json!(now() - 120)),
        ("wrong iss", "iss", json!("https://evil.example")),
        ("wrong aud", "aud", json!("another-api")),
    ] {
        let mut c = good.clone();
        c[field] = value;
        if name == "expired" {
            c["iat"] = json!(now() - 400);
            c["nbf"] = json!(now() - 400);
        }
        cases.push((name, sign_ed(&good_header, &c, &der)));
    }
    let mut future = good.clone();
    future["nbf"] = json!(now() + 300);
    future["iat"] = json!(now() + 300);
    future["exp"] = json!(now() + 600);
    cases.push(("not yet valid", sign_ed(&good_header, &future, &der)));
    cases.push((
        "typ JWT",
        sign_ed(
            &json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}),
            &good,
            &der,
        ),
    ));
    cases.push((
        "no typ",
        sign_ed(&json!({"alg": "EdDSA", "kid": kid}), &good, &der),
    ));
    // Tampered payload: our signature over other claims.
    let parts: Vec<&str> = ok.split('.').collect();
    let mut tampered = good.clone();
    tampered["scope"] = json!("read trade wallet admin");
    cases.push((
        "tampered payload",
        format!(
            "{}.{}.{}",
            parts[0],
            b64(tampered.to_string().as_bytes()),
            parts[2]
        ),
    ));
    cases.push(("truncated", ok[..ok.len() - 10].to_owned()));
    cases.push(("garbage", "not.a.jwt".to_owned()));
    // An admin API key is not a user token.
    cases.push(("admin key", app.admin_key(&["users:read"]).await));

    for (name, token) in cases {
        let r = get(&app, "/v1/auth/me", &token).await;
        assert_eq!(r.status(), 401, "{name}");
        assert_invalid_token(&r);
        assert_problem(r, 401, "invalid_token").await;
    }
    // No token at all: a plain challenge.
    let r = app.client.get(app.url("/v1/auth/me")).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"bourse\"");
    assert_problem(r, 401, "unauthorized").await;
    app.shutdown().await;
}

// ---------------------------------------------------------------- sessions and refresh

both!(refresh_rotates_and_reuse_revokes_the_family);
async fn refresh_rotates_and_reuse_revokes_the_family(app: TestApp) {
    let u = register_and_login(&app).await;
    let r = post(
        &app,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": u.refresh}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    let refresh2 = second["refresh_token"].as_str().unwrap().to_owned();
    let access2 = second["access_token"].as_str().unwrap().to_owned();
    plant_canary(&refresh2);
    plant_canary(&access2);
    assert_ne!(refresh2, u.refresh);
    assert_eq!(get(&app, "/v1/auth/me", &access2).await.status(), 200);
    // The first token again: reuse. The whole session goes.
    let r = post(
        &app,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": u.refresh}),
    )
    .await;
    assert_problem(r, 400, "invalid_grant").await;
    let r = post(
        &app,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh2}),
    )
    .await;
    assert_problem(r, 400, "invalid_grant").await;
    let r = get(&app, "/v1/auth/me", &access2).await;
    assert_invalid_token(&r);
    assert_problem(r, 401, "invalid_token").await;
    // Garbage refresh tokens.
    for bad in ["", "brt_short", "x".repeat(200).as_str()] {
        let r = post(
            &app,
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": bad}),
        )
        .await;
        assert_problem(r, 400, "invalid_grant").await;
    }
    app.shutdown().await;
}

both!(logout_revokes_the_session);
async fn logout_revokes_the_session(app: TestApp) {
    let u = register_and_login(&app).await;
    let other = {
        let v: Value = login_json(&app, &u.email, &u.password).await;
        v["access_token"].as_str().unwrap().to_owned()
    };
    let r = post(&app, "/v1/auth/logout", Some(&u.access), json!(null)).await;
    assert_eq!(r.status(), 204);
    assert_problem(
        get(&app, "/v1/auth/me", &u.access).await,
        401,
        "invalid_token",
    )
    .await;
    let r = post(
        &app,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": u.refresh}),
    )
    .await;
    assert_problem(r, 400, "invalid_grant").await;
    // The other session lives on, and lists the revoked one as revoked.
    let list: Value = get(&app, "/v1/auth/sessions", &other)
        .await
        .json()
        .await
        .unwrap();
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(
        data.iter().filter(|s| !s["revoked_at"].is_null()).count(),
        1
    );
    app.shutdown().await;
}

// ---------------------------------------------------------------- two-factor

both!(totp_login_steps_windows_replay_and_lock);
async fn totp_login_steps_windows_replay_and_lock(app: TestApp) {
    let u = register_and_login(&app).await;
    let (secret, codes) = enable_totp(&app, &u.access).await;
    fresh_totp_step().await;
    // Stored encrypted, and recovery codes stored hashed.
    let rec = app
        .running()
        .store
        .get_totp(&post_me(&app, &u.access).await)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !rec.secret_enc
            .windows(secret.as_bytes().len())
            .any(|w| w == secret.as_bytes())
    );
    let hashes = app
        .running()
        .store
        .unused_recovery_code_hashes(&rec.user_id)
        .await
        .unwrap();
    assert_eq!(hashes.len(), 10);
    assert!(
        hashes
            .iter()
            .all(|h| h.starts_with("rc1$") && !codes.iter().any(|c| h.contains(c.as_str())))
    );

    // Login is now two steps.
    let v: Value = login_json(&app, &u.email, &u.password).await;
    assert_eq!(v["status"], "mfa_required", "{v}");
    assert!(v.get("access_token").is_none());
    let challenge = v["challenge"].as_str().unwrap().to_owned();
    plant_canary(&challenge);
    let r = post(
        &app,
        "/v1/auth/login/mfa",
        None,
        json!({"challenge": challenge, "code": "000000"}),
    )
    .await;
    assert_problem(r, 401, "invalid_code").await;
    // Next step's code: not accepted (only current and previous).
    let r = post(
        &app,
        "/v1/auth/login/mfa",
        None,
        json!({"challenge": challenge, "code": code_at(&secret, now() + 30)}),
    )
    .await;
    assert_problem(r, 401, "invalid_code").await;
    let r = post(
        &app,
        "/v1/auth/login/mfa",
        None,
        json!({"challenge": challenge, "code": code_at(&secret, now())}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let mfa_token = t["access_token"].as_str().unwrap().to_owned();
    plant_canary(&mfa_token);
    let me: Value = get(&app, "/v1/auth/me", &mfa_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["acr"], "mfa");
    // The challenge is single-use.
    let r = post(
        &app,
        "/v1/auth/login/mfa",
        None,
        json!({"challenge": challenge, "code": code_at(&secret, now())}),
    )
    .await;
    assert_problem(r, 401, "invalid_challenge").await;
    // The same code again (replay) in a step-up.
    let r = step_up(&app, &mfa_token, &code_at(&secret, now())).await;
    assert_problem(r, 401, "code_replayed").await;
    // A code two steps old is refused.
    let r = step_up(&app, &mfa_token, &code_at(&secret, now() - 60)).await;
    assert_problem(r, 401, "invalid_code").await;

    // Recovery code: works once.
    let v: Value = login_json(&app, &u.email, &u.password).await;
    let challenge = v["challenge"].as_str().unwrap().to_owned();
    let r = post(
        &app,
        "/v1/auth/login/mfa",
        None,
        json!({"challenge": challenge, "code": codes[0]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = step_up(&app, &mfa_token, &codes[0]).await;
    assert_problem(r, 401, "invalid_code").await;
    assert_eq!(
        app.running()
            .store
            .remaining_recovery_codes(&rec.user_id)
            .await
            .unwrap(),
        9
    );

    // Wrong codes lock two-factor (5 failures in all), even for a right code afterwards.
    let mut locked = false;
    for _ in 0..6 {
        let r = step_up(&app, &mfa_token, "123456").await;
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            assert_problem(r, 429, "mfa_locked").await;
            locked = true;
            break;
        }
        assert_problem(r, 401, "invalid_code").await;
    }
    assert!(locked, "locked after 5 wrong codes");
    let r = step_up(&app, &mfa_token, &code_at(&secret, now())).await;
    assert_problem(r, 429, "mfa_locked").await;
    app.shutdown().await;
}

pub async fn post_me(app: &TestApp, token: &str) -> String {
    let me: Value = get(app, "/v1/auth/me", token).await.json().await.unwrap();
    me["user_id"].as_str().unwrap().to_owned()
}

both!(sensitive_actions_need_a_fresh_second_factor);
async fn sensitive_actions_need_a_fresh_second_factor(app: TestApp) {
    let u = register_and_login(&app).await;
    // Without 2FA: sensitive actions are refused outright, with a pointer to enrol.
    let r = post(
        &app,
        "/v1/auth/password",
        Some(&u.access),
        json!({"current_password": u.password, "new_password": password()}),
    )
    .await;
    assert_problem(r, 403, "mfa_enrollment_required").await;

    let (secret, codes) = enable_totp(&app, &u.access).await;
    fresh_totp_step().await;
    // With 2FA but a password-only token: the RFC 9470 challenge, and nothing changes.
    let new_pw = password();
    let r = post(
        &app,
        "/v1/auth/password",
        Some(&u.access),
        json!({"current_password": u.password, "new_password": new_pw}),
    )
    .await;
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"bourse\", error=\"insufficient_user_authentication\", error_description=\"a fresh second factor is required\", acr_values=\"mfa\", max_age=300"
    );
    assert_problem(r, 401, "insufficient_user_authentication").await;
    let r = app
        .client
        .delete(app.url("/v1/auth/2fa/totp"))
        .bearer_auth(&u.access)
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "insufficient_user_authentication").await;
    let v: Value = login_json(&app, &u.email, &u.password).await;
    assert_eq!(
        v["status"], "mfa_required",
        "2FA still on, old password still valid"
    );

    // Revoking another session is sensitive too.
    let other = second_session(&app, &u, &codes[0]).await;
    let r = app
        .client
        .delete(app.url(&format!("/v1/auth/sessions/{other}")))
        .bearer_auth(&u.access)
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "insufficient_user_authentication").await;

    // Step up, then every sensitive action works.
    let r = step_up(&app, &u.access, &code_at(&secret, now())).await;
    assert_eq!(r.status(), 200);
    let stepped = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    plant_canary(&stepped);
    let r = app
        .client
        .delete(app.url(&format!("/v1/auth/sessions/{other}")))
        .bearer_auth(&stepped)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .client
        .delete(app.url("/v1/auth/sessions/01900000-0000-7000-8000-000000000000"))
        .bearer_auth(&stepped)
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
    let r = post(
        &app,
        "/v1/auth/password",
        Some(&stepped),
        json!({"current_password": "wrong-current-pw", "new_password": new_pw}),
    )
    .await;
    assert_problem(r, 401, "invalid_credentials").await;
    let r = post(
        &app,
        "/v1/auth/password",
        Some(&stepped),
        json!({"current_password": u.password, "new_password": new_pw}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = post(
        &app,
        "/v1/auth/login",
        None,
        json!({"email": u.email, "password": u.password}),
    )
    .await;
    assert_problem(r, 401, "invalid_credentials").await;
    let r = app
        .client
        .delete(app.url("/v1/auth/2fa/totp"))
        .bearer_auth(&stepped)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let v: Value = login_json(&app, &u.email, &new_pw).await;
    assert_eq!(v["status"], "authenticated", "2FA off now");
    app.shutdown().await;
}

/// Logs in again (second factor: a recovery code, so that the current TOTP step stays
/// unused) and returns that session's id.
async fn second_session(app: &TestApp, u: &User, recovery_code: &str) -> String {
    let v: Value = login_json(app, &u.email, &u.password).await;
    let challenge = v["challenge"].as_str().unwrap();
    let r = post(
        app,
        "/v1/auth/login/mfa",
        None,
        json!({"challenge": challenge, "code": recovery_code}),
    )
    .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

// ---------------------------------------------------------------- secrets at rest

both!(a_totp_secret_copied_to_another_row_does_not_decrypt);
async fn a_totp_secret_copied_to_another_row_does_not_decrypt(app: TestApp) {
    let a = register_and_login(&app).await;
    let b = register_and_login(&app).await;
    let (a_secret, _) = enable_totp(&app, &a.access).await;
    enable_totp(&app, &b.access).await;
    let (a_id, b_id) = (
        post_me(&app, &a.access).await,
        post_me(&app, &b.access).await,
    );
    let store = &app.running().store;
    let a_blob = store.get_totp(&a_id).await.unwrap().unwrap().secret_enc;
    let b_blob = store.get_totp(&b_id).await.unwrap().unwrap().secret_enc;
    // Copy A's sealed secret into B's row, the way an attacker with write access would.
    assert!(
        store
            .replace_totp_secret_blob(&b_id, &b_blob, &a_blob)
            .await
            .unwrap()
    );
    let keyring =
        bourse_identity::load_or_create_keyring(&app.config.effective_master_key_file(), None)
            .unwrap();
    fn aad(row: &str) -> bourse_auth::secretbox::Aad<'_> {
        bourse_auth::secretbox::Aad {
            table: "totp",
            row_id: row,
            column: "secret_enc",
        }
    }
    assert!(bourse_auth::secretbox::open(&keyring, &a_blob, &aad(&a_id)).is_ok());
    assert!(
        bourse_auth::secretbox::open(&keyring, &a_blob, &aad(&b_id)).is_err(),
        "bound to its row"
    );
    // Through the API: B cannot use A's codes, and the failure reveals nothing.
    let r = step_up(&app, &b.access, &code_at(&a_secret, now())).await;
    let p = assert_problem(r, 500, "internal_error").await;
    assert!(!p["detail"].as_str().unwrap().contains("decrypt"));
    app.shutdown().await;
}

both!(signing_keys_rotate_without_cutting_live_tokens);
async fn signing_keys_rotate_without_cutting_live_tokens(app: TestApp) {
    let u = register_and_login(&app).await;
    let before: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["keys"].as_array().unwrap().len(), 1);
    assert_eq!(before["keys"][0]["kty"], "OKP");
    assert_eq!(before["keys"][0]["crv"], "Ed25519");
    assert!(before["keys"][0].get("d").is_none(), "no private part");
    let new_kid = app
        .running()
        .identity
        .rotate_signing_key(time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let after: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&new_kid.as_str()));
    // The old token still works; new tokens carry the new kid.
    assert_eq!(get(&app, "/v1/auth/me", &u.access).await.status(), 200);
    let v: Value = post(
        &app,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": u.refresh}),
    )
    .await
    .json()
    .await
    .unwrap();
    let token = v["access_token"].as_str().unwrap();
    plant_canary(token);
    let header: Value = {
        use base64::Engine;
        let h = token.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["kid"], new_kid.as_str());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    app.shutdown().await;
}

// ---------------------------------------------------------------- admin plane

both!(admin_keys_expire_are_ip_bound_scoped_and_segregated);
async fn admin_keys_expire_are_ip_bound_scoped_and_segregated(app: TestApp) {
    let url = app.admin_url("/admin/v1/users");
    // Stored hashed.
    let key = app.admin_key(&["users:read", "keys:admin"]).await;
    plant_canary(&key);
    let stored = app.running().store.list_admin_keys().await.unwrap();
    assert!(
        stored
            .iter()
            .all(|k| k.key_hash.len() == 64 && !k.key_hash.contains(&key[4..]))
    );
    let r = app.client.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        app.running()
            .store
            .list_admin_keys()
            .await
            .unwrap()
            .iter()
            .any(|k| k.last_used_at.is_some()),
        "last use recorded"
    );

    // Expired.
    let expired = app
        .admin_key_with(
            &["users:read"],
            Some(time::OffsetDateTime::now_utc() + time::Duration::seconds(1)),
            &[],
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = app
        .client
        .get(&url)
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("www-authenticate"));
    assert_problem(r, 401, "key_expired").await;
    // IP allowlist.
    let elsewhere = app
        .admin_key_with(&["users:read"], None, &["10.0.0.0/8"])
        .await;
    let r = app
        .client
        .get(&url)
        .bearer_auth(&elsewhere)
        .send()
        .await
        .unwrap();
    assert_problem(r, 403, "address_not_allowed").await;
    let here = app
        .admin_key_with(&["users:read"], None, &["127.0.0.0/8", "::1/128"])
        .await;
    assert_eq!(
        app.client
            .get(&url)
            .bearer_auth(&here)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A user's access token is not an admin credential.
    let u = register_and_login(&app).await;
    let r = app
        .client
        .get(&url)
        .bearer_auth(&u.access)
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "unauthorized").await;

    // Key management through the API: no key grants what it lacks; keys:admin never
    // combines with money scopes.
    let kurl = app.admin_url("/admin/v1/keys");
    let before = app.running().store.list_admin_keys().await.unwrap().len();
    let r = app
        .client
        .post(&kurl)
        .bearer_auth(&key)
        .json(&json!({"name": "x", "scopes": ["users:write"]}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 403, "scope_not_held").await;
    let money_admin = app.admin_key(&["keys:admin"]).await;
    let r = app
        .client
        .post(&kurl)
        .bearer_auth(&money_admin)
        .json(&json!({"name": "x", "scopes": ["keys:admin", "deposits:write"]}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 403, "segregation_of_duties").await;
    let r = app
        .client
        .post(&kurl)
        .bearer_auth(&key)
        .json(&json!({"name": "x", "scopes": ["root"]}))
        .send()
        .await
        .unwrap();
    let p = assert_problem(r, 400, "validation_failed").await;
    assert_eq!(p["errors"][0]["code"], "unknown_scope");
    assert_eq!(
        app.running().store.list_admin_keys().await.unwrap().len(),
        before + 1,
        "only money_admin was added"
    );
    let r = app
        .client
        .post(&kurl)
        .bearer_auth(&key)
        .json(&json!({"name": "reader", "scopes": ["users:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    plant_canary(&secret);
    assert_eq!(
        app.client
            .get(&url)
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let listed: Value = app
        .client
        .get(&kurl)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !listed.to_string().contains(&secret),
        "secrets are never listed"
    );
    let id = created["id"].as_str().unwrap();
    let r = app
        .client
        .delete(app.admin_url(&format!("/admin/v1/keys/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .client
        .get(&url)
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "unauthorized").await;
    app.shutdown().await;
}

both!(frozen_users_lose_their_sessions_and_cannot_log_in);
async fn frozen_users_lose_their_sessions_and_cannot_log_in(app: TestApp) {
    let u = register_and_login(&app).await;
    let id = post_me(&app, &u.access).await;
    let writer = app.admin_key(&["users:write"]).await;
    let reader = app.admin_key(&["users:read"]).await;
    let r = app
        .client
        .post(app.admin_url(&format!("/admin/v1/users/{id}/freeze")))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_problem(r, 403, "insufficient_scope").await;
    let r = app
        .client
        .post(app.admin_url(&format!("/admin/v1/users/{id}/freeze")))
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_problem(
        get(&app, "/v1/auth/me", &u.access).await,
        401,
        "invalid_token",
    )
    .await;
    let r = post(
        &app,
        "/v1/auth/login",
        None,
        json!({"email": u.email, "password": u.password}),
    )
    .await;
    assert_problem(r, 403, "account_frozen").await;
    let r = post(
        &app,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": u.refresh}),
    )
    .await;
    assert_problem(r, 400, "invalid_grant").await;
    let users: Value = app
        .client
        .get(app.admin_url("/admin/v1/users"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        users["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id.as_str() && x["status"] == "frozen")
    );
    let r = app
        .client
        .post(app.admin_url(&format!("/admin/v1/users/{id}/unfreeze")))
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let v: Value = login_json(&app, &u.email, &u.password).await;
    assert_eq!(v["status"], "authenticated");
    let r = app
        .client
        .post(app.admin_url("/admin/v1/users/01900000-0000-7000-8000-000000000000/freeze"))
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
    app.shutdown().await;
}
