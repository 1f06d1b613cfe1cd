//! `/v1/account`, `/v1/positions`, `/v1/fills`, `/v1/account/ledger`: what the caller
//! holds. Balances, margin and positions are valued live from the core at the current
//! mark prices; fills and the ledger come from the read models.

use axum::Json;
use axum::extract::State;
use bourse_store::{FillQuery, LedgerQuery};
use bourse_types::Symbol;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::orders::{account_i64, make_cursor, order_id, page_limit, parse_cursor};
use crate::AppState;
use crate::auth::{Read, Scoped};
use crate::error::{ApiError, Problem};
use crate::query::ApiQuery;
use crate::trading::{
    engine_error, invalid, lots_text, money_text, money_text_str, price_text, rfc3339_us,
};

/// One asset's balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Balance {
    /// Asset code.
    pub asset: String,
    /// Cash (realised PnL, premiums, fees and funding included; holds excluded).
    pub balance: String,
    /// Held for pending withdrawals.
    pub held: String,
}

/// The caller's money, valued at the mark prices.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// The settlement (collateral) asset all margin is counted in.
    pub settlement_asset: String,
    /// Balances per asset.
    pub balances: Vec<Balance>,
    /// Unrealised PnL of futures and perpetuals plus the value of options.
    pub unrealised_pnl: String,
    /// Cash plus unrealised PnL.
    pub equity: String,
    /// Initial margin of positions and open orders.
    pub initial_margin: String,
    /// Maintenance margin of positions.
    pub maintenance_margin: String,
    /// Equity minus initial margin: what new orders and withdrawals may use.
    pub available: String,
    /// Frozen accounts cannot trade or withdraw.
    pub frozen: bool,
}

/// Balances, equity and margin (scope `read`).
#[utoipa::path(
    get, path = "/v1/account", tag = "account", operation_id = "getAccount",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The caller's account; all zero before the first deposit.", body = AccountView),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn account(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
) -> Result<Json<AccountView>, ApiError> {
    let account = state.trading.account(&state.store, user.user_id()).await?;
    let view = state
        .trading
        .engine
        .read(|ex| {
            let settlement = ex.settlement_asset().to_string();
            let summary = ex.account(account);
            let balances = ex
                .balances(account)
                .into_iter()
                .map(|(asset, cash, held)| Balance {
                    asset: asset.to_string(),
                    balance: money_text(cash),
                    held: money_text(held),
                })
                .collect();
            let s = summary.unwrap_or(bourse_engine::core::AccountSummary {
                cash: 0,
                held: 0,
                unrealised: 0,
                equity: 0,
                initial_margin: 0,
                maintenance_margin: 0,
                available: 0,
                frozen: false,
            });
            AccountView {
                settlement_asset: settlement,
                balances,
                unrealised_pnl: money_text(s.unrealised),
                equity: money_text(s.equity),
                initial_margin: money_text(s.initial_margin),
                maintenance_margin: money_text(s.maintenance_margin),
                available: money_text(s.available),
                frozen: s.frozen,
            }
        })
        .map_err(engine_error)?;
    Ok(Json(view))
}

/// One position.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionView {
    /// Instrument symbol.
    pub symbol: String,
    /// Size in contracts: positive long, negative short.
    pub size: String,
    /// Average entry price; `null` when flat.
    pub average_entry_price: Option<String>,
    /// Mark price; `null` before one is set.
    pub mark_price: Option<String>,
    /// Unrealised PnL at the mark (options: the position's value).
    pub unrealised_pnl: String,
    /// Realised PnL so far.
    pub realised_pnl: String,
}

/// The caller's positions.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionList {
    /// Open positions and closed ones with realised PnL, by instrument.
    pub data: Vec<PositionView>,
}

