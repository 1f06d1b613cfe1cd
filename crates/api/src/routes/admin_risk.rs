//! Admin: pre-trade limits per instrument, per user and per (user, OAuth client),
//! circuit breakers, market-maker-protection groups and option greeks, the
//! exchange-wide kill switch and a user's kill switch. Rules: docs/risk.md.
//!
//! Every change is a journaled command, so replay reproduces it; the views are read
//! back from the core.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bourse_engine::Meta;
use bourse_engine::core::{
    self, AccountId, CircuitBreaker, ClientId, Command, InstrumentRiskView, Issuer, OrderLimits,
    RejectReason,
};
use bourse_types::decimal::parse_decimal;
use bourse_types::{Decimal, Instrument};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::admin::{AdminCaller, RiskRead, RiskWrite};
use crate::error::{ApiError, Problem};
use crate::json::ApiJson;
use crate::query::ApiQuery;
use crate::trading::{
    self, engine_error, invalid, lots_count, lots_text, money_amount, money_text, rejection,
};

/// Pre-trade limits. Each field absent or `null` is "no limit". An override for a user
/// or a (user, OAuth client) can only tighten: the limit an order meets is, field by
/// field, the smallest that applies.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// A limit price more than this many basis points from the mark is refused
    /// (`price_band`); a market order does not trade beyond it. 1 to 10000.
    #[serde(default)]
    #[schema(example = 500, minimum = 1, maximum = 10000)]
    pub price_band_bps: Option<u32>,
    /// Largest quantity of one order, a multiple of the lot size (`max_order_quantity`).
    #[serde(default)]
    #[schema(example = "10")]
    pub max_order_quantity: Option<String>,
    /// Largest notional of one order in the settlement asset, at its limit price or,
    /// for a market order, its worst reachable price (`max_order_notional`).
    #[serde(default)]
    #[schema(example = "1000000")]
    pub max_order_notional: Option<String>,
    /// Most resting orders of one account on the instrument (`max_open_orders`).
    #[serde(default)]
    #[schema(example = 200, minimum = 1)]
    pub max_open_orders: Option<u32>,
    /// Largest absolute position, counting resting orders on the side that would grow
    /// it, a multiple of the lot size (`position_limit`).
    #[serde(default)]
    #[schema(example = "100")]
    pub max_position: Option<String>,
}

impl Limits {
    /// The core's limits, in ticks, lots and micro-units of `inst`.
    pub(crate) fn to_core(&self, inst: &Instrument) -> Result<OrderLimits, ApiError> {
        if let Some(b) = self.price_band_bps
            && !(1..=10_000).contains(&b)
        {
            return Err(invalid(
                "/price_band_bps",
                "out_of_range",
                "must be between 1 and 10000",
            ));
        }
        if self.max_open_orders == Some(0) {
            return Err(invalid(
                "/max_open_orders",
                "out_of_range",
                "must be at least 1",
            ));
        }
        Ok(OrderLimits {
            price_band_bps: self.price_band_bps,
            max_order_quantity: self
                .max_order_quantity
                .as_deref()
                .map(|q| lots_count(inst, q, "/max_order_quantity"))
                .transpose()?,
            max_order_notional: self
                .max_order_notional
                .as_deref()
                .map(|n| money_amount(n, "/max_order_notional"))
                .transpose()?,
            max_open_orders: self.max_open_orders,
            max_position: self
                .max_position
                .as_deref()
                .map(|q| lots_count(inst, q, "/max_position"))
                .transpose()?,
        })
    }

    /// The wire form of the core's limits.
    pub(crate) fn from_core(inst: &Instrument, l: &OrderLimits) -> Self {
        Self {
            price_band_bps: l.price_band_bps,
            max_order_quantity: l.max_order_quantity.map(|q| lots_text(inst, i128::from(q))),
            max_order_notional: l.max_order_notional.map(money_text),
            max_open_orders: l.max_open_orders,
            max_position: l.max_position.map(|q| lots_text(inst, i128::from(q))),
        }
    }
}

