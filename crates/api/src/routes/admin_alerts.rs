//! Admin: the surveillance pipeline's risk alerts (docs/risk-detection.md). List and
//! read them (`risk:read`), resolve them and lift their actions (`risk:write`); every
//! change is in the audit trail with the admin key that made it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bourse_engine::Meta;
use bourse_engine::core::{AccountId, Command, Issuer, RejectReason};
use bourse_store::{RiskAlertQuery, RiskAlertRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::admin::{AdminCaller, RiskRead, RiskWrite};
use crate::error::{ApiError, Problem};
use crate::json::ApiJson;
use crate::query::ApiQuery;
use crate::trading::{self, invalid, rejection, rfc3339_us};

/// A risk alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    /// Alert id.
    pub id: String,
    /// When the condition was completed (RFC 3339).
    pub created_at: String,
    /// The rule, e.g. `wash_trading`, `failed_second_factor`.
    pub rule: String,
    /// 0–100: 50 at the rule's threshold, growing with the excess.
    pub score: i64,
    /// The rule's configured action: `notify`, `step_up`, `freeze_withdrawals`,
    /// `halt_trading`.
    pub action: String,
    /// `none` (notify), `applied`, `failed`, `pending` or `lifted`.
    pub action_state: String,
    /// Users and trading accounts concerned.
    #[schema(value_type = Object)]
    pub subjects: serde_json::Value,
    /// What triggered it: the rule's events, ids and numbers.
    #[schema(value_type = Vec<Object>)]
    pub evidence: serde_json::Value,
    /// `open` or `resolved`.
    pub status: String,
    /// When it was resolved (RFC 3339).
    pub resolved_at: Option<String>,
    /// The admin key that resolved it.
    pub resolved_by: Option<String>,
    /// The resolution note.
    pub resolution: Option<String>,
    /// When its action was lifted (RFC 3339).
    pub action_lifted_at: Option<String>,
    /// The admin key that lifted it.
    pub action_lifted_by: Option<String>,
}

impl From<RiskAlertRecord> for AlertView {
    fn from(r: RiskAlertRecord) -> Self {
        Self {
            created_at: rfc3339_us(r.created_at_us),
            subjects: serde_json::from_str(&r.subjects).unwrap_or_default(),
            evidence: serde_json::from_str(&r.evidence).unwrap_or_default(),
            resolved_at: r.resolved_at_us.map(rfc3339_us),
            action_lifted_at: r.action_lifted_at_us.map(rfc3339_us),
            id: r.id,
            rule: r.rule,
            score: r.score,
            action: r.action,
            action_state: r.action_state,
            status: r.status,
            resolved_by: r.resolved_by,
            resolution: r.resolution,
            action_lifted_by: r.action_lifted_by,
        }
    }
}

/// Filters and paging of the alert list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    /// `open` or `resolved`.
    pub status: Option<String>,
    /// Only this rule.
    #[param(max_length = 64)]
    pub rule: Option<String>,
    /// Only alerts concerning this user.
    #[param(max_length = 64)]
    pub user_id: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 128)]
    pub cursor: Option<String>,
}

/// A page of alerts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPage {
    /// The alerts.
    pub data: Vec<AlertView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

fn parse_cursor(c: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        invalid(
            "/query/cursor",
            "invalid_cursor",
            "not a cursor of this list",
        )
    };
    let (ts, id) = c.split_once('_').ok_or_else(bad)?;
    let ts: i64 = ts.parse().map_err(|_| bad())?;
    super::check_path_id(id).map_err(|_| bad())?;
    Ok((ts, id.to_owned()))
}

/// Risk alerts, newest first (scope `risk:read`).
#[utoipa::path(
    get, path = "/admin/v1/risk/alerts", tag = "admin-risk", operation_id = "listRiskAlerts",
    security(("admin_key" = ["risk:read"])),
    params(AlertParams),
    responses(
        (status = 200, description = "A page of alerts.", body = AlertPage),
        (status = 400, description = "Bad filter, limit or cursor (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:read` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_alerts(
    State(state): State<AppState>,
    _caller: AdminCaller<RiskRead>,
    ApiQuery(p): ApiQuery<AlertParams>,
) -> Result<Json<AlertPage>, ApiError> {
    if let Some(s) = &p.status
        && s != "open"
        && s != "resolved"
    {
        return Err(invalid(
            "/query/status",
            "invalid_value",
            "open or resolved",
        ));
    }
    if let Some(r) = &p.rule
        && (r.is_empty() || r.len() > 64 || !r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    {
        return Err(invalid(
            "/query/rule",
            "invalid_value",
            "a rule name such as wash_trading",
        ));
    }
    if let Some(u) = &p.user_id {
        super::check_path_id(u)
            .map_err(|_| invalid("/query/user_id", "invalid_id", "ids are UUIDs"))?;
    }
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(invalid(
            "/query/limit",
            "out_of_range",
            "must be between 1 and 1000",
        ));
    }
    let before = p.cursor.as_deref().map(parse_cursor).transpose()?;
    let rows = state
        .store
        .list_risk_alerts(&RiskAlertQuery {
            status: p.status,
            rule: p.rule,
            user_id: p.user_id,
            before,
            limit,
        })
        .await?;
    let next_cursor = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| format!("{}_{}", r.created_at_us, r.id)))
        .flatten();
    Ok(Json(AlertPage {
        data: rows.into_iter().map(AlertView::from).collect(),
        next_cursor,
    }))
}

