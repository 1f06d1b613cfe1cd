//! Gateway middleware that is ours: security headers, problem+json for every error the
//! framework produces, and the panic handler. Standard pieces (timeouts, body limits,
//! concurrency) come from `tower-http`/`tower` and are composed in [`crate::router`].

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, PROBLEM_JSON, code_for_status, detail_for_status};

/// CSP for HTML pages (Swagger UI): only our own scripts, no framing.
pub const HTML_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'";
/// CSP for JSON responses: nothing may load, nothing may frame (OWASP REST guidance).
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds the security headers every response carries.
pub fn security_headers(resp: &mut Response) {
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let h = resp.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=63072000; includeSubDomains"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if is_html {
        // Legacy framing protection for browsers without CSP `frame-ancestors`; JSON is
        // not rendered in frames and carries `frame-ancestors 'none'` anyway.
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    let csp = if is_html { HTML_CSP } else { API_CSP };
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Turns any error response that is not already problem+json (axum's 404 and 405,
/// tower-http's 413 and timeouts) into one, keeping headers such as `Allow`. Runs inside
/// the request-id scope so that the problem names the request.
pub fn problem_json(resp: Response) -> Response {
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return resp;
    }
    let mut err = ApiError::new(status, code_for_status(status), detail_for_status(status));
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        for v in resp.headers().get_all(&name) {
            err = err.with_header(name.clone(), v.clone());
        }
    }
    err.into_response()
}

/// Panic handler for `CatchPanicLayer`: a 500 with no detail. The panic payload is not
/// logged either (it may hold data); the panic hook logs the location only.
pub fn panic_response(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::internal().into_response()
}
