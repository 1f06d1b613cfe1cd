//! Request ids: a sane client `X-Request-Id` is kept, otherwise a UUIDv7 is made.
//!
//! The id lives in a task-local for the whole request so that any error rendered
//! anywhere below (handlers, extractors, framework rejections, panics) can name it
//! without threading it through every signature.

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Header carrying the request id both ways.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The current request's id, when called inside a request.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `fut` (e.g. a task spawned by a handler) with the current request's id, so that
/// problems it renders name the request.
pub async fn propagate<F: std::future::Future>(id: Option<String>, fut: F) -> F::Output {
    match id {
        Some(id) => REQUEST_ID.scope(id, fut).await,
        None => fut.await,
    }
}

/// A client id is kept only when it is short and made of safe characters, so that it
/// can be logged and echoed without encoding.
fn is_sane(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The outermost gateway middleware, one layer for what would otherwise be three (each
/// `from_fn` layer clones the inner service and boxes a future per request): assigns the
/// request id, runs the request inside its task-local and tracing span, turns framework
/// errors into problem+json, adds the security headers, echoes the id and writes one
/// access-log line and one audit record (`crate::audit`; the record is queued before the
/// response leaves, and even a request dropped midway is recorded).
pub async fn layer(State(tap): State<crate::audit::Tap>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| is_sane(s))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let method = req.method().clone();
    // The route template, never the raw path: raw paths and query strings can carry
    // identifiers or secrets that must not reach the log.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let source_ip = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let audit =
        crate::audit::Pending::start(&tap, &id, method.as_str(), route.as_deref(), source_ip);
    let span = tracing::info_span!("request", request_id = %id, method = %method);
    let started = std::time::Instant::now();
    let run = async move { crate::middleware::problem_json(next.run(req).await) }
        .instrument(span.clone());
    let mut resp = match &audit {
        Some(a) => REQUEST_ID.scope(id.clone(), a.scope(run)).await,
        None => REQUEST_ID.scope(id.clone(), run).await,
    };
    crate::middleware::security_headers(&mut resp);
    let status = resp.status().as_u16();
    let code = resp
        .extensions()
        .get::<crate::error::ProblemCode>()
        .map(|c| c.0);
    span.in_scope(|| {
        tracing::info!(
            route = route.as_deref().unwrap_or("(unmatched)"),
            status,
            latency_us = started.elapsed().as_micros() as u64,
            problem = code,
            "request finished"
        );
    });
    if let Some(a) = audit {
        a.finish(status, code).await;
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::is_sane;

    #[test]
    fn sanity() {
        assert!(is_sane("abc-123_x.y:z"));
        assert!(!is_sane(""));
        assert!(!is_sane(&"a".repeat(65)));
        assert!(!is_sane("a b"));
        assert!(!is_sane("<script>"));
        assert!(!is_sane("a\nb"));
    }
}
