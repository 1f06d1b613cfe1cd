//! The one error type of the HTTP surface, rendered as RFC 9457 problem details.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::request_id;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Response extension naming the problem code, for the access log.
#[derive(Debug, Clone, Copy)]
pub struct ProblemCode(pub &'static str);

/// One field-level problem inside a validation error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON Pointer (RFC 6901) to the offending field; `""` is the whole document,
    /// `/query/limit` style pointers name query parameters.
    pub pointer: String,
    /// Stable machine code, e.g. `unknown_field`, `invalid_type`, `out_of_range`.
    pub code: String,
    /// Human readable explanation.
    pub message: String,
}

/// RFC 9457 problem details as sent on the wire.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// URI reference naming the problem type (`https://bourse.dev/problems/<code>`).
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the problem type; the same for every occurrence.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation of this occurrence; safe to show to the user.
    pub detail: String,
    /// Stable machine-readable code. Clients switch on this, never on text.
    pub code: String,
    /// The request id (also in the `X-Request-Id` header); quote it to support.
    pub request_id: String,
    /// Field-level problems (validation errors only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error a handler or middleware returns. Rendered as problem+json.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// A problem with the given status, stable code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// 400 `validation_failed` with field errors.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{} ({})", one.message, pointer_or_body(&one.pointer)),
            _ => "the request has invalid fields; see `errors`".to_owned(),
        };
        Self {
            errors,
            ..Self::new(StatusCode::BAD_REQUEST, "validation_failed", detail)
        }
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} was not found"),
        )
    }

    /// 500 `internal_error` with no detail about the cause.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred; quote the request id to support",
        )
    }

    /// 503 `service_unavailable`.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            detail,
        )
    }

    /// Attaches field-level problems.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// Adds a response header (e.g. `Allow`, `Retry-After`, `WWW-Authenticate`).
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    pub(crate) fn to_problem(&self) -> Problem {
        Problem {
            type_: format!("https://bourse.dev/problems/{}", self.code),
            title: title_for(self.status),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            request_id: request_id::current().unwrap_or_default(),
            errors: self.errors.clone(),
        }
    }
}

fn pointer_or_body(p: &str) -> &str {
    if p.is_empty() { "request body" } else { p }
}

fn title_for(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_owned()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match serde_json::to_vec(&self.to_problem()) {
            Ok(b) => b,
            // Serialising plain strings and integers cannot fail; keep a fixed fallback anyway.
            Err(_) => {
                br#"{"type":"about:blank","title":"Error","status":500,"code":"internal_error"}"#
                    .to_vec()
            }
        };
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (k, v) in self.headers {
            h.append(k, v);
        }
        resp.extensions_mut().insert(ProblemCode(self.code));
        resp
    }
}

impl From<bourse_store::StoreError> for ApiError {
    fn from(e: bourse_store::StoreError) -> Self {
        use bourse_store::StoreError as E;
        match e {
            E::Unavailable | E::NotMigrated => Self::unavailable("the database is unavailable")
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("5")),
            E::Conflict => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "the resource already exists",
            ),
            E::BadUrl(_) | E::Internal => Self::internal(),
        }
    }
}

/// The stable code used when a non-problem error response (from a framework layer) is
/// normalised into problem+json.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        411 => "length_required",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        429 => "rate_limited",
        431 => "headers_too_large",
        503 => "service_unavailable",
        504 => "timeout",
        s if s >= 500 => "internal_error",
        _ => "bad_request",
    }
}

/// A fixed human explanation for a status normalised by [`code_for_status`].
pub fn detail_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "no such route",
        405 => "the method is not allowed on this route; see the Allow header",
        408 => "the request took too long to arrive",
        413 => "the request body is larger than the limit",
        415 => "the request body must be application/json",
        503 => "the service is temporarily unavailable",
        504 => "the request took too long to process",
        s if s >= 500 => "an internal error occurred; quote the request id to support",
        _ => "the request could not be processed",
    }
}
