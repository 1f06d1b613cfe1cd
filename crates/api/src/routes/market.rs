//! Public market data: `GET /v1/instruments/{symbol}/book`, `/trades`, `/ticker`.
//! The book and prices are read live from the core; trades and volume from the read
//! models.

use axum::Json;
use axum::extract::{Path, State};
use bourse_types::{Instrument, Symbol};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::orders::{make_cursor, parse_cursor};
use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::query::ApiQuery;
use crate::trading::{core_symbol, engine_error, invalid, lots_text, price_text, rfc3339_us};

/// Deepest book a request may ask for.
pub const MAX_DEPTH: usize = 500;

fn instrument(state: &AppState, symbol: &str) -> Result<Instrument, ApiError> {
    let s = Symbol::parse(symbol)
        .map_err(|_| invalid("/path/symbol", "invalid_symbol", "not a valid symbol"))?;
    state
        .catalog
        .get(&s)
        .ok_or_else(|| ApiError::not_found("instrument"))
}

/// Book depth.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BookParams {
    /// Levels per side, 1 to 500; default 20.
    #[param(minimum = 1, maximum = 500)]
    pub depth: Option<u32>,
}

/// One price level.
#[derive(Debug, Serialize, ToSchema)]
pub struct Level {
    /// Price.
    pub price: String,
    /// Total open quantity at this price.
    pub quantity: String,
    /// Number of orders.
    pub orders: u32,
}

/// The order book's best levels.
#[derive(Debug, Serialize, ToSchema)]
pub struct Book {
    /// Instrument symbol.
    pub symbol: String,
    /// Bids, best (highest) first.
    pub bids: Vec<Level>,
    /// Asks, best (lowest) first.
    pub asks: Vec<Level>,
    /// When it was read (RFC 3339).
    pub time: String,
}

