//! The HTTPS accept loop: TLS 1.3 handshake under a timeout, HTTP/1.1 or HTTP/2 by ALPN,
//! a bound on open connections, header- and body-read timeouts, HTTP/2 stream and reset
//! bounds, and graceful drain on shutdown.
//!
//! Written over hyper-util rather than `axum::serve` / axum-server because every one of
//! these bounds must hold before the application sees a byte.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::Service;

/// Transport bounds of one listener.
#[derive(Debug, Clone, Copy)]
pub struct TransportLimits {
    /// Time to complete the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time to send a complete header block; also the idle HTTP/1.1 keep-alive limit.
    pub header_read_timeout: Duration,
    /// Time, from the end of the header block, to send the whole request body.
    pub body_read_timeout: Duration,
    /// Open connections on this listener.
    pub max_connections: usize,
    /// Open connections from one peer address (0: no per-address bound).
    pub max_connections_per_ip: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// HTTP/2 streams reset by the client before being accepted (rapid reset bound).
    pub http2_max_pending_accept_reset_streams: usize,
    /// HTTP/2 streams reset by the server for client errors before GOAWAY.
    pub http2_max_local_error_reset_streams: usize,
    /// Largest header block (HTTP/1 buffer and HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Time in-flight requests get after shutdown starts.
    pub shutdown_grace: Duration,
}

/// Open connections per peer address, so that one address cannot take every slot.
#[derive(Debug, Clone)]
struct PerIp {
    max: usize,
    open: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place in [`PerIp`], given back when dropped.
struct IpSlot {
    ip: IpAddr,
    open: Option<Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>>,
}

impl PerIp {
    fn new(max: usize) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// A slot for `ip`, or `None` when it has `max` connections open already.
    fn try_open(&self, ip: IpAddr) -> Option<IpSlot> {
        if self.max == 0 {
            return Some(IpSlot { ip, open: None });
        }
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            open: Some(self.open.clone()),
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let Some(open) = self.open.take() else { return };
        let mut open = open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` flips to true, then stops accepting and
/// waits up to `shutdown_grace` for open connections to finish their requests.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: TransportLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = PerIp::new(limits.max_connections_per_ip);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(Some(limits.http2_max_pending_accept_reset_streams))
        .max_local_error_reset_streams(Some(limits.http2_max_local_error_reset_streams))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let builder = Arc::new(builder);

    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(ip_slot) = per_ip.try_open(peer.ip()) else {
            tracing::warn!(
                listener = name,
                peer = %peer.ip(),
                "per-address connection limit reached; closing new connection"
            );
            drop(stream);
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                listener = name,
                "connection limit reached; closing new connection"
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = (permit, ip_slot);
            let tls =
                match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    // Plain HTTP, TLS 1.2, or a slow handshake: close without a word.
                    Ok(Err(e)) => {
                        tracing::debug!(listener = name, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(listener = name, "TLS handshake timed out");
                        return;
                    }
                };
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let req = req.map(|body| DeadlineBody::new(body, limits.body_read_timeout));
                app.clone().call(req)
            });
            let conn = builder.serve_connection(TokioIo::new(tls), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(listener = name, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        listener = name,
        open = graceful.count(),
        "draining connections"
    );
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "grace period over; closing remaining connections"
        );
    }
}

/// A request body that must be complete within a deadline counted from the end of the
/// header block; after it the body yields [`bourse_api::json::BodyReadTimeout`], which the
/// JSON extractor answers with 408 `body_timeout`. This cuts off a client trickling its
/// body, which hyper's per-read timeouts would let through.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = hyper::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(bourse_api::json::BodyReadTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Resolves once shutdown is requested (or the sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Address a listener actually bound (useful with port 0).
pub fn local_addr(l: &TcpListener) -> std::io::Result<SocketAddr> {
    l.local_addr()
}
