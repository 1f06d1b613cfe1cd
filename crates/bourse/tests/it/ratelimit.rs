//! Rate limits, bans and load shedding against real servers (security.md, "Rate
//! limiting and resource consumption"): headers on every answer, 429 with
//! `Retry-After`, per-route weights, per-user and per-IP subjects, the order-rate
//! limit, strict credential limits, temporary bans, one limit shared by two servers
//! through the real Redis, and cancels served while new orders are shed.

use std::time::Duration;

use bourse::config::{Config, PolicyConfig};
use bourse_testkit::{Db, TestApp};
use reqwest::Response;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::assert_problem;
use crate::identity::{post, register_and_login};

fn policy(quota: u32, window_secs: u64) -> PolicyConfig {
    PolicyConfig { quota, window_secs }
}

/// Limits on, generous everywhere but where a test narrows them.
fn limits_on(c: &mut Config) {
    let r = &mut c.rate_limit;
    r.enabled = true;
    r.policies.default = policy(1000, 60);
    r.policies.anonymous = policy(1000, 60);
    r.policies.auth = policy(1000, 60);
    r.policies.orders_second = policy(1000, 1);
    r.policies.orders_minute = policy(10_000, 60);
    r.policies.admin = policy(1000, 60);
}

async fn spawn(adjust: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(Db::Sqlite, |c| {
        limits_on(c);
        adjust(c);
    })
    .await
    .expect("SQLite is always available")
}

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `r` and `t` of the named policy in a `RateLimit` header.
fn remaining(r: &Response, name: &str) -> (u32, u64) {
    let value = header(r, "ratelimit");
    let item = value
        .split(", ")
        .find(|i| i.starts_with(&format!("\"{name}\";")))
        .unwrap_or_else(|| panic!("no {name} in RateLimit: {value}"));
    let mut left = None;
    let mut reset = None;
    for param in item.split(';').skip(1) {
        match param.split_once('=') {
            Some(("r", v)) => left = v.parse().ok(),
            Some(("t", v)) => reset = v.parse().ok(),
            _ => panic!("unexpected parameter {param} in {value}"),
        }
    }
    (left.expect("r"), reset.expect("t"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_headers_and_the_limit_answers_429_with_retry_after() {
    let app = spawn(|c| c.rate_limit.policies.anonymous = policy(5, 60)).await;
    for left in (0..5).rev() {
        let r = app
            .client
            .get(app.url("/v1/instruments"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "ratelimit-policy"), "\"anonymous\";q=5;w=60");
        let (r_left, t) = remaining(&r, "anonymous");
        assert_eq!(r_left, left);
        // 12 s per unit: full again after (5 - left) units.
        assert!(
            t <= 12 * u64::from(5 - left) && t >= 12 * u64::from(4 - left),
            "t={t}"
        );
    }
    // Health probes are never limited (a load balancer must see a healthy node).
    for _ in 0..3 {
        let r = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(header(&r, "ratelimit").is_empty());
    }
    // The sixth call is refused, and the refusal carries the headers too.
    let r = app
        .client
        .get(app.url("/v1/instruments"))
        .send()
        .await
        .unwrap();
    let retry: u64 = header(&r, "retry-after")
        .parse()
        .expect("Retry-After seconds");
    assert!((1..=12).contains(&retry), "retry-after {retry}");
    assert_eq!(remaining(&r, "anonymous").0, 0);
    let body = assert_problem(r, 429, "rate_limited").await;
    assert!(
        body["detail"].as_str().unwrap().contains("anonymous"),
        "{body}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_cost_their_weight_and_users_are_limited_apart_from_each_other_and_from_ips() {
    let app = spawn(|c| {
        c.rate_limit.policies.default = policy(10, 60);
        c.rate_limit.policies.anonymous = policy(3, 60);
    })
    .await;
    let a = register_and_login(&app).await;
    let b = register_and_login(&app).await;
    let get = |path: &str, token: &str| app.client.get(app.url(path)).bearer_auth(token).send();
    // GET /v1/orders weighs 5: two fit in 10, the third does not.
    let r = get("/v1/orders", &a.access).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "ratelimit-policy"), "\"default\";q=10;w=60");
    assert_eq!(remaining(&r, "default").0, 5);
    let r = get("/v1/orders", &a.access).await.unwrap();
    assert_eq!(remaining(&r, "default").0, 0);
    assert_problem(
        get("/v1/orders", &a.access).await.unwrap(),
        429,
        "rate_limited",
    )
    .await;
    // A weight-1 route still does not fit either: the user is out. The refusal's audit
    // record names the user it refused.
    let rid = format!("limited-{}", uuid::Uuid::new_v4().simple());
    let r = app
        .client
        .get(app.url("/v1/account"))
        .bearer_auth(&a.access)
        .header("x-request-id", &rid)
        .send()
        .await
        .unwrap();
    assert_problem(r, 429, "rate_limited").await;
    let e = crate::audit::record_of(&app, &rid).await.entry;
    assert_eq!(
        (e.route.as_str(), e.status, e.problem_code.as_deref()),
        ("/v1/account", 429, Some("rate_limited"))
    );
    let a_user = app
        .running()
        .store
        .find_user_by_email(&a.email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.user_id.as_deref(), Some(a_user.id.as_str()));
    // User B is untouched, and so is the anonymous budget of the same IP.
    let r = get("/v1/account", &b.access).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(remaining(&r, "default").0, 9);
    let r = app
        .client
        .get(app.url("/v1/instruments"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(remaining(&r, "anonymous").0, 2);
    // An invalid token is anonymous traffic, not the user's.
    let r = get("/v1/account", "not-a-token").await.unwrap();
    assert_eq!(remaining(&r, "anonymous").0, 1);
    assert_problem(r, 401, "invalid_token").await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_entry_has_its_own_per_second_limit() {
    let app = spawn(|c| c.rate_limit.policies.orders_second = policy(3, 1)).await;
    let user = register_and_login(&app).await;
    let order = json!({"symbol": "BTC-PERP", "side": "buy", "type": "limit",
        "price": "50000", "quantity": "0.001"});
    let mut seen_refusal = None;
    // Unfunded, so the core refuses each order (422) — the limit counts them anyway.
    for i in 0..8 {
        let r = app
            .client
            .post(app.url("/v1/orders"))
            .bearer_auth(&user.access)
            .json(&order)
            .send()
            .await
            .unwrap();
        let policy = header(&r, "ratelimit-policy");
        assert!(policy.contains("\"orders_second\";q=3;w=1"), "{policy}");
        assert!(policy.contains("\"orders_minute\""), "{policy}");
        if r.status() == 429 {
            assert_eq!(remaining(&r, "orders_second").0, 0);
            assert!(header(&r, "retry-after").parse::<u64>().unwrap() >= 1);
            assert_problem(r, 429, "rate_limited").await;
            seen_refusal = Some(i);
            break;
        }
        assert_ne!(r.status(), 201, "unfunded orders are refused by the core");
    }
    // Three per second with a burst of three: at the latest the fourth quick one.
    let at = seen_refusal.expect("the order-rate limit refused");
    assert!((3..=4).contains(&at), "refused at {at}");
    // Reads are not order entry.
    let r = app
        .client
        .get(app.url("/v1/orders"))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!header(&r, "ratelimit-policy").contains("orders_second"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_endpoints_have_a_strict_limit_of_their_own() {
    let app = spawn(|c| c.rate_limit.policies.auth = policy(4, 60)).await;
    let body = json!({"email": "nobody@example.com", "password": "wrong-password-123456"});
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = post(&app, "/v1/auth/login", None, body.clone()).await;
        assert!(header(&r, "ratelimit-policy").starts_with("\"auth\";q=4;w=60"));
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_problem(r, 429, "rate_limited").await;
        }
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);
    // Registration shares the credential budget of the IP; other routes do not.
    let r = post(
        &app,
        "/v1/auth/register",
        None,
        json!({"email": "new@example.com", "password": "a-long-enough-passphrase-1"}),
    )
    .await;
    assert_problem(r, 429, "rate_limited").await;
    let r = app
        .client
        .get(app.url("/v1/instruments"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hammering_after_429_earns_a_temporary_ban_with_its_end_time() {
    let app = spawn(|c| {
        c.rate_limit.policies.anonymous = policy(2, 60);
        c.rate_limit.ban_after = 3;
        c.rate_limit.ban_secs = 120;
    })
    .await;
    let get = || app.client.get(app.url("/v1/instruments")).send();
    assert_eq!(get().await.unwrap().status(), 200);
    assert_eq!(get().await.unwrap().status(), 200);
    assert_problem(get().await.unwrap(), 429, "rate_limited").await;
    assert_problem(get().await.unwrap(), 429, "rate_limited").await;
    // The third refusal inside the window turns into a ban.
    let r = get().await.unwrap();
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((119..=120).contains(&retry), "retry-after {retry}");
    // The ban answer says what is left the same way every answer does: nothing, until
    // the ban ends.
    assert_eq!(header(&r, "ratelimit-policy"), "\"anonymous\";q=2;w=60");
    let (left, t) = remaining(&r, "anonymous");
    assert_eq!(left, 0);
    assert!((119..=120).contains(&t), "t={t}");
    let body = assert_problem(r, 429, "temporarily_banned").await;
    let detail = body["detail"].as_str().unwrap();
    let until = detail.rsplit(' ').next().unwrap();
    let until = time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("end time in {detail:?}: {e}"));
    let left = until - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::seconds(110) && left <= time::Duration::seconds(121),
        "{left}"
    );
    // Still banned, and the ban answers before any limit is charged.
    let r = get().await.unwrap();
    assert_problem(r, 429, "temporarily_banned").await;
    app.shutdown().await;
}

/// Redis on 127.0.0.1:6379: required with CI=true, else the test is skipped.
async fn redis_available() -> bool {
    let up = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect("127.0.0.1:6379"),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if !up {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Redis is required in CI (127.0.0.1:6379)"
        );
        eprintln!("skipping: Redis is not reachable on 127.0.0.1:6379");
    }
    up
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_sharing_redis_enforce_one_limit() {
    if !redis_available().await {
        return;
    }
    let prefix = format!("bourse-test:{}:", uuid::Uuid::now_v7());
    let shared = |c: &mut Config| {
        c.rate_limit.policies.anonymous = policy(6, 60);
        c.redis_url = Some("redis://127.0.0.1:6379".to_owned().into());
        c.rate_limit.redis_prefix = prefix.clone();
    };
    let a = spawn(shared).await;
    let b = spawn(shared).await;
    let mut left = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = app
            .client
            .get(app.url("/v1/instruments"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        left.push(remaining(&r, "anonymous").0);
    }
    // One budget for both: 5, 4, 3, 2, 1, 0 across the two servers.
    assert_eq!(left, [5, 4, 3, 2, 1, 0]);
    for app in [&a, &b] {
        let r = app
            .client
            .get(app.url("/v1/instruments"))
            .send()
            .await
            .unwrap();
        assert!(header(&r, "retry-after").parse::<u64>().unwrap() >= 1);
        assert_problem(r, 429, "rate_limited").await;
    }
    // Another deployment's prefix is another budget.
    let other = spawn(|c| {
        c.rate_limit.policies.anonymous = policy(6, 60);
        c.redis_url = Some("redis://127.0.0.1:6379".to_owned().into());
        c.rate_limit.redis_prefix = format!("{prefix}other:");
    })
    .await;
    let r = other
        .client
        .get(other.url("/v1/instruments"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(remaining(&r, "anonymous").0, 5);
    for app in [a, b, other] {
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancels_are_served_while_new_orders_are_shed() {
    let app = spawn(|c| {
        c.rate_limit.max_in_flight = 1;
        c.rate_limit.queue_timeout_ms = 100;
    })
    .await;
    let user = register_and_login(&app).await;
    // Hold the only slot: an order whose body never finishes arriving.
    let cfg = app.tls_client_config(&[&rustls::version::TLS13], &[b"http/1.1"]);
    let tcp = tokio::net::TcpStream::connect(app.running().public_addr)
        .await
        .unwrap();
    let mut slow = tokio_rustls::TlsConnector::from(cfg)
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let head = format!(
        "POST /v1/orders HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"symbol\":",
        user.access
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let order = json!({"symbol": "BTC-PERP", "side": "buy", "type": "limit",
        "price": "50000", "quantity": "0.001"});
    let r = app
        .client
        .post(app.url("/v1/orders"))
        .bearer_auth(&user.access)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "retry-after"), "1");
    assert_problem(r, 503, "overloaded").await;
    // Cancels skip the queue: answered by the handler (nothing to cancel), not shed.
    let r = app
        .client
        .delete(app.url("/v1/orders/019b0000-0000-7000-8000-000000000000"))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 503);
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = app
        .client
        .delete(app.url("/v1/orders?symbol=BTC-PERP"))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Once the slot is free, orders are taken again.
    drop(slow);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = app
        .client
        .get(app.url("/v1/orders"))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.shutdown().await;
}
