//! `ApiQuery<T>`: strict query-string parsing. Unknown parameters are refused and every
//! failure names the parameter as `/query/<name>`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::{ApiError, FieldError};

/// Longest query string accepted, in bytes.
pub const MAX_QUERY: usize = 2048;

/// Parsed query parameters.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Parses a raw query string into `T`. Public so fuzz targets can drive it.
pub fn parse<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    if query.len() > MAX_QUERY {
        return Err(ApiError::validation(vec![FieldError {
            pointer: "/query".into(),
            code: "too_long".into(),
            message: format!("the query string is longer than {MAX_QUERY} bytes"),
        }]));
    }
    let pairs = form_urlencoded::parse(query.as_bytes());
    // Duplicate parameters are ambiguous (which one wins differs between proxies): refuse.
    let mut seen = std::collections::HashSet::new();
    for (k, _) in pairs {
        if !seen.insert(k.clone()) {
            return Err(ApiError::validation(vec![FieldError {
                pointer: format!("/query/{k}"),
                code: "duplicate_key".into(),
                message: format!("query parameter `{k}` is given more than once"),
            }]));
        }
    }
    let de = serde_urlencoded::Deserializer::new(pairs);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut name = e.path().to_string();
        let msg = e.inner().to_string();
        let code = if let Some(rest) = msg.strip_prefix("unknown field `") {
            name = rest.split('`').next().unwrap_or_default().to_owned();
            "unknown_field"
        } else if let Some(rest) = msg.strip_prefix("missing field `") {
            name = rest.split('`').next().unwrap_or_default().to_owned();
            "missing_field"
        } else {
            "invalid_value"
        };
        let name = if name == "." { String::new() } else { name };
        ApiError::validation(vec![FieldError {
            pointer: format!("/query/{name}"),
            code: code.into(),
            message: msg,
        }])
    })
}
