//! Abuse resistance at the transport: each attack runs against a real server while a
//! well-behaved client (a [`Bystander`]) keeps asking `/healthz` on its own connection;
//! the attack must be cut off and every bystander request answered 200 in bounded time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bourse_testkit::{Db, TestApp};
use http::{Method, Request};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Slowest answer a bystander may get while an attack runs.
const BYSTANDER_MAX_LATENCY: Duration = Duration::from_secs(2);

/// A normal client asking `/healthz` every 50 ms until [`Bystander::finish`].
struct Bystander {
    seen: Arc<Mutex<Vec<(u16, Duration)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Bystander {
    fn start(client: reqwest::Client, url: String) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let started = Instant::now();
                let status = match client.get(&url).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                log.lock().unwrap().push((status, started.elapsed()));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { seen, task }
    }

    /// Lets the bystander run until it has at least `min_answers` answers (at most 10 s
    /// more), stops it, and asserts every answer was 200 and prompt.
    async fn finish(self, min_answers: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.seen.lock().unwrap().len() < min_answers && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.task.abort();
        let seen = self.seen.lock().unwrap().clone();
        assert!(
            seen.len() >= min_answers,
            "bystander got only {} answers: {seen:?}",
            seen.len()
        );
        for (status, latency) in &seen {
            assert_eq!(*status, 200, "bystander answers: {seen:?}");
            assert!(
                *latency < BYSTANDER_MAX_LATENCY,
                "bystander waited {latency:?}: {seen:?}"
            );
        }
    }
}

async fn tls(app: &TestApp, alpn: &[u8]) -> TlsStream<TcpStream> {
    let cfg = app.tls_client_config(&[&rustls::version::TLS13], &[alpn]);
    let tcp = TcpStream::connect(app.running().public_addr).await.unwrap();
    TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS 1.3 handshake")
}

/// One HTTP/1.1 response read off the wire: status, lower-cased head, body.
async fn read_response(stream: &mut (impl AsyncRead + Unpin)) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.expect("read response");
        assert!(
            n > 0,
            "connection closed before a full response head: {buf:?}"
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("content-length"));
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "connection closed inside the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (status, head, buf[head_end..head_end + len].to_vec())
}

fn assert_problem_body(head: &str, body: &[u8], status: u16, code: &str) {
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    let v: serde_json::Value = serde_json::from_slice(body).expect("problem body is JSON");
    assert_eq!(v["status"], status, "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["type"].as_str().unwrap().ends_with(code), "{v}");
    assert!(!v["request_id"].as_str().unwrap().is_empty(), "{v}");
}

async fn spawn(adjust: impl FnOnce(&mut bourse::config::Config)) -> TestApp {
    TestApp::spawn_with(Db::Sqlite, adjust)
        .await
        .expect("SQLite is always available")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_trickling_its_body_gets_408_while_others_are_served() {
    let app = spawn(|c| c.http.body_read_timeout_secs = 1).await;
    let bystander = Bystander::start(app.client.clone(), app.url("/healthz"));
    let mut slow = tls(&app, b"http/1.1").await;
    slow.write_all(
        b"POST /v1/auth/register HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (mut rd, mut wr) = tokio::io::split(slow);
    // One byte every 100 ms: each read is quick, the whole body never completes.
    let trickle = tokio::spawn(async move {
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(b" ").await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });
    let (status, head, body) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut rd))
        .await
        .expect("the slow body is answered");
    let waited = started.elapsed();
    assert_eq!(status, 408, "{head}");
    assert_problem_body(&head, &body, 408, "body_timeout");
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    trickle.abort();
    bystander.finish(10).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_http2_stream_trickling_its_body_gets_408() {
    let app = spawn(|c| c.http.body_read_timeout_secs = 1).await;
    let h2c = bourse_testkit::client_for(&app.running().cert_pem, Some(true));
    let bystander = Bystander::start(h2c, app.url("/healthz"));
    let (mut send, conn) = h2::client::handshake(tls(&app, b"h2").await)
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method(Method::POST)
        .uri(app.url("/v1/auth/register"))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let started = Instant::now();
    let (resp, mut body) = send.send_request(req, false).unwrap();
    body.send_data(bytes_of("{"), false).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), resp)
        .await
        .expect("the slow stream is answered")
        .expect("a response, not a reset");
    let waited = started.elapsed();
    assert_eq!(resp.status(), 408);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let mut data = resp.into_body();
    let mut got = Vec::new();
    while let Some(chunk) = data.data().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    let v: serde_json::Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(v["code"], "body_timeout", "{v}");
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    bystander.finish(10).await;
    app.shutdown().await;
}

