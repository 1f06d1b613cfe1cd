//! The `bourse` binary as an operator runs it: config errors, redaction, first start,
//! and graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub(crate) fn bourse() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bourse"));
    // Keep the developer's environment out of these tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("BOURSE_") {
            c.env_remove(k);
        }
    }
    c
}

pub(crate) fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("bourse runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_wrong_value_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(bourse().args(["config", "show", "--public-addr", "nonsense"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("public_addr"), "{err}");

    let (code, _, err) = run(bourse()
        .args(["config", "show"])
        .env("BOURSE_HTTP__BODY_LIMIT_BYTES", "lots"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("http.body_limit_bytes"), "{err}");

    let file = dir.path().join("bourse.toml");
    std::fs::write(&file, "public_adr = \"127.0.0.1:1\"\n").unwrap();
    let (code, _, err) = run(bourse().args(["config", "show", "--config"]).arg(&file));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("public_adr"), "{err}");

    let (code, _, err) = run(bourse().args(["serve", "--tls-cert", "/nowhere/cert.pem"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("tls_key"), "{err}");

    let (code, _, err) =
        run(bourse().args(["config", "show", "--database-url", "mysql://u:pw@h/db"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("database_url") && !err.contains("pw@"),
        "{err}"
    );
}

#[test]
fn layers_apply_in_order_and_secrets_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bourse.toml");
    std::fs::write(
        &file,
        "public_addr = \"127.0.0.1:1001\"\nadmin_addr = \"127.0.0.1:1002\"\n[http]\nbody_limit_bytes = 1000\n",
    )
    .unwrap();
    let (code, out, err) = run(bourse()
        .args(["config", "show", "--config"])
        .arg(&file)
        .args([
            "--admin-addr",
            "127.0.0.1:1003",
            "--database-url",
            "postgres://svc:hunter2@db:5432/bourse",
        ])
        .env("BOURSE_PUBLIC_ADDR", "127.0.0.1:1004"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("public_addr = \"127.0.0.1:1004\""),
        "env over file: {out}"
    );
    assert!(
        out.contains("admin_addr = \"127.0.0.1:1003\""),
        "flag over file: {out}"
    );
    assert!(
        out.contains("body_limit_bytes = 1000"),
        "file over default: {out}"
    );
    assert!(out.contains("postgres://svc:***@db:5432/bourse"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) public: String,
    pub(crate) admin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bourse serve` on port 0 and reads the bound addresses from its JSON log.
fn serve(data_dir: &std::path::Path) -> Server {
    serve_with(data_dir, &[])
}

/// [`serve`] with more arguments (e.g. `--database-url`).
pub(crate) fn serve_with(data_dir: &std::path::Path, extra: &[&str]) -> Server {
    let mut child = bourse()
        .args([
            "serve",
            "--public-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (public, admin) = loop {
        let line = lines.next().expect("server logs before exiting").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).expect("log lines are JSON");
        if v["message"] == "bourse listening" {
            break (
                v["public"].as_str().unwrap().to_owned(),
                v["admin"].as_str().unwrap().to_owned(),
            );
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        public,
        admin,
    }
}

#[test]
fn first_start_makes_a_certificate_and_later_starts_reuse_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path());
    let cert = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
    drop(s);
    let s = serve(dir.path());
    assert_eq!(
        std::fs::read(dir.path().join("tls/cert.pem")).unwrap(),
        cert
    );
    assert!(
        dir.path().join("bourse.db").exists(),
        "SQLite in the data folder"
    );
    drop(s);
}

#[test]
fn migrate_applies_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let (code, _, err) = run(bourse().arg("migrate").arg("--data-dir").arg(dir.path()));
        assert_eq!(code, 0, "{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_an_in_flight_slow_request() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(bourse()
        .args([
            "admin",
            "keys",
            "create",
            "--name",
            "drain-test",
            "--scopes",
            "instruments:write",
            "--data-dir",
        ])
        .arg(dir.path()));
    assert_eq!(code, 0, "{err}");
    let key =
        serde_json::from_str::<serde_json::Value>(out.lines().last().unwrap()).unwrap()["key"]
            .as_str()
            .unwrap()
            .to_owned();
    let mut server = serve(dir.path());
    let cert = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
    let cfg = bourse_testkit::tls_client_config(&cert, &[&rustls::version::TLS13], &[b"http/1.1"]);

    let body = serde_json::json!({
        "symbol": "DRAIN-PERP", "kind": "perpetual", "base_asset": "SOL", "quote_asset": "USD",
        "settlement_asset": "USDC", "tick_size": "0.01", "lot_size": "0.1", "min_order_size": "0.1",
        "max_order_size": "1000", "contract_multiplier": "1"
    })
    .to_string();
    let tcp = TcpStream::connect(&server.admin).await.unwrap();
    let mut tls = TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let head = format!(
        "POST /admin/v1/instruments HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    tls.write_all(first.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // SIGTERM while the request is half sent.
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(server.child.try_wait().unwrap().is_none(), "still draining");
    // New connections are no longer accepted.
    let refused = match TcpStream::connect(&server.public).await {
        Err(_) => true,
        Ok(mut s) => {
            let mut b = [0u8; 1];
            matches!(
                tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await,
                Ok(Ok(0)) | Ok(Err(_))
            )
        }
    };
    assert!(refused, "listener closed after SIGTERM");

    tls.write_all(rest.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut resp)).await;
    let text = String::from_utf8_lossy(&resp);
    assert!(
        text.starts_with("HTTP/1.1 201"),
        "the in-flight request completed: {text}"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server exits after draining"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn signing_and_master_keys_rotate_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // First start of the identity service makes a master key and a signing key.
    let (code, out, err) = run(bourse().args(["keys", "rotate", "--data-dir", data]));
    assert_eq!(code, 0, "{err}");
    let first: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let (code, out, err) = run(bourse().args(["keys", "rotate", "--data-dir", data]));
    assert_eq!(code, 0, "{err}");
    let second: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_ne!(first["signing_key"], second["signing_key"]);

    let key_file = dir.path().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o077,
            0
        );
    }
    let before = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(before.lines().count(), 1);
    let (code, out, err) = run(bourse().args(["keys", "rotate-master", "--data-dir", data]));
    assert_eq!(code, 0, "{err}");
    let rotated: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    // Every signing key made so far (three) was re-encrypted under the new master key.
    assert_eq!(rotated["signing_keys_resealed"], 3, "{rotated}");
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(
        after.lines().count(),
        2,
        "the old key stays for blobs sealed meanwhile"
    );
    assert!(after.ends_with(&before));
    assert!(
        !out.contains(after.lines().next().unwrap().split(':').nth(1).unwrap()),
        "no key material printed"
    );
    // The server still starts and serves with the rotated keys.
    let s = serve(dir.path());
    drop(s);
}