/// A circuit breaker: a trade more than `max_move_bps` from the window's reference
/// price halts the instrument for `cool_off_secs`, then it resumes by itself.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Breaker {
    /// Largest move from the reference price, basis points, 1 to 10000.
    #[schema(example = 1000, minimum = 1, maximum = 10000)]
    pub max_move_bps: u32,
    /// How long a reference price holds, seconds, 1 to 86400.
    #[schema(example = 60, minimum = 1, maximum = 86400)]
    pub window_secs: u64,
    /// How long a trip halts the instrument, seconds, 0 to 86400.
    #[schema(example = 300, minimum = 0, maximum = 86400)]
    pub cool_off_secs: u64,
}

const NANOS: u64 = 1_000_000_000;

impl Breaker {
    fn to_core(&self) -> Result<CircuitBreaker, ApiError> {
        if !(1..=10_000).contains(&self.max_move_bps) {
            return Err(invalid(
                "/max_move_bps",
                "out_of_range",
                "must be between 1 and 10000",
            ));
        }
        if !(1..=86_400).contains(&self.window_secs) {
            return Err(invalid(
                "/window_secs",
                "out_of_range",
                "must be between 1 and 86400",
            ));
        }
        if self.cool_off_secs > 86_400 {
            return Err(invalid(
                "/cool_off_secs",
                "out_of_range",
                "must be at most 86400",
            ));
        }
        Ok(CircuitBreaker {
            max_move_bps: self.max_move_bps,
            window: self.window_secs * NANOS,
            cool_off: self.cool_off_secs * NANOS,
        })
    }

    fn from_core(b: &CircuitBreaker) -> Self {
        Self {
            max_move_bps: b.max_move_bps,
            window_secs: b.window / NANOS,
            cool_off_secs: b.cool_off / NANOS,
        }
    }
}

/// An instrument's risk settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstrumentRisk {
    /// The instrument.
    pub symbol: String,
    /// Its pre-trade limits.
    pub limits: Limits,
    /// Its circuit breaker, if any.
    pub circuit_breaker: Option<Breaker>,
    /// Halted by the breaker until then (RFC 3339), if it tripped.
    pub breaker_halted_until: Option<String>,
    /// Its market-maker-protection group (e.g. the underlying `BTC`).
    pub mmp_group: Option<String>,
    /// Option greeks per contract from the pricing service.
    pub greeks: Option<Greeks>,
}

/// Option greeks per contract, decimal strings with at most 6 decimals.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Greeks {
    /// Delta per contract, -1 to 1 (a call near the money: about `"0.5"`).
    #[schema(example = "0.5")]
    pub delta: String,
    /// Vega per contract, in the pricing service's unit.
    #[schema(example = "12.5")]
    pub vega: String,
}

/// The MMP group of an instrument; `null` takes it out of any group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MmpGroup {
    /// An asset code such as the underlying, `^[A-Z][A-Z0-9]{0,15}$`.
    #[schema(example = "BTC")]
    pub group: Option<String>,
}

/// A signed decimal with at most 6 decimals as 10^-6 units.
pub(crate) fn signed_e6(text: &str, pointer: &str, bound: i64) -> Result<i64, ApiError> {
    let d = parse_decimal(text).map_err(|_| {
        invalid(
            pointer,
            "invalid_decimal",
            "must be a decimal string such as \"-0.25\" (no exponent)",
        )
    })?;
    let scaled = d * Decimal::from(1_000_000);
    if !scaled.fract().is_zero() {
        return Err(invalid(pointer, "too_many_decimals", "at most 6 decimals"));
    }
    let t = scaled.trunc();
    let n = t.mantissa() / 10i128.pow(t.scale());
    i64::try_from(n)
        .ok()
        .filter(|n| n.abs() <= bound)
        .ok_or_else(|| invalid(pointer, "out_of_range", "out of range"))
}

/// 10^-6 units as a decimal string.
pub(crate) fn e6_text(n: i128) -> String {
    money_text(n)
}

fn instrument(state: &AppState, symbol: &str) -> Result<(Instrument, core::Symbol), ApiError> {
    super::admin_instruments::lookup(state, symbol)
}

/// Submits a risk command; a refusal becomes its problem.
pub(crate) async fn run(state: &AppState, command: Command) -> Result<(), ApiError> {
    super::admin_instruments::run(state, command)
        .await
        .map(drop)
}

