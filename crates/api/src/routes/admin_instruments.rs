//! Admin: create instruments (in the catalog and the core), halt and resume them, set
//! their mark and index prices, apply funding and settle expiries.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bourse_engine::Meta;
use bourse_engine::core::{Command, EventKind, RejectReason, StatusChange};
use bourse_types::decimal::parse_decimal;
use bourse_types::{
    Asset, Decimal, Instrument, InstrumentError, InstrumentKind, InstrumentStatus, OptionRight,
    Symbol,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::admin::{AdminCaller, InstrumentsWrite};
use crate::error::{ApiError, FieldError, Problem};
use crate::json::ApiJson;
use crate::trading::{self, Rates, core_spec, engine_error, money_text, price_text, rejection};

/// A new instrument. Decimal fields are strings; nothing is rounded.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInstrument {
    /// Unique symbol, `^[A-Z][A-Z0-9-]{0,39}$`.
    #[schema(example = "SOL-PERP")]
    pub symbol: String,
    /// Contract kind.
    pub kind: InstrumentKind,
    /// Underlying asset code.
    #[schema(example = "SOL")]
    pub base_asset: String,
    /// Quote asset code.
    #[schema(example = "USD")]
    pub quote_asset: String,
    /// Settlement asset code.
    #[schema(example = "USDC")]
    pub settlement_asset: String,
    /// Price increment, decimal string > 0.
    #[schema(example = "0.01")]
    pub tick_size: String,
    /// Size increment, decimal string > 0.
    #[schema(example = "0.1")]
    pub lot_size: String,
    /// Smallest order, a multiple of `lot_size`.
    #[schema(example = "0.1")]
    pub min_order_size: String,
    /// Largest order, a multiple of `lot_size`.
    #[schema(example = "100000")]
    pub max_order_size: String,
    /// Base amount per contract, decimal string > 0.
    #[schema(example = "1")]
    pub contract_multiplier: String,
    /// Expiry, RFC 3339 (futures and options).
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expiry: Option<String>,
    /// Strike (options), decimal string > 0.
    #[serde(default)]
    pub strike: Option<String>,
    /// Call or put (options).
    #[serde(default)]
    pub option_right: Option<OptionRight>,
    /// Initial margin rate as a decimal fraction of notional (`"0.1"` = 10%; options:
    /// the 15% of Deribit's short formula). Default 0.1, options 0.15.
    #[serde(default)]
    #[schema(example = "0.1")]
    pub initial_margin: Option<String>,
    /// Maintenance margin rate, a fraction > 0 and at most `initial_margin`. Default
    /// 0.05, options 0.075.
    #[serde(default)]
    #[schema(example = "0.05")]
    pub maintenance_margin: Option<String>,
    /// Maker fee rate, a fraction of the trade's value, at most 0.1. Default 0.0002.
    #[serde(default)]
    #[schema(example = "0.0002")]
    pub maker_fee: Option<String>,
    /// Taker fee rate, at most 0.1. Default 0.0005.
    #[serde(default)]
    #[schema(example = "0.0005")]
    pub taker_fee: Option<String>,
}

/// Whole parts per million of a decimal fraction in `0..=max_ppm` (no rounding: at most
/// 6 decimals).
fn ppm(text: &str, pointer: &str, max_ppm: u32) -> Result<u32, FieldError> {
    let d = parse_decimal(text).map_err(|e| field(pointer, "invalid_decimal", e.to_string()))?;
    let scaled = d * Decimal::from(1_000_000);
    if !scaled.fract().is_zero() {
        return Err(field(pointer, "too_many_decimals", "at most 6 decimals"));
    }
    let max = Decimal::from(max_ppm) / Decimal::from(1_000_000);
    if d.is_sign_negative() || scaled > Decimal::from(max_ppm) {
        return Err(field(
            pointer,
            "out_of_range",
            format!("must be between 0 and {}", max.normalize()),
        ));
    }
    u32::try_from(scaled.trunc().mantissa() / 10i128.pow(scaled.trunc().scale()))
        .map_err(|_| field(pointer, "out_of_range", "out of range"))
}

