//! Admin API keys as extractor types: a handler that takes `AdminCaller<InstrumentsWrite>`
//! cannot run without a live key holding that scope, so a forgotten check does not compile.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use bourse_auth::admin_key::{self, AdminScope};
use bourse_identity::admin_keys::{self, KeyRefusal};

use crate::AppState;
use crate::error::ApiError;

/// A scope required by a route, as a type.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope.
    const SCOPE: AdminScope;
}

macro_rules! scope_marker {
    ($name:ident, $scope:ident, $text:literal) => {
        #[doc = concat!("Marker: `", $text, "`.")]
        #[derive(Debug)]
        pub struct $name;
        impl RequiredScope for $name {
            const SCOPE: AdminScope = AdminScope::$scope;
        }
    };
}

scope_marker!(InstrumentsRead, InstrumentsRead, "instruments:read");
scope_marker!(InstrumentsWrite, InstrumentsWrite, "instruments:write");
scope_marker!(UsersRead, UsersRead, "users:read");
scope_marker!(UsersWrite, UsersWrite, "users:write");
scope_marker!(KeysAdmin, KeysAdmin, "keys:admin");
scope_marker!(DepositsWrite, DepositsWrite, "deposits:write");
scope_marker!(AuditRead, AuditRead, "audit:read");
scope_marker!(RiskRead, RiskRead, "risk:read");
scope_marker!(RiskWrite, RiskWrite, "risk:write");
scope_marker!(
    WithdrawalsApprove,
    WithdrawalsApprove,
    "withdrawals:approve"
);

/// An authenticated admin key holding scope `S`.
#[derive(Debug)]
pub struct AdminCaller<S> {
    /// The key's id (for the audit trail).
    pub key_id: String,
    /// The key's name.
    pub name: String,
    /// Every scope the key holds (a key may only grant these).
    pub scopes: Vec<AdminScope>,
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
        // Public access tokens (JWTs) are never admin credentials: hash_presented only
        // accepts the `bak_` format, so they fall through to 401 here.
        let hash = admin_key::hash_presented(presented.trim()).ok_or_else(unauthorized)?;
        let key = state
            .store
            .find_admin_key(&hash)
            .await?
            .filter(|k| admin_key::hashes_equal(&k.key_hash, &hash))
            .ok_or_else(unauthorized)?;
        // The key is known from here on, so even its refusals name it.
        crate::audit::set_admin_key(&key.id);
        let now = time::OffsetDateTime::now_utc();
        let client = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        match admin_keys::check_use(&key, client, now) {
            Ok(()) => {}
            Err(KeyRefusal::Invalid) => return Err(unauthorized()),
            Err(KeyRefusal::Expired) => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "key_expired",
                    "this admin API key has expired",
                )
                .with_header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"bourse-admin\", error=\"invalid_token\"",
                    ),
                ));
            }
            Err(KeyRefusal::AddressNotAllowed) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "address_not_allowed",
                    "this admin API key may not be used from this address",
                ));
            }
        }
        state.store.touch_admin_key(&key.id, now).await?;
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
            scopes: admin_keys::scopes_of(&key),
            key_id: key.id,
            name: key.name,
            _scope: PhantomData,
        })
    }
}
