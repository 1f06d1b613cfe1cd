//! Reading the audit trail: `GET /admin/v1/audit` (admin scope `audit:read`) and a
//! user's own security events at `GET /v1/account/activity` (scope `read`).

use axum::Json;
use axum::extract::State;
use bourse_store::{AuditQuery, AuditRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::admin::{AdminCaller, AuditRead};
use crate::auth::{Read, Scoped};
use crate::error::{ApiError, Problem};
use crate::query::ApiQuery;
use crate::routes::orders::{make_cursor, page_limit, parse_cursor};
use crate::trading::{invalid, rfc3339_us};

/// Filters of the admin audit query; all optional, combined with AND.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Records whose actor has this id: a user id, an OAuth client id or an admin key id.
    #[param(max_length = 64)]
    pub actor: Option<String>,
    /// Only this action, e.g. `auth.login` or `admin.withdrawal_approve`.
    #[param(max_length = 64)]
    pub action: Option<String>,
    /// Requests that arrived at or after this time (RFC 3339).
    #[param(max_length = 40)]
    pub from: Option<String>,
    /// Requests that arrived before this time (RFC 3339).
    #[param(max_length = 40)]
    pub to: Option<String>,
    /// Opaque cursor from `next_cursor`.
    #[param(max_length = 32)]
    pub cursor: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Who made a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActor {
    /// The user (from the access token).
    pub user_id: Option<String>,
    /// The user's session.
    pub session_id: Option<String>,
    /// The OAuth client the token was issued to.
    pub client_id: Option<String>,
    /// The admin API key (admin listener).
    pub admin_key_id: Option<String>,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// The node's chain.
    pub chain_id: String,
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When the request arrived (RFC 3339, microseconds).
    pub time: String,
    /// The request id (`X-Request-Id`).
    pub request_id: String,
    /// `public` or `admin`.
    pub listener: String,
    /// Who called.
    pub actor: AuditActor,
    /// The peer address.
    pub source_ip: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Route template, e.g. `/v1/orders/{id}`; `(unmatched)` when no route matched.
    pub route: String,
    /// Response status.
    pub status: i64,
    /// Microseconds from arrival to response.
    pub latency_us: i64,
    /// The problem `code` of an error response.
    pub problem_code: Option<String>,
    /// A sensitive action's name.
    pub action: Option<String>,
    /// The action's details (ids, amounts, outcomes; never secrets).
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// Hash of the previous record of the chain.
    pub prev_hash: String,
    /// SHA-256 of this record (hex).
    pub hash: String,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        let e = r.entry;
        Self {
            chain_id: r.chain_id,
            seq: r.seq,
            time: rfc3339_us(e.ts_us),
            request_id: e.request_id,
            listener: e.listener,
            actor: AuditActor {
                user_id: e.user_id,
                session_id: e.session_id,
                client_id: e.client_id,
                admin_key_id: e.admin_key_id,
            },
            source_ip: e.source_ip,
            method: e.method,
            route: e.route,
            status: e.status,
            latency_us: e.latency_us,
            problem_code: e.problem_code,
            action: e.action,
            details: e
                .details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// A page of audit records, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The records.
    pub data: Vec<AuditView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

fn time_param(text: Option<&str>, pointer: &str) -> Result<Option<i64>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    let t = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| invalid(pointer, "invalid_time", "an RFC 3339 time"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1000)
        .map(Some)
        .map_err(|_| invalid(pointer, "invalid_time", "an RFC 3339 time"))
}

fn id_param(text: Option<&str>, pointer: &str) -> Result<(), ApiError> {
    match text {
        Some(t)
            if t.is_empty()
                || t.len() > 64
                || !t.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')
                }) =>
        {
            Err(invalid(
                pointer,
                "invalid_value",
                "1 to 64 characters of A-Z a-z 0-9 - _ . :",
            ))
        }
        _ => Ok(()),
    }
}