/// The rates of a new instrument: the given ones over the defaults for its kind,
/// checked the way the core checks them.
fn rates(n: &NewInstrument) -> Result<Rates, ApiError> {
    let mut r = Rates::default_for(n.kind);
    let mut errors = Vec::new();
    let mut take = |v: &Option<String>, pointer: &str, max: u32, out: &mut u32| {
        if let Some(t) = v {
            match ppm(t, pointer, max) {
                Ok(x) => *out = x,
                Err(e) => errors.push(e),
            }
        }
    };
    take(
        &n.initial_margin,
        "/initial_margin",
        1_000_000,
        &mut r.initial_margin_ppm,
    );
    take(
        &n.maintenance_margin,
        "/maintenance_margin",
        1_000_000,
        &mut r.maintenance_margin_ppm,
    );
    take(&n.maker_fee, "/maker_fee", 100_000, &mut r.maker_fee_ppm);
    take(&n.taker_fee, "/taker_fee", 100_000, &mut r.taker_fee_ppm);
    if errors.is_empty() {
        if r.maintenance_margin_ppm == 0 {
            errors.push(field(
                "/maintenance_margin",
                "out_of_range",
                "must be greater than zero",
            ));
        } else if r.maintenance_margin_ppm > r.initial_margin_ppm {
            errors.push(field(
                "/maintenance_margin",
                "out_of_range",
                "must not exceed initial_margin",
            ));
        }
        // An option's short margin floor (10% of the underlying) is part of its initial
        // margin.
        if n.kind == InstrumentKind::Option && r.initial_margin_ppm < 100_000 {
            errors.push(field(
                "/initial_margin",
                "out_of_range",
                "an option's initial margin is at least 0.1",
            ));
        }
    }
    if errors.is_empty() {
        Ok(r)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// The field a [`core_spec`] message is about.
fn spec_pointer(message: &str) -> &'static str {
    if message.starts_with("symbol") {
        "/symbol"
    } else if message.starts_with("tick_size must") {
        "/tick_size"
    } else if message.starts_with("lot_size must") {
        "/lot_size"
    } else if message.contains("contract_multiplier") || message.starts_with("multiplier") {
        "/contract_multiplier"
    } else if message.contains("expiry") {
        "/expiry"
    } else if message.contains("strike") {
        "/strike"
    } else {
        "/tick_size"
    }
}

fn field(pointer: &str, code: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        pointer: pointer.to_owned(),
        code: code.to_owned(),
        message: message.into(),
    }
}

impl TryFrom<NewInstrument> for Instrument {
    type Error = ApiError;

    fn try_from(n: NewInstrument) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let symbol = Symbol::parse(&n.symbol)
            .map_err(|e| errors.push(field("/symbol", "invalid_symbol", e.to_string())))
            .ok();
        let mut asset = |name: &str, v: &str| {
            Asset::parse(v)
                .map_err(|e| {
                    errors.push(field(&format!("/{name}"), "invalid_asset", e.to_string()))
                })
                .ok()
        };
        let base = asset("base_asset", &n.base_asset);
        let quote = asset("quote_asset", &n.quote_asset);
        let settle = asset("settlement_asset", &n.settlement_asset);
        let mut dec = |name: &str, v: &str| {
            parse_decimal(v)
                .map_err(|e| {
                    errors.push(field(&format!("/{name}"), "invalid_decimal", e.to_string()))
                })
                .ok()
        };
        let tick = dec("tick_size", &n.tick_size);
        let lot = dec("lot_size", &n.lot_size);
        let min = dec("min_order_size", &n.min_order_size);
        let max = dec("max_order_size", &n.max_order_size);
        let mult = dec("contract_multiplier", &n.contract_multiplier);
        let strike = n.strike.as_deref().map(|s| dec("strike", s));
        let expiry = n.expiry.as_deref().map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    errors.push(field(
                        "/expiry",
                        "invalid_timestamp",
                        "expiry must be an RFC 3339 timestamp",
                    ))
                })
                .ok()
        });
        let (
            Some(symbol),
            Some(base_asset),
            Some(quote_asset),
            Some(settlement_asset),
            Some(tick_size),
            Some(lot_size),
            Some(min_order_size),
            Some(max_order_size),
            Some(contract_multiplier),
        ) = (symbol, base, quote, settle, tick, lot, min, max, mult)
        else {
            return Err(ApiError::validation(errors));
        };
        let strike: Option<Decimal> = match strike {
            Some(Some(k)) => Some(k),
            Some(None) => return Err(ApiError::validation(errors)),
            None => None,
        };
        let expiry = match expiry {
            Some(Some(t)) => Some(t),
            Some(None) => return Err(ApiError::validation(errors)),
            None => None,
        };
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Instrument {
            symbol,
            kind: n.kind,
            base_asset,
            quote_asset,
            settlement_asset,
            tick_size,
            lot_size,
            min_order_size,
            max_order_size,
            contract_multiplier,
            expiry,
            strike,
            option_right: n.option_right,
            status: InstrumentStatus::Active,
        }
        .validate()
        .map_err(|e| {
            let (pointer, code) = match &e {
                InstrumentError::NotPositive(name) => (format!("/{name}"), "not_positive"),
                InstrumentError::SizeBounds => ("/min_order_size".to_owned(), "size_bounds"),
                InstrumentError::KindMismatch(_) => ("/kind".to_owned(), "kind_mismatch"),
                InstrumentError::InvalidAsset => ("/base_asset".to_owned(), "invalid_asset"),
            };
            ApiError::validation(vec![field(&pointer, code, e.to_string())])
        })
    }
}

