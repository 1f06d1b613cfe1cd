//! TLS 1.3 only, ALPN, plain HTTP refused.

use std::sync::Arc;

use bourse_testkit::TestApp;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

async fn handshake(
    app: &TestApp,
    cfg: Arc<rustls::ClientConfig>,
    addr: std::net::SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let _ = app;
    TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

#[tokio::test]
async fn tls_12_is_refused_on_both_listeners() {
    let app = TestApp::spawn().await;
    for addr in [app.running().public_addr, app.running().admin_addr] {
        let cfg = app.tls_client_config(&[&rustls::version::TLS12], &[b"http/1.1"]);
        let err = handshake(&app, cfg, addr)
            .await
            .expect_err("TLS 1.2 must fail");
        assert!(
            err.to_string().to_lowercase().contains("protocol")
                || err.to_string().to_lowercase().contains("alert"),
            "{err}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn tls_13_negotiates_h2_and_http11_by_alpn() {
    let app = TestApp::spawn().await;
    let addr = app.running().public_addr;
    for (alpn, want) in [
        (&b"h2"[..], &b"h2"[..]),
        (&b"http/1.1"[..], &b"http/1.1"[..]),
    ] {
        let cfg = app.tls_client_config(&[&rustls::version::TLS13], &[alpn]);
        let tls = handshake(&app, cfg, addr).await.expect("TLS 1.3 works");
        let (_, conn) = tls.get_ref();
        assert_eq!(
            conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        assert_eq!(conn.alpn_protocol(), Some(want));
    }
    // And through a real HTTP client, both versions answer.
    let h2 = bourse_testkit::client_for(&app.running().cert_pem, Some(true));
    let r = h2.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn plain_http_gets_no_answer_but_a_closed_connection() {
    let app = TestApp::spawn().await;
    let mut tcp = TcpStream::connect(app.running().public_addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut buf))
        .await
        .expect("server closes promptly");
    // Either a clean EOF or a reset; never an HTTP answer.
    if read.is_ok() {
        assert!(
            !buf.starts_with(b"HTTP/"),
            "got an HTTP answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn oversized_header_block_is_refused() {
    let app = TestApp::spawn().await;
    let big = "a".repeat(64 * 1024);
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-filler", big)
        .send()
        .await;
    match r {
        Ok(resp) => assert_eq!(resp.status().as_u16(), 431),
        // hyper may also close the connection outright after an oversized head.
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    // A normal client still gets answers.
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let app = bourse_testkit::TestApp::spawn_with(bourse_testkit::Db::Sqlite, |c| {
        c.http.max_connections = 2;
    })
    .await
    .unwrap();
    let addr = app.running().public_addr;
    let cfg = app.tls_client_config(&[&rustls::version::TLS13], &[b"http/1.1"]);
    let a = handshake(&app, cfg.clone(), addr)
        .await
        .expect("first fits");
    let b = handshake(&app, cfg.clone(), addr)
        .await
        .expect("second fits");
    // Give the server a moment to count both.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        handshake(&app, cfg.clone(), addr).await.is_err(),
        "third is closed"
    );
    drop(a);
    drop(b);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        handshake(&app, cfg, addr).await.is_ok(),
        "slots are returned"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_client_trickling_headers_is_cut_off_while_others_are_served() {
    let app = bourse_testkit::TestApp::spawn_with(bourse_testkit::Db::Sqlite, |c| {
        c.http.header_read_timeout_secs = 1;
    })
    .await
    .unwrap();
    let addr = app.running().public_addr;
    let cfg = app.tls_client_config(&[&rustls::version::TLS13], &[b"http/1.1"]);
    let mut slow = handshake(&app, cfg, addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    // Meanwhile a normal client is answered.
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        slow.read_to_end(&mut buf),
    )
    .await
    .expect("the slow client is cut off");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "{waited:?}"
    );
    assert!(waited < std::time::Duration::from_secs(4), "{waited:?}");
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    app.shutdown().await;
}
