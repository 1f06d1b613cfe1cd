//! `/v1/orders`: place, list, get, amend and cancel orders.
//!
//! A placed order is acknowledged only after its command is durable in the journal;
//! the response is built from the core's events. Reads come from the read models, after
//! waiting until they include the caller's own last write.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bourse_engine::core::{
    AccountId, ClientId, ClientOrderId, Command, EventKind, OrderId, OrderKind, OrderOptions,
    PlaceOrder, Quantity, SelfTradePrevention, Side, TimeInForce,
};
use bourse_engine::{Meta, Outcome};
use bourse_store::{IdempotencyStart, OrderQuery, OrderRow};
use bourse_types::{Instrument, Symbol};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Read, Scoped, Trade};
use crate::catalog::Catalog;
use crate::error::{ApiError, Problem};
use crate::json::{ApiJson, ApiJsonBytes};
use crate::query::ApiQuery;
use crate::trading::{self, invalid, lots_text, money_text, price_text, rejection, rfc3339_us};

/// Buy or sell.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WireSide {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

/// Limit or market.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WireType {
    /// Trades at `price` or better; the rest may rest.
    Limit,
    /// Trades at any price against what rests now; never rests (IOC or FOK).
    Market,
}

/// How long an order lives.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WireTif {
    /// Good till canceled (limit orders only).
    Gtc,
    /// Immediate or cancel: what does not fill at once is canceled.
    Ioc,
    /// Fill or kill: fills completely at once or not at all.
    Fok,
}

/// Self-trade prevention: what happens when the order would trade with the same
/// account's resting order.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WireStp {
    /// Cancel the rest of the arriving order (default).
    #[default]
    CancelTaker,
    /// Cancel the resting order and go on matching.
    CancelMaker,
    /// Cancel both.
    CancelBoth,
}

/// A new order. Prices and quantities are decimal strings on the instrument's tick and
/// lot; nothing is rounded.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// Instrument symbol.
    #[schema(example = "BTC-PERP")]
    pub symbol: String,
    /// Buy or sell.
    pub side: WireSide,
    /// Limit or market.
    #[serde(rename = "type")]
    pub order_type: WireType,
    /// Limit price (limit orders only), a multiple of the tick size.
    #[serde(default)]
    #[schema(example = "50000.5")]
    pub price: Option<String>,
    /// Quantity in contracts, a multiple of the lot size within the order size bounds.
    #[schema(example = "0.010")]
    pub quantity: String,
    /// Default `gtc` for limit orders and `ioc` for market orders.
    #[serde(default)]
    pub time_in_force: Option<WireTif>,
    /// Maker only: refused if it would trade on arrival.
    #[serde(default)]
    pub post_only: bool,
    /// May only shrink the position (capped to what it can shrink).
    #[serde(default)]
    pub reduce_only: bool,
    /// Default `cancel_taker`.
    #[serde(default)]
    pub self_trade_prevention: WireStp,
    /// Your id for the order: 1 to 64 printable ASCII characters, unique among your
    /// open orders. Generated when absent.
    #[serde(default)]
    #[schema(example = "my-order-1", max_length = 64)]
    pub client_order_id: Option<String>,
    /// A market-maker-protection quote: counted by your MMP limits for the
    /// instrument's group and canceled with the group's other quotes when one is hit
    /// (see `PUT /v1/account/mmp/{group}`). Refused with `mmp_not_configured` when
    /// you have no MMP set up for the group, `mmp_frozen` while it is frozen.
    #[serde(default)]
    pub mmp: bool,
}

/// One fill of an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderFill {
    /// Trade id (shared by both sides of the trade).
    pub trade_id: String,
    /// Trade price.
    pub price: String,
    /// Traded quantity.
    pub quantity: String,
    /// `maker` or `taker`.
    pub liquidity: String,
    /// Fee paid, in the settlement asset.
    pub fee: String,
}

