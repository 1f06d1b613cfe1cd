//! Admin: API keys and users.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bourse_engine::Meta;
use bourse_engine::core::{Command, RejectReason};
use bourse_identity::admin_keys::{self, KeyRequestError, NewKey};
use bourse_store::{AdminKeyRecord, UserRecord};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::admin::{AdminCaller, KeysAdmin, UsersRead, UsersWrite};
use crate::error::{ApiError, FieldError, Problem};
use crate::json::ApiJson;
use crate::query::ApiQuery;

/// A new admin key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Who or what the key is for.
    #[schema(example = "ops-oncall", max_length = 100)]
    pub name: String,
    /// Scopes to grant; the calling key must hold each, and `keys:admin` never combines
    /// with money scopes.
    #[schema(example = json!(["users:read"]))]
    pub scopes: Vec<String>,
    /// Expiry (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// Client networks allowed to use the key (CIDR); empty means any.
    #[serde(default)]
    #[schema(example = json!(["10.0.0.0/8"]))]
    pub allowed_cidrs: Vec<String>,
}

/// An admin key (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// Key id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Non-secret prefix of the key.
    pub hint: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Created at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// Revoked at.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
    /// Last use.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
    /// IP allowlist.
    pub allowed_cidrs: Vec<String>,
}

impl From<AdminKeyRecord> for KeyView {
    fn from(k: AdminKeyRecord) -> Self {
        Self {
            id: k.id,
            name: k.name,
            hint: k.hint,
            scopes: k.scopes,
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
            allowed_cidrs: k.allowed_cidrs,
        }
    }
}

/// A created key with its secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key's record.
    #[serde(flatten)]
    pub key: KeyView,
    /// The secret (`bak_…`); store it now, it is not shown again.
    pub secret: String,
}

/// Admin keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Oldest first.
    pub data: Vec<KeyView>,
}

/// List admin keys (scope `keys:admin`).
#[utoipa::path(
    get, path = "/admin/v1/keys", tag = "admin", operation_id = "listAdminKeys",
    security(("admin_key" = ["keys:admin"])),
    responses(
        (status = 200, description = "Every key, without secrets.", body = KeyList),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `keys:admin` (`insufficient_scope`) or the address is not allowed.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_keys(
    State(state): State<AppState>,
    _caller: AdminCaller<KeysAdmin>,
) -> Result<Json<KeyList>, ApiError> {
    let keys = state.store.list_admin_keys().await?;
    Ok(Json(KeyList {
        data: keys.into_iter().map(KeyView::from).collect(),
    }))
}

/// Create an admin key (scope `keys:admin`); the secret is returned once.
#[utoipa::path(
    post, path = "/admin/v1/keys", tag = "admin", operation_id = "createAdminKey",
    security(("admin_key" = ["keys:admin"])),
    request_body(content = CreateKey, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; `secret` is shown only now.", body = CreatedKey),
        (status = 400, description = "Unknown scope, bad CIDR, past expiry, bad name (`validation_failed`), or malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `keys:admin`, tries to grant a scope it lacks (`scope_not_held`), or combines `keys:admin` with money scopes (`segregation_of_duties`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    caller: AdminCaller<KeysAdmin>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<Response, ApiError> {
    crate::audit::action(
        "admin.key_create",
        serde_json::json!({ "name": crate::audit::short(&body.name), "scopes": body.scopes.iter().map(|s| crate::audit::short(s)).collect::<Vec<_>>() }),
    );
    let req = NewKey {
        name: body.name,
        scopes: body.scopes,
        expires_at: body.expires_at,
        allowed_cidrs: body.allowed_cidrs,
    };
    let (record, secret) = admin_keys::create(
        &state.store,
        &req,
        Some(&caller.scopes),
        OffsetDateTime::now_utc(),
    )
    .await
    .map_err(key_error)?;
    tracing::info!(admin_key = %caller.key_id, new_key = %record.id, "admin key created");
    crate::audit::detail("key_id", record.id.clone());
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key: record.into(),
            secret: secret.expose_secret().to_owned(),
        }),
    )
        .into_response())
}

fn key_error(e: KeyRequestError) -> ApiError {
    use bourse_auth::admin_key::ScopeConflict;
    let field = |pointer: &str, code: &str| {
        ApiError::validation(vec![FieldError {
            pointer: pointer.into(),
            code: code.into(),
            message: e.to_string(),
        }])
    };
    match &e {
        KeyRequestError::Name => field("/name", "invalid_name"),
        KeyRequestError::UnknownScope(_) => field("/scopes", "unknown_scope"),
        KeyRequestError::Conflict(ScopeConflict::Empty) => field("/scopes", "empty"),
        KeyRequestError::Cidr(_) => field("/allowed_cidrs", "invalid_cidr"),
        KeyRequestError::Expiry => field("/expires_at", "in_the_past"),
        KeyRequestError::Conflict(ScopeConflict::KeysWithMoney(_)) => ApiError::new(
            StatusCode::FORBIDDEN,
            "segregation_of_duties",
            e.to_string(),
        ),
        KeyRequestError::Conflict(ScopeConflict::NotHeld(_)) => {
            ApiError::new(StatusCode::FORBIDDEN, "scope_not_held", e.to_string())
        }
        KeyRequestError::Store(_) => ApiError::internal(),
    }
}

