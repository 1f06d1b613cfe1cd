//! `/v1/auth/*`: accounts, sessions, tokens, two-factor, step-up; and the JWKS.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bourse_identity::{ClientInfo, LoginOutcome, Tokens};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{AuthUser, ClientAddr, SteppedUp};
use crate::error::{ApiError, Problem};
use crate::json::ApiJson;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub(crate) fn client_info(headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> ClientInfo {
    ClientInfo {
        ip: peer.map(|p| p.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().filter(|c| !c.is_control()).take(256).collect()),
    }
}

/// Names the client's device in the audit record: a 64-bit fingerprint of its user
/// agent (hex), never the text itself. Surveillance compares it with the devices the
/// user signed in from before (`new_device`).
pub(crate) fn device_detail(client: &ClientInfo) {
    if let Some(ua) = client.user_agent.as_deref() {
        use sha2::Digest;
        let d = sha2::Sha256::digest(ua.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        crate::audit::detail("device", format!("{:016x}", u64::from_be_bytes(first)));
    }
}

/// Email and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Email address (case-insensitive).
    #[schema(example = "trader@example.com", max_length = 254)]
    pub email: String,
    /// Password: 12 to 128 characters, not a common password.
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 128)]
    pub password: SecretString,
}

/// A new account.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// The user id.
    pub user_id: String,
    /// The normalised email.
    pub email: String,
}

/// Tokens after a login, second step or refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// JWT access token (`typ: at+jwt`, EdDSA), at most 10 minutes.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque refresh token; rotated on every use, and a reused one revokes the session.
    pub refresh_token: String,
    /// Granted scopes.
    #[schema(example = "read trade wallet")]
    pub scope: String,
    /// The session id (see `GET /v1/auth/sessions`).
    pub session_id: String,
}

impl From<Tokens> for TokenResponse {
    fn from(t: Tokens) -> Self {
        Self {
            access_token: t.access_token.expose_secret().to_owned(),
            token_type: "Bearer",
            expires_in: t.expires_in,
            refresh_token: t.refresh_token.expose_secret().to_owned(),
            scope: t.scope,
            session_id: t.session_id,
        }
    }
}

/// The first login step's answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LoginResponse {
    /// No second factor is enabled: here are the tokens.
    Authenticated(TokenResponse),
    /// Two-factor is on: send a code with `challenge` to `POST /v1/auth/login/mfa`.
    MfaRequired {
        /// Single-use challenge for the second step.
        challenge: String,
        /// Seconds the challenge stays valid.
        expires_in: i64,
    },
}

/// The second login step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaLogin {
    /// The challenge from the first step.
    #[schema(value_type = String, max_length = 128)]
    pub challenge: SecretString,
    /// A 6-digit TOTP code or a recovery code.
    #[schema(value_type = String, example = "123456", max_length = 64)]
    pub code: SecretString,
}

/// A refresh request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The current refresh token.
    #[schema(value_type = String, max_length = 128)]
    pub refresh_token: SecretString,
}

/// A second-factor code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// A 6-digit TOTP code or a recovery code.
    #[schema(value_type = String, example = "123456", max_length = 64)]
    pub code: SecretString,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    #[schema(value_type = String, format = Password, max_length = 128)]
    pub current_password: SecretString,
    /// The new password (same policy as registration).
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 128)]
    pub new_password: SecretString,
}

/// A fresh access token after step-up.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepUpResponse {
    /// JWT access token with `acr=mfa` and a fresh `auth_time`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// A TOTP enrolment, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret for manual entry.
    pub secret: String,
    /// `otpauth://totp/…` URI for authenticator apps.
    pub otpauth_uri: String,
    /// The URI as a QR code (SVG).
    pub qr_svg: String,
}

/// Recovery codes, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes for signing in without the authenticator.
    pub recovery_codes: Vec<String>,
}

/// A session of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Session id.
    pub id: String,
    /// Whether this is the session of the calling token.
    pub current: bool,
    /// Started at (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last token refresh (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_used_at: OffsetDateTime,
    /// Revoked at, if revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
    /// `pwd` or `mfa`.
    pub acr: String,
    /// Client IP at login.
    pub client_ip: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
}

/// Sessions of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Active first, newest first.
    pub data: Vec<SessionView>,
}