async fn load(state: &AppState, id: &str) -> Result<RiskAlertRecord, ApiError> {
    super::check_path_id(id)?;
    state
        .store
        .get_risk_alert(id)
        .await?
        .ok_or_else(|| ApiError::not_found("alert"))
}

/// One risk alert (scope `risk:read`).
#[utoipa::path(
    get, path = "/admin/v1/risk/alerts/{id}", tag = "admin-risk", operation_id = "getRiskAlert",
    security(("admin_key" = ["risk:read"])),
    params(("id" = String, Path, description = "Alert id.", max_length = 64)),
    responses(
        (status = 200, description = "The alert.", body = AlertView),
        (status = 400, description = "Malformed id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:read` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such alert.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_alert(
    State(state): State<AppState>,
    _caller: AdminCaller<RiskRead>,
    Path(id): Path<String>,
) -> Result<Json<AlertView>, ApiError> {
    Ok(Json(load(&state, &id).await?.into()))
}

/// How an alert was resolved.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    /// What the desk found, 1 to 1000 characters (kept with the alert).
    #[schema(
        example = "Same trader testing two accounts; warned.",
        max_length = 1000
    )]
    pub note: String,
}

fn now_us() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000).unwrap_or(0)
}

/// Resolve an open alert (scope `risk:write`). Its action stays in force until lifted.
#[utoipa::path(
    post, path = "/admin/v1/risk/alerts/{id}/resolve", tag = "admin-risk", operation_id = "resolveRiskAlert",
    security(("admin_key" = ["risk:write"])),
    params(("id" = String, Path, description = "Alert id.", max_length = 64)),
    request_body(content = Resolution, content_type = "application/json"),
    responses(
        (status = 200, description = "Resolved.", body = AlertView),
        (status = 400, description = "Invalid fields (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such alert.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already resolved (`alert_not_open`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resolve_alert(
    State(state): State<AppState>,
    caller: AdminCaller<RiskWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Resolution>,
) -> Result<Json<AlertView>, ApiError> {
    crate::audit::action(
        "admin.risk_alert_resolve",
        serde_json::json!({ "alert_id": crate::audit::short(&id) }),
    );
    let note = body.note.trim();
    if note.is_empty() || note.chars().count() > 1000 || note.chars().any(char::is_control) {
        return Err(invalid(
            "/note",
            "invalid_note",
            "1 to 1000 characters, no control characters",
        ));
    }
    load(&state, &id).await?;
    if !state
        .store
        .resolve_risk_alert(&id, &caller.key_id, note, now_us())
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "alert_not_open",
            "the alert is already resolved",
        ));
    }
    Ok(Json(load(&state, &id).await?.into()))
}

/// Lift an alert's action (scope `risk:write`): restrictions end, and an account
/// halted by it gets its kill switch turned off.
#[utoipa::path(
    post, path = "/admin/v1/risk/alerts/{id}/lift", tag = "admin-risk", operation_id = "liftRiskAlertAction",
    security(("admin_key" = ["risk:write"])),
    params(("id" = String, Path, description = "Alert id.", max_length = 64)),
    responses(
        (status = 200, description = "Lifted.", body = AlertView),
        (status = 400, description = "Malformed id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such alert.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No action in force (`action_not_in_force`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn lift_alert(
    State(state): State<AppState>,
    caller: AdminCaller<RiskWrite>,
    Path(id): Path<String>,
) -> Result<Json<AlertView>, ApiError> {
    crate::audit::action(
        "admin.risk_alert_lift",
        serde_json::json!({ "alert_id": crate::audit::short(&id) }),
    );
    let alert = load(&state, &id).await?;
    if alert.action_state != "applied" {
        return Err(not_in_force());
    }
    if alert.action == "halt_trading" {
        let subjects: serde_json::Value = serde_json::from_str(&alert.subjects).unwrap_or_default();
        for account in subjects["accounts"].as_array().into_iter().flatten() {
            let Some(account) = account.as_u64() else {
                continue;
            };
            let outcome = state
                .trading
                .submit(
                    Command::SetAccountKillSwitch {
                        account: AccountId(account),
                        active: false,
                        issued_by: Issuer::Admin,
                        ts: trading::now_ts(),
                    },
                    Meta::default(),
                )
                .await?;
            match outcome.rejection() {
                None | Some(RejectReason::KillSwitchUnchanged | RejectReason::UnknownAccount) => {}
                Some(r) => return Err(rejection(r)),
            }
        }
    }
    if !state
        .store
        .lift_risk_alert_action(&id, &caller.key_id, now_us())
        .await?
    {
        return Err(not_in_force());
    }
    Ok(Json(load(&state, &id).await?.into()))
}

fn not_in_force() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "action_not_in_force",
        "the alert's action is not in force (notify only, not applied, or lifted already)",
    )
}