fn bytes_of(s: &str) -> hyper::body::Bytes {
    hyper::body::Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_keep_alive_connection_is_closed_after_the_timeout() {
    let app = spawn(|c| c.http.header_read_timeout_secs = 1).await;
    let bystander = Bystander::start(app.client.clone(), app.url("/healthz"));
    let mut idle = tls(&app, b"http/1.1").await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (status, head, _) = read_response(&mut idle).await;
    assert_eq!(status, 200, "{head}");
    assert!(!head.contains("connection: close"), "kept alive: {head}");
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest))
        .await
        .expect("the idle connection is closed by the server");
    let waited = started.elapsed();
    // A clean close (or a reset); an idle connection gets no bytes, at most a 408 head.
    if read.is_ok() {
        let text = String::from_utf8_lossy(&rest);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    bystander.finish(10).await;
    app.shutdown().await;
}

/// HTTP/2 frame types and error codes used below (RFC 9113).
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const REFUSED_STREAM: u32 = 0x7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK string literal (no Huffman) with a 7-bit length prefix.
fn hpack_str(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 127);
    out.push(u8::try_from(s.len()).unwrap());
    out.extend_from_slice(s.as_bytes());
}

/// The header block of `POST /v1/auth/register` with a JSON content type, from the
/// HPACK static table (indexed `:method POST` and `:scheme https`, literals otherwise).
fn register_header_block() -> Vec<u8> {
    let mut b = vec![0x83, 0x87];
    b.push(0x04); // literal, name = static 4 (:path)
    hpack_str(&mut b, "/v1/auth/register");
    b.push(0x01); // literal, name = static 1 (:authority)
    hpack_str(&mut b, "localhost");
    b.extend_from_slice(&[0x0f, 0x10]); // literal, name = static 31 (content-type)
    hpack_str(&mut b, "application/json");
    b
}

