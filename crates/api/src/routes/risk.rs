//! A trader's own risk controls: the dead man's switch (`POST /v1/orders/cancel-after`),
//! the account kill switch, market-maker protection per instrument group, and a view
//! of the account's risk state. Rules: docs/risk.md.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bourse_engine::core::{AccountId, Command, Issuer, MmpConfig, MmpView, RejectReason};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Read, Scoped, Trade};
use crate::error::{ApiError, Problem};
use crate::json::ApiJson;
use crate::routes::admin_risk::{self, Limits, e6_text, mmp_group, signed_e6, ts_text};
use crate::trading::{self, engine_error, invalid, rejection};

const NANOS_PER_MS: u64 = 1_000_000;

/// Arm, renew or disarm the dead man's switch.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelAfter {
    /// Cancel all your open orders this many milliseconds from now unless you call
    /// again first (1000 to 86400000); 0 disarms the switch.
    #[schema(example = 60000, minimum = 0, maximum = 86400000)]
    pub timeout_ms: u64,
}

/// The dead man's switch now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelAfterState {
    /// When your open orders will be canceled (RFC 3339); `null`: disarmed.
    pub deadline: Option<String>,
}

/// Dead man's switch (scope `trade`): unless renewed within `timeout_ms`, all your open
/// orders are canceled (reason `dead_man_switch`). Call it periodically with the same
/// timeout; a call with 0 disarms it. The deadline is checked at least once a second.
#[utoipa::path(
    post, path = "/v1/orders/cancel-after", tag = "trading", operation_id = "cancelAfter",
    security(("bearer" = ["trade"])),
    request_body(content = CancelAfter, content_type = "application/json"),
    responses(
        (status = 200, description = "Armed, renewed or disarmed.", body = CancelAfterState),
        (status = 400, description = "Invalid fields (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `trade` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No trading account yet (`unknown_account`): deposit first.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_after(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Trade>,
    ApiJson(body): ApiJson<CancelAfter>,
) -> Result<Json<CancelAfterState>, ApiError> {
    if body.timeout_ms != 0 && !(1_000..=86_400_000).contains(&body.timeout_ms) {
        return Err(invalid(
            "/timeout_ms",
            "out_of_range",
            "must be 0 or between 1000 and 86400000",
        ));
    }
    let account = state.trading.account(&state.store, user.user_id()).await?;
    admin_risk::run(
        &state,
        Command::CancelAfter {
            account,
            timeout: body.timeout_ms * NANOS_PER_MS,
            ts: trading::now_ts(),
        },
    )
    .await?;
    let deadline = state
        .trading
        .engine
        .read(|ex| ex.account_risk(account).cancel_after)
        .map_err(engine_error)?;
    Ok(Json(CancelAfterState {
        deadline: deadline.map(ts_text),
    }))
}

/// Turn your account's kill switch on or off.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitch {
    /// On: every open order of yours is canceled at once and new orders and amends
    /// are refused (`account_kill_switch`) until you turn it off. A switch an operator
    /// turned on only an operator can turn off (`kill_switch_admin_only`).
    pub active: bool,
}

/// Your account's kill switch (scope `trade`).
#[utoipa::path(
    post, path = "/v1/account/kill-switch", tag = "account", operation_id = "setAccountKillSwitch",
    security(("bearer" = ["trade"])),
    request_body(content = KillSwitch, content_type = "application/json"),
    responses(
        (status = 200, description = "The account's risk state now.", body = AccountRisk),
        (status = 400, description = "Invalid fields (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `trade` (`insufficient_scope`), or an operator's switch (`kill_switch_admin_only`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Turning off a switch that is off (`kill_switch_unchanged`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No trading account yet (`unknown_account`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_kill_switch(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Trade>,
    ApiJson(body): ApiJson<KillSwitch>,
) -> Result<Json<AccountRisk>, ApiError> {
    crate::audit::action(
        "risk.kill_switch",
        serde_json::json!({ "active": body.active }),
    );
    let account = state.trading.account(&state.store, user.user_id()).await?;
    admin_risk::run(
        &state,
        Command::SetAccountKillSwitch {
            account,
            active: body.active,
            issued_by: Issuer::Owner,
            ts: trading::now_ts(),
        },
    )
    .await?;
    Ok(Json(account_risk(&state, account)?))
}

/// Market-maker protection on one instrument group.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mmp {
    /// The counting interval, milliseconds (1 to 3600000).
    #[schema(example = 1000, minimum = 1, maximum = 3600000)]
    pub interval_ms: u64,
    /// Most contracts (lots) your MMP orders in the group may trade per interval.
    #[serde(default)]
    #[schema(example = 100, minimum = 1)]
    pub max_quantity: Option<u64>,
    /// Largest absolute net delta traded per interval, a decimal string (one contract
    /// of a perpetual or future is delta 1; options use the greeks the pricing
    /// service sets).
    #[serde(default)]
    #[schema(example = "50")]
    pub max_delta: Option<String>,
    /// Largest absolute net vega traded per interval (options), a decimal string.
    #[serde(default)]
    #[schema(example = "1000")]
    pub max_vega: Option<String>,
    /// How long a trigger freezes the group's MMP orders, milliseconds (at most
    /// 86400000); 0: until you reset it.
    #[serde(default)]
    #[schema(example = 5000, minimum = 0, maximum = 86400000)]
    pub freeze_ms: u64,
}