/// An order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    /// The exchange's id (a decimal string).
    #[schema(example = "42")]
    pub order_id: String,
    /// Your id.
    pub client_order_id: String,
    /// Instrument symbol.
    pub symbol: String,
    /// `buy` or `sell`.
    pub side: String,
    /// `limit` or `market`.
    #[serde(rename = "type")]
    pub order_type: String,
    /// Limit price; `null` for market orders.
    pub price: Option<String>,
    /// Quantity (after a reduce-only cap).
    pub quantity: String,
    /// Filled so far.
    pub filled_quantity: String,
    /// Still open on the book.
    pub leaves_quantity: String,
    /// `new`, `partially_filled`, `filled`, `canceled` or `expired`.
    pub status: String,
    /// Why it was canceled, e.g. `requested`, `unfilled`, `self_trade_prevention`.
    pub cancel_reason: Option<String>,
    /// `gtc`, `ioc` or `fok`.
    pub time_in_force: String,
    /// Maker only.
    pub post_only: bool,
    /// Reduce only.
    pub reduce_only: bool,
    /// Self-trade prevention mode.
    pub self_trade_prevention: String,
    /// Placed at (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// The fills of this request (only in the response to `POST /v1/orders`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fills: Option<Vec<OrderFill>>,
}

impl OrderView {
    fn from_row(inst: Option<&Instrument>, r: OrderRow) -> Self {
        let lots = |n: i64| match inst {
            Some(i) => lots_text(i, i128::from(n)),
            None => n.to_string(),
        };
        Self {
            order_id: r.order_id.to_string(),
            client_order_id: r.client_order_id,
            price: r.price_ticks.map(|p| match inst {
                Some(i) => price_text(i, p),
                None => p.to_string(),
            }),
            quantity: lots(r.quantity_lots),
            filled_quantity: lots(r.filled_lots),
            leaves_quantity: lots(r.leaves_lots),
            symbol: r.symbol,
            side: r.side,
            order_type: r.order_type,
            status: r.status,
            cancel_reason: r.cancel_reason,
            time_in_force: r.time_in_force,
            post_only: r.post_only,
            reduce_only: r.reduce_only,
            self_trade_prevention: r.stp,
            created_at: rfc3339_us(r.created_at_us),
            updated_at: rfc3339_us(r.updated_at_us),
            fills: None,
        }
    }
}

/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 64;

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let k = v.to_str().unwrap_or_default().trim();
    let k = k.trim_matches('"');
    if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY || !k.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "/header/Idempotency-Key",
            "invalid_idempotency_key",
            "1 to 64 printable ASCII characters",
        ));
    }
    Ok(Some(k.to_owned()))
}

fn instrument(state: &AppState, symbol: &str, pointer: &str) -> Result<Instrument, ApiError> {
    catalog_instrument(&state.catalog, symbol, pointer)
}

fn catalog_instrument(
    catalog: &Catalog,
    symbol: &str,
    pointer: &str,
) -> Result<Instrument, ApiError> {
    let s = Symbol::parse(symbol)
        .map_err(|_| invalid(pointer, "invalid_symbol", "not a valid symbol"))?;
    catalog
        .get(&s)
        .ok_or_else(|| ApiError::not_found("instrument"))
}

/// The path of a `POST /v1/orders` body from bytes to the core's command: the JSON
/// checks of [`ApiJsonBytes`], [`NewOrder`], then [`to_command`] against `catalog`.
/// Public for the fuzz targets (`fuzz/fuzz_targets/order_body.rs`).
#[doc(hidden)]
pub fn order_command(
    catalog: &Catalog,
    account: AccountId,
    body: &[u8],
) -> Result<PlaceOrder, ApiError> {
    let order: NewOrder = crate::json::parse(body)?;
    to_command(catalog, account, &order).map(|(command, _)| command)
}