/// Who the token says the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// User id.
    pub user_id: String,
    /// Session id.
    pub session_id: String,
    /// Granted scopes.
    pub scope: String,
    /// `pwd` or `mfa`.
    pub acr: String,
    /// Last interactive authentication, unix seconds.
    pub auth_time: i64,
}

/// Create an account.
#[utoipa::path(
    post, path = "/v1/auth/register", tag = "auth", operation_id = "register", security(()),
    request_body(content = Credentials, content_type = "application/json"),
    responses(
        (status = 201, description = "The account was created.", body = Registered),
        (status = 400, description = "Invalid email or a password that breaks the policy (`validation_failed`), or malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An account with this email exists (`email_taken`).", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the limit (`payload_too_large`).", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON (`unsupported_media_type`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    crate::audit::action(
        "auth.register",
        serde_json::json!({ "email": crate::audit::short(&body.email) }),
    );
    let user = state
        .identity
        .register(&body.email, body.password, now())
        .await?;
    tracing::info!(user_id = %user.id, "account registered");
    crate::audit::detail("user_id", user.id.clone());
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            user_id: user.id,
            email: user.email,
        }),
    )
        .into_response())
}

/// Names the user and session of freshly issued tokens in the audit record.
pub(crate) fn audit_signed_in(state: &AppState, t: &bourse_identity::Tokens) {
    if let Ok(c) = state
        .identity
        .verify_access_token(t.access_token.expose_secret(), now())
    {
        crate::audit::set_user(&c.sub, &c.sid, c.client_id.as_deref());
        crate::audit::detail("user_id", c.sub.clone());
    }
}