/// One group's market-maker protection and where its counters stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct MmpState {
    /// The group.
    pub group: String,
    /// The limits.
    pub config: Mmp,
    /// Contracts traded by MMP orders in the current interval.
    pub quantity: String,
    /// Net delta traded in the current interval.
    pub delta: String,
    /// Net vega traded in the current interval.
    pub vega: String,
    /// Whether new MMP orders in the group are refused now.
    pub frozen: bool,
    /// When the freeze ends (RFC 3339); `null` with `frozen`: until a reset.
    pub frozen_until: Option<String>,
}

/// An account's risk state.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountRisk {
    /// The account's kill switch: `null` (off), `owner` or `admin` (who turned it on).
    pub kill_switch: Option<String>,
    /// When the dead man's switch fires (RFC 3339); `null`: disarmed.
    pub cancel_after: Option<String>,
    /// Market-maker protection per group.
    pub mmp: Vec<MmpState>,
    /// Limits an operator set for this account, tighter than the instruments' own.
    pub limits: Vec<LimitOverride>,
}

/// A limit override of one instrument.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitOverride {
    /// The instrument.
    pub symbol: String,
    /// For orders through this OAuth client only; `null`: all the account's orders.
    pub client_id: Option<String>,
    /// The limits.
    pub limits: Limits,
}

fn mmp_state(v: &MmpView) -> MmpState {
    let c = &v.config;
    MmpState {
        group: v.group.to_string(),
        config: Mmp {
            interval_ms: c.interval / NANOS_PER_MS,
            max_quantity: c.max_quantity,
            max_delta: c.max_delta_e6.map(e6_text),
            max_vega: c.max_vega_e6.map(e6_text),
            freeze_ms: c.freeze_for / NANOS_PER_MS,
        },
        quantity: v.quantity.to_string(),
        delta: e6_text(v.delta_e6),
        vega: e6_text(v.vega_e6),
        frozen: v.frozen.is_some(),
        frozen_until: v.frozen.flatten().map(ts_text),
    }
}

/// The account's risk state as the core has it.
pub(crate) fn account_risk(state: &AppState, account: AccountId) -> Result<AccountRisk, ApiError> {
    let v = state
        .trading
        .engine
        .read(|ex| ex.account_risk(account))
        .map_err(engine_error)?;
    let limits_of = |symbol: &bourse_engine::core::Symbol, l| {
        bourse_types::Symbol::parse(symbol.as_str())
            .ok()
            .and_then(|s| state.catalog.get(&s))
            .map(|inst| Limits::from_core(&inst, l))
    };
    let mut limits = Vec::new();
    for (symbol, l) in &v.limits {
        if let Some(l) = limits_of(symbol, l) {
            limits.push(LimitOverride {
                symbol: symbol.to_string(),
                client_id: None,
                limits: l,
            });
        }
    }
    for (client, symbol, l) in &v.client_limits {
        if let Some(l) = limits_of(symbol, l) {
            limits.push(LimitOverride {
                symbol: symbol.to_string(),
                client_id: Some(client.to_string()),
                limits: l,
            });
        }
    }
    Ok(AccountRisk {
        kill_switch: v.kill_switch.map(|i| i.code().to_owned()),
        cancel_after: v.cancel_after.map(ts_text),
        mmp: v.mmp.iter().map(mmp_state).collect(),
        limits,
    })
}

/// Your account's risk state (scope `read`): kill switch, dead man's switch,
/// market-maker protection and the limits an operator set for you.
#[utoipa::path(
    get, path = "/v1/account/risk", tag = "account", operation_id = "getAccountRisk",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The account's risk state.", body = AccountRisk),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_risk(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
) -> Result<Json<AccountRisk>, ApiError> {
    let account = state.trading.account(&state.store, user.user_id()).await?;
    Ok(Json(account_risk(&state, account)?))
}