/// Turns the wire order into the core's command; every check that needs no state.
fn to_command(
    catalog: &Catalog,
    account: AccountId,
    body: &NewOrder,
) -> Result<(PlaceOrder, Instrument), ApiError> {
    let inst = catalog_instrument(catalog, &body.symbol, "/symbol")?;
    let quantity = trading::quantity_lots(&inst, &body.quantity, "/quantity")?;
    let kind = match (body.order_type, &body.price) {
        (WireType::Limit, Some(p)) => OrderKind::Limit {
            price: trading::price_ticks(&inst, p, "/price")?,
        },
        (WireType::Limit, None) => {
            return Err(invalid(
                "/price",
                "missing_field",
                "a limit order needs a price",
            ));
        }
        (WireType::Market, None) => OrderKind::Market,
        (WireType::Market, Some(_)) => {
            return Err(invalid(
                "/price",
                "not_allowed",
                "a market order has no price",
            ));
        }
    };
    let tif = match (body.order_type, body.time_in_force) {
        (_, Some(WireTif::Ioc)) => TimeInForce::Ioc,
        (_, Some(WireTif::Fok)) => TimeInForce::Fok,
        (WireType::Limit, None | Some(WireTif::Gtc)) => TimeInForce::Gtc,
        (WireType::Market, None) => TimeInForce::Ioc,
        (WireType::Market, Some(WireTif::Gtc)) => {
            return Err(invalid(
                "/time_in_force",
                "not_allowed",
                "a market order is ioc or fok",
            ));
        }
    };
    if body.post_only && (tif != TimeInForce::Gtc || body.order_type == WireType::Market) {
        return Err(invalid(
            "/post_only",
            "not_allowed",
            "post-only orders are gtc limit orders",
        ));
    }
    let client_order_id = match &body.client_order_id {
        Some(c) => ClientOrderId::parse(c).ok_or_else(|| {
            invalid(
                "/client_order_id",
                "invalid_client_order_id",
                "1 to 64 printable ASCII characters",
            )
        })?,
        None => ClientOrderId::parse(&uuid::Uuid::now_v7().simple().to_string())
            .ok_or_else(ApiError::internal)?,
    };
    Ok((
        PlaceOrder {
            account,
            instrument: trading::core_symbol(&inst.symbol)?,
            client_order_id,
            side: match body.side {
                WireSide::Buy => Side::Buy,
                WireSide::Sell => Side::Sell,
            },
            kind,
            quantity: Quantity(quantity),
            time_in_force: tif,
            post_only: body.post_only,
            reduce_only: body.reduce_only,
            self_trade_prevention: match body.self_trade_prevention {
                WireStp::CancelTaker => SelfTradePrevention::CancelTaker,
                WireStp::CancelMaker => SelfTradePrevention::CancelMaker,
                WireStp::CancelBoth => SelfTradePrevention::CancelBoth,
            },
            ts: trading::now_ts(),
        },
        inst,
    ))
}

/// The response to a placed order, from its events.
fn placed_view(inst: &Instrument, order: &PlaceOrder, outcome: &Outcome) -> Option<OrderView> {
    let mut id = None;
    let mut quantity = 0u64;
    let mut price = None;
    let mut filled = 0u64;
    let mut leaves = None;
    let mut cancel_reason = None;
    let mut fills: Vec<OrderFill> = Vec::new();
    let mut fill_ix: Vec<usize> = Vec::new();
    let ts = outcome.events.first().map(|e| e.ts).unwrap_or(order.ts);
    let seq = outcome.seq.unwrap_or(0);
    for (index, event) in outcome.events.iter().enumerate() {
        match &event.kind {
            EventKind::OrderAccepted {
                order_id,
                quantity: q,
                price: p,
                ..
            } if id.is_none() => {
                id = Some(*order_id);
                quantity = q.0;
                price = *p;
                leaves = Some(q.0);
            }
            EventKind::OrderTraded {
                taker_order_id,
                price: p,
                quantity: q,
                taker_leaves,
                ..
            } if Some(*taker_order_id) == id => {
                filled += q.0;
                leaves = Some(taker_leaves.0);
                fill_ix.push(fills.len());
                fills.push(OrderFill {
                    trade_id: bourse_engine::projector::event_id(seq, index).to_string(),
                    price: price_text(inst, p.0),
                    quantity: lots_text(inst, i128::from(q.0)),
                    liquidity: "taker".into(),
                    fee: "0".into(),
                });
            }
            EventKind::FeeCharged {
                order_id, amount, ..
            } if Some(*order_id) == id => {
                if let Some(f) = fills.last_mut() {
                    f.fee = money_text(*amount);
                }
            }
            EventKind::OrderCanceled {
                order_id, reason, ..
            } if Some(*order_id) == id => {
                cancel_reason = Some(reason.code().to_owned());
                leaves = Some(0);
            }
            _ => {}
        }
    }
    let id: OrderId = id?;
    let leaves = leaves.unwrap_or(0);
    let status = if cancel_reason.is_some() {
        "canceled"
    } else if leaves == 0 {
        "filled"
    } else if filled > 0 {
        "partially_filled"
    } else {
        "new"
    };
    let at = rfc3339_us(i64::try_from(ts.0 / 1000).unwrap_or(0));
    Some(OrderView {
        order_id: id.0.to_string(),
        client_order_id: order.client_order_id.to_string(),
        symbol: inst.symbol.as_str().to_owned(),
        side: bourse_engine::projector::side_str(order.side).into(),
        order_type: match order.kind {
            OrderKind::Limit { .. } => "limit".into(),
            OrderKind::Market => "market".into(),
        },
        price: price.map(|p| price_text(inst, p.0)),
        quantity: lots_text(inst, i128::from(quantity)),
        filled_quantity: lots_text(inst, i128::from(filled)),
        leaves_quantity: lots_text(inst, i128::from(leaves)),
        status: status.into(),
        cancel_reason,
        time_in_force: bourse_engine::projector::tif_str(order.time_in_force).into(),
        post_only: order.post_only,
        reduce_only: order.reduce_only,
        self_trade_prevention: bourse_engine::projector::stp_str(order.self_trade_prevention)
            .into(),
        created_at: at.clone(),
        updated_at: at,
        fills: Some(fills),
    })
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain strings, integers and booleans always serialise.
    serde_json::to_vec(value).unwrap_or_default()
}

