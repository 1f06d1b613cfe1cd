//! Admin API keys as extractor types: a handler that takes `AdminCaller<InstrumentsWrite>`
//! cannot run without a live key holding that scope, so a forgotten check does not compile.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use bourse_auth::admin_key::{self, AdminScope};

use crate::AppState;
use crate::error::ApiError;

/// A scope required by a route, as a type.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope.
    const SCOPE: AdminScope;
}

/// Marker: `instruments:write`.
#[derive(Debug)]
pub struct InstrumentsWrite;
impl RequiredScope for InstrumentsWrite {
    const SCOPE: AdminScope = AdminScope::InstrumentsWrite;
}

/// An authenticated admin key holding scope `S`.
#[derive(Debug)]
pub struct AdminCaller<S> {
    /// The key's id (for the audit trail).
    pub key_id: String,
    /// The key's name.
    pub name: String,
    _scope: PhantomData<S>,
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a valid admin API key is required (Authorization: Bearer bak_…)",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"bourse-admin\""),
    )
}

impl<S: RequiredScope> FromRequestParts<AppState> for AdminCaller<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthorized)?;
        let hash = admin_key::hash_presented(presented.trim()).ok_or_else(unauthorized)?;
        let key = state
            .store
            .find_admin_key(&hash)
            .await?
            .filter(|k| k.revoked_at.is_none() && admin_key::hashes_equal(&k.key_hash, &hash))
            .ok_or_else(unauthorized)?;
        if !key.scopes.iter().any(|s| s == S::SCOPE.as_str()) {
            let challenge = format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                S::SCOPE
            );
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("this admin key lacks the `{}` scope", S::SCOPE),
            )
            .with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer")),
            ));
        }
        Ok(Self {
            key_id: key.id,
            name: key.name,
            _scope: PhantomData,
        })
    }
}