/// The order book (public).
#[utoipa::path(
    get, path = "/v1/instruments/{symbol}/book", tag = "market", operation_id = "getBook",
    security(()),
    params(("symbol" = String, Path, description = "Instrument symbol.", max_length = 40), BookParams),
    responses(
        (status = 200, description = "Aggregated levels.", body = Book),
        (status = 400, description = "Invalid depth or symbol.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn book(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    ApiQuery(p): ApiQuery<BookParams>,
) -> Result<Json<Book>, ApiError> {
    let depth = match p.depth {
        None => 20,
        Some(d) if (1..=MAX_DEPTH as u32).contains(&d) => d as usize,
        Some(_) => return Err(invalid("/query/depth", "out_of_range", "1 to 500")),
    };
    let inst = instrument(&state, &symbol)?;
    let sym = core_symbol(&inst.symbol)?;
    let depth = state
        .trading
        .engine
        .read(|ex| ex.depth(&sym, depth))
        .map_err(engine_error)?
        .unwrap_or_default();
    let levels = |side: &[_]| -> Vec<Level> {
        side.iter()
            .map(|l: &bourse_engine::core::DepthLevel| Level {
                price: price_text(&inst, l.price.0),
                quantity: lots_text(&inst, i128::from(l.quantity.0)),
                orders: l.orders,
            })
            .collect()
    };
    Ok(Json(Book {
        symbol: inst.symbol.as_str().to_owned(),
        bids: levels(&depth.bids),
        asks: levels(&depth.asks),
        time: rfc3339_us(
            i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap_or(0),
        ),
    }))
}

/// Paging of public trades.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TradeParams {
    /// Opaque cursor from `next_cursor`.
    #[param(max_length = 32)]
    pub cursor: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One public trade.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicTrade {
    /// Trade id.
    pub trade_id: String,
    /// Price.
    pub price: String,
    /// Quantity.
    pub quantity: String,
    /// The taker's side.
    pub side: String,
    /// When (RFC 3339).
    pub time: String,
}

/// Recent trades, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TradePage {
    /// The trades.
    pub data: Vec<PublicTrade>,
    /// Pass as `cursor` for older trades; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Recent trades (public).
#[utoipa::path(
    get, path = "/v1/instruments/{symbol}/trades", tag = "market", operation_id = "listTrades",
    security(()),
    params(("symbol" = String, Path, description = "Instrument symbol.", max_length = 40), TradeParams),
    responses(
        (status = 200, description = "Recent trades.", body = TradePage),
        (status = 400, description = "Invalid parameters.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn trades(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    ApiQuery(p): ApiQuery<TradeParams>,
) -> Result<Json<TradePage>, ApiError> {
    let limit = super::orders::page_limit(p.limit)?;
    let before = parse_cursor(p.cursor.as_deref(), "t")?;
    let inst = instrument(&state, &symbol)?;
    let rows = state
        .store
        .list_public_trades(inst.symbol.as_str(), before, limit)
        .await?;
    let n = rows.len();
    let last = rows.last().map(|r| r.trade_id);
    Ok(Json(TradePage {
        data: rows
            .into_iter()
            .map(|r| PublicTrade {
                trade_id: r.trade_id.to_string(),
                price: price_text(&inst, r.price_ticks),
                quantity: lots_text(&inst, i128::from(r.quantity_lots)),
                side: r.side,
                time: rfc3339_us(r.ts_us),
            })
            .collect(),
        next_cursor: make_cursor("t", n, limit, last),
    }))
}

/// Prices and activity of one instrument.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ticker {
    /// Instrument symbol.
    pub symbol: String,
    /// `active`, `halted` or `expired`.
    pub status: String,
    /// Last trade price.
    pub last_price: Option<String>,
    /// Best bid.
    pub best_bid: Option<String>,
    /// Best ask.
    pub best_ask: Option<String>,
    /// Mark price.
    pub mark_price: Option<String>,
    /// Index price.
    pub index_price: Option<String>,
    /// Traded quantity over the last 24 hours.
    pub volume_24h: String,
    /// Sum of long positions, in contracts.
    pub open_interest: String,
    /// Last funding rate applied (perpetuals), as a decimal fraction per period.
    pub funding_rate: Option<String>,
    /// When it was read (RFC 3339).
    pub time: String,
}

/// The ticker (public).
#[utoipa::path(
    get, path = "/v1/instruments/{symbol}/ticker", tag = "market", operation_id = "getTicker",
    security(()),
    params(("symbol" = String, Path, description = "Instrument symbol.", max_length = 40)),
    responses(
        (status = 200, description = "Prices and 24 h activity.", body = Ticker),
        (status = 400, description = "Invalid symbol.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ticker(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
) -> Result<Json<Ticker>, ApiError> {
    let inst = instrument(&state, &symbol)?;
    let sym = core_symbol(&inst.symbol)?;
    let (view, bid, ask) = state
        .trading
        .engine
        .read(|ex| (ex.instrument(&sym), ex.best_bid(&sym), ex.best_ask(&sym)))
        .map_err(engine_error)?;
    let view = view.ok_or_else(|| ApiError::not_found("instrument"))?;
    let now = OffsetDateTime::now_utc();
    let now_us = i64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(0);
    let last = state
        .store
        .list_public_trades(inst.symbol.as_str(), None, 1)
        .await?
        .into_iter()
        .next();
    let volume = state
        .store
        .traded_volume_since(inst.symbol.as_str(), now_us - 86_400_000_000)
        .await?;
    let p = |t: i64| price_text(&inst, t);
    Ok(Json(Ticker {
        symbol: inst.symbol.as_str().to_owned(),
        status: view.status.code().to_owned(),
        last_price: last.map(|t| p(t.price_ticks)),
        best_bid: bid.map(|b| p(b.0)),
        best_ask: ask.map(|a| p(a.0)),
        mark_price: view.mark.map(|m| p(m.0)),
        index_price: view.index.map(|i| p(i.0)),
        volume_24h: lots_text(&inst, i128::from(volume)),
        open_interest: lots_text(&inst, view.open_interest),
        funding_rate: view
            .last_funding_ppb
            .map(|r| bourse_types::Decimal::new(r, 9).normalize().to_string()),
        time: rfc3339_us(now_us),
    }))
}