/// Query the audit trail, newest first (scope `audit:read`).
#[utoipa::path(
    get, path = "/admin/v1/audit", tag = "admin", operation_id = "listAudit",
    security(("admin_key" = ["audit:read"])),
    params(AuditParams),
    responses(
        (status = 200, description = "A page of audit records.", body = AuditPage),
        (status = 400, description = "Bad query (`validation_failed`: `invalid_time`, `invalid_range`, `invalid_value`, `invalid_cursor`, `out_of_range`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `audit:read`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_audit(
    State(state): State<AppState>,
    _caller: AdminCaller<AuditRead>,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = page_limit(p.limit)?;
    let before = parse_cursor(p.cursor.as_deref(), "a")?;
    id_param(p.actor.as_deref(), "/query/actor")?;
    id_param(p.action.as_deref(), "/query/action")?;
    let from_us = time_param(p.from.as_deref(), "/query/from")?;
    let to_us = time_param(p.to.as_deref(), "/query/to")?;
    if let (Some(f), Some(t)) = (from_us, to_us)
        && f > t
    {
        return Err(invalid(
            "/query/to",
            "invalid_range",
            "`to` must not be before `from`",
        ));
    }
    let rows = state
        .store
        .list_audit(&AuditQuery {
            actor: p.actor,
            action: p.action,
            from_us,
            to_us,
            before_id: before,
            limit,
            ..AuditQuery::default()
        })
        .await?;
    Ok(Json(page(rows, limit)))
}

fn page(rows: Vec<AuditRecord>, limit: u32) -> AuditPage {
    let last = rows.last().map(|r| r.id);
    let n = rows.len();
    AuditPage {
        data: rows.into_iter().map(AuditView::from).collect(),
        next_cursor: make_cursor("a", n, limit, last),
    }
}

/// Paging of the caller's activity.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// Opaque cursor from `next_cursor`.
    #[param(max_length = 32)]
    pub cursor: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One security event of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityView {
    /// When (RFC 3339, microseconds).
    pub time: String,
    /// What: `auth.login`, `auth.logout`, `auth.password_change`, `auth.2fa_enrol`,
    /// `auth.2fa_confirm`, `auth.2fa_disable`, `auth.step_up`, `auth.session_revoke`,
    /// `wallet.address_add`, `wallet.address_delete`, `wallet.withdrawal_request`, …
    pub action: String,
    /// The answer's status (2xx: done).
    pub status: i64,
    /// The problem `code` when refused.
    pub problem_code: Option<String>,
    /// From which address.
    pub source_ip: Option<String>,
    /// With which session.
    pub session_id: Option<String>,
    /// Ids and outcomes of the action.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// The request id (`X-Request-Id`).
    pub request_id: String,
}

/// A page of the caller's security events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityPage {
    /// The events.
    pub data: Vec<ActivityView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The caller's own security events, newest first (scope `read`): logins, logouts,
/// two-factor and password changes, withdrawal addresses and withdrawals.
#[utoipa::path(
    get, path = "/v1/account/activity", tag = "account", operation_id = "accountActivity",
    security(("bearer" = ["read"])),
    params(ActivityParams),
    responses(
        (status = 200, description = "A page of the caller's security events.", body = ActivityPage),
        (status = 400, description = "Bad cursor or limit (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn activity(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
    ApiQuery(p): ApiQuery<ActivityParams>,
) -> Result<Json<ActivityPage>, ApiError> {
    let limit = page_limit(p.limit)?;
    let before = parse_cursor(p.cursor.as_deref(), "e")?;
    let rows = state
        .store
        .list_audit(&AuditQuery {
            security_events_of: Some(user.user_id().to_owned()),
            before_id: before,
            limit,
            ..AuditQuery::default()
        })
        .await?;
    let last = rows.last().map(|r| r.id);
    let n = rows.len();
    Ok(Json(ActivityPage {
        data: rows
            .into_iter()
            .map(|r| {
                let e = r.entry;
                ActivityView {
                    time: rfc3339_us(e.ts_us),
                    action: e.action.unwrap_or_default(),
                    status: e.status,
                    problem_code: e.problem_code,
                    source_ip: e.source_ip,
                    session_id: e.session_id,
                    details: e
                        .details
                        .as_deref()
                        .and_then(|d| serde_json::from_str(d).ok()),
                    request_id: e.request_id,
                }
            })
            .collect(),
        next_cursor: make_cursor("e", n, limit, last),
    }))
}