fn risk_view(
    state: &AppState,
    inst: &Instrument,
    core: &core::Symbol,
) -> Result<InstrumentRisk, ApiError> {
    let v: InstrumentRiskView = state
        .trading
        .engine
        .read(|ex| ex.instrument_risk(core))
        .map_err(engine_error)?
        .ok_or_else(|| ApiError::not_found("instrument"))?;
    Ok(InstrumentRisk {
        symbol: inst.symbol.as_str().to_owned(),
        limits: Limits::from_core(inst, &v.limits),
        circuit_breaker: v.breaker.as_ref().map(Breaker::from_core),
        breaker_halted_until: v.breaker_halted_until.map(ts_text),
        mmp_group: v.group.map(|g| g.to_string()),
        greeks: v.greeks.map(|(d, v)| Greeks {
            delta: e6_text(i128::from(d)),
            vega: e6_text(i128::from(v)),
        }),
    })
}

/// A core timestamp (Unix nanoseconds) as RFC 3339.
pub(crate) fn ts_text(ts: core::Timestamp) -> String {
    trading::rfc3339_us(i64::try_from(ts.0 / 1_000).unwrap_or(i64::MAX))
}

const SYMBOL_PARAM: &str = "Instrument symbol.";

/// An instrument's risk settings (scope `risk:read`).
#[utoipa::path(
    get, path = "/admin/v1/instruments/{symbol}/risk", tag = "admin-risk", operation_id = "getInstrumentRisk",
    security(("admin_key" = ["risk:read"])),
    params(("symbol" = String, Path, description = SYMBOL_PARAM, max_length = 40)),
    responses(
        (status = 200, description = "Limits, breaker, MMP group and greeks.", body = InstrumentRisk),
        (status = 400, description = "Malformed symbol (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:read` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_instrument_risk(
    State(state): State<AppState>,
    _caller: AdminCaller<RiskRead>,
    Path(symbol): Path<String>,
) -> Result<Json<InstrumentRisk>, ApiError> {
    let (inst, core) = instrument(&state, &symbol)?;
    Ok(Json(risk_view(&state, &inst, &core)?))
}

/// Set an instrument's pre-trade limits (scope `risk:write`); fields left out are "no
/// limit", so `{}` removes them all.
#[utoipa::path(
    put, path = "/admin/v1/instruments/{symbol}/limits", tag = "admin-risk", operation_id = "setInstrumentLimits",
    security(("admin_key" = ["risk:write"])),
    params(("symbol" = String, Path, description = SYMBOL_PARAM, max_length = 40)),
    request_body(content = Limits, content_type = "application/json"),
    responses(
        (status = 200, description = "The instrument's risk settings now.", body = InstrumentRisk),
        (status = 400, description = "Invalid fields (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Limits the core refuses (`invalid_risk_config`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_instrument_limits(
    State(state): State<AppState>,
    _caller: AdminCaller<RiskWrite>,
    Path(symbol): Path<String>,
    ApiJson(body): ApiJson<Limits>,
) -> Result<Json<InstrumentRisk>, ApiError> {
    crate::audit::action(
        "admin.risk_instrument_limits",
        serde_json::json!({ "symbol": crate::audit::short(&symbol), "limits": &body }),
    );
    let (inst, core) = instrument(&state, &symbol)?;
    let limits = body.to_core(&inst)?;
    run(
        &state,
        Command::SetInstrumentLimits {
            instrument: core,
            limits,
            ts: trading::now_ts(),
        },
    )
    .await?;
    Ok(Json(risk_view(&state, &inst, &core)?))
}

/// Configure an instrument's circuit breaker (scope `risk:write`).
#[utoipa::path(
    put, path = "/admin/v1/instruments/{symbol}/circuit-breaker", tag = "admin-risk", operation_id = "setCircuitBreaker",
    security(("admin_key" = ["risk:write"])),
    params(("symbol" = String, Path, description = SYMBOL_PARAM, max_length = 40)),
    request_body(content = Breaker, content_type = "application/json"),
    responses(
        (status = 200, description = "The instrument's risk settings now.", body = InstrumentRisk),
        (status = 400, description = "Invalid fields (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A breaker the core refuses (`invalid_risk_config`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_circuit_breaker(
    State(state): State<AppState>,
    _caller: AdminCaller<RiskWrite>,
    Path(symbol): Path<String>,
    ApiJson(body): ApiJson<Breaker>,
) -> Result<Json<InstrumentRisk>, ApiError> {
    crate::audit::action(
        "admin.risk_circuit_breaker",
        serde_json::json!({ "symbol": crate::audit::short(&symbol), "breaker": &body }),
    );
    let (inst, core) = instrument(&state, &symbol)?;
    let breaker = Some(body.to_core()?);
    run(
        &state,
        Command::SetCircuitBreaker {
            instrument: core,
            breaker,
            ts: trading::now_ts(),
        },
    )
    .await?;
    Ok(Json(risk_view(&state, &inst, &core)?))
}

/// Remove an instrument's circuit breaker (scope `risk:write`).
#[utoipa::path(
    delete, path = "/admin/v1/instruments/{symbol}/circuit-breaker", tag = "admin-risk", operation_id = "removeCircuitBreaker",
    security(("admin_key" = ["risk:write"])),
    params(("symbol" = String, Path, description = SYMBOL_PARAM, max_length = 40)),
    responses(
        (status = 200, description = "The instrument's risk settings now.", body = InstrumentRisk),
        (status = 400, description = "Malformed symbol (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn remove_circuit_breaker(
    State(state): State<AppState>,
    _caller: AdminCaller<RiskWrite>,
    Path(symbol): Path<String>,
) -> Result<Json<InstrumentRisk>, ApiError> {
    crate::audit::action(
        "admin.risk_circuit_breaker",
        serde_json::json!({ "symbol": crate::audit::short(&symbol), "breaker": null }),
    );
    let (inst, core) = instrument(&state, &symbol)?;
    run(
        &state,
        Command::SetCircuitBreaker {
            instrument: core,
            breaker: None,
            ts: trading::now_ts(),
        },
    )
    .await?;
    Ok(Json(risk_view(&state, &inst, &core)?))
}

/// Put an instrument into a market-maker-protection group, or out of it (scope
/// `risk:write`).
#[utoipa::path(
    put, path = "/admin/v1/instruments/{symbol}/mmp-group", tag = "admin-risk", operation_id = "setMmpGroup",
    security(("admin_key" = ["risk:write"])),
    params(("symbol" = String, Path, description = SYMBOL_PARAM, max_length = 40)),
    request_body(content = MmpGroup, content_type = "application/json"),
    responses(
        (status = 200, description = "The instrument's risk settings now.", body = InstrumentRisk),
        (status = 400, description = "Invalid fields (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_mmp_group(
    State(state): State<AppState>,
    _caller: AdminCaller<RiskWrite>,
    Path(symbol): Path<String>,
    ApiJson(body): ApiJson<MmpGroup>,
) -> Result<Json<InstrumentRisk>, ApiError> {
    crate::audit::action(
        "admin.risk_mmp_group",
        serde_json::json!({ "symbol": crate::audit::short(&symbol) }),
    );
    let (inst, core) = instrument(&state, &symbol)?;
    let group = body
        .group
        .as_deref()
        .map(|g| mmp_group(g, "/group"))
        .transpose()?;
    run(
        &state,
        Command::SetInstrumentGroup {
            instrument: core,
            group,
            ts: trading::now_ts(),
        },
    )
    .await?;
    Ok(Json(risk_view(&state, &inst, &core)?))
}

/// An MMP group name as the core's asset code.
pub(crate) fn mmp_group(text: &str, pointer: &str) -> Result<core::Asset, ApiError> {
    bourse_types::Asset::parse(text)
        .ok()
        .and_then(|a| core::Asset::parse(a.as_str()))
        .ok_or_else(|| {
            invalid(
                pointer,
                "invalid_group",
                "must be an asset code such as \"BTC\"",
            )
        })
}

/// Set an option's greeks from the pricing service (scope `risk:write`); market-maker
/// protection counts delta and vega with them.
#[utoipa::path(
    put, path = "/admin/v1/instruments/{symbol}/greeks", tag = "admin-risk", operation_id = "setGreeks",
    security(("admin_key" = ["risk:write"])),
    params(("symbol" = String, Path, description = SYMBOL_PARAM, max_length = 40)),
    request_body(content = Greeks, content_type = "application/json"),
    responses(
        (status = 200, description = "The instrument's risk settings now.", body = InstrumentRisk),
        (status = 400, description = "Invalid fields (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not an option (`wrong_instrument_kind`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_greeks(
    State(state): State<AppState>,
    _caller: AdminCaller<RiskWrite>,
    Path(symbol): Path<String>,
    ApiJson(body): ApiJson<Greeks>,
) -> Result<Json<InstrumentRisk>, ApiError> {
    crate::audit::action(
        "admin.risk_greeks",
        serde_json::json!({ "symbol": crate::audit::short(&symbol) }),
    );
    let (inst, core) = instrument(&state, &symbol)?;
    let delta_e6 = signed_e6(&body.delta, "/delta", 1_000_000)?;
    let vega_e6 = signed_e6(&body.vega, "/vega", 1_000_000_000_000)?;
    run(
        &state,
        Command::SetGreeks {
            instrument: core,
            delta_e6,
            vega_e6,
            ts: trading::now_ts(),
        },
    )
    .await?;
    Ok(Json(risk_view(&state, &inst, &core)?))
}

/// The exchange-wide kill switch.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitch {
    /// On: every new order and amend on the exchange is refused (`kill_switch`);
    /// cancels work. Off: trading resumes.
    pub active: bool,
    /// On activation, also cancel every resting order of every account.
    #[serde(default)]
    pub cancel_resting: bool,
}

/// The exchange-wide kill switch's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct KillSwitchState {
    /// Whether it is on.
    pub active: bool,
}

/// The exchange-wide kill switch (scope `risk:read`).
#[utoipa::path(
    get, path = "/admin/v1/kill-switch", tag = "admin-risk", operation_id = "getKillSwitch",
    security(("admin_key" = ["risk:read"])),
    responses(
        (status = 200, description = "Whether it is on.", body = KillSwitchState),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:read` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_kill_switch(
    State(state): State<AppState>,
    _caller: AdminCaller<RiskRead>,
) -> Result<Json<KillSwitchState>, ApiError> {
    let active = state
        .trading
        .engine
        .read(|ex| ex.kill_switch_active())
        .map_err(engine_error)?;
    Ok(Json(KillSwitchState { active }))
}

/// Turn the exchange-wide kill switch on or off (scope `risk:write`).
#[utoipa::path(
    post, path = "/admin/v1/kill-switch", tag = "admin-risk", operation_id = "setKillSwitch",
    security(("admin_key" = ["risk:write"])),
    request_body(content = KillSwitch, content_type = "application/json"),
    responses(
        (status = 200, description = "Its state now.", body = KillSwitchState),
        (status = 400, description = "Invalid fields (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Turning off a switch that is off (`kill_switch_unchanged`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_kill_switch(
    State(state): State<AppState>,
    caller: AdminCaller<RiskWrite>,
    ApiJson(body): ApiJson<KillSwitch>,
) -> Result<Json<KillSwitchState>, ApiError> {
    crate::audit::action("admin.risk_kill_switch", serde_json::json!(&body));
    run(
        &state,
        Command::SetKillSwitch {
            active: body.active,
            cancel_resting: body.cancel_resting,
            ts: trading::now_ts(),
        },
    )
    .await?;
    tracing::warn!(admin_key = %caller.key_id, active = body.active, cancel_resting = body.cancel_resting, "exchange kill switch changed");
    Ok(Json(KillSwitchState {
        active: body.active,
    }))
}

/// A user's trading account, for a user that exists.
async fn user_account(state: &AppState, user_id: &str) -> Result<AccountId, ApiError> {
    super::check_path_id(user_id)?;
    if state.store.get_user(user_id).await?.is_none() {
        return Err(ApiError::not_found("user"));
    }
    state.trading.account(&state.store, user_id).await
}

/// A user's kill switch.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountKillSwitch {
    /// On: cancels every open order of the account and refuses new orders and amends
    /// (`account_kill_switch`) until turned off. A switch an admin turned on only an
    /// admin can turn off.
    pub active: bool,
}

/// Turn a user's kill switch on or off (scope `risk:write`).
#[utoipa::path(
    post, path = "/admin/v1/users/{id}/kill-switch", tag = "admin-risk", operation_id = "setUserKillSwitch",
    security(("admin_key" = ["risk:write"])),
    params(("id" = String, Path, description = "User id.", max_length = 64)),
    request_body(content = AccountKillSwitch, content_type = "application/json"),
    responses(
        (status = 204, description = "Done."),
        (status = 400, description = "Invalid fields (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Turning off a switch that is off (`kill_switch_unchanged`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The user has no trading account yet (`unknown_account`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_user_kill_switch(
    State(state): State<AppState>,
    caller: AdminCaller<RiskWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AccountKillSwitch>,
) -> Result<StatusCode, ApiError> {
    crate::audit::action(
        "admin.risk_user_kill_switch",
        serde_json::json!({ "user_id": crate::audit::short(&id), "active": body.active }),
    );
    let account = user_account(&state, &id).await?;
    run(
        &state,
        Command::SetAccountKillSwitch {
            account,
            active: body.active,
            issued_by: Issuer::Admin,
            ts: trading::now_ts(),
        },
    )
    .await?;
    tracing::warn!(admin_key = %caller.key_id, user_id = %id, active = body.active, "account kill switch changed");
    Ok(StatusCode::NO_CONTENT)
}

/// Which override: the user's own, or the one for orders through an OAuth client.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverrideParams {
    /// The OAuth client whose orders for this user the override covers; absent: all
    /// of the user's orders.
    #[param(max_length = 64)]
    pub client_id: Option<String>,
}

fn client(p: &OverrideParams) -> Result<Option<ClientId>, ApiError> {
    p.client_id
        .as_deref()
        .map(|c| {
            ClientId::parse(c).ok_or_else(|| {
                invalid(
                    "/query/client_id",
                    "invalid_client_id",
                    "1 to 64 printable ASCII characters",
                )
            })
        })
        .transpose()
}

/// Set a user's override of an instrument's limits, or the override for orders the
/// user sends through one OAuth client (scope `risk:write`). It can only tighten.
#[utoipa::path(
    put, path = "/admin/v1/users/{id}/limits/{symbol}", tag = "admin-risk", operation_id = "setUserLimits",
    security(("admin_key" = ["risk:write"])),
    params(
        ("id" = String, Path, description = "User id.", max_length = 64),
        ("symbol" = String, Path, description = SYMBOL_PARAM, max_length = 40),
        OverrideParams,
    ),
    request_body(content = Limits, content_type = "application/json"),
    responses(
        (status = 204, description = "Set."),
        (status = 400, description = "Invalid fields (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user or instrument.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Limits the core refuses (`invalid_risk_config`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_user_limits(
    State(state): State<AppState>,
    _caller: AdminCaller<RiskWrite>,
    Path((id, symbol)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<OverrideParams>,
    ApiJson(body): ApiJson<Limits>,
) -> Result<StatusCode, ApiError> {
    crate::audit::action(
        "admin.risk_user_limits",
        serde_json::json!({
            "user_id": crate::audit::short(&id),
            "symbol": crate::audit::short(&symbol),
            "client_id": p.client_id.as_deref().map(crate::audit::short),
            "limits": &body,
        }),
    );
    let client = client(&p)?;
    let (inst, core) = instrument(&state, &symbol)?;
    let limits = body.to_core(&inst)?;
    let account = user_account(&state, &id).await?;
    set_override(&state, account, client, core, Some(limits)).await
}

/// Remove a user's override (scope `risk:write`).
#[utoipa::path(
    delete, path = "/admin/v1/users/{id}/limits/{symbol}", tag = "admin-risk", operation_id = "removeUserLimits",
    security(("admin_key" = ["risk:write"])),
    params(
        ("id" = String, Path, description = "User id.", max_length = 64),
        ("symbol" = String, Path, description = SYMBOL_PARAM, max_length = 40),
        OverrideParams,
    ),
    responses(
        (status = 204, description = "Removed (or there was none)."),
        (status = 400, description = "Invalid parameters (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user or instrument.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn remove_user_limits(
    State(state): State<AppState>,
    _caller: AdminCaller<RiskWrite>,
    Path((id, symbol)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<OverrideParams>,
) -> Result<StatusCode, ApiError> {
    crate::audit::action(
        "admin.risk_user_limits",
        serde_json::json!({
            "user_id": crate::audit::short(&id),
            "symbol": crate::audit::short(&symbol),
            "client_id": p.client_id.as_deref().map(crate::audit::short),
            "limits": null,
        }),
    );
    let client = client(&p)?;
    let (_, core) = instrument(&state, &symbol)?;
    let account = user_account(&state, &id).await?;
    set_override(&state, account, client, core, None).await
}

async fn set_override(
    state: &AppState,
    account: AccountId,
    client: Option<ClientId>,
    instrument: core::Symbol,
    limits: Option<OrderLimits>,
) -> Result<StatusCode, ApiError> {
    let ts = trading::now_ts();
    let command = match client {
        None => Command::SetAccountLimits {
            account,
            instrument,
            limits,
            ts,
        },
        Some(client) => Command::SetClientLimits {
            account,
            client,
            instrument,
            limits,
            ts,
        },
    };
    let outcome = state.trading.submit(command, Meta::default()).await?;
    match outcome.rejection() {
        None => Ok(StatusCode::NO_CONTENT),
        Some(RejectReason::UnknownInstrument) => Err(ApiError::not_found("instrument")),
        Some(reason) => Err(rejection(reason)),
    }
}

/// A user's risk state (scope `risk:read`): kill switch, dead man's switch, MMP and
/// limit overrides.
#[utoipa::path(
    get, path = "/admin/v1/users/{id}/risk", tag = "admin-risk", operation_id = "getUserRisk",
    security(("admin_key" = ["risk:read"])),
    params(("id" = String, Path, description = "User id.", max_length = 64)),
    responses(
        (status = 200, description = "The user's risk state.", body = super::risk::AccountRisk),
        (status = 400, description = "Malformed id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:read` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_user_risk(
    State(state): State<AppState>,
    _caller: AdminCaller<RiskRead>,
    Path(id): Path<String>,
) -> Result<Json<super::risk::AccountRisk>, ApiError> {
    let account = user_account(&state, &id).await?;
    Ok(Json(super::risk::account_risk(&state, account)?))
}

/// The insurance fund: the account that takes over what a liquidation's order could
/// not close, at the bankruptcy price, and covers a liquidated account's negative cash.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InsuranceFund {
    /// The user whose trading account is the fund (it must have received a deposit);
    /// `null` names none, which turns liquidation off.
    pub user_id: Option<String>,
}

/// Name the insurance fund (scope `risk:write`). Liquidation runs only while a fund is
/// named; see docs/risk.md, "Liquidation".
#[utoipa::path(
    put, path = "/admin/v1/insurance-fund", tag = "admin-risk", operation_id = "setInsuranceFund",
    security(("admin_key" = ["risk:write"])),
    request_body(content = InsuranceFund, content_type = "application/json"),
    responses(
        (status = 204, description = "Set."),
        (status = 400, description = "Invalid fields (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `risk:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The user has no trading account yet (`unknown_account`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_insurance_fund(
    State(state): State<AppState>,
    caller: AdminCaller<RiskWrite>,
    ApiJson(body): ApiJson<InsuranceFund>,
) -> Result<StatusCode, ApiError> {
    crate::audit::action(
        "admin.risk_insurance_fund",
        serde_json::json!({ "user_id": body.user_id.as_deref().map(crate::audit::short) }),
    );
    let account = match body.user_id.as_deref() {
        Some(id) => Some(user_account(&state, id).await?),
        None => None,
    };
    run(
        &state,
        Command::SetInsuranceFund {
            account,
            ts: trading::now_ts(),
        },
    )
    .await?;
    tracing::warn!(admin_key = %caller.key_id, user_id = ?body.user_id, "insurance fund set");
    Ok(StatusCode::NO_CONTENT)
}
