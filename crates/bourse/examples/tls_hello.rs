//! The baseline of the HTTP benchmark: the smallest useful rustls + hyper server,
//! answering every request with a fixed 13-byte body. Same TLS configuration as bourse
//! (TLS 1.3 only, aws-lc-rs, ALPN h2/http1.1, the same certificate), no middleware, no
//! routing, no database. `scripts/bench-http.sh` runs it beside `bourse serve`.
//!
//! Usage: tls_hello <addr> <data_dir>

use std::convert::Infallible;

/// mimalloc: a server allocating small, short-lived buffers per request runs measurably
/// faster on it than on glibc malloc (see docs/benchmarks.md). The hello baseline of the
/// HTTP benchmark uses it too, so the comparison stays fair.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8444".into());
    let data_dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "data".into()));
    bourse::tls::install_crypto_provider();
    let tls = bourse::tls::load(None, None, &data_dir)?;
    let acceptor = TlsAcceptor::from(tls.config);
    let listener = TcpListener::bind(&addr).await?;
    println!("tls_hello listening on {}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper::service::service_fn(|_req| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                    b"hello, world\n",
                ))))
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}