/// Revoke an admin key (scope `keys:admin`).
#[utoipa::path(
    delete, path = "/admin/v1/keys/{id}", tag = "admin", operation_id = "revokeAdminKey",
    security(("admin_key" = ["keys:admin"])),
    params(("id" = String, Path, description = "Key id.", max_length = 64)),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = "Malformed id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `keys:admin`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No active key has this id.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: AdminCaller<KeysAdmin>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    crate::audit::action(
        "admin.key_revoke",
        serde_json::json!({ "key_id": crate::audit::short(&id) }),
    );
    super::check_path_id(&id)?;
    if state
        .store
        .revoke_admin_key(&id, OffsetDateTime::now_utc())
        .await?
    {
        tracing::info!(admin_key = %caller.key_id, revoked = %id, "admin key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("admin key"))
    }
}

/// A user as the admin sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// User id.
    pub id: String,
    /// Email.
    pub email: String,
    /// `active` or `frozen`.
    pub status: String,
    /// Registered at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id,
            email: u.email,
            status: u.status.as_str().to_owned(),
            created_at: u.created_at,
        }
    }
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    /// Users by id (registration order).
    pub data: Vec<UserView>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// Paging of `GET /admin/v1/users`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    /// The `next_cursor` of the previous page.
    #[param(max_length = 64)]
    pub cursor: Option<String>,
    /// Page size 1..=1000 (capped), default 100.
    #[param(minimum = 1)]
    pub limit: Option<u32>,
}

/// List users (scope `users:read`).
#[utoipa::path(
    get, path = "/admin/v1/users", tag = "admin", operation_id = "listUsers",
    security(("admin_key" = ["users:read"])),
    params(UserListParams),
    responses(
        (status = 200, description = "A page of users.", body = UserPage),
        (status = 400, description = "Bad query (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `users:read`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    _caller: AdminCaller<UsersRead>,
    ApiQuery(p): ApiQuery<UserListParams>,
) -> Result<Json<UserPage>, ApiError> {
    if let Some(c) = &p.cursor {
        super::check_path_id(c)?;
    }
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    let page = state.store.list_users(p.cursor.as_deref(), limit).await?;
    Ok(Json(UserPage {
        data: page.items.into_iter().map(UserView::from).collect(),
        next_cursor: page.next,
    }))
}

async fn set_frozen(
    state: &AppState,
    caller: &str,
    id: &str,
    frozen: bool,
) -> Result<StatusCode, ApiError> {
    super::check_path_id(id)?;
    if !state
        .identity
        .set_frozen(id, frozen, OffsetDateTime::now_utc())
        .await?
    {
        return Err(ApiError::not_found("user"));
    }
    // The trading account too: freezing cancels its open orders in the core and stops
    // trading and withdrawals. Repeating a freeze or unfreeze is harmless.
    let account = state.trading.account(&state.store, id).await?;
    let ts = crate::trading::now_ts();
    let command = if frozen {
        Command::FreezeAccount { account, ts }
    } else {
        Command::UnfreezeAccount { account, ts }
    };
    let outcome = state.trading.submit(command, Meta::default()).await?;
    match outcome.rejection() {
        // No trading account in the core yet (no deposit), or already in that state.
        None | Some(RejectReason::UnknownAccount | RejectReason::FreezeUnchanged) => {}
        Some(reason) => return Err(crate::trading::rejection(reason)),
    }
    tracing::info!(admin_key = %caller, user_id = %id, frozen, "user status changed");
    Ok(StatusCode::NO_CONTENT)
}

/// Freeze a user (scope `users:write`): every session is revoked, logins are refused,
/// and the trading account is frozen (its open orders are canceled; no trading or
/// withdrawals).
#[utoipa::path(
    post, path = "/admin/v1/users/{id}/freeze", tag = "admin", operation_id = "freezeUser",
    security(("admin_key" = ["users:write"])),
    params(("id" = String, Path, description = "User id.", max_length = 64)),
    responses(
        (status = 204, description = "Frozen."),
        (status = 400, description = "Malformed id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `users:write`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`. Repeat the call.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn freeze_user(
    State(state): State<AppState>,
    caller: AdminCaller<UsersWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    crate::audit::action(
        "admin.user_freeze",
        serde_json::json!({ "user_id": crate::audit::short(&id) }),
    );
    set_frozen(&state, &caller.key_id, &id, true).await
}

/// Unfreeze a user (scope `users:write`), and their trading account.
#[utoipa::path(
    post, path = "/admin/v1/users/{id}/unfreeze", tag = "admin", operation_id = "unfreezeUser",
    security(("admin_key" = ["users:write"])),
    params(("id" = String, Path, description = "User id.", max_length = 64)),
    responses(
        (status = 204, description = "Active again."),
        (status = 400, description = "Malformed id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `users:write`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`. Repeat the call.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn unfreeze_user(
    State(state): State<AppState>,
    caller: AdminCaller<UsersWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    crate::audit::action(
        "admin.user_unfreeze",
        serde_json::json!({ "user_id": crate::audit::short(&id) }),
    );
    set_frozen(&state, &caller.key_id, &id, false).await
}