/// Positions, valued at the mark (scope `read`).
#[utoipa::path(
    get, path = "/v1/positions", tag = "account", operation_id = "listPositions",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The caller's positions.", body = PositionList),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine is unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn positions(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
) -> Result<Json<PositionList>, ApiError> {
    let account = state.trading.account(&state.store, user.user_id()).await?;
    let raw = state
        .trading
        .engine
        .read(|ex| {
            ex.positions(account)
                .into_iter()
                .map(|p| {
                    let mark = ex.instrument(&p.instrument).and_then(|i| i.mark);
                    (p, mark)
                })
                .collect::<Vec<_>>()
        })
        .map_err(engine_error)?;
    let data = raw
        .into_iter()
        .map(|(p, mark)| {
            let inst = Symbol::parse(p.instrument.as_str())
                .ok()
                .and_then(|s| state.catalog.get(&s));
            let price = |t: i64| match &inst {
                Some(i) => price_text(i, t),
                None => t.to_string(),
            };
            PositionView {
                symbol: p.instrument.to_string(),
                size: match &inst {
                    Some(i) => lots_text(i, p.size),
                    None => p.size.to_string(),
                },
                average_entry_price: p.average_entry.map(|a| price(a.0)),
                mark_price: mark.map(|m| price(m.0)),
                unrealised_pnl: money_text(p.unrealised),
                realised_pnl: money_text(p.realised_pnl),
            }
        })
        .collect();
    Ok(Json(PositionList { data }))
}

/// Filters of `GET /v1/fills`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FillParams {
    /// Only this instrument.
    #[param(max_length = 40)]
    pub symbol: Option<String>,
    /// Only this order's fills.
    #[param(max_length = 20)]
    pub order_id: Option<String>,
    /// Opaque cursor from `next_cursor`.
    #[param(max_length = 32)]
    pub cursor: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One fill.
#[derive(Debug, Serialize, ToSchema)]
pub struct FillView {
    /// Trade id (shared with the other side of the trade).
    pub trade_id: String,
    /// The caller's order.
    pub order_id: String,
    /// Instrument symbol.
    pub symbol: String,
    /// The caller's side.
    pub side: String,
    /// Trade price.
    pub price: String,
    /// Traded quantity.
    pub quantity: String,
    /// `maker` or `taker`.
    pub liquidity: String,
    /// Fee paid, in the settlement asset.
    pub fee: String,
    /// When (RFC 3339).
    pub time: String,
}

/// A page of fills, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FillPage {
    /// The fills.
    pub data: Vec<FillView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

pub(crate) fn fill_view(state: &AppState, f: bourse_store::FillRow) -> FillView {
    let inst = Symbol::parse(&f.symbol)
        .ok()
        .and_then(|s| state.catalog.get(&s));
    FillView {
        trade_id: f.trade_id.to_string(),
        order_id: f.order_id.to_string(),
        price: match &inst {
            Some(i) => price_text(i, f.price_ticks),
            None => f.price_ticks.to_string(),
        },
        quantity: match &inst {
            Some(i) => lots_text(i, i128::from(f.quantity_lots)),
            None => f.quantity_lots.to_string(),
        },
        symbol: f.symbol,
        side: f.side,
        liquidity: f.liquidity,
        fee: money_text_str(&f.fee_micros),
        time: rfc3339_us(f.ts_us),
    }
}