/// Reads one frame: (type, flags, stream, payload).
async fn read_frame(r: &mut (impl AsyncRead + Unpin)) -> std::io::Result<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    r.read_exact(&mut head).await?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok((head[3], head[4], stream, payload))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http2_streams_beyond_the_limit_are_refused() {
    const LIMIT: u32 = 4;
    const OPENED: u32 = 12;
    let app = spawn(|c| {
        c.http.max_concurrent_streams = LIMIT;
        c.http.body_read_timeout_secs = 2;
    })
    .await;
    let h2c = bourse_testkit::client_for(&app.running().cert_pem, Some(true));
    let bystander = Bystander::start(h2c, app.url("/healthz"));
    // A conforming client (such as the h2 crate) never opens more streams than the
    // server's SETTINGS allow, so this one writes the frames itself: the preface, empty
    // SETTINGS, then OPENED requests in one flight, each leaving its body open so every
    // accepted stream stays open.
    let mut conn = tls(&app, b"h2").await;
    let mut flight = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    flight.extend(frame(SETTINGS, 0, 0, &[]));
    let block = register_header_block();
    for i in 0..OPENED {
        flight.extend(frame(HEADERS, 0x4, 2 * i + 1, &block)); // END_HEADERS only
    }
    conn.write_all(&flight).await.unwrap();
    conn.flush().await.unwrap();
    let (mut refused, mut answered) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(6);
    while refused.len() + answered.len() < OPENED as usize {
        let left = deadline.saturating_duration_since(Instant::now());
        let (kind, flags, stream, payload) = tokio::time::timeout(left, read_frame(&mut conn))
            .await
            .expect("every stream is answered or refused")
            .expect("the connection stays open");
        match kind {
            SETTINGS if flags & 0x1 == 0 => {
                conn.write_all(&frame(SETTINGS, 0x1, 0, &[])).await.unwrap();
            }
            RST_STREAM => {
                let code = u32::from_be_bytes(payload[..4].try_into().unwrap());
                if code == REFUSED_STREAM {
                    refused.push(stream);
                } else {
                    // NO_ERROR after a served response: the server stops reading a body
                    // it no longer needs (RFC 9113 §8.1).
                    assert_eq!(code, 0, "stream {stream}");
                    assert!(
                        answered.contains(&stream),
                        "stream {stream} reset unanswered"
                    );
                }
            }
            HEADERS => answered.push(stream),
            GOAWAY => panic!("GOAWAY: {payload:?}"),
            _ => {}
        }
    }
    answered.sort_unstable();
    refused.sort_unstable();
    // The first LIMIT streams are served (their bodies never came: a 408 each, after the
    // body timeout); every stream beyond the limit is refused at once.
    assert_eq!(answered, (0..LIMIT).map(|i| 2 * i + 1).collect::<Vec<_>>());
    assert_eq!(
        refused,
        (LIMIT..OPENED).map(|i| 2 * i + 1).collect::<Vec<_>>()
    );
    bystander.finish(10).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http2_rapid_reset_gets_goaway_enhance_your_calm() {
    let app = spawn(|c| c.http.http2_max_pending_accept_reset_streams = 10).await;
    let h2c = bourse_testkit::client_for(&app.running().cert_pem, Some(true));
    let bystander = Bystander::start(h2c, app.url("/healthz"));
    let (mut send, conn) = h2::client::handshake(tls(&app, b"h2").await)
        .await
        .expect("h2 handshake");
    let healthz = || {
        Request::builder()
            .uri(app.url("/healthz"))
            .body(())
            .unwrap()
    };
    // One honest request first, so SETTINGS are exchanged and acknowledged and the
    // client has nothing left to write once the server hangs up.
    let mut conn = Box::pin(conn);
    let (resp, _) = send.send_request(healthz(), true).unwrap();
    tokio::select! {
        ended = &mut conn => panic!("connection ended early: {ended:?}"),
        resp = resp => assert_eq!(resp.unwrap().status(), 200),
    }
    // With the connection not being driven, queue HEADERS immediately followed by
    // RST_STREAM(CANCEL) (dropping both handles of an unanswered stream resets it),
    // three times the bound, so they leave in one flight once it runs again.
    for _ in 0..30 {
        let (resp, body) = send.send_request(healthz(), true).unwrap();
        drop(resp);
        drop(body);
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the server ends the connection");
    let err = ended.expect_err("the connection ends with an error");
    assert!(err.is_go_away(), "{err}");
    assert!(err.is_remote(), "{err}");
    assert_eq!(err.reason(), Some(h2::Reason::ENHANCE_YOUR_CALM), "{err}");
    // A new connection from the same client is served.
    let (mut send, conn) = h2::client::handshake(tls(&app, b"h2").await)
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    let (resp, _) = send.send_request(healthz(), true).unwrap();
    assert_eq!(resp.await.unwrap().status(), 200);
    bystander.finish(10).await;
    app.shutdown().await;
}

/// A TLS 1.3 connection from the loopback address `from` (any 127.0.0.0/8 address is
/// this machine's, so tests can play several client hosts).
async fn tls_from(app: &TestApp, from: [u8; 4]) -> std::io::Result<TlsStream<TcpStream>> {
    let cfg = app.tls_client_config(&[&rustls::version::TLS13], &[b"http/1.1"]);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::from((from, 0)))?;
    let tcp = socket.connect(app.running().public_addr).await?;
    TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_address_cannot_take_every_connection() {
    let app = spawn(|c| c.http.max_connections_per_ip = 3).await;
    let bystander = Bystander::start(app.client.clone(), app.url("/healthz"));
    let mut held = Vec::new();
    for n in 0..3 {
        held.push(
            tls_from(&app, [127, 0, 0, 2])
                .await
                .unwrap_or_else(|e| panic!("connection {n} fits: {e}")),
        );
    }
    // Give the server a moment to count them.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..5 {
        assert!(
            tls_from(&app, [127, 0, 0, 2]).await.is_err(),
            "a fourth connection from the same address is closed at once"
        );
    }
    // Another address is not affected.
    let other = tls_from(&app, [127, 0, 0, 3])
        .await
        .expect("another address connects");
    // Closing one gives its place back.
    held.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = tls_from(&app, [127, 0, 0, 2])
        .await
        .expect("a freed place is used again");
    bystander.finish(10).await;
    drop((held, other, again));
    app.shutdown().await;
}