fn response(status: StatusCode, body: Vec<u8>, replayed: bool) -> Response {
    if !status.is_success()
        && let Ok(p) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(code) = p["code"].as_str()
    {
        crate::audit::problem_code(code);
    }
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    let ct = if status.is_success() {
        "application/json"
    } else {
        crate::error::PROBLEM_JSON
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

/// Places the order and renders the outcome (201, or the rejection as a problem).
async fn place(
    state: &AppState,
    order: PlaceOrder,
    options: OrderOptions,
    inst: &Instrument,
    key: Option<String>,
) -> Result<(StatusCode, Vec<u8>), ApiError> {
    // The plain command when there is nothing to add: the journal's common case.
    let command = if options == OrderOptions::default() {
        Command::PlaceOrder(order.clone())
    } else {
        Command::PlaceOrderWith {
            order: order.clone(),
            options,
        }
    };
    let outcome = state
        .trading
        .submit(
            command,
            Meta {
                idempotency_key: key,
                reference: None,
            },
        )
        .await?;
    if let Some(reason) = outcome.rejection() {
        let e = rejection(reason);
        return Ok((e.status(), problem_bytes(&e)));
    }
    let view = placed_view(inst, &order, &outcome).ok_or_else(ApiError::internal)?;
    Ok((StatusCode::CREATED, json_bytes(&view)))
}

fn problem_bytes(e: &ApiError) -> Vec<u8> {
    json_bytes(&e.to_problem())
}

/// Place an order (scope `trade`).
///
/// With `Idempotency-Key`, a retry with the same key and the same body gets the first
/// response again (header `Idempotent-Replayed: true`) and places nothing; the same
/// key with a different body is refused with 422 `idempotency_key_reused`.
#[utoipa::path(
    post, path = "/v1/orders", tag = "trading", operation_id = "placeOrder",
    security(("bearer" = ["trade"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 64 printable ASCII characters; makes retries safe.", max_length = 64)),
    request_body(content = NewOrder, content_type = "application/json"),
    responses(
        (status = 201, description = "Accepted and durable; its fills so far.", body = OrderView),
        (status = 400, description = "Invalid fields (`validation_failed`): price off tick, quantity off lot or out of bounds, bad combination.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `trade` (`insufficient_scope`), or the account is frozen (`account_frozen`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Halted or expired instrument, duplicate open `client_order_id`, or the same `Idempotency-Key` still in flight (`idempotency_key_in_flight`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused by the pre-trade check: `insufficient_margin`, `insufficient_funds`, `reduce_only_would_increase`, `post_only_would_take`, `fok_not_fillable`…, or `idempotency_key_reused`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Trade>,
    headers: HeaderMap,
    ApiJsonBytes(body, raw): ApiJsonBytes<NewOrder>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let account = state.trading.account(&state.store, user.user_id()).await?;
    let (order, inst) = to_command(&state.catalog, account, &body)?;
    let options = order_options(&user, &body)?;
    let Some(key) = key else {
        let (status, bytes) = place(&state, order, options, &inst, None).await?;
        return Ok(response(status, bytes, false));
    };
    let hash = hex_sha256(&raw);
    // Once the key is claimed, the claim must be finished or released whatever the
    // client does: a client that hangs up drops this handler's future, so the work runs
    // in its own task, and a retry then finds a finished claim (or the order itself).
    let id = crate::request_id::current();
    let audit = crate::audit::current();
    let task = tokio::spawn(crate::request_id::propagate(
        id,
        crate::audit::propagate(audit, async move {
            place_idempotent(state, account, (order, options), inst, key, hash).await
        }),
    ));
    task.await.map_err(|_| ApiError::internal())?
}

/// What comes with an order besides the order: the OAuth client of a partner app's
/// token (its limits apply on top of the user's) and the MMP flag.
fn order_options(user: &crate::auth::AuthUser, body: &NewOrder) -> Result<OrderOptions, ApiError> {
    let oauth_client = match user.claims.client_id.as_deref() {
        None => None,
        Some(c) => Some(ClientId::parse(c).ok_or_else(ApiError::internal)?),
    };
    Ok(OrderOptions {
        oauth_client,
        mmp: body.mmp,
    })
}

/// [`create`] with an `Idempotency-Key`: claim, place, store the response.
async fn place_idempotent(
    state: AppState,
    account: AccountId,
    (order, options): (PlaceOrder, OrderOptions),
    inst: Instrument,
    key: String,
    hash: String,
) -> Result<Response, ApiError> {
    let owner = account.0.to_string();
    let now = OffsetDateTime::now_utc();
    match state
        .store
        .start_idempotency(&owner, &key, &hash, now)
        .await?
    {
        IdempotencyStart::New => {}
        IdempotencyStart::Replay { status, body } => {
            let status = StatusCode::from_u16(status).map_err(|_| ApiError::internal())?;
            return Ok(response(status, body, true));
        }
        IdempotencyStart::Mismatch => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            ));
        }
        IdempotencyStart::InFlight => {
            // The first request may have been placed and journaled while its response
            // never got stored (a crash): then the order itself is the answer.
            state.trading.caught_up(account).await?;
            if let Some(row) = state
                .store
                .find_order_by_idempotency_key(account_i64(account), &key)
                .await?
            {
                let view = OrderView::from_row(Some(&inst), row);
                return Ok(response(StatusCode::CREATED, json_bytes(&view), true));
            }
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_flight",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
    }
    match place(&state, order, options, &inst, Some(key.clone())).await {
        Ok((status, bytes)) => {
            state
                .store
                .finish_idempotency(&owner, &key, status.as_u16(), &bytes)
                .await?;
            Ok(response(status, bytes, false))
        }
        Err(e) => {
            // Nothing was placed (the engine refused before journaling): free the key.
            state.store.release_idempotency(&owner, &key).await?;
            Err(e)
        }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Filters of `GET /v1/orders`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this instrument.
    #[param(max_length = 40)]
    pub symbol: Option<String>,
    /// `open` (new or partially filled), or one status: `new`, `partially_filled`,
    /// `filled`, `canceled`, `expired`.
    #[param(max_length = 20)]
    pub status: Option<String>,
    /// Opaque cursor from `next_cursor`.
    #[param(max_length = 32)]
    pub cursor: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    /// The orders.
    pub data: Vec<OrderView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Parses a cursor made by [`make_cursor`] with the same prefix.
pub(crate) fn parse_cursor(cursor: Option<&str>, prefix: &str) -> Result<Option<i64>, ApiError> {
    match cursor {
        None => Ok(None),
        Some(c) => c
            .strip_prefix(prefix)
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    "/query/cursor",
                    "invalid_cursor",
                    "not a cursor from this list",
                )
            }),
    }
}

/// A cursor for the next page when the page was full.
pub(crate) fn make_cursor(
    prefix: &str,
    len: usize,
    limit: u32,
    last: Option<i64>,
) -> Option<String> {
    (len as u64 >= u64::from(limit))
        .then_some(last)
        .flatten()
        .map(|id| format!("{prefix}{id}"))
}

/// The limit of a list: 1 to 1000, default 100.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(_) => Err(invalid("/query/limit", "out_of_range", "1 to 1000")),
    }
}

pub(crate) fn account_i64(account: AccountId) -> i64 {
    i64::try_from(account.0).unwrap_or(-1)
}

/// List the caller's orders, newest first (scope `read`).
#[utoipa::path(
    get, path = "/v1/orders", tag = "trading", operation_id = "listOrders",
    security(("bearer" = ["read"])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of orders.", body = OrderPage),
        (status = 400, description = "Invalid filter or cursor.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<OrderPage>, ApiError> {
    let limit = page_limit(p.limit)?;
    let before = parse_cursor(p.cursor.as_deref(), "o")?;
    let (open_only, status) = match p.status.as_deref() {
        None => (false, None),
        Some("open") => (true, None),
        Some(s @ ("new" | "partially_filled" | "filled" | "canceled" | "expired")) => {
            (false, Some(s.to_owned()))
        }
        Some(_) => {
            return Err(invalid(
                "/query/status",
                "invalid_value",
                "open, new, partially_filled, filled, canceled or expired",
            ));
        }
    };
    if let Some(s) = &p.symbol {
        Symbol::parse(s)
            .map_err(|_| invalid("/query/symbol", "invalid_symbol", "not a valid symbol"))?;
    }
    let account = state.trading.account(&state.store, user.user_id()).await?;
    state.trading.caught_up(account).await?;
    let rows = state
        .store
        .list_orders(&OrderQuery {
            account_id: account_i64(account),
            symbol: p.symbol,
            open_only,
            status,
            before,
            limit,
        })
        .await?;
    let last = rows.last().map(|r| r.order_id);
    let n = rows.len();
    let data = rows
        .into_iter()
        .map(|r| {
            let inst = Symbol::parse(&r.symbol)
                .ok()
                .and_then(|s| state.catalog.get(&s));
            OrderView::from_row(inst.as_ref(), r)
        })
        .collect();
    Ok(Json(OrderPage {
        data,
        next_cursor: make_cursor("o", n, limit, last),
    }))
}

/// An order id from the path: digits only.
pub(crate) fn order_id(text: &str) -> Result<u64, ApiError> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "/path/id",
            "invalid_id",
            "order ids are decimal integers",
        ));
    }
    text.parse::<u64>()
        .map_err(|_| invalid("/path/id", "invalid_id", "order ids are decimal integers"))
}

