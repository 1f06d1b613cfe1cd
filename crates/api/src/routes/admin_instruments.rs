//! Admin: create instruments.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bourse_types::decimal::parse_decimal;
use bourse_types::{
    Asset, Decimal, Instrument, InstrumentError, InstrumentKind, InstrumentStatus, OptionRight,
    Symbol,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::admin::{AdminCaller, InstrumentsWrite};
use crate::error::{ApiError, FieldError, Problem};
use crate::json::ApiJson;

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
        (status = 413, description = "Body over the limit (`payload_too_large`).", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON (`unsupported_media_type`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: AdminCaller<InstrumentsWrite>,
    ApiJson(body): ApiJson<NewInstrument>,
) -> Result<Response, ApiError> {
    let instrument = Instrument::try_from(body)?;
    state.store.insert_instrument(&instrument).await?;
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