fn to_core(body: &Mmp) -> Result<MmpConfig, ApiError> {
    if !(1..=3_600_000).contains(&body.interval_ms) {
        return Err(invalid(
            "/interval_ms",
            "out_of_range",
            "must be between 1 and 3600000",
        ));
    }
    if body.freeze_ms > 86_400_000 {
        return Err(invalid(
            "/freeze_ms",
            "out_of_range",
            "must be at most 86400000",
        ));
    }
    if body.max_quantity == Some(0) {
        return Err(invalid(
            "/max_quantity",
            "out_of_range",
            "must be at least 1",
        ));
    }
    let positive = |text: &Option<String>, pointer: &str| -> Result<Option<i128>, ApiError> {
        text.as_deref()
            .map(|t| match signed_e6(t, pointer, i64::MAX) {
                Ok(n) if n > 0 => Ok(i128::from(n)),
                Ok(_) => Err(invalid(
                    pointer,
                    "out_of_range",
                    "must be greater than zero",
                )),
                Err(e) => Err(e),
            })
            .transpose()
    };
    let config = MmpConfig {
        interval: body.interval_ms * NANOS_PER_MS,
        max_quantity: body.max_quantity,
        max_delta_e6: positive(&body.max_delta, "/max_delta")?,
        max_vega_e6: positive(&body.max_vega, "/max_vega")?,
        freeze_for: body.freeze_ms * NANOS_PER_MS,
    };
    if config.max_quantity.is_none()
        && config.max_delta_e6.is_none()
        && config.max_vega_e6.is_none()
    {
        return Err(invalid(
            "",
            "no_limit",
            "set at least one of max_quantity, max_delta, max_vega",
        ));
    }
    Ok(config)
}

/// Set up market-maker protection on an instrument group (scope `trade`); setting it
/// again resets the counters and any freeze.
#[utoipa::path(
    put, path = "/v1/account/mmp/{group}", tag = "account", operation_id = "setMmp",
    security(("bearer" = ["trade"])),
    params(("group" = String, Path, description = "The group, e.g. the underlying `BTC`.", max_length = 16)),
    request_body(content = Mmp, content_type = "application/json"),
    responses(
        (status = 200, description = "The account's risk state now.", body = AccountRisk),
        (status = 400, description = "Invalid fields (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `trade` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No trading account yet (`unknown_account`), or limits the core refuses (`invalid_risk_config`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_mmp(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Trade>,
    Path(group): Path<String>,
    ApiJson(body): ApiJson<Mmp>,
) -> Result<Json<AccountRisk>, ApiError> {
    let group = mmp_group(&group, "/path/group")?;
    let config = to_core(&body)?;
    let account = state.trading.account(&state.store, user.user_id()).await?;
    admin_risk::run(
        &state,
        Command::SetMmpConfig {
            account,
            group,
            config: Some(config),
            ts: trading::now_ts(),
        },
    )
    .await?;
    Ok(Json(account_risk(&state, account)?))
}

/// Remove market-maker protection from a group (scope `trade`).
#[utoipa::path(
    delete, path = "/v1/account/mmp/{group}", tag = "account", operation_id = "removeMmp",
    security(("bearer" = ["trade"])),
    params(("group" = String, Path, description = "The group.", max_length = 16)),
    responses(
        (status = 204, description = "Removed (or there was none)."),
        (status = 400, description = "Invalid group (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `trade` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn remove_mmp(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Trade>,
    Path(group): Path<String>,
) -> Result<StatusCode, ApiError> {
    let group = mmp_group(&group, "/path/group")?;
    let account = state.trading.account(&state.store, user.user_id()).await?;
    let outcome = state
        .trading
        .submit(
            Command::SetMmpConfig {
                account,
                group,
                config: None,
                ts: trading::now_ts(),
            },
            bourse_engine::Meta::default(),
        )
        .await?;
    match outcome.rejection() {
        None | Some(RejectReason::UnknownAccount) => Ok(StatusCode::NO_CONTENT),
        Some(reason) => Err(rejection(reason)),
    }
}

/// Lift a market-maker-protection freeze and reset the counters (scope `trade`).
#[utoipa::path(
    post, path = "/v1/account/mmp/{group}/reset", tag = "account", operation_id = "resetMmp",
    security(("bearer" = ["trade"])),
    params(("group" = String, Path, description = "The group.", max_length = 16)),
    responses(
        (status = 200, description = "The account's risk state now.", body = AccountRisk),
        (status = 400, description = "Invalid group (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `trade` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No MMP on this group (`mmp_not_configured`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reset_mmp(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Trade>,
    Path(group): Path<String>,
) -> Result<Json<AccountRisk>, ApiError> {
    let group = mmp_group(&group, "/path/group")?;
    let account = state.trading.account(&state.store, user.user_id()).await?;
    admin_risk::run(
        &state,
        Command::ResetMmp {
            account,
            group,
            ts: trading::now_ts(),
        },
    )
    .await?;
    Ok(Json(account_risk(&state, account)?))
}