/// Create an instrument (scope `instruments:write`).
#[utoipa::path(
    post, path = "/admin/v1/instruments", tag = "admin", operation_id = "createInstrument",
    request_body(content = NewInstrument, content_type = "application/json"),
    security(("admin_key" = ["instruments:write"])),
    responses(
        (status = 201, description = "Created; `Location` names it.", body = Instrument),
        (status = 400, description = "Malformed JSON or invalid fields (`malformed_json`, `validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown or revoked admin key (`unauthorized`).", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `instruments:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The symbol exists (`conflict`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the limit (`payload_too_large`).", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON (`unsupported_media_type`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: AdminCaller<InstrumentsWrite>,
    ApiJson(mut body): ApiJson<NewInstrument>,
) -> Result<Response, ApiError> {
    crate::audit::action(
        "admin.instrument_create",
        serde_json::json!({ "symbol": crate::audit::short(&body.symbol) }),
    );
    let rates = rates(&body);
    // Keep the instrument's own field errors first: they are usually the cause.
    body.initial_margin = None;
    body.maintenance_margin = None;
    body.maker_fee = None;
    body.taker_fee = None;
    let instrument = Instrument::try_from(body)?;
    let rates = rates?;
    let spec = core_spec(&instrument, rates).map_err(|message| {
        ApiError::validation(vec![field(
            spec_pointer(message),
            "not_representable",
            message,
        )])
    })?;
    state.store.insert_instrument(&instrument).await?;
    let outcome = state
        .trading
        .submit(
            Command::CreateInstrument {
                spec,
                ts: trading::now_ts(),
            },
            Meta::default(),
        )
        .await?;
    match outcome.rejection() {
        // Listed in the core already (e.g. created at start from the catalog).
        None | Some(RejectReason::DuplicateInstrument) => {}
        Some(reason) => {
            tracing::error!(symbol = %instrument.symbol, %reason, "the core refused an instrument the catalog accepted");
            return Err(rejection(reason));
        }
    }
    state.catalog.upsert(instrument.clone());
    tracing::info!(admin_key = %caller.key_id, symbol = %instrument.symbol, "instrument created");
    let location = HeaderValue::from_str(&format!("/v1/instruments/{}", instrument.symbol))
        .map_err(|_| ApiError::internal())?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(instrument),
    )
        .into_response())
}

// ------------------------------------------------------------- core operations

/// An instrument's state in the core after an operation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstrumentState {
    /// Symbol.
    #[schema(example = "BTC-PERP")]
    pub symbol: String,
    /// `active`, `halted` or `expired`.
    #[schema(example = "active")]
    pub status: String,
    /// Mark price (decimal string), once set.
    pub mark: Option<String>,
    /// Index price (decimal string), once set.
    pub index: Option<String>,
    /// The funding applied (only in the answer to `/funding`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funding: Option<FundingResult>,
    /// The settlement price (only in the answer to `/settle`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_price: Option<String>,
}

/// One funding payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct FundingResult {
    /// The rate as a decimal fraction; positive: longs pay shorts.
    #[schema(example = "0.0001")]
    pub rate: String,
    /// The mark price it was applied at.
    pub mark: String,
    /// What longs paid in total, in the settlement asset (negative: received).
    pub paid_by_longs: String,
    /// Rounding dust credited to the fee account.
    pub dust: String,
}

/// The catalog instrument and its core symbol.
pub(crate) fn lookup(
    state: &AppState,
    symbol: &str,
) -> Result<(Instrument, bourse_engine::core::Symbol), ApiError> {
    let s = Symbol::parse(symbol).map_err(|_| {
        ApiError::validation(vec![field(
            "/path/symbol",
            "invalid_symbol",
            "not a valid symbol",
        )])
    })?;
    let inst = state
        .catalog
        .get(&s)
        .ok_or_else(|| ApiError::not_found("instrument"))?;
    let core = trading::core_symbol(&inst.symbol)?;
    Ok((inst, core))
}

/// Reads the instrument back from the core.
fn read_back(
    state: &AppState,
    inst: &Instrument,
    core: &bourse_engine::core::Symbol,
) -> Result<InstrumentState, ApiError> {
    let view = state
        .trading
        .engine
        .read(|ex| ex.instrument(core))
        .map_err(engine_error)?
        .ok_or_else(|| ApiError::not_found("instrument"))?;
    Ok(InstrumentState {
        symbol: inst.symbol.as_str().to_owned(),
        status: view.status.code().to_owned(),
        mark: view.mark.map(|p| price_text(inst, p.0)),
        index: view.index.map(|p| price_text(inst, p.0)),
        funding: None,
        settlement_price: None,
    })
}

/// Submits an operator command; a refusal becomes its problem.
pub(crate) async fn run(
    state: &AppState,
    command: Command,
) -> Result<bourse_engine::Outcome, ApiError> {
    let outcome = state.trading.submit(command, Meta::default()).await?;
    match outcome.rejection() {
        Some(reason) => Err(rejection(reason)),
        None => Ok(outcome),
    }
}

async fn set_status(
    state: &AppState,
    caller: &str,
    symbol: &str,
    change: StatusChange,
) -> Result<Json<InstrumentState>, ApiError> {
    let (inst, core) = lookup(state, symbol)?;
    run(
        state,
        Command::SetInstrumentStatus {
            instrument: core,
            change,
            ts: trading::now_ts(),
        },
    )
    .await?;
    tracing::info!(admin_key = %caller, symbol = %inst.symbol, ?change, "instrument status changed");
    let view = read_back(state, &inst, &core)?;
    sync_catalog(state, inst, &view.status).await?;
    Ok(Json(view))
}

/// Writes the core's new status to the store and this node's catalog, so that
/// `GET /v1/instruments` shows it (other nodes pick it up on their next refresh).
async fn sync_catalog(state: &AppState, inst: Instrument, status: &str) -> Result<(), ApiError> {
    let Some(status) = bourse_types::InstrumentStatus::parse(status) else {
        return Err(ApiError::internal());
    };
    state
        .store
        .set_instrument_status(&inst.symbol, status)
        .await?;
    state.catalog.upsert(Instrument { status, ..inst });
    Ok(())
}

/// Halt trading on an instrument (scope `instruments:write`): new orders and amends are
/// refused, cancels work, resting orders stay.
#[utoipa::path(
    post, path = "/admin/v1/instruments/{symbol}/halt", tag = "admin", operation_id = "haltInstrument",
    security(("admin_key" = ["instruments:write"])),
    params(("symbol" = String, Path, description = "Instrument symbol.", max_length = 40)),
    responses(
        (status = 200, description = "Halted; the instrument as the core has it now.", body = InstrumentState),
        (status = 400, description = "Malformed symbol (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `instruments:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument (`not_found`, `unknown_instrument`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not active (`invalid_status_transition`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn halt(
    State(state): State<AppState>,
    caller: AdminCaller<InstrumentsWrite>,
    Path(symbol): Path<String>,
) -> Result<Json<InstrumentState>, ApiError> {
    crate::audit::action(
        "admin.instrument_halt",
        serde_json::json!({ "symbol": crate::audit::short(&symbol) }),
    );
    set_status(&state, &caller.key_id, &symbol, StatusChange::Halt).await
}

/// Resume trading on a halted instrument (scope `instruments:write`).
#[utoipa::path(
    post, path = "/admin/v1/instruments/{symbol}/resume", tag = "admin", operation_id = "resumeInstrument",
    security(("admin_key" = ["instruments:write"])),
    params(("symbol" = String, Path, description = "Instrument symbol.", max_length = 40)),
    responses(
        (status = 200, description = "Active again; the instrument as the core has it now.", body = InstrumentState),
        (status = 400, description = "Malformed symbol (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `instruments:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument (`not_found`, `unknown_instrument`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not halted (`invalid_status_transition`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resume(
    State(state): State<AppState>,
    caller: AdminCaller<InstrumentsWrite>,
    Path(symbol): Path<String>,
) -> Result<Json<InstrumentState>, ApiError> {
    crate::audit::action(
        "admin.instrument_resume",
        serde_json::json!({ "symbol": crate::audit::short(&symbol) }),
    );
    set_status(&state, &caller.key_id, &symbol, StatusChange::Resume).await
}

/// New reference prices; at least one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPrices {
    /// Mark price (equity, margin, funding), a multiple of the tick size.
    #[serde(default)]
    #[schema(example = "50000.5")]
    pub mark: Option<String>,
    /// Index price (settlement, option margin), a multiple of the tick size.
    #[serde(default)]
    #[schema(example = "50001")]
    pub index: Option<String>,
}

/// Set an instrument's mark and/or index price (scope `instruments:write`).
#[utoipa::path(
    post, path = "/admin/v1/instruments/{symbol}/prices", tag = "admin", operation_id = "setInstrumentPrices",
    security(("admin_key" = ["instruments:write"])),
    params(("symbol" = String, Path, description = "Instrument symbol.", max_length = 40)),
    request_body(content = SetPrices, content_type = "application/json"),
    responses(
        (status = 200, description = "Set; the instrument as the core has it now.", body = InstrumentState),
        (status = 400, description = "Neither price given (`nothing_to_change`), a price off tick or not > 0 (`validation_failed`), or malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `instruments:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument (`not_found`, `unknown_instrument`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The instrument has expired (`instrument_expired`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_prices(
    State(state): State<AppState>,
    caller: AdminCaller<InstrumentsWrite>,
    Path(symbol): Path<String>,
    ApiJson(body): ApiJson<SetPrices>,
) -> Result<Json<InstrumentState>, ApiError> {
    crate::audit::action(
        "admin.instrument_prices",
        serde_json::json!({
            "symbol": crate::audit::short(&symbol),
            "mark": body.mark.as_deref().map(crate::audit::short),
            "index": body.index.as_deref().map(crate::audit::short),
        }),
    );
    let (inst, core) = lookup(&state, &symbol)?;
    if body.mark.is_none() && body.index.is_none() {
        return Err(ApiError::validation(vec![field(
            "",
            "nothing_to_change",
            "give mark, index or both",
        )]));
    }
    let mark = body
        .mark
        .as_deref()
        .map(|p| trading::price_ticks(&inst, p, "/mark"))
        .transpose()?;
    let index = body
        .index
        .as_deref()
        .map(|p| trading::price_ticks(&inst, p, "/index"))
        .transpose()?;
    let ts = trading::now_ts();
    if let Some(price) = mark {
        run(
            &state,
            Command::SetMarkPrice {
                instrument: core,
                price,
                ts,
            },
        )
        .await?;
    }
    if let Some(price) = index {
        run(
            &state,
            Command::SetIndexPrice {
                instrument: core,
                price,
                ts,
            },
        )
        .await?;
    }
    tracing::info!(admin_key = %caller.key_id, symbol = %inst.symbol, "instrument prices set");
    Ok(Json(read_back(&state, &inst, &core)?))
}

/// One funding payment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyFunding {
    /// The rate as a decimal fraction of the position's value at the mark, at most 9
    /// decimals and at most 1 in size; positive: longs pay shorts.
    #[schema(example = "0.0001")]
    pub rate: String,
}

/// A decimal fraction in `-1..=1` as exact parts per billion.
fn ppb(text: &str) -> Result<i64, ApiError> {
    let bad = |code: &str, message: &str| ApiError::validation(vec![field("/rate", code, message)]);
    let d = parse_decimal(text).map_err(|_| {
        bad(
            "invalid_decimal",
            "must be a decimal string such as \"0.0001\" (no exponent)",
        )
    })?;
    if d.abs() > Decimal::ONE {
        return Err(bad("out_of_range", "must be between -1 and 1"));
    }
    let scaled = d * Decimal::from(1_000_000_000);
    if !scaled.fract().is_zero() {
        return Err(bad("too_many_decimals", "at most 9 decimals"));
    }
    i64::try_from(scaled.trunc().mantissa() / 10i128.pow(scaled.trunc().scale()))
        .map_err(|_| bad("out_of_range", "must be between -1 and 1"))
}

/// Apply one funding payment on a perpetual at its mark price (scope
/// `instruments:write`).
#[utoipa::path(
    post, path = "/admin/v1/instruments/{symbol}/funding", tag = "admin", operation_id = "applyFunding",
    security(("admin_key" = ["instruments:write"])),
    params(("symbol" = String, Path, description = "Instrument symbol.", max_length = 40)),
    request_body(content = ApplyFunding, content_type = "application/json"),
    responses(
        (status = 200, description = "Applied to every position; `funding` says how much moved.", body = InstrumentState),
        (status = 400, description = "A rate that is not a decimal, above 1 in size or finer than 10^-9 (`validation_failed`), or malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `instruments:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument (`not_found`, `unknown_instrument`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a perpetual (`wrong_instrument_kind`), no mark price yet (`no_mark_price`), or expired.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn funding(
    State(state): State<AppState>,
    caller: AdminCaller<InstrumentsWrite>,
    Path(symbol): Path<String>,
    ApiJson(body): ApiJson<ApplyFunding>,
) -> Result<Json<InstrumentState>, ApiError> {
    crate::audit::action(
        "admin.instrument_funding",
        serde_json::json!({ "symbol": crate::audit::short(&symbol), "rate": crate::audit::short(&body.rate) }),
    );
    let (inst, core) = lookup(&state, &symbol)?;
    let rate_ppb = ppb(&body.rate)?;
    let outcome = run(
        &state,
        Command::ApplyFunding {
            instrument: core,
            rate_ppb,
            ts: trading::now_ts(),
        },
    )
    .await?;
    let mut view = read_back(&state, &inst, &core)?;
    view.funding = outcome.events.iter().find_map(|e| match &e.kind {
        EventKind::FundingApplied {
            rate_ppb,
            mark,
            paid_by_longs,
            dust,
            ..
        } => Some(FundingResult {
            rate: (Decimal::from(*rate_ppb) / Decimal::from(1_000_000_000))
                .normalize()
                .to_string(),
            mark: price_text(&inst, mark.0),
            paid_by_longs: money_text(*paid_by_longs),
            dust: money_text(*dust),
        }),
        _ => None,
    });
    tracing::info!(admin_key = %caller.key_id, symbol = %inst.symbol, rate_ppb, "funding applied");
    Ok(Json(view))
}

/// Settle a future or option in cash at its index price and expire it (scope
/// `instruments:write`); at or after its expiry.
#[utoipa::path(
    post, path = "/admin/v1/instruments/{symbol}/settle", tag = "admin", operation_id = "settleInstrument",
    security(("admin_key" = ["instruments:write"])),
    params(("symbol" = String, Path, description = "Instrument symbol.", max_length = 40)),
    responses(
        (status = 200, description = "Settled and expired; open orders canceled, positions closed.", body = InstrumentState),
        (status = 400, description = "Malformed symbol (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `instruments:write` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument (`not_found`, `unknown_instrument`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A perpetual (`wrong_instrument_kind`), before expiry (`not_yet_expired`), no index price (`no_index_price`), or already expired (`instrument_expired`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn settle(
    State(state): State<AppState>,
    caller: AdminCaller<InstrumentsWrite>,
    Path(symbol): Path<String>,
) -> Result<Json<InstrumentState>, ApiError> {
    crate::audit::action(
        "admin.instrument_settle",
        serde_json::json!({ "symbol": crate::audit::short(&symbol) }),
    );
    let (inst, core) = lookup(&state, &symbol)?;
    let outcome = run(
        &state,
        Command::SettleExpiry {
            instrument: core,
            ts: trading::now_ts(),
        },
    )
    .await?;
    let mut view = read_back(&state, &inst, &core)?;
    view.settlement_price = outcome.events.iter().find_map(|e| match &e.kind {
        EventKind::InstrumentSettled { price, .. } => Some(price_text(&inst, price.0)),
        _ => None,
    });
    tracing::info!(admin_key = %caller.key_id, symbol = %inst.symbol, "instrument settled");
    sync_catalog(&state, inst, &view.status).await?;
    Ok(Json(view))
}