/// The caller's fills, newest first (scope `read`).
#[utoipa::path(
    get, path = "/v1/fills", tag = "trading", operation_id = "listFills",
    security(("bearer" = ["read"])),
    params(FillParams),
    responses(
        (status = 200, description = "A page of fills.", body = FillPage),
        (status = 400, description = "Invalid filter or cursor.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn fills(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
    ApiQuery(p): ApiQuery<FillParams>,
) -> Result<Json<FillPage>, ApiError> {
    let limit = page_limit(p.limit)?;
    let before = parse_cursor(p.cursor.as_deref(), "f")?;
    let order = p
        .order_id
        .as_deref()
        .map(|o| {
            order_id(o)
                .map(|n| i64::try_from(n).unwrap_or(-1))
                .map_err(|_| {
                    invalid(
                        "/query/order_id",
                        "invalid_id",
                        "order ids are decimal integers",
                    )
                })
        })
        .transpose()?;
    if let Some(s) = &p.symbol {
        Symbol::parse(s)
            .map_err(|_| invalid("/query/symbol", "invalid_symbol", "not a valid symbol"))?;
    }
    let account = state.trading.account(&state.store, user.user_id()).await?;
    state.trading.caught_up(account).await?;
    let rows = state
        .store
        .list_fills(&FillQuery {
            account_id: account_i64(account),
            symbol: p.symbol,
            order_id: order,
            before,
            limit,
        })
        .await?;
    let n = rows.len();
    let last = rows.last().map(|r| r.trade_id);
    Ok(Json(FillPage {
        data: rows.into_iter().map(|f| fill_view(&state, f)).collect(),
        next_cursor: make_cursor("f", n, limit, last),
    }))
}

/// Filters of `GET /v1/account/ledger`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LedgerParams {
    /// Only this asset.
    #[param(max_length = 16)]
    pub asset: Option<String>,
    /// Only this reason: `deposit`, `withdrawal_held`, `withdrawal_released`,
    /// `realised_pnl`, `option_premium`, `fee`, `funding`, `settlement`.
    #[param(max_length = 24)]
    pub reason: Option<String>,
    /// Opaque cursor from `next_cursor`.
    #[param(max_length = 32)]
    pub cursor: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One balance change.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntry {
    /// Entry id.
    pub id: String,
    /// Asset code.
    pub asset: String,
    /// The change (negative: out).
    pub amount: String,
    /// The balance after it.
    pub balance: String,
    /// Why.
    pub reason: String,
    /// What it refers to, e.g. `trade:123`, `withdrawal:7`, `instrument:BTC-PERP`.
    pub reference: Option<String>,
    /// When (RFC 3339).
    pub time: String,
}

/// A page of ledger entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerPage {
    /// The entries.
    pub data: Vec<LedgerEntry>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

const REASONS: [&str; 8] = [
    "deposit",
    "withdrawal_held",
    "withdrawal_released",
    "realised_pnl",
    "option_premium",
    "fee",
    "funding",
    "settlement",
];

/// Every change to the caller's balances, newest first (scope `read`).
#[utoipa::path(
    get, path = "/v1/account/ledger", tag = "account", operation_id = "listLedger",
    security(("bearer" = ["read"])),
    params(LedgerParams),
    responses(
        (status = 200, description = "A page of ledger entries.", body = LedgerPage),
        (status = 400, description = "Invalid filter or cursor.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ledger(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
    ApiQuery(p): ApiQuery<LedgerParams>,
) -> Result<Json<LedgerPage>, ApiError> {
    let limit = page_limit(p.limit)?;
    let before = parse_cursor(p.cursor.as_deref(), "l")?;
    if let Some(r) = &p.reason
        && !REASONS.contains(&r.as_str())
    {
        return Err(invalid(
            "/query/reason",
            "invalid_value",
            REASONS.join(", "),
        ));
    }
    if let Some(a) = &p.asset
        && bourse_engine::core::Asset::parse(a).is_none()
    {
        return Err(invalid(
            "/query/asset",
            "invalid_asset",
            "an asset code such as USDC",
        ));
    }
    let account = state.trading.account(&state.store, user.user_id()).await?;
    state.trading.caught_up(account).await?;
    let rows = state
        .store
        .list_ledger(&LedgerQuery {
            account_id: account_i64(account),
            asset: p.asset,
            reason: p.reason,
            before,
            limit,
        })
        .await?;
    let n = rows.len();
    let last = rows.last().map(|r| r.entry_id);
    Ok(Json(LedgerPage {
        data: rows
            .into_iter()
            .map(|r| LedgerEntry {
                id: r.entry_id.to_string(),
                asset: r.asset,
                amount: money_text_str(&r.delta_micros),
                balance: money_text_str(&r.balance_micros),
                reason: r.reason,
                reference: r.ref_id,
                time: rfc3339_us(r.ts_us),
            })
            .collect(),
        next_cursor: make_cursor("l", n, limit, last),
    }))
}
