//! The crash test: the real `bourse` binary takes concurrent orders from several
//! clients, is killed with SIGKILL in the middle of the stream and started again.
//! Afterwards every order that got a 2xx exists exactly once with its fills, no order
//! that got an error exists, the balances reconcile with the ledger, and the state hash
//! the restarted node reports equals a fresh replay of its journal
//! (`bourse engine verify`). On SQLite and on PostgreSQL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bourse_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::cli::{Server, bourse, run, serve_with};

#[derive(Debug, Clone)]
enum Answer {
    Placed(String),
    Refused(u16),
    /// The connection died with the server: placed or not, at most once.
    Unknown,
}

struct Node {
    server: Server,
    client: reqwest::Client,
}

impl Node {
    fn start(dir: &std::path::Path, extra: &[&str]) -> Node {
        let server = serve_with(dir, extra);
        let cert = std::fs::read(dir.join("tls/cert.pem")).unwrap();
        Node {
            server,
            client: bourse_testkit::client_for(&cert, None),
        }
    }

    fn api(&self, path: &str) -> String {
        format!("https://{}{path}", self.server.public)
    }

    fn admin(&self, path: &str) -> String {
        format!("https://{}{path}", self.server.admin)
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let r = self
            .client
            .get(self.api(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    async fn admin_post(&self, key: &str, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.admin(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

fn admin_key(dir: &std::path::Path, extra: &[&str]) -> String {
    let (code, out, err) = run(bourse()
        .args([
            "admin",
            "keys",
            "create",
            "--name",
            "crash-test",
            "--scopes",
            "instruments:write,instruments:read,deposits:write",
            "--data-dir",
        ])
        .arg(dir)
        .args(extra));
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Value>(out.lines().last().unwrap()).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn user(node: &Node, key: &str, n: usize) -> String {
    let email = format!(
        "crash{n}-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let password = format!("crash test passphrase {}", uuid::Uuid::new_v4());
    let creds = json!({"email": email, "password": password});
    let r = node
        .client
        .post(node.api("/v1/auth/register"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = node
        .client
        .post(node.api("/v1/auth/login"))
        .json(&creds)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = v["access_token"].as_str().unwrap().to_owned();
    let me = node.get("/v1/auth/me", &token).await;
    let r = node
        .admin_post(
            key,
            "/admin/v1/deposits",
            json!({"user_id": me["user_id"], "asset": "USDC", "amount": "1000000", "tx_ref": format!("crash-{n}")}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    token
}

async fn crash_and_recover(pg: Option<&TestDatabase>) {
    let dir = tempfile::tempdir().unwrap();
    let url_flag;
    let extra: Vec<&str> = match pg {
        Some(db) => {
            url_flag = db.url().to_owned();
            vec!["--database-url", &url_flag]
        }
        None => vec![],
    };
    let key = admin_key(dir.path(), &extra);
    let node = Node::start(dir.path(), &extra);
    // The demo instruments exist only on the embedded SQLite default.
    let r = node
        .admin_post(
            &key,
            "/admin/v1/instruments",
            json!({"symbol": "BTC-PERP", "kind": "perpetual", "base_asset": "BTC",
                "quote_asset": "USD", "settlement_asset": "USDC", "tick_size": "0.5",
                "lot_size": "0.001", "min_order_size": "0.001", "max_order_size": "1000",
                "contract_multiplier": "1"}),
        )
        .await;
    assert!(
        matches!(r.status().as_u16(), 201 | 409),
        "{}",
        r.text().await.unwrap()
    );
    let r = node
        .admin_post(
            &key,
            "/admin/v1/instruments/BTC-PERP/prices",
            json!({"mark": "50000", "index": "50000"}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mut tokens = Vec::new();
    for n in 0..4 {
        tokens.push(user(&node, &key, n).await);
    }

    // Four clients place crossing orders as fast as they can.
    let answers: Arc<Mutex<Vec<(usize, String, Answer)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (u, token) in tokens.iter().enumerate() {
        let (client, url, token) = (node.client.clone(), node.api("/v1/orders"), token.clone());
        let (answers, stop, acked) = (answers.clone(), stop.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let cid = format!("u{u}-{n}");
                let side = if (n + u as u64).is_multiple_of(2) {
                    "buy"
                } else {
                    "sell"
                };
                let price = format!("{}", 49_995 + (n * 7 + u as u64) % 10);
                let body = json!({"symbol": "BTC-PERP", "side": side, "type": "limit",
                    "price": price, "quantity": format!("0.00{}", 1 + n % 5),
                    "client_order_id": cid});
                let answer = match client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                        Ok(v) => {
                            acked.fetch_add(1, Ordering::Relaxed);
                            Answer::Placed(v["order_id"].as_str().unwrap().to_owned())
                        }
                        Err(_) => Answer::Unknown,
                    },
                    Ok(r) => Answer::Refused(r.status().as_u16()),
                    Err(_) => Answer::Unknown,
                };
                let died = matches!(answer, Answer::Unknown);
                answers.lock().unwrap().push((u, cid, answer));
                if died {
                    return;
                }
            }
        }));
    }
    // Kill the node mid-stream once a few hundred orders were acknowledged.
    let started = std::time::Instant::now();
    while acked.load(Ordering::Relaxed) < 300 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let Node { mut server, .. } = node;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    drop(server);
    let answers = answers.lock().unwrap().clone();
    let placed = answers
        .iter()
        .filter(|a| matches!(a.2, Answer::Placed(_)))
        .count();
    assert!(
        placed >= 300,
        "only {placed} orders acknowledged before the kill"
    );

    // Start again on the same data: snapshot (if any) + journal replay.
    let node = Node::start(dir.path(), &extra);
    let mut by_user: Vec<HashMap<String, Vec<Value>>> = Vec::new();
    for token in &tokens {
        let mut orders: HashMap<String, Vec<Value>> = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/orders?limit=1000&cursor={c}"),
                None => "/v1/orders?limit=1000".to_owned(),
            };
            let page = node.get(&path, token).await;
            for o in page["data"].as_array().unwrap() {
                orders
                    .entry(o["client_order_id"].as_str().unwrap().to_owned())
                    .or_default()
                    .push(o.clone());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        by_user.push(orders);
    }
    for (u, cid, answer) in &answers {
        let found = by_user[*u].get(cid).map(Vec::as_slice).unwrap_or_default();
        match answer {
            Answer::Placed(id) => {
                assert_eq!(
                    found.len(),
                    1,
                    "acknowledged order {cid} exists exactly once"
                );
                assert_eq!(found[0]["order_id"], id.as_str());
            }
            Answer::Refused(status) => {
                assert!(found.is_empty(), "order {cid} refused with {status} exists")
            }
            Answer::Unknown => assert!(found.len() <= 1, "{cid} exists twice"),
        }
    }
    // Every order's fills add up to its filled quantity (in lots of 0.001).
    let lots = |s: &str| {
        let d: bourse_types::Decimal = s.parse().unwrap();
        i64::try_from((d * bourse_types::Decimal::from(1000)).mantissa()).unwrap()
            / 10i64.pow((d * bourse_types::Decimal::from(1000)).scale())
    };
    let mut net_position = 0i64;
    for (u, token) in tokens.iter().enumerate() {
        let mut fills_by_order: HashMap<String, i64> = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/fills?limit=1000&cursor={c}"),
                None => "/v1/fills?limit=1000".to_owned(),
            };
            let page = node.get(&path, token).await;
            for f in page["data"].as_array().unwrap() {
                *fills_by_order
                    .entry(f["order_id"].as_str().unwrap().to_owned())
                    .or_default() += lots(f["quantity"].as_str().unwrap());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        for orders in by_user[u].values() {
            for o in orders {
                let id = o["order_id"].as_str().unwrap();
                let filled = lots(o["filled_quantity"].as_str().unwrap());
                assert_eq!(
                    fills_by_order.get(id).copied().unwrap_or(0),
                    filled,
                    "fills of {id}"
                );
                let leaves = lots(o["leaves_quantity"].as_str().unwrap());
                if o["status"] == "canceled" {
                    assert_eq!(leaves, 0, "a canceled order {id} leaves nothing");
                } else {
                    let quantity = lots(o["quantity"].as_str().unwrap());
                    assert_eq!(filled + leaves, quantity, "quantities of {id}");
                }
            }
        }
        // The read models' ledger ends at the balance the core holds.
        let acct = node.get("/v1/account", token).await;
        let ledger = node
            .get("/v1/account/ledger?asset=USDC&limit=1", token)
            .await;
        assert_eq!(
            acct["balances"][0]["balance"], ledger["data"][0]["balance"],
            "user {u}"
        );
        let positions = node.get("/v1/positions", token).await;
        for p in positions["data"].as_array().unwrap() {
            net_position += lots(p["size"].as_str().unwrap());
        }
    }
    assert_eq!(net_position, 0, "the users only traded with each other");

    // The restarted node's state equals a fresh replay of the whole journal.
    let engine: Value = node
        .client
        .get(node.admin("/admin/v1/engine"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let Node { mut server, .. } = node;
    let pid = server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(server.child.wait().unwrap().success());
    let (code, out, err) = run(bourse()
        .args(["engine", "verify", "--data-dir"])
        .arg(dir.path())
        .args(&extra));
    assert_eq!(code, 0, "{err}");
    let fresh: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(
        fresh["state_hash"], engine["state_hash"],
        "{fresh} vs {engine}"
    );
    assert_eq!(fresh["durable_seq"], engine["durable_seq"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_acknowledged_orders_survive_sigkill() {
    crash_and_recover(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_acknowledged_orders_survive_sigkill() {
    if let Some(db) = TestDatabase::postgres().await {
        crash_and_recover(Some(&db)).await;
        db.cleanup().await;
    }
}
