//! Who is calling, as extractor types: a handler that takes `AuthUser` cannot run
//! without a valid bourse access token, and one that takes `SteppedUp` cannot run
//! without a fresh second factor (RFC 9470). Admin API keys are never accepted here.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use bourse_auth::jwt::AccessClaims;
use bourse_identity::{ACR_MFA, IdentityError};
use time::OffsetDateTime;

use crate::AppState;
use crate::error::ApiError;

/// Step-up freshness: `auth_time` must be at most this many seconds old.
pub const STEP_UP_MAX_AGE: i64 = 300;

/// The `WWW-Authenticate` challenge of a request without credentials.
fn bearer_challenge() -> HeaderValue {
    HeaderValue::from_static("Bearer realm=\"bourse\"")
}

/// 401 with the RFC 6750 challenge. `error_description` values are fixed strings.
pub fn invalid_token(description: &'static str) -> ApiError {
    let challenge = format!(
        "Bearer realm=\"bourse\", error=\"invalid_token\", error_description=\"{description}\""
    );
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", description).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&challenge).unwrap_or_else(|_| bearer_challenge()),
    )
}

/// An authenticated user (a verified bourse access token whose session is live).
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The verified claims.
    pub claims: Arc<AccessClaims>,
}

impl AuthUser {
    /// The user id.
    pub fn user_id(&self) -> &str {
        &self.claims.sub
    }
}

/// The raw bearer token of a request, if any.
fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(v) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| invalid_token("the Authorization header is malformed"))?;
    match v.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err(invalid_token(
            "the Authorization header must use the Bearer scheme",
        )),
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "an access token is required (Authorization: Bearer …)",
            )
            .with_header(header::WWW_AUTHENTICATE, bearer_challenge())
        })?;
        match state
            .identity
            .verify_access_token(token, OffsetDateTime::now_utc())
        {
            Ok(claims) => {
                crate::audit::set_user(&claims.sub, &claims.sid, claims.client_id.as_deref());
                Ok(Self { claims })
            }
            Err(IdentityError::Token(e)) => Err(invalid_token(e.description())),
            Err(IdentityError::SessionRevoked) => Err(invalid_token("the session was revoked")),
            Err(e) => Err(e.into()),
        }
    }
}

/// A scope a route needs, as a type.
pub trait UserScope: Send + Sync + 'static {
    /// The scope name in the token's `scope` claim.
    const NAME: &'static str;
}

/// `read`: account data.
#[derive(Debug)]
pub struct Read;
impl UserScope for Read {
    const NAME: &'static str = "read";
}

/// `trade`: orders.
#[derive(Debug)]
pub struct Trade;
impl UserScope for Trade {
    const NAME: &'static str = "trade";
}

/// `wallet`: funds and withdrawal addresses.
#[derive(Debug)]
pub struct Wallet;
impl UserScope for Wallet {
    const NAME: &'static str = "wallet";
}

/// An authenticated user whose token grants scope `S`.
#[derive(Debug, Clone)]
pub struct Scoped<S>(pub AuthUser, pub(crate) std::marker::PhantomData<S>);

impl<S: UserScope> Scoped<S> {
    /// Checks the scope of an already authenticated user.
    pub fn check(user: AuthUser) -> Result<Self, ApiError> {
        if user.claims.has_scope(S::NAME) {
            return Ok(Self(user, std::marker::PhantomData));
        }
        let challenge = format!(
            "Bearer realm=\"bourse\", error=\"insufficient_scope\", scope=\"{}\"",
            S::NAME
        );
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("the access token lacks the `{}` scope", S::NAME),
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&challenge).unwrap_or_else(|_| bearer_challenge()),
        ))
    }
}

impl<S: UserScope> FromRequestParts<AppState> for Scoped<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Self::check(AuthUser::from_request_parts(parts, state).await?)
    }
}

/// A sensitive action needing scope `S` and a fresh second factor.
#[derive(Debug, Clone)]
pub struct SteppedScoped<S>(pub AuthUser, pub(crate) std::marker::PhantomData<S>);

impl<S: UserScope> FromRequestParts<AppState> for SteppedScoped<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Scoped(user, _) = Scoped::<S>::from_request_parts(parts, state).await?;
        let SteppedUp(user) = SteppedUp::check(user, state).await?;
        Ok(Self(user, std::marker::PhantomData))
    }
}

/// An authenticated user who passed a second factor within the last
/// [`STEP_UP_MAX_AGE`] seconds: required by every sensitive action.
#[derive(Debug, Clone)]
pub struct SteppedUp(pub AuthUser);

