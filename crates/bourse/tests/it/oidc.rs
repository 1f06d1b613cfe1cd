//! Sign in with Google, against a real OpenID Connect provider (the `oidc-provider` npm
//! package run by `bourse_testkit::oidc`, configured as if it were Google), driven by a
//! browser-like client: a cookie jar, redirects followed one by one.
//!
//! Covers: a new account, a verified email linking to an existing account, an
//! unverified email never linking (nor claiming the address), replayed, forged and
//! other-browser `state`, a provider error, an RFC 9207 `iss` of another issuer, the
//! provider's own tokens refused by bourse, listing and unlinking identities (step-up,
//! last way to sign in), two-factor after an external sign-in, frozen accounts, an
//! unknown and an unreachable provider.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bourse_auth::totp::code_at;
use bourse_testkit::oidc::{OidcProvider, PROVIDER, ProviderAccount, spawn_with_provider};
use bourse_testkit::{Db, TestApp};
use reqwest::Url;
use serde_json::{Value, json};

use crate::assert_problem;
use crate::identity::{enable_totp, fresh_totp_step, get, now, password, post, step_up};

/// A browser: its own cookie jar, trusting the test server's certificate.
pub struct Browser {
    pub client: reqwest::Client,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        let cert = reqwest::Certificate::from_pem(&app.running().cert_pem).unwrap();
        Self {
            client: reqwest::Client::builder()
                .tls_certs_only([cert])
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// `GET /v1/auth/oidc/google/start` → the provider's authorization URL.
    pub async fn start(&self, app: &TestApp) -> Url {
        let r = self
            .client
            .get(app.url(&format!("/v1/auth/oidc/{PROVIDER}/start")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{:?}", r.text().await);
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.starts_with("__Host-bourse_oidc=bob_"), "{cookie}");
        for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
            assert!(cookie.contains(attr), "{cookie}");
        }
        Url::parse(r.headers()["location"].to_str().unwrap()).unwrap()
    }

    /// Follows the provider's redirects, signing in as `login` on its form (or
    /// declining), up to the redirect back to bourse; returns that callback URL.
    pub async fn at_provider(&self, authorize: Url, login: &str, deny: bool) -> Url {
        let mut url = authorize;
        for _ in 0..10 {
            if url.scheme() == "https" {
                return url;
            }
            let r = self.client.get(url.clone()).send().await.unwrap();
            if r.status().is_redirection() {
                url = url.join(r.headers()["location"].to_str().unwrap()).unwrap();
                continue;
            }
            assert_eq!(r.status(), 200, "provider page {url}");
            let page = r.text().await.unwrap();
            assert!(
                page.contains("id=\"login\""),
                "not the sign-in form: {page:.300}"
            );
            let form = if deny {
                "deny=1".to_owned()
            } else {
                format!("login={login}&sign_in=1")
            };
            let r = self
                .client
                .post(url.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_redirection(), "{:?}", r.text().await);
            url = url.join(r.headers()["location"].to_str().unwrap()).unwrap();
        }
        panic!("no redirect back to bourse");
    }

    pub async fn callback(&self, url: Url) -> reqwest::Response {
        self.client.get(url).send().await.unwrap()
    }

    /// The whole sign-in; returns the callback's JSON answer.
    pub async fn sign_in(&self, app: &TestApp, login: &str) -> Value {
        let authorize = self.start(app).await;
        let cb = self.at_provider(authorize, login, false).await;
        let r = self.callback(cb).await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        r.json().await.unwrap()
    }
}

/// A fresh browser's whole sign-in as `login`.
async fn sign_in(app: &TestApp, login: &str) -> Value {
    Browser::new(app).sign_in(app, login).await
}

fn access(v: &Value) -> String {
    assert_eq!(v["login"]["status"], "authenticated", "{v}");
    v["login"]["access_token"].as_str().unwrap().to_owned()
}

async fn me(app: &TestApp, token: &str) -> Value {
    let r = get(app, "/v1/auth/me", token).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn identities(app: &TestApp, token: &str) -> Vec<Value> {
    let r = get(app, "/v1/account/identities", token).await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn register(app: &TestApp, email: &str, password: &str) -> String {
    let r = post(
        app,
        "/v1/auth/register",
        None,
        json!({"email": email, "password": password}),
    )
    .await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn accounts() -> Vec<ProviderAccount> {
    vec![
        ProviderAccount::verified("g-new", "newcomer@example.com"),
        ProviderAccount::verified("g-alice", "alice@example.com"),
        ProviderAccount::unverified("g-mallory", "bob@example.com"),
        ProviderAccount::unverified("g-carol", "carol@example.com"),
    ]
}

async fn setup(db: Db) -> Option<(TestApp, OidcProvider)> {
    spawn_with_provider(db, &accounts(), |_| {}).await
}

async fn new_account_is_created_then_found_again(db: Db) {
    let Some((app, _op)) = setup(db).await else {
        return;
    };
    let first = sign_in(&app, "g-new").await;
    assert_eq!(first["account"], "created", "{first}");
    let token = access(&first);
    let who = me(&app, &token).await;
    assert_eq!(who["user_id"], first["user_id"]);
    // An external sign-in is one factor.
    assert_eq!(who["acr"], "pwd");
    let ids = identities(&app, &token).await;
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0]["provider"], PROVIDER);
    assert_eq!(ids[0]["email"], "newcomer@example.com");
    assert_eq!(ids[0]["email_verified"], true);
    assert_eq!(ids[0]["subject_hint"], "…-new");
    // The provider verified the email: it is the account's.
    let u = app
        .running()
        .store
        .get_user(first["user_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.email, "newcomer@example.com");
    assert!(u.password_hash.is_empty(), "no password");
    // No password: password sign-in cannot reach the account.
    let r = post(
        &app,
        "/v1/auth/login",
        None,
        json!({"email": "newcomer@example.com", "password": password()}),
    )
    .await;
    assert_problem(r, 401, "invalid_credentials").await;
    let again = sign_in(&app, "g-new").await;
    assert_eq!(again["account"], "existing");
    assert_eq!(again["user_id"], first["user_id"]);
    // The refresh token works like any other.
    let r = post(
        &app,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": again["login"]["refresh_token"]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    app.shutdown().await;
}

mod new_account {
    use bourse_testkit::Db;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::new_account_is_created_then_found_again(Db::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::new_account_is_created_then_found_again(Db::Postgres).await;
    }
}

async fn verified_email_links_and_unverified_never_does(db: Db) {
    let Some((app, _op)) = setup(db).await else {
        return;
    };
    let pw = password();
    let alice = register(&app, "alice@example.com", &pw).await;
    let bob = register(&app, "bob@example.com", &pw).await;

    let linked = sign_in(&app, "g-alice").await;
    assert_eq!(linked["account"], "linked", "{linked}");
    assert_eq!(linked["user_id"], alice.as_str());
    // The password still works too.
    let r = post(
        &app,
        "/v1/auth/login",
        None,
        json!({"email": "alice@example.com", "password": pw}),
    )
    .await;
    assert_eq!(r.status(), 200);

    // Mallory's provider account claims bob@example.com without verifying it: a new
    // account, not Bob's, and the address stays Bob's alone.
    let m = sign_in(&app, "g-mallory").await;
    assert_eq!(m["account"], "created", "{m}");
    assert_ne!(m["user_id"], bob.as_str());
    let mu = app
        .running()
        .store
        .get_user(m["user_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        mu.email,
        format!("{}@unverified.invalid", mu.id),
        "an unverified email is never the account's"
    );
    let ids = identities(&app, &access(&m)).await;
    assert_eq!(ids[0]["email"], "bob@example.com");
    assert_eq!(ids[0]["email_verified"], false);
    assert_eq!(sign_in(&app, "g-mallory").await["user_id"], m["user_id"]);
    // Bob's account has no identity linked.
    let bob_login: Value = post(
        &app,
        "/v1/auth/login",
        None,
        json!({"email": "bob@example.com", "password": pw}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        identities(&app, bob_login["access_token"].as_str().unwrap())
            .await
            .is_empty()
    );

    // An unverified carol@example.com does not claim the address either: Carol can
    // still register it.
    let c = sign_in(&app, "g-carol").await;
    assert_eq!(c["account"], "created");
    let carol = register(&app, "carol@example.com", &pw).await;
    assert_ne!(c["user_id"], carol.as_str());
    // The placeholder domain cannot be registered.
    let r = post(
        &app,
        "/v1/auth/register",
        None,
        json!({"email": "x@unverified.invalid", "password": pw}),
    )
    .await;
    assert_problem(r, 400, "validation_failed").await;
    app.shutdown().await;
}

mod linking {
    use bourse_testkit::Db;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::verified_email_links_and_unverified_never_does(Db::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::verified_email_links_and_unverified_never_does(Db::Postgres).await;
    }
}

fn with_query(url: &Url, key: &str, value: &str) -> Url {
    let mut u = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(key, value);
    u
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_single_use_bound_to_the_browser_and_checked() {
    let Some((app, _op)) = setup(Db::Sqlite).await else {
        return;
    };
    let b = Browser::new(&app);
    let cb = b.at_provider(b.start(&app).await, "g-new", false).await;

    // Another browser (no binding cookie) with the right state: refused, and the
    // login is still the real browser's to finish.
    let other = Browser::new(&app);
    assert_problem(other.callback(cb.clone()).await, 400, "oidc_state_invalid").await;
    // A state we never issued.
    let forged = with_query(&cb, "state", &format!("bos_{}", "A".repeat(43)));
    assert_problem(b.callback(forged).await, 400, "oidc_state_invalid").await;
    assert_problem(
        b.callback(with_query(&cb, "state", "nonsense")).await,
        400,
        "oidc_state_invalid",
    )
    .await;
    // RFC 9207: an answer naming another issuer is refused before anything else.
    assert_problem(
        b.callback(with_query(&cb, "iss", "https://evil.example"))
            .await,
        400,
        "oidc_issuer_mismatch",
    )
    .await;
    let r = b.callback(cb.clone()).await;
    assert_eq!(r.status(), 200);
    // Replayed: the pending login is gone.
    assert_problem(b.callback(cb.clone()).await, 400, "oidc_state_invalid").await;
    // Missing and repeated parameters.
    let mut no_state = cb.clone();
    no_state.set_query(Some("code=x"));
    assert_problem(b.callback(no_state).await, 400, "validation_failed").await;
    let mut twice = cb.clone();
    twice.set_query(Some("code=x&state=a&state=b"));
    assert_problem(b.callback(twice).await, 400, "validation_failed").await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_sign_in_is_oidc_denied_and_uses_up_the_state() {
    let Some((app, _op)) = setup(Db::Sqlite).await else {
        return;
    };
    let b = Browser::new(&app);
    let cb = b.at_provider(b.start(&app).await, "", true).await;
    assert_eq!(
        cb.query_pairs()
            .find(|(k, _)| k == "error")
            .map(|(_, v)| v.into_owned())
            .as_deref(),
        Some("access_denied")
    );
    assert_problem(b.callback(cb.clone()).await, 403, "oidc_denied").await;
    assert_problem(b.callback(cb).await, 400, "oidc_state_invalid").await;
    app.shutdown().await;
}

/// The provider's own tokens, obtained the way any client of it would (code + PKCE),
/// for the redirect URL bourse registered.
async fn provider_tokens(app: &TestApp, op: &OidcProvider) -> Value {
    use sha2::Digest;
    let b = Browser::new(app);
    let meta: Value = b
        .client
        .get(format!("{}/.well-known/openid-configuration", op.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2));
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let redirect = app.url(&format!("/v1/auth/oidc/{PROVIDER}/callback"));
    let mut authorize = Url::parse(meta["authorization_endpoint"].as_str().unwrap()).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &op.client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid email profile")
        .append_pair("state", "test-state")
        .append_pair("nonce", "test-nonce")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let cb = b.at_provider(authorize, "g-new", false).await;
    let code = cb
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let form = format!(
        "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={verifier}",
        url_encode(&redirect)
    );
    let r = b
        .client
        .post(meta["token_endpoint"].as_str().unwrap())
        .basic_auth(&op.client_id, Some(&op.client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn url_encode(s: &str) -> String {
    Url::parse_with_params("http://x/", [("v", s)])
        .unwrap()
        .query()
        .unwrap()
        .trim_start_matches("v=")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_tokens_are_never_bourse_access_tokens() {
    let Some((app, op)) = setup(Db::Sqlite).await else {
        return;
    };
    let t = provider_tokens(&app, &op).await;
    for key in ["id_token", "access_token"] {
        let token = t[key].as_str().unwrap();
        bourse_testkit::plant_canary(token);
        let r = get(&app, "/v1/auth/me", token).await;
        let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(www.contains("error=\"invalid_token\""), "{www}");
        assert_problem(r, 401, "invalid_token").await;
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlinking_needs_step_up_and_never_removes_the_last_way_in() {
    let Some((app, _op)) = setup(Db::Sqlite).await else {
        return;
    };
    // An account made by the provider: no password.
    let s = sign_in(&app, "g-new").await;
    let token = access(&s);
    let id = identities(&app, &token).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/account/identities/{id}");
    let delete = |token: String| {
        let client = app.client.clone();
        let url = app.url(&path);
        async move { client.delete(url).bearer_auth(token).send().await.unwrap() }
    };
    // Without two-factor no sensitive action is possible.
    assert_problem(delete(token.clone()).await, 403, "mfa_enrollment_required").await;
    let (secret, _) = enable_totp(&app, &token).await;
    // With it, but no fresh second factor: the RFC 9470 challenge.
    let r = delete(token.clone()).await;
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        www.contains("insufficient_user_authentication") && www.contains("acr_values=\"mfa\""),
        "{www}"
    );
    assert_problem(r, 401, "insufficient_user_authentication").await;
    fresh_totp_step().await;
    let r = step_up(&app, &token, &code_at(&secret, now())).await;
    assert_eq!(r.status(), 200);
    let stepped = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The only way to sign in to this account.
    assert_problem(delete(stepped.clone()).await, 409, "last_sign_in_method").await;
    assert_eq!(identities(&app, &stepped).await.len(), 1);
    // Another user's or an unknown identity: 404.
    let pw = password();
    register(&app, "alice@example.com", &pw).await;
    let alice = sign_in(&app, "g-alice").await;
    let alice_id = identities(&app, &access(&alice)).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .client
        .delete(app.url(&format!("/v1/account/identities/{alice_id}")))
        .bearer_auth(&stepped)
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "not_found").await;
    let r = app
        .client
        .delete(app.url("/v1/account/identities/..%2F..%2Fx"))
        .bearer_auth(&stepped)
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "validation_failed").await;

    // Two-factor applies to external sign-ins as to passwords.
    let again = sign_in(&app, "g-new").await;
    assert_eq!(again["login"]["status"], "mfa_required", "{again}");
    tokio::time::sleep(std::time::Duration::from_secs(
        (30 - now().rem_euclid(30) + 1) as u64,
    ))
    .await;
    let r = post(
        &app,
        "/v1/auth/login/mfa",
        None,
        json!({"challenge": again["login"]["challenge"], "code": code_at(&secret, now())}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let claims = jwt_claims(t["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["ext", "otp"]));
    assert_eq!(claims["acr"], "mfa");

    // Alice has a password: her identity can go (after step-up).
    let alice_token = access(&alice);
    let (asecret, _) = enable_totp(&app, &alice_token).await;
    fresh_totp_step().await;
    let r = step_up(&app, &alice_token, &code_at(&asecret, now())).await;
    let astepped = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .client
        .delete(app.url(&format!("/v1/account/identities/{alice_id}")))
        .bearer_auth(&astepped)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(identities(&app, &astepped).await.is_empty());
    app.shutdown().await;
}

fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_accounts_cannot_sign_in_with_a_provider() {
    let Some((app, _op)) = setup(Db::Sqlite).await else {
        return;
    };
    let s = sign_in(&app, "g-new").await;
    let user = s["user_id"].as_str().unwrap();
    let key = app.admin_key(&["users:write"]).await;
    let r = app
        .client
        .post(app.admin_url(&format!("/admin/v1/users/{user}/freeze")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let b = Browser::new(&app);
    let cb = b.at_provider(b.start(&app).await, "g-new", false).await;
    assert_problem(b.callback(cb).await, 403, "account_frozen").await;
    // A verified email of a frozen account does not get linked either.
    let pw = password();
    let alice = register(&app, "alice@example.com", &pw).await;
    let r = app
        .client
        .post(app.admin_url(&format!("/admin/v1/users/{alice}/freeze")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let cb = b.at_provider(b.start(&app).await, "g-alice", false).await;
    assert_problem(b.callback(cb).await, 403, "account_frozen").await;
    assert!(
        app.running()
            .store
            .list_external_identities(&alice)
            .await
            .unwrap()
            .is_empty()
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_unreachable_providers() {
    // A provider nobody listens for: the server starts anyway.
    let dead = format!("http://127.0.0.1:{}", bourse_testkit::oidc::free_port());
    let app = TestApp::spawn_with(Db::Sqlite, |c| {
        c.oidc.providers.insert(
            "down".into(),
            bourse::config::OidcProviderConfig {
                issuer_url: dead,
                client_id: "c".into(),
                client_secret: "s".to_owned().into(),
                redirect_url: None,
                scopes: vec!["openid".into()],
                display_name: None,
                ca_file: None,
            },
        );
    })
    .await
    .unwrap();
    let r = app
        .client
        .get(app.url("/v1/auth/oidc"))
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["data"][0]["name"], "down");
    assert_eq!(list["data"][0]["start_url"], "/v1/auth/oidc/down/start");
    let r = app
        .client
        .get(app.url("/v1/auth/oidc/down/start"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));
    assert_problem(r, 503, "oidc_provider_unavailable").await;
    let r = app
        .client
        .get(app.url("/v1/auth/oidc/nope/start"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "oidc_provider_unknown").await;
    for bad in ["https://evil.example/", "//evil.example", "relative"] {
        let r = app
            .client
            .get(
                Url::parse_with_params(&app.url("/v1/auth/oidc/down/start"), [("return_to", bad)])
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_problem(r, 400, "validation_failed").await;
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_to_comes_back_with_the_sign_in() {
    let Some((app, _op)) = setup(Db::Sqlite).await else {
        return;
    };
    let b = Browser::new(&app);
    let r = b
        .client
        .get(
            Url::parse_with_params(
                &app.url(&format!("/v1/auth/oidc/{PROVIDER}/start")),
                [("return_to", "/oauth/authorize?client_id=x")],
            )
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let authorize = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["state"].starts_with("bos_"));
    assert!(!q["nonce"].is_empty());
    assert_eq!(q["scope"], "openid email profile");
    let cb = b.at_provider(authorize, "g-new", false).await;
    let v: Value = b.callback(cb).await.json().await.unwrap();
    assert_eq!(v["return_to"], "/oauth/authorize?client_id=x");
    app.shutdown().await;
}