async fn owned_order(state: &AppState, account: AccountId, id: u64) -> Result<OrderView, ApiError> {
    let row = state
        .store
        .get_order(account_i64(account), i64::try_from(id).unwrap_or(-1))
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    let inst = Symbol::parse(&row.symbol)
        .ok()
        .and_then(|s| state.catalog.get(&s));
    Ok(OrderView::from_row(inst.as_ref(), row))
}

/// Get one of the caller's orders (scope `read`).
#[utoipa::path(
    get, path = "/v1/orders/{id}", tag = "trading", operation_id = "getOrder",
    security(("bearer" = ["read"])),
    params(("id" = String, Path, description = "Order id.", max_length = 20)),
    responses(
        (status = 200, description = "The order.", body = OrderView),
        (status = 400, description = "Malformed id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller (`not_found`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let id = order_id(&id)?;
    let account = state.trading.account(&state.store, user.user_id()).await?;
    state.trading.caught_up(account).await?;
    Ok(Json(owned_order(&state, account, id).await?))
}

/// A change to a resting order. It never trades: a price that would cross is refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendOrder {
    /// New limit price.
    #[serde(default)]
    pub price: Option<String>,
    /// New open (unfilled) quantity. A smaller quantity at the same price keeps the
    /// order's place in the queue.
    #[serde(default)]
    pub leaves_quantity: Option<String>,
}