/// The RFC 9470 challenge for a sensitive action without a fresh second factor.
pub fn step_up_required() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "insufficient_user_authentication",
        "this action needs a fresh second factor: POST /v1/auth/step-up with a TOTP or recovery code, then retry with the new token",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"bourse\", error=\"insufficient_user_authentication\", error_description=\"a fresh second factor is required\", acr_values=\"mfa\", max_age=300",
        ),
    )
}

impl SteppedUp {
    /// Checks that `user` passed a second factor recently enough for a sensitive action.
    pub async fn check(user: AuthUser, state: &AppState) -> Result<Self, ApiError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut fresh =
            user.claims.acr == ACR_MFA && now - user.claims.auth_time <= STEP_UP_MAX_AGE;
        // A risk alert asked for a second factor newer than itself (surveillance action
        // `step_up`): an older one, however recent, does not do.
        if fresh
            && let Some(since_us) = state
                .store
                .risk_restriction(user.user_id(), "step_up")
                .await?
            // Whole seconds, as `auth_time` has them: a second factor in the alert's
            // own second counts.
            && user.claims.auth_time < since_us.div_euclid(1_000_000)
        {
            fresh = false;
        }
        if fresh {
            return Ok(Self(user));
        }
        if !state.identity.has_mfa(user.user_id()).await? {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "mfa_enrollment_required",
                "sensitive actions need two-factor authentication: enrol at POST /v1/auth/2fa/totp",
            ));
        }
        Err(step_up_required())
    }
}

impl FromRequestParts<AppState> for SteppedUp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        Self::check(user, state).await
    }
}

/// The peer address of the connection (set by the accept loop).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        use IdentityError as E;
        let retry_after = |until: OffsetDateTime| {
            let secs = (until - OffsetDateTime::now_utc()).whole_seconds().max(1);
            HeaderValue::from_str(&secs.to_string()).unwrap_or(HeaderValue::from_static("60"))
        };
        match e {
            E::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                e.to_string(),
            ),
            E::Throttled { until } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "login_throttled",
                e.to_string(),
            )
            .with_header(header::RETRY_AFTER, retry_after(until)),
            E::InvalidEmail => ApiError::validation(vec![crate::FieldError {
                pointer: "/email".into(),
                code: "invalid_email".into(),
                message: e.to_string(),
            }]),
            E::EmailTaken => ApiError::new(StatusCode::CONFLICT, "email_taken", e.to_string()),
            E::WeakPassword(r) => ApiError::validation(vec![crate::FieldError {
                pointer: "/password".into(),
                code: r.code().into(),
                message: e.to_string(),
            }]),
            E::InvalidChallenge => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_challenge", e.to_string())
            }
            E::InvalidCode => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_code", e.to_string())
            }
            E::CodeReplayed => {
                ApiError::new(StatusCode::UNAUTHORIZED, "code_replayed", e.to_string())
            }
            E::MfaLocked { until } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "mfa_locked", e.to_string())
                    .with_header(header::RETRY_AFTER, retry_after(until))
            }
            E::MfaNotEnrolled => ApiError::new(
                StatusCode::FORBIDDEN,
                "mfa_enrollment_required",
                e.to_string(),
            ),
            E::MfaAlreadyEnabled => {
                ApiError::new(StatusCode::CONFLICT, "mfa_already_enabled", e.to_string())
            }
            E::MfaNotPending => {
                ApiError::new(StatusCode::CONFLICT, "mfa_not_pending", e.to_string())
            }
            E::InvalidGrant => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_grant", e.to_string())
            }
            E::AccountFrozen => {
                ApiError::new(StatusCode::FORBIDDEN, "account_frozen", e.to_string())
            }
            E::ProviderUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "oidc_provider_unavailable",
                e.to_string(),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("30")),
            E::OidcStateInvalid => {
                ApiError::new(StatusCode::BAD_REQUEST, "oidc_state_invalid", e.to_string())
            }
            E::OidcDenied => ApiError::new(StatusCode::FORBIDDEN, "oidc_denied", e.to_string()),
            E::ExternalLoginFailed => {
                ApiError::new(StatusCode::BAD_REQUEST, "oidc_login_failed", e.to_string())
            }
            E::IdTokenInvalid => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "oidc_id_token_invalid",
                e.to_string(),
            ),
            E::LastSignInMethod => {
                ApiError::new(StatusCode::CONFLICT, "last_sign_in_method", e.to_string())
            }
            E::SessionRevoked => invalid_token("the session was revoked"),
            E::Token(t) => invalid_token(t.description()),
            E::Store(s) => s.into(),
            E::Internal => ApiError::internal(),
        }
    }
}