/// Log in with email and password.
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "auth", operation_id = "login", security(()),
    request_body(content = Credentials, content_type = "application/json"),
    responses(
        (status = 200, description = "Tokens (`status: authenticated`), or `status: mfa_required` with a challenge for the second step.", body = LoginResponse),
        (status = 400, description = "Malformed JSON or fields (`malformed_json`, `validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong email or password (`invalid_credentials`); the same answer, after the same work, for an unknown email.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is frozen (`account_frozen`).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins for this account or address (`login_throttled`); see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddr(peer): ClientAddr,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<LoginResponse>, ApiError> {
    crate::audit::action(
        "auth.login",
        serde_json::json!({ "email": crate::audit::short(&body.email), "result": "failure" }),
    );
    let client = client_info(&headers, peer);
    device_detail(&client);
    let outcome = match state
        .identity
        .login(&body.email, body.password, &client, now())
        .await
    {
        Ok(o) => o,
        Err(e) => {
            // The account's owner sees failed attempts on it in their activity.
            if let Ok(Some(u)) = state.store.find_user_by_email(&body.email).await {
                crate::audit::subject(&u.id);
            }
            return Err(e.into());
        }
    };
    match &outcome {
        LoginOutcome::Tokens(t) => {
            audit_signed_in(&state, t);
            crate::audit::detail("result", "success");
        }
        LoginOutcome::MfaRequired { .. } => {
            if let Ok(Some(u)) = state.store.find_user_by_email(&body.email).await {
                crate::audit::detail("user_id", u.id);
            }
            crate::audit::detail("result", "mfa_required");
        }
    }
    Ok(Json(match outcome {
        LoginOutcome::Tokens(t) => LoginResponse::Authenticated(t.into()),
        LoginOutcome::MfaRequired {
            challenge,
            expires_in,
        } => LoginResponse::MfaRequired {
            challenge: challenge.expose_secret().to_owned(),
            expires_in,
        },
    }))
}

/// Second login step: a TOTP or recovery code.
#[utoipa::path(
    post, path = "/v1/auth/login/mfa", tag = "auth", operation_id = "loginMfa", security(()),
    request_body(content = MfaLogin, content_type = "application/json"),
    responses(
        (status = 200, description = "Tokens with `acr=mfa`.", body = TokenResponse),
        (status = 400, description = "Malformed JSON or fields.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown, used or expired challenge (`invalid_challenge`), wrong code (`invalid_code`), or a code already used (`code_replayed`).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Two-factor locked after 5 wrong codes (`mfa_locked`); see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login_mfa(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddr(peer): ClientAddr,
    ApiJson(body): ApiJson<MfaLogin>,
) -> Result<Json<TokenResponse>, ApiError> {
    crate::audit::action("auth.login_mfa", serde_json::json!({ "result": "failure" }));
    let client = client_info(&headers, peer);
    device_detail(&client);
    let tokens = match state
        .identity
        .login_mfa(
            body.challenge.expose_secret(),
            body.code.expose_secret(),
            &client,
            now(),
        )
        .await
    {
        Ok(t) => t,
        Err(e) => {
            if let Some(user_id) = state
                .identity
                .mfa_challenge_user(body.challenge.expose_secret(), now())
                .await
            {
                crate::audit::subject(&user_id);
            }
            return Err(e.into());
        }
    };
    audit_signed_in(&state, &tokens);
    crate::audit::detail("result", "success");
    Ok(Json(tokens.into()))
}

/// Exchange a refresh token for new tokens (the refresh token rotates).
#[utoipa::path(
    post, path = "/v1/auth/refresh", tag = "auth", operation_id = "refresh", security(()),
    request_body(content = RefreshRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "New tokens; the presented refresh token is now used up.", body = TokenResponse),
        (status = 400, description = "Unknown, expired, revoked or reused refresh token (`invalid_grant`); a reused one also revokes its session.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is frozen (`account_frozen`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let tokens = state
        .identity
        .refresh_tokens(body.refresh_token.expose_secret(), now())
        .await?;
    Ok(Json(tokens.into()))
}

/// Log out: revoke the calling session and all its tokens.
#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "auth", operation_id = "logout",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session is revoked; its access and refresh tokens stop working."),
        (status = 401, description = "Missing or invalid access token (`unauthorized`, `invalid_token`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode, ApiError> {
    crate::audit::action(
        "auth.logout",
        serde_json::json!({ "session_id": user.claims.sid }),
    );
    state
        .identity
        .revoke_session(user.user_id(), &user.claims.sid, now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the access token says the caller is (no database read).
#[utoipa::path(
    get, path = "/v1/auth/me", tag = "auth", operation_id = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller.", body = Me),
        (status = 401, description = "Missing or invalid access token (`unauthorized`, `invalid_token`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn me(user: AuthUser) -> Json<Me> {
    let c = &user.claims;
    Json(Me {
        user_id: c.sub.clone(),
        session_id: c.sid.clone(),
        scope: c.scope.clone(),
        acr: c.acr.clone(),
        auth_time: c.auth_time,
    })
}

/// The caller's sessions.
#[utoipa::path(
    get, path = "/v1/auth/sessions", tag = "auth", operation_id = "listSessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Sessions, active first.", body = SessionList),
        (status = 401, description = "Missing or invalid access token.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<SessionList>, ApiError> {
    let list = state.identity.sessions(user.user_id()).await?;
    Ok(Json(SessionList {
        data: list
            .into_iter()
            .map(|s| SessionView {
                current: s.id == user.claims.sid,
                id: s.id,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                revoked_at: s.revoked_at,
                acr: s.acr,
                client_ip: s.client_ip,
                user_agent: s.user_agent,
            })
            .collect(),
    }))
}

/// Revoke a session. Revoking another session than the calling one is sensitive.
#[utoipa::path(
    delete, path = "/v1/auth/sessions/{id}", tag = "auth", operation_id = "revokeSession",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id.", max_length = 64)),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = "Malformed id (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token; or, for another session, no fresh second factor (`insufficient_user_authentication`, with an RFC 9470 `WWW-Authenticate` challenge: `acr_values=\"mfa\", max_age=300`).", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Two-factor is not enabled, so sensitive actions are refused (`mfa_enrollment_required`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session of the caller (`not_found`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_session(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    crate::audit::action(
        "auth.session_revoke",
        serde_json::json!({ "session_id": crate::audit::short(&id) }),
    );
    super::check_path_id(&id)?;
    let user = if id == user.claims.sid {
        user
    } else {
        // Revoking another session is sensitive.
        SteppedUp::check(user, &state).await?.0
    };
    if state
        .identity
        .revoke_session(user.user_id(), &id, now())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("session"))
    }
}