/// Amend one of the caller's resting orders (scope `trade`).
#[utoipa::path(
    patch, path = "/v1/orders/{id}", tag = "trading", operation_id = "amendOrder",
    security(("bearer" = ["trade"])),
    params(("id" = String, Path, description = "Order id.", max_length = 20)),
    request_body(content = AmendOrder, content_type = "application/json"),
    responses(
        (status = 200, description = "The amended order.", body = OrderView),
        (status = 400, description = "Invalid fields, or nothing to change.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `trade`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such open order of the caller.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused: the new price would cross, or margin is insufficient.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Engine busy or unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn amend(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Trade>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AmendOrder>,
) -> Result<Json<OrderView>, ApiError> {
    let id = order_id(&id)?;
    if body.price.is_none() && body.leaves_quantity.is_none() {
        return Err(invalid(
            "",
            "nothing_to_change",
            "give price, leaves_quantity or both",
        ));
    }
    let account = state.trading.account(&state.store, user.user_id()).await?;
    state.trading.caught_up(account).await?;
    let current = state
        .store
        .get_order(account_i64(account), i64::try_from(id).unwrap_or(-1))
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    let inst = instrument(&state, &current.symbol, "/symbol")?;
    let price = body
        .price
        .as_deref()
        .map(|p| trading::price_ticks(&inst, p, "/price"))
        .transpose()?;
    let quantity = body
        .leaves_quantity
        .as_deref()
        .map(|q| trading::quantity_lots(&inst, q, "/leaves_quantity").map(Quantity))
        .transpose()?;
    let outcome = state
        .trading
        .submit(
            Command::AmendOrder {
                account,
                order_id: OrderId(id),
                price,
                quantity,
                ts: trading::now_ts(),
            },
            Meta::default(),
        )
        .await?;
    if let Some(reason) = outcome.rejection() {
        return Err(rejection(reason));
    }
    state.trading.caught_up(account).await?;
    Ok(Json(owned_order(&state, account, id).await?))
}

/// Cancel one of the caller's open orders (scope `trade`).
#[utoipa::path(
    delete, path = "/v1/orders/{id}", tag = "trading", operation_id = "cancelOrder",
    security(("bearer" = ["trade"])),
    params(("id" = String, Path, description = "Order id.", max_length = 20)),
    responses(
        (status = 200, description = "The canceled order.", body = OrderView),
        (status = 400, description = "Malformed id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `trade`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such open order of the caller (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Engine busy or unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Trade>,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let id = order_id(&id)?;
    let account = state.trading.account(&state.store, user.user_id()).await?;
    let outcome = state
        .trading
        .submit(
            Command::CancelOrder {
                account,
                order_id: OrderId(id),
                ts: trading::now_ts(),
            },
            Meta::default(),
        )
        .await?;
    if let Some(reason) = outcome.rejection() {
        return Err(rejection(reason));
    }
    state.trading.caught_up(account).await?;
    Ok(Json(owned_order(&state, account, id).await?))
}

/// Which orders `DELETE /v1/orders` cancels.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CancelAllParams {
    /// Only on this instrument; all instruments when absent.
    #[param(max_length = 40)]
    pub symbol: Option<String>,
}

/// What a cancel-all canceled.
#[derive(Debug, Serialize, ToSchema)]
pub struct Canceled {
    /// Ids of the canceled orders.
    pub canceled: Vec<String>,
}

/// Cancel all the caller's open orders, or those on one instrument (scope `trade`).
#[utoipa::path(
    delete, path = "/v1/orders", tag = "trading", operation_id = "cancelAllOrders",
    security(("bearer" = ["trade"])),
    params(CancelAllParams),
    responses(
        (status = 200, description = "The canceled order ids (possibly none).", body = Canceled),
        (status = 400, description = "Invalid symbol.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `trade`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instrument.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Engine busy or unavailable.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_all(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Trade>,
    ApiQuery(p): ApiQuery<CancelAllParams>,
) -> Result<Json<Canceled>, ApiError> {
    let instrument = match &p.symbol {
        Some(s) => Some(trading::core_symbol(
            &instrument(&state, s, "/query/symbol")?.symbol,
        )?),
        None => None,
    };
    let account = state.trading.account(&state.store, user.user_id()).await?;
    let outcome = state
        .trading
        .submit(
            Command::CancelAll {
                account,
                instrument,
                ts: trading::now_ts(),
            },
            Meta::default(),
        )
        .await?;
    match outcome.rejection() {
        // An account that never traded has nothing to cancel.
        Some(bourse_engine::core::RejectReason::UnknownAccount) => {
            return Ok(Json(Canceled { canceled: vec![] }));
        }
        Some(reason) => return Err(rejection(reason)),
        None => {}
    }
    let canceled = outcome
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::OrderCanceled { order_id, .. } => Some(order_id.0.to_string()),
            _ => None,
        })
        .collect();
    Ok(Json(Canceled { canceled }))
}