/// Change the password (sensitive). Every other session is revoked.
#[utoipa::path(
    post, path = "/v1/auth/password", tag = "auth", operation_id = "changePassword",
    security(("bearer" = [])),
    request_body(content = PasswordChange, content_type = "application/json"),
    responses(
        (status = 204, description = "Changed; other sessions are revoked."),
        (status = 400, description = "The new password breaks the policy (`validation_failed`), or malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No fresh second factor (`insufficient_user_authentication`, RFC 9470 challenge), wrong current password (`invalid_credentials`), or an invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Two-factor is not enabled (`mfa_enrollment_required`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    SteppedUp(user): SteppedUp,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    crate::audit::action("auth.password_change", serde_json::json!({}));
    state
        .identity
        .change_password(
            &user.claims,
            body.current_password,
            body.new_password,
            now(),
        )
        .await?;
    tracing::info!(user_id = %user.user_id(), "password changed");
    Ok(StatusCode::NO_CONTENT)
}

/// Start TOTP enrolment: a secret, an `otpauth://` URI and a QR code.
#[utoipa::path(
    post, path = "/v1/auth/2fa/totp", tag = "auth", operation_id = "enrolTotp",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Pending enrolment; confirm it with a code.", body = TotpEnrolment),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Two-factor is already enabled (`mfa_already_enabled`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn enrol_totp(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Response, ApiError> {
    crate::audit::action("auth.2fa_enrol", serde_json::json!({ "method": "totp" }));
    let e = state.identity.enrol_totp(user.user_id(), now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(TotpEnrolment {
            secret: e.secret.expose_secret().to_owned(),
            otpauth_uri: e.otpauth_uri.expose_secret().to_owned(),
            qr_svg: e.qr_svg.expose_secret().to_owned(),
        }),
    )
        .into_response())
}

/// Confirm TOTP enrolment with a code; returns recovery codes once.
#[utoipa::path(
    post, path = "/v1/auth/2fa/totp/confirm", tag = "auth", operation_id = "confirmTotp",
    security(("bearer" = [])),
    request_body(content = CodeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Two-factor is on; ten single-use recovery codes, shown once.", body = RecoveryCodes),
        (status = 400, description = "Malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong code (`invalid_code`) or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing pending (`mfa_not_pending`) or already on (`mfa_already_enabled`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn confirm_totp(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    crate::audit::action("auth.2fa_confirm", serde_json::json!({ "method": "totp" }));
    let codes = state
        .identity
        .confirm_totp(user.user_id(), body.code.expose_secret(), now())
        .await?;
    tracing::info!(user_id = %user.user_id(), "two-factor enabled");
    Ok(Json(RecoveryCodes {
        recovery_codes: codes.iter().map(|c| c.expose_secret().to_owned()).collect(),
    }))
}

/// Turn TOTP off (sensitive).
#[utoipa::path(
    delete, path = "/v1/auth/2fa/totp", tag = "auth", operation_id = "disableTotp",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Two-factor is off; recovery codes are deleted."),
        (status = 401, description = "No fresh second factor (`insufficient_user_authentication`, RFC 9470 challenge) or an invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Two-factor is not enabled (`mfa_enrollment_required`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn disable_totp(
    State(state): State<AppState>,
    SteppedUp(user): SteppedUp,
) -> Result<StatusCode, ApiError> {
    crate::audit::action("auth.2fa_disable", serde_json::json!({ "method": "totp" }));
    state.identity.disable_totp(user.user_id(), now()).await?;
    tracing::info!(user_id = %user.user_id(), "two-factor disabled");
    Ok(StatusCode::NO_CONTENT)
}

/// Step-up: prove a second factor now, get a token with `acr=mfa`.
#[utoipa::path(
    post, path = "/v1/auth/step-up", tag = "auth", operation_id = "stepUp",
    security(("bearer" = [])),
    request_body(content = CodeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A fresh access token for sensitive actions (valid for them for 5 minutes).", body = StepUpResponse),
        (status = 400, description = "Malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong code (`invalid_code`), replayed code (`code_replayed`), or an invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Two-factor is not enabled (`mfa_enrollment_required`).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Two-factor locked (`mfa_locked`); see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn step_up(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<Json<StepUpResponse>, ApiError> {
    crate::audit::action("auth.step_up", serde_json::json!({}));
    let (token, expires_in) = state
        .identity
        .step_up(&user.claims, body.code.expose_secret(), now())
        .await?;
    Ok(Json(StepUpResponse {
        access_token: token.expose_secret().to_owned(),
        token_type: "Bearer",
        expires_in,
    }))
}

/// The public keys that sign access tokens (RFC 7517).
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "auth", operation_id = "jwks", security(()),
    responses((status = 200, description = "JWK Set of the Ed25519 keys that may have signed a live access token.", body = Object))
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut resp = Json(state.identity.jwks()).into_response();
    // Public keys may be cached briefly; rotation keeps old keys published for 10 minutes.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("public, max-age=60"),
    );
    resp
}
