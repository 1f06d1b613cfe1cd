//! Trading read models: what the engine's events say about orders, fills, the ledger
//! and positions, applied in batches up to a projection checkpoint; and the mapping of
//! users to trading accounts.
//!
//! The engine is the source of truth and these tables follow it: each batch of
//! [`ReadOp`]s and the checkpoint (the sequence number of the last journal record it
//! covers) move in one transaction, so after a crash the projection resumes exactly
//! where it stopped and no batch is applied twice. Every read is scoped by account
//! (except the `_any` variants for admins and the public trade tape).
//!
//! Money and sizes that can exceed `i64` are strings holding a signed integer in
//! decimal (micro-units); the store only writes them in canonical form (`0`, `-12`,
//! never `+1`, `007` or `-0`) and refuses anything else as `Internal` (a caller bug).
//! Times are unix microseconds, passed in like every other time.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::OnceLock;

use crate::error::db_error;
use crate::{Backend, MAX_PAGE_SIZE, Pool, Store, StoreError};

// ---- rows ----

/// An order as the engine last reported it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderRow {
    /// The exchange's id, unique.
    pub order_id: i64,
    /// Owner.
    pub account_id: i64,
    /// Instrument.
    pub symbol: String,
    /// The client's id.
    pub client_order_id: String,
    /// `buy` or `sell`.
    pub side: String,
    /// `limit` or `market`.
    pub order_type: String,
    /// Limit price; `None` for market orders.
    pub price_ticks: Option<i64>,
    /// Filled plus open quantity (an amend sets it to filled + new leaves; a close keeps
    /// it).
    pub quantity_lots: i64,
    /// Filled so far.
    pub filled_lots: i64,
    /// Still open (0 once closed).
    pub leaves_lots: i64,
    /// `gtc`, `ioc`, `fok` or `gtt`.
    pub time_in_force: String,
    /// Post-only.
    pub post_only: bool,
    /// Reduce-only.
    pub reduce_only: bool,
    /// Self-trade prevention: `cancel_taker`, `cancel_maker` or `cancel_both`.
    pub stp: String,
    /// `new`, `partially_filled`, `filled`, `canceled` or `expired`.
    pub status: String,
    /// Why it was canceled or expired.
    pub cancel_reason: Option<String>,
    /// The request's `Idempotency-Key`; unique per account.
    pub idempotency_key: Option<String>,
    /// Accepted at.
    pub created_at_us: i64,
    /// Last changed at.
    pub updated_at_us: i64,
}

/// One account's side of a trade.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FillRow {
    /// Shared by the maker's and the taker's row; unique with `order_id`.
    pub trade_id: i64,
    /// This account's order.
    pub order_id: i64,
    /// This account.
    pub account_id: i64,
    /// Instrument.
    pub symbol: String,
    /// This account's side.
    pub side: String,
    /// Trade price (the maker's).
    pub price_ticks: i64,
    /// Traded quantity.
    pub quantity_lots: i64,
    /// `maker` or `taker`.
    pub liquidity: String,
    /// Fee charged, micro-units (integer text).
    pub fee_micros: String,
    /// Traded at.
    pub ts_us: i64,
}

/// One change of an account's balance of an asset.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LedgerRow {
    /// Unique, increasing.
    pub entry_id: i64,
    /// Owner.
    pub account_id: i64,
    /// Asset code.
    pub asset: String,
    /// Change, micro-units (integer text).
    pub delta_micros: String,
    /// Balance after it, micro-units (integer text).
    pub balance_micros: String,
    /// `deposit`, `withdrawal_held`, `withdrawal_released`, `realised_pnl`,
    /// `option_premium`, `fee`, `funding` or `settlement`.
    pub reason: String,
    /// What it refers to, e.g. an order id, a withdrawal id, an instrument symbol.
    pub ref_id: Option<String>,
    /// At.
    pub ts_us: i64,
}

/// An account's position in one instrument.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PositionRow {
    /// Owner; unique with `symbol`.
    pub account_id: i64,
    /// Instrument.
    pub symbol: String,
    /// Signed size in lots (integer text).
    pub size_lots: String,
    /// Cost basis, Σ price × signed lots (integer text).
    pub cost: String,
    /// Realised PnL, micro-units (integer text).
    pub realised_pnl_micros: String,
    /// Last changed at.
    pub updated_at_us: i64,
}

/// One change to the read models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// A new order; `Conflict` if the id exists.
    InsertOrder(OrderRow),
    /// `filled_lots += quantity_lots`; `leaves_lots = leaves_lots`; status `filled` if
    /// leaves is 0, else `partially_filled`; `updated_at_us = ts_us`.
    OrderFilled {
        /// The order.
        order_id: i64,
        /// Quantity of this fill.
        quantity_lots: i64,
        /// Open quantity after it.
        leaves_lots: i64,
        /// At.
        ts_us: i64,
    },
    /// `leaves_lots = 0`; status as given (`canceled` or `expired`); `cancel_reason =
    /// reason`; `updated_at_us = ts_us`.
    OrderClosed {
        /// The order.
        order_id: i64,
        /// `canceled` or `expired`.
        status: String,
        /// Why.
        reason: Option<String>,
        /// At.
        ts_us: i64,
    },
    /// `price_ticks = price_ticks`; `leaves_lots = leaves_lots`; `quantity_lots =
    /// filled_lots + leaves_lots`; `updated_at_us = ts_us`.
    OrderAmended {
        /// The order.
        order_id: i64,
        /// New price.
        price_ticks: i64,
        /// New open quantity.
        leaves_lots: i64,
        /// At.
        ts_us: i64,
    },
    /// A fill; `Conflict` if `(trade_id, order_id)` exists.
    InsertFill(FillRow),
    /// A ledger entry; `Conflict` if the entry id exists.
    InsertLedger(LedgerRow),
    /// Creates or replaces the position of `(account_id, symbol)`.
    UpsertPosition(PositionRow),
    /// `withdrawals.state = state`, `updated_at_us = ts_us` (no-op if no such row).
    WithdrawalState {
        /// The withdrawal.
        withdrawal_id: i64,
        /// New state.
        state: String,
        /// At.
        ts_us: i64,
    },
}

// ---- queries ----

/// Filter and cursor for an account's orders, newest (highest id) first.
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    /// Owner (required).
    pub account_id: i64,
    /// Only this instrument.
    pub symbol: Option<String>,
    /// Only open orders (`new`, `partially_filled`).
    pub open_only: bool,
    /// Only this status.
    pub status: Option<String>,
    /// Cursor: only ids below this.
    pub before: Option<i64>,
    /// Page size, brought into `1..=`[`MAX_PAGE_SIZE`].
    pub limit: u32,
}

/// Filter and cursor for an account's fills, newest (highest trade id) first.
#[derive(Debug, Clone, Default)]
pub struct FillQuery {
    /// Owner (required).
    pub account_id: i64,
    /// Only this instrument.
    pub symbol: Option<String>,
    /// Only this order's fills.
    pub order_id: Option<i64>,
    /// Cursor: only trade ids below this (an account has at most one row per trade).
    pub before: Option<i64>,
    /// Page size, brought into `1..=`[`MAX_PAGE_SIZE`].
    pub limit: u32,
}

/// Filter and cursor for an account's ledger, newest (highest entry id) first.
#[derive(Debug, Clone, Default)]
pub struct LedgerQuery {
    /// Owner (required).
    pub account_id: i64,
    /// Only this asset.
    pub asset: Option<String>,
    /// Only this reason.
    pub reason: Option<String>,
    /// Cursor: only entry ids below this.
    pub before: Option<i64>,
    /// Page size, brought into `1..=`[`MAX_PAGE_SIZE`].
    pub limit: u32,
}

// ---- helpers shared with wallet_ops ----

/// Runs one statement on whichever backend the store has: `$kind` is `query`,
/// `query_as` or `query_scalar`, `$name` a constant of both `sql_sqlite` and
/// `sql_postgres` in the calling module, `$fetch` the executor method; errors become
/// [`StoreError`] for operation `$op`. `rows_affected` instead of `$kind` executes the
/// statement and evaluates to the number of rows it changed.
macro_rules! on_pool {
    ($store:expr, $op:literal, rows_affected, $name:ident $(, $arg:expr)* $(,)?) => {
        match &$store.pool {
            Pool::Sqlite(p) => sqlx::query(sql_sqlite::$name)$(.bind($arg))*.execute(p).await
                .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(sql_postgres::$name)$(.bind($arg))*.execute(p).await
                .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error($op, e))
    };
    ($store:expr, $op:literal, $kind:ident, $name:ident, $fetch:ident $(, $arg:expr)* $(,)?) => {
        match &$store.pool {
            Pool::Sqlite(p) => sqlx::$kind(sql_sqlite::$name)$(.bind($arg))*.$fetch(p).await,
            Pool::Postgres(p) => sqlx::$kind(sql_postgres::$name)$(.bind($arg))*.$fetch(p).await,
        }
        .map_err(|e| db_error($op, e))
    };
}
pub(crate) use on_pool;

/// A page size as bound: `limit` brought into `1..=`[`MAX_PAGE_SIZE`].
pub(crate) fn page_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE_SIZE))
}

/// A `before` cursor as bound: no cursor is "below the largest id", so every statement
/// has one shape and an index range.
pub(crate) fn cursor(before: Option<i64>) -> i64 {
    before.unwrap_or(i64::MAX)
}

/// True for the canonical decimal text of a signed integer: `0`, or digits without a
/// leading zero, optionally after `-`.
pub(crate) fn is_integer_text(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (!digits.starts_with('0') || text == "0")
}

/// Ok for integer text; otherwise `Internal` (a caller bug), logged with the column
/// only.
pub(crate) fn check_integer(
    table: &'static str,
    column: &'static str,
    text: &str,
) -> Result<(), StoreError> {
    if is_integer_text(text) {
        Ok(())
    } else {
        tracing::error!(
            table,
            column,
            "refusing to store an amount that is not integer text"
        );
        Err(StoreError::Internal)
    }
}

/// Row counts of the multi-row statements, largest first: `n` rows take `n / 32`
/// statements of 32 rows and at most seven smaller ones, and a connection prepares at
/// most four statements per table. (Measured: statements of a few hundred parameters
/// are the fastest on both backends; with thousands, binding and planning cost more
/// per row than the round trips they save.)
const CHUNKS: [usize; 4] = [32, 8, 2, 1];

/// A statement over many rows of values (`INSERT … VALUES (…), (…)`, `UPDATE … FROM
/// (VALUES (…), (…))`), built once per backend and row count: the same text on both
/// backends but for the placeholders.
pub(crate) struct RowsSql {
    /// Up to the first row.
    head: &'static str,
    /// Values per row.
    columns: usize,
    /// After the last row (e.g. `ON CONFLICT …`).
    tail: &'static str,
    built: [[OnceLock<String>; CHUNKS.len()]; 2],
}

impl RowsSql {
    pub(crate) const fn new(head: &'static str, columns: usize, tail: &'static str) -> Self {
        Self {
            head,
            columns,
            tail,
            built: [const { [const { OnceLock::new() }; CHUNKS.len()] }; 2],
        }
    }

    /// The statement for the first rows of `remaining` (> 0) rows, and how many it takes.
    pub(crate) fn for_rows(
        &'static self,
        backend: Backend,
        remaining: usize,
    ) -> (usize, &'static str) {
        let i = CHUNKS
            .iter()
            .position(|&c| c <= remaining)
            .unwrap_or(CHUNKS.len() - 1);
        let b = match backend {
            Backend::Sqlite => 0,
            Backend::Postgres => 1,
        };
        let sql = self.built[b][i].get_or_init(|| self.build(backend, CHUNKS[i]));
        (CHUNKS[i], sql.as_str())
    }

    /// SQLite gets anonymous `?` placeholders (bound in order): for a numbered `?N`
    /// sqlx asks SQLite for each parameter's name, which SQLite finds by a linear scan,
    /// so binding a statement of n numbered parameters costs O(n²); that was 12% of
    /// the server's CPU under order load (docs/benchmarks.md). PostgreSQL needs `$N`.
    fn build(&self, backend: Backend, rows: usize) -> String {
        let (mark, numbered) = match backend {
            Backend::Sqlite => ('?', false),
            Backend::Postgres => ('$', true),
        };
        let mut sql = String::with_capacity(self.head.len() + rows * self.columns * 6 + 64);
        sql.push_str(self.head);
        let mut n = 0;
        for row in 0..rows {
            sql.push_str(if row == 0 { " (" } else { ", (" });
            for column in 0..self.columns {
                n += 1;
                if column > 0 {
                    sql.push_str(", ");
                }
                sql.push(mark);
                if numbered {
                    sql.push_str(&n.to_string());
                }
            }
            sql.push(')');
        }
        sql.push_str(self.tail);
        sql
    }
}

macro_rules! order_columns {
    () => {
        "order_id, account_id, symbol, client_order_id, side, order_type, price_ticks, \
         quantity_lots, filled_lots, leaves_lots, time_in_force, post_only, reduce_only, stp, \
         status, cancel_reason, idempotency_key, created_at_us, updated_at_us"
    };
}

macro_rules! fill_columns {
    () => {
        "trade_id, order_id, account_id, symbol, side, price_ticks, quantity_lots, liquidity, \
         fee_micros, ts_us"
    };
}

macro_rules! ledger_columns {
    () => {
        "entry_id, account_id, asset, delta_micros, balance_micros, reason, ref_id, ts_us"
    };
}

macro_rules! position_columns {
    () => {
        "account_id, symbol, size_lots, cost, realised_pnl_micros, updated_at_us"
    };
}

static INSERT_ORDERS: RowsSql = RowsSql::new(
    concat!("INSERT INTO orders (", order_columns!(), ") VALUES"),
    19,
    "",
);
static INSERT_FILLS: RowsSql = RowsSql::new(
    concat!("INSERT INTO fills (", fill_columns!(), ") VALUES"),
    10,
    "",
);
static INSERT_LEDGER: RowsSql = RowsSql::new(
    concat!("INSERT INTO ledger (", ledger_columns!(), ") VALUES"),
    8,
    "",
);
// Changes of stored orders, one row per order (see [`OrderChange`]): VALUES columns are
// named column1, column2, … on both backends.
static UPDATE_ORDERS: RowsSql = RowsSql::new(
    "UPDATE orders SET filled_lots = filled_lots + v.column2, leaves_lots = v.column3, \
     price_ticks = COALESCE(v.column4, price_ticks), \
     quantity_lots = CASE WHEN v.column5 IS NULL THEN quantity_lots \
         ELSE filled_lots + v.column5 END, \
     status = COALESCE(v.column6, status), \
     cancel_reason = CASE WHEN v.column7 THEN v.column8 ELSE cancel_reason END, \
     updated_at_us = v.column9 FROM (VALUES",
    9,
    ") AS v WHERE orders.order_id = v.column1",
);
static UPSERT_POSITIONS: RowsSql = RowsSql::new(
    concat!("INSERT INTO positions (", position_columns!(), ") VALUES"),
    6,
    " ON CONFLICT (account_id, symbol) DO UPDATE SET size_lots = excluded.size_lots, \
     cost = excluded.cost, realised_pnl_micros = excluded.realised_pnl_micros, \
     updated_at_us = excluded.updated_at_us",
);

mod sql_sqlite {
    pub const CHECKPOINT: &str = "SELECT last_seq FROM projection_checkpoint WHERE id = 1";
    pub const CHECKPOINT_LOCK: &str = CHECKPOINT;
    pub const SET_CHECKPOINT: &str = "UPDATE projection_checkpoint SET last_seq = ?1 WHERE id = 1";
    pub const WITHDRAWAL_STATE: &str =
        "UPDATE withdrawals SET state = ?1, updated_at_us = ?2 WHERE withdrawal_id = ?3";

    pub const ACCOUNT_OF_USER: &str = "SELECT account_id FROM trading_accounts WHERE user_id = ?1";
    pub const INSERT_ACCOUNT: &str = "INSERT INTO trading_accounts (user_id) VALUES (?1) \
         ON CONFLICT (user_id) DO NOTHING RETURNING account_id";
    pub const USER_OF_ACCOUNT: &str = "SELECT user_id FROM trading_accounts WHERE account_id = ?1";

    pub const GET_ORDER: &str = concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE order_id = ?1 AND account_id = ?2"
    );
    pub const GET_ORDER_ANY: &str = concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE order_id = ?1"
    );
    pub const ORDER_BY_KEY: &str = concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE account_id = ?1 AND idempotency_key = ?2 ORDER BY order_id DESC LIMIT 1"
    );
    pub const LIST_ORDERS: &str = concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE account_id = ?1",
        " AND (?2 IS NULL OR symbol = ?2)",
        " AND (NOT ?3 OR status IN ('new', 'partially_filled'))",
        " AND (?4 IS NULL OR status = ?4)",
        " AND order_id < ?5",
        " ORDER BY order_id DESC LIMIT ?6"
    );
    pub const LIST_FILLS: &str = concat!(
        "SELECT ",
        fill_columns!(),
        " FROM fills WHERE account_id = ?1",
        " AND (?2 IS NULL OR symbol = ?2)",
        " AND (?3 IS NULL OR order_id = ?3)",
        " AND trade_id < ?4",
        " ORDER BY trade_id DESC LIMIT ?5"
    );
    pub const PUBLIC_TRADES: &str = concat!(
        "SELECT ",
        fill_columns!(),
        " FROM fills WHERE symbol = ?1 AND liquidity = 'taker' AND trade_id < ?2",
        " ORDER BY trade_id DESC LIMIT ?3"
    );
    pub const VOLUME: &str = "SELECT CAST(COALESCE(SUM(quantity_lots), 0) AS BIGINT) FROM fills \
         WHERE symbol = ?1 AND liquidity = 'taker' AND ts_us >= ?2";
    pub const LIST_LEDGER: &str = concat!(
        "SELECT ",
        ledger_columns!(),
        " FROM ledger WHERE account_id = ?1",
        " AND (?2 IS NULL OR asset = ?2)",
        " AND (?3 IS NULL OR reason = ?3)",
        " AND entry_id < ?4",
        " ORDER BY entry_id DESC LIMIT ?5"
    );
    pub const LIST_POSITIONS: &str = concat!(
        "SELECT ",
        position_columns!(),
        " FROM positions WHERE account_id = ?1 ORDER BY symbol"
    );
}

mod sql_postgres {
    pub const CHECKPOINT: &str = "SELECT last_seq FROM projection_checkpoint WHERE id = 1";
    // The row lock serialises batches: a concurrent one waits, then sees the new value.
    pub const CHECKPOINT_LOCK: &str =
        "SELECT last_seq FROM projection_checkpoint WHERE id = 1 FOR UPDATE";
    pub const SET_CHECKPOINT: &str = "UPDATE projection_checkpoint SET last_seq = $1 WHERE id = 1";
    pub const WITHDRAWAL_STATE: &str =
        "UPDATE withdrawals SET state = $1, updated_at_us = $2 WHERE withdrawal_id = $3";

    pub const ACCOUNT_OF_USER: &str = "SELECT account_id FROM trading_accounts WHERE user_id = $1";
    pub const INSERT_ACCOUNT: &str = "INSERT INTO trading_accounts (user_id) VALUES ($1) \
         ON CONFLICT (user_id) DO NOTHING RETURNING account_id";
    pub const USER_OF_ACCOUNT: &str = "SELECT user_id FROM trading_accounts WHERE account_id = $1";

    pub const GET_ORDER: &str = concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE order_id = $1 AND account_id = $2"
    );
    pub const GET_ORDER_ANY: &str = concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE order_id = $1"
    );
    pub const ORDER_BY_KEY: &str = concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE account_id = $1 AND idempotency_key = $2 ORDER BY order_id DESC LIMIT 1"
    );
    pub const LIST_ORDERS: &str = concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE account_id = $1",
        " AND ($2::text IS NULL OR symbol = $2)",
        " AND (NOT $3 OR status IN ('new', 'partially_filled'))",
        " AND ($4::text IS NULL OR status = $4)",
        " AND order_id < $5",
        " ORDER BY order_id DESC LIMIT $6"
    );
    pub const LIST_FILLS: &str = concat!(
        "SELECT ",
        fill_columns!(),
        " FROM fills WHERE account_id = $1",
        " AND ($2::text IS NULL OR symbol = $2)",
        " AND ($3::bigint IS NULL OR order_id = $3)",
        " AND trade_id < $4",
        " ORDER BY trade_id DESC LIMIT $5"
    );
    pub const PUBLIC_TRADES: &str = concat!(
        "SELECT ",
        fill_columns!(),
        " FROM fills WHERE symbol = $1 AND liquidity = 'taker' AND trade_id < $2",
        " ORDER BY trade_id DESC LIMIT $3"
    );
    pub const VOLUME: &str = "SELECT CAST(COALESCE(SUM(quantity_lots), 0) AS BIGINT) FROM fills \
         WHERE symbol = $1 AND liquidity = 'taker' AND ts_us >= $2";
    pub const LIST_LEDGER: &str = concat!(
        "SELECT ",
        ledger_columns!(),
        " FROM ledger WHERE account_id = $1",
        " AND ($2::text IS NULL OR asset = $2)",
        " AND ($3::text IS NULL OR reason = $3)",
        " AND entry_id < $4",
        " ORDER BY entry_id DESC LIMIT $5"
    );
    pub const LIST_POSITIONS: &str = concat!(
        "SELECT ",
        position_columns!(),
        " FROM positions WHERE account_id = $1 ORDER BY symbol"
    );
}

// ---- the projection ----

/// A batch of [`ReadOp`]s arranged for few statements, with the same result as applying
/// them one by one in order.
///
/// The tables do not refer to each other, so only the order within a table matters,
/// and within `orders` only the order per row: an order inserted in this batch takes
/// its later changes in memory and is inserted in its final state; the changes of a
/// stored order become one [`OrderChange`]. Then orders, order changes, fills, ledger
/// entries and positions each take a few multi-row statements (of several upserts of
/// one position the last counts); withdrawal states run one by one, in order.
#[derive(Debug, Default)]
struct Plan<'a> {
    new_orders: Vec<OrderRow>,
    order_changes: Vec<OrderChange>,
    fills: Vec<&'a FillRow>,
    ledger: Vec<&'a LedgerRow>,
    positions: Vec<&'a PositionRow>,
    withdrawals: Vec<(i64, &'a str, i64)>,
}

/// One change of an order.
#[derive(Debug, Clone, Copy)]
enum Change<'a> {
    Fill {
        quantity: i64,
        leaves: i64,
    },
    Close {
        status: &'a str,
        reason: Option<&'a str>,
    },
    Amend {
        price: i64,
        leaves: i64,
    },
}

impl<'a> Change<'a> {
    /// The order, the change and its time, for the ops that change an order.
    fn of(op: &'a ReadOp) -> Option<(i64, Change<'a>, i64)> {
        match op {
            ReadOp::OrderFilled {
                order_id,
                quantity_lots,
                leaves_lots,
                ts_us,
            } => Some((
                *order_id,
                Change::Fill {
                    quantity: *quantity_lots,
                    leaves: *leaves_lots,
                },
                *ts_us,
            )),
            ReadOp::OrderClosed {
                order_id,
                status,
                reason,
                ts_us,
            } => Some((
                *order_id,
                Change::Close {
                    status,
                    reason: reason.as_deref(),
                },
                *ts_us,
            )),
            ReadOp::OrderAmended {
                order_id,
                price_ticks,
                leaves_lots,
                ts_us,
            } => Some((
                *order_id,
                Change::Amend {
                    price: *price_ticks,
                    leaves: *leaves_lots,
                },
                *ts_us,
            )),
            _ => None,
        }
    }
}

/// The status after a fill that leaves `leaves` open.
fn filled_status(leaves: i64) -> &'static str {
    if leaves == 0 {
        "filled"
    } else {
        "partially_filled"
    }
}

/// An order change that cannot be applied (a counter would overflow): a caller bug.
fn overflow(order_id: i64) -> StoreError {
    tracing::error!(order_id, "order change overflows a quantity");
    StoreError::Internal
}

/// Applies `change` at `ts` to an order inserted in the same batch.
fn change_row(o: &mut OrderRow, change: Change<'_>, ts: i64) -> Result<(), StoreError> {
    match change {
        Change::Fill { quantity, leaves } => {
            o.filled_lots = o
                .filled_lots
                .checked_add(quantity)
                .ok_or_else(|| overflow(o.order_id))?;
            o.leaves_lots = leaves;
            filled_status(leaves).clone_into(&mut o.status);
        }
        Change::Close { status, reason } => {
            o.leaves_lots = 0;
            status.clone_into(&mut o.status);
            o.cancel_reason = reason.map(str::to_owned);
        }
        Change::Amend { price, leaves } => {
            o.price_ticks = Some(price);
            o.leaves_lots = leaves;
            o.quantity_lots = o
                .filled_lots
                .checked_add(leaves)
                .ok_or_else(|| overflow(o.order_id))?;
        }
    }
    o.updated_at_us = ts;
    Ok(())
}

/// The net effect of a batch's changes on one stored order, as one row of
/// [`UPDATE_ORDERS`]: `filled_lots += filled_add`; `leaves_lots = leaves_lots`; the
/// last amend's price, and `quantity_lots = filled_lots + quantity_over_filled`
/// (`filled_lots` as stored: the fills before that amend are in the offset); the last
/// fill's or close's status; the last close's reason; the last time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OrderChange {
    order_id: i64,
    filled_add: i64,
    leaves_lots: i64,
    price_ticks: Option<i64>,
    quantity_over_filled: Option<i64>,
    status: Option<String>,
    /// `Some` once closed: the reason to set.
    cancel_reason: Option<Option<String>>,
    updated_at_us: i64,
}

impl OrderChange {
    fn new(order_id: i64) -> Self {
        Self {
            order_id,
            filled_add: 0,
            leaves_lots: 0,
            price_ticks: None,
            quantity_over_filled: None,
            status: None,
            cancel_reason: None,
            updated_at_us: 0,
        }
    }

    fn add(&mut self, change: Change<'_>, ts: i64) -> Result<(), StoreError> {
        match change {
            Change::Fill { quantity, leaves } => {
                self.filled_add = self
                    .filled_add
                    .checked_add(quantity)
                    .ok_or_else(|| overflow(self.order_id))?;
                self.leaves_lots = leaves;
                self.status = Some(filled_status(leaves).to_owned());
            }
            Change::Close { status, reason } => {
                self.leaves_lots = 0;
                self.status = Some(status.to_owned());
                self.cancel_reason = Some(reason.map(str::to_owned));
            }
            Change::Amend { price, leaves } => {
                self.price_ticks = Some(price);
                self.leaves_lots = leaves;
                self.quantity_over_filled = Some(
                    self.filled_add
                        .checked_add(leaves)
                        .ok_or_else(|| overflow(self.order_id))?,
                );
            }
        }
        self.updated_at_us = ts;
        Ok(())
    }
}

impl<'a> Plan<'a> {
    /// The plan of `ops`; `Conflict` when an order is inserted twice (or after a
    /// change of it), `Internal` when an amount is not integer text or a quantity
    /// overflows.
    fn new(ops: &'a [ReadOp]) -> Result<Self, StoreError> {
        /// Where the changes of an order go.
        #[derive(Clone, Copy)]
        enum Target {
            /// `new_orders[i]`.
            New(usize),
            /// `order_changes[i]`.
            Stored(usize),
        }
        let mut plan = Plan::default();
        let mut orders: HashMap<i64, Target> = HashMap::new();
        let mut positions: HashMap<(i64, &'a str), usize> = HashMap::new();
        for op in ops {
            if let Some((order_id, change, ts)) = Change::of(op) {
                let target = *orders.entry(order_id).or_insert_with(|| {
                    plan.order_changes.push(OrderChange::new(order_id));
                    Target::Stored(plan.order_changes.len() - 1)
                });
                match target {
                    Target::New(i) => change_row(&mut plan.new_orders[i], change, ts)?,
                    Target::Stored(i) => plan.order_changes[i].add(change, ts)?,
                }
                continue;
            }
            match op {
                ReadOp::InsertOrder(row) => match orders.entry(row.order_id) {
                    // Inserted twice, or changed before it was inserted (so it is a
                    // stored order).
                    Entry::Occupied(_) => return Err(StoreError::Conflict),
                    Entry::Vacant(slot) => {
                        slot.insert(Target::New(plan.new_orders.len()));
                        plan.new_orders.push(row.clone());
                    }
                },
                ReadOp::InsertFill(row) => {
                    check_integer("fills", "fee_micros", &row.fee_micros)?;
                    plan.fills.push(row);
                }
                ReadOp::InsertLedger(row) => {
                    check_integer("ledger", "delta_micros", &row.delta_micros)?;
                    check_integer("ledger", "balance_micros", &row.balance_micros)?;
                    plan.ledger.push(row);
                }
                ReadOp::UpsertPosition(row) => {
                    check_integer("positions", "size_lots", &row.size_lots)?;
                    check_integer("positions", "cost", &row.cost)?;
                    check_integer("positions", "realised_pnl_micros", &row.realised_pnl_micros)?;
                    match positions.entry((row.account_id, row.symbol.as_str())) {
                        Entry::Occupied(slot) => plan.positions[*slot.get()] = row,
                        Entry::Vacant(slot) => {
                            slot.insert(plan.positions.len());
                            plan.positions.push(row);
                        }
                    }
                }
                ReadOp::WithdrawalState {
                    withdrawal_id,
                    state,
                    ts_us,
                } => plan.withdrawals.push((*withdrawal_id, state, *ts_us)),
                ReadOp::OrderFilled { .. }
                | ReadOp::OrderClosed { .. }
                | ReadOp::OrderAmended { .. } => {}
            }
        }
        Ok(plan)
    }
}

/// How a batch went, short of a database error.
enum Applied {
    /// Its checkpoint was already reached; nothing changed.
    Stale,
    /// Applied and committed.
    Done,
    /// This many changed orders do not exist; rolled back.
    MissingOrders(u64),
    /// The batch cannot be applied as it is (see [`Plan::new`]); nothing changed.
    Refused(StoreError),
}

/// Runs `$stmt` over `$rows`, many rows per statement: `$bind` binds one row `$r` onto
/// `$q`. With `$count`, adds the rows each statement changed to it.
macro_rules! insert_rows {
    ($tx:ident, $backend:expr, $stmt:expr, $rows:expr, |$q:ident, $r:ident| $bind:expr) => {{
        let mut _ignored = 0;
        insert_rows!($tx, $backend, $stmt, $rows, _ignored, |$q, $r| $bind)
    }};
    ($tx:ident, $backend:expr, $stmt:expr, $rows:expr, $count:ident, |$q:ident, $r:ident| $bind:expr) => {{
        let mut rest = &$rows[..];
        while !rest.is_empty() {
            let (take, sql) = $stmt.for_rows($backend, rest.len());
            let (chunk, tail) = rest.split_at(take);
            let mut $q = sqlx::query(sql);
            for $r in chunk {
                $q = $bind;
            }
            $count += $q.execute(&mut *$tx).await?.rows_affected();
            rest = tail;
        }
    }};
}

/// The projection transaction, written once for both backends
/// (`Result<Applied, sqlx::Error>`; returning early rolls `$tx` back).
macro_rules! apply {
    ($tx:ident, $sql:ident, $backend:expr, $seq:expr, $ops:expr) => {{
        let current: i64 = sqlx::query_scalar($sql::CHECKPOINT_LOCK)
            .fetch_one(&mut *$tx)
            .await?;
        if $seq <= current {
            return Ok(Applied::Stale);
        }
        // Planned only now: a batch already applied is Ok(false) whatever it holds.
        let plan = match Plan::new($ops) {
            Ok(plan) => plan,
            Err(e) => return Ok(Applied::Refused(e)),
        };
        insert_rows!($tx, $backend, INSERT_ORDERS, plan.new_orders, |q, r| q
            .bind(r.order_id)
            .bind(r.account_id)
            .bind(&r.symbol)
            .bind(&r.client_order_id)
            .bind(&r.side)
            .bind(&r.order_type)
            .bind(r.price_ticks)
            .bind(r.quantity_lots)
            .bind(r.filled_lots)
            .bind(r.leaves_lots)
            .bind(&r.time_in_force)
            .bind(r.post_only)
            .bind(r.reduce_only)
            .bind(&r.stp)
            .bind(&r.status)
            .bind(&r.cancel_reason)
            .bind(&r.idempotency_key)
            .bind(r.created_at_us)
            .bind(r.updated_at_us));
        let mut changed = 0;
        insert_rows!(
            $tx,
            $backend,
            UPDATE_ORDERS,
            plan.order_changes,
            changed,
            |q, r| q
                .bind(r.order_id)
                .bind(r.filled_add)
                .bind(r.leaves_lots)
                .bind(r.price_ticks)
                .bind(r.quantity_over_filled)
                .bind(r.status.as_deref())
                .bind(r.cancel_reason.is_some())
                .bind(r.cancel_reason.as_ref().and_then(Option::as_deref))
                .bind(r.updated_at_us)
        );
        let expected = u64::try_from(plan.order_changes.len()).unwrap_or(u64::MAX);
        if changed != expected {
            return Ok(Applied::MissingOrders(expected.saturating_sub(changed)));
        }
        insert_rows!($tx, $backend, INSERT_FILLS, plan.fills, |q, r| q
            .bind(r.trade_id)
            .bind(r.order_id)
            .bind(r.account_id)
            .bind(&r.symbol)
            .bind(&r.side)
            .bind(r.price_ticks)
            .bind(r.quantity_lots)
            .bind(&r.liquidity)
            .bind(&r.fee_micros)
            .bind(r.ts_us));
        insert_rows!($tx, $backend, INSERT_LEDGER, plan.ledger, |q, r| q
            .bind(r.entry_id)
            .bind(r.account_id)
            .bind(&r.asset)
            .bind(&r.delta_micros)
            .bind(&r.balance_micros)
            .bind(&r.reason)
            .bind(&r.ref_id)
            .bind(r.ts_us));
        insert_rows!($tx, $backend, UPSERT_POSITIONS, plan.positions, |q, r| q
            .bind(r.account_id)
            .bind(&r.symbol)
            .bind(&r.size_lots)
            .bind(&r.cost)
            .bind(&r.realised_pnl_micros)
            .bind(r.updated_at_us));
        for (withdrawal_id, state, ts_us) in &plan.withdrawals {
            sqlx::query($sql::WITHDRAWAL_STATE)
                .bind(*state)
                .bind(ts_us)
                .bind(withdrawal_id)
                .execute(&mut *$tx)
                .await?;
        }
        sqlx::query($sql::SET_CHECKPOINT)
            .bind($seq)
            .execute(&mut *$tx)
            .await?;
        $tx.commit().await?;
        Ok(Applied::Done)
    }};
}

impl Store {
    /// Applies one batch of read-model changes and sets the projection checkpoint to
    /// `last_seq`, in one transaction. If `last_seq <= `[`Store::projection_checkpoint`]
    /// the batch was already applied: `Ok(false)`, nothing changes. Otherwise `Ok(true)`.
    ///
    /// The result is that of applying the ops one by one in order. Nothing changes on
    /// any error: `Conflict` when an inserted order, fill or ledger entry exists;
    /// `Internal` when a change names
    /// an order that does not exist, when an amount is not integer text, when a value
    /// breaks a table's rule (an unknown status, side, …) or when `last_seq` is above
    /// `i64::MAX`. A `WithdrawalState` of an unknown withdrawal changes nothing.
    ///
    /// Concurrent calls are serialised (SQLite: the write lock; PostgreSQL: the
    /// checkpoint row's lock), so of two calls with the same `last_seq` one applies.
    /// A batch takes a few multi-row statements per table, not one per op: an order
    /// inserted in the batch is written once in its final state, and all changes of a
    /// stored order become one row update.
    pub async fn apply_projection(
        &self,
        last_seq: u64,
        ops: &[ReadOp],
    ) -> Result<bool, StoreError> {
        let op = "apply_projection";
        let Ok(seq) = i64::try_from(last_seq) else {
            tracing::error!(op, "projection sequence number out of range");
            return Err(StoreError::Internal);
        };
        let applied = match &self.pool {
            Pool::Sqlite(p) => {
                async {
                    // The write lock up front: the check and the changes see no other
                    // writer.
                    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                    apply!(tx, sql_sqlite, Backend::Sqlite, seq, ops)
                }
                .await
            }
            Pool::Postgres(p) => {
                async {
                    let mut tx = p.begin().await?;
                    apply!(tx, sql_postgres, Backend::Postgres, seq, ops)
                }
                .await
            }
        }
        .map_err(|e| db_error(op, e))?;
        match applied {
            Applied::Stale => Ok(false),
            Applied::Done => Ok(true),
            Applied::Refused(e) => Err(e),
            Applied::MissingOrders(missing) => {
                tracing::error!(op, missing, last_seq, "projected changes of unknown orders");
                Err(StoreError::Internal)
            }
        }
    }

    /// The sequence number the read models are projected up to; 0 when nothing was ever
    /// projected.
    pub async fn projection_checkpoint(&self) -> Result<u64, StoreError> {
        let seq: i64 = on_pool!(
            self,
            "projection_checkpoint",
            query_scalar,
            CHECKPOINT,
            fetch_one
        )?;
        u64::try_from(seq).map_err(|_| StoreError::Internal)
    }

    /// The trading account of a user: created on first call (ids from 1 upward; 0 is
    /// the exchange's fee account and is never handed out), the same id forever after.
    /// Concurrent first calls for one user return the same id.
    pub async fn trading_account_id(&self, user_id: &str) -> Result<i64, StoreError> {
        let existing: Option<i64> = on_pool!(
            self,
            "trading_account_id",
            query_scalar,
            ACCOUNT_OF_USER,
            fetch_optional,
            user_id
        )?;
        if let Some(id) = existing {
            return Ok(id);
        }
        let created: Option<i64> = on_pool!(
            self,
            "trading_account_id",
            query_scalar,
            INSERT_ACCOUNT,
            fetch_optional,
            user_id
        )?;
        if let Some(id) = created {
            return Ok(id);
        }
        // Another call created it between the two statements.
        let raced: Option<i64> = on_pool!(
            self,
            "trading_account_id",
            query_scalar,
            ACCOUNT_OF_USER,
            fetch_optional,
            user_id
        )?;
        raced.ok_or_else(|| {
            tracing::error!(
                op = "trading_account_id",
                "trading account vanished after creation"
            );
            StoreError::Internal
        })
    }

    /// The user of a trading account, if any.
    pub async fn trading_account_user(
        &self,
        account_id: i64,
    ) -> Result<Option<String>, StoreError> {
        on_pool!(
            self,
            "trading_account_user",
            query_scalar,
            USER_OF_ACCOUNT,
            fetch_optional,
            account_id
        )
    }

    /// One of the account's orders; `None` for another account's.
    pub async fn get_order(
        &self,
        account_id: i64,
        order_id: i64,
    ) -> Result<Option<OrderRow>, StoreError> {
        on_pool!(
            self,
            "get_order",
            query_as,
            GET_ORDER,
            fetch_optional,
            order_id,
            account_id
        )
    }

    /// Any account's order (admin use).
    pub async fn get_order_any(&self, order_id: i64) -> Result<Option<OrderRow>, StoreError> {
        on_pool!(
            self,
            "get_order_any",
            query_as,
            GET_ORDER_ANY,
            fetch_optional,
            order_id
        )
    }

    /// The account's order placed with idempotency key `key`.
    pub async fn find_order_by_idempotency_key(
        &self,
        account_id: i64,
        key: &str,
    ) -> Result<Option<OrderRow>, StoreError> {
        on_pool!(
            self,
            "find_order_by_idempotency_key",
            query_as,
            ORDER_BY_KEY,
            fetch_optional,
            account_id,
            key
        )
    }

    /// A page of the account's orders, newest first; pass the last id back as `before`.
    pub async fn list_orders(&self, q: &OrderQuery) -> Result<Vec<OrderRow>, StoreError> {
        on_pool!(
            self,
            "list_orders",
            query_as,
            LIST_ORDERS,
            fetch_all,
            q.account_id,
            q.symbol.as_deref(),
            q.open_only,
            q.status.as_deref(),
            cursor(q.before),
            page_limit(q.limit),
        )
    }

    /// A page of the account's fills, newest first; pass the last trade id back as
    /// `before`.
    pub async fn list_fills(&self, q: &FillQuery) -> Result<Vec<FillRow>, StoreError> {
        on_pool!(
            self,
            "list_fills",
            query_as,
            LIST_FILLS,
            fetch_all,
            q.account_id,
            q.symbol.as_deref(),
            q.order_id,
            cursor(q.before),
            page_limit(q.limit),
        )
    }

    /// Public trades: the taker rows of `symbol`, newest first, trade ids below `before`.
    pub async fn list_public_trades(
        &self,
        symbol: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<FillRow>, StoreError> {
        on_pool!(
            self,
            "list_public_trades",
            query_as,
            PUBLIC_TRADES,
            fetch_all,
            symbol,
            cursor(before),
            page_limit(limit),
        )
    }

    /// Sum of `quantity_lots` of the taker rows of `symbol` with `ts_us >= since_us`
    /// (traded volume in lots).
    pub async fn traded_volume_since(
        &self,
        symbol: &str,
        since_us: i64,
    ) -> Result<i64, StoreError> {
        on_pool!(
            self,
            "traded_volume_since",
            query_scalar,
            VOLUME,
            fetch_one,
            symbol,
            since_us
        )
    }

    /// A page of the account's ledger, newest first; pass the last entry id back as
    /// `before`.
    pub async fn list_ledger(&self, q: &LedgerQuery) -> Result<Vec<LedgerRow>, StoreError> {
        on_pool!(
            self,
            "list_ledger",
            query_as,
            LIST_LEDGER,
            fetch_all,
            q.account_id,
            q.asset.as_deref(),
            q.reason.as_deref(),
            cursor(q.before),
            page_limit(q.limit),
        )
    }

    /// The account's positions, by symbol (byte order); flat ones included.
    pub async fn list_positions(&self, account_id: i64) -> Result<Vec<PositionRow>, StoreError> {
        on_pool!(
            self,
            "list_positions",
            query_as,
            LIST_POSITIONS,
            fetch_all,
            account_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_text_is_canonical() {
        for good in [
            "0",
            "1",
            "-1",
            "10",
            "-1234567890123456789012345678901234567",
        ] {
            assert!(is_integer_text(good), "{good}");
        }
        for bad in [
            "", "-", "-0", "00", "01", "+1", "1.0", " 1", "1 ", "1e3", "--1", "٣",
        ] {
            assert!(!is_integer_text(bad), "{bad}");
        }
    }

    #[test]
    fn multi_row_statements_place_their_placeholders_in_order() {
        static T: RowsSql =
            RowsSql::new("INSERT INTO t (a, b) VALUES", 2, " ON CONFLICT DO NOTHING");
        assert_eq!(
            T.build(Backend::Sqlite, 2),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            T.build(Backend::Postgres, 1),
            "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        );
        // Largest chunk that fits, down to one row.
        assert_eq!(T.for_rows(Backend::Sqlite, 1000).0, 32);
        assert_eq!(T.for_rows(Backend::Sqlite, 31).0, 8);
        assert_eq!(T.for_rows(Backend::Postgres, 5).0, 2);
        assert_eq!(T.for_rows(Backend::Postgres, 1).0, 1);
        let (_, sql) = T.for_rows(Backend::Postgres, 3);
        assert!(
            std::ptr::eq(sql, T.for_rows(Backend::Postgres, 2).1),
            "built once"
        );
        assert_eq!(
            sql,
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
    }

    #[test]
    fn the_plan_folds_changes_of_new_orders_and_keeps_the_last_position() {
        let order = OrderRow {
            order_id: 7,
            account_id: 1,
            symbol: "BTC-PERP".into(),
            client_order_id: "c".into(),
            side: "buy".into(),
            order_type: "limit".into(),
            price_ticks: Some(100),
            quantity_lots: 10,
            filled_lots: 0,
            leaves_lots: 10,
            time_in_force: "gtc".into(),
            post_only: false,
            reduce_only: false,
            stp: "cancel_taker".into(),
            status: "new".into(),
            cancel_reason: None,
            idempotency_key: None,
            created_at_us: 1,
            updated_at_us: 1,
        };
        let position = |size: &str| PositionRow {
            account_id: 1,
            symbol: "BTC-PERP".into(),
            size_lots: size.into(),
            cost: "0".into(),
            realised_pnl_micros: "0".into(),
            updated_at_us: 1,
        };
        let ops = vec![
            ReadOp::InsertOrder(order.clone()),
            ReadOp::OrderFilled {
                order_id: 7,
                quantity_lots: 4,
                leaves_lots: 6,
                ts_us: 2,
            },
            ReadOp::OrderFilled {
                order_id: 8,
                quantity_lots: 1,
                leaves_lots: 0,
                ts_us: 2,
            },
            ReadOp::OrderAmended {
                order_id: 7,
                price_ticks: 99,
                leaves_lots: 3,
                ts_us: 3,
            },
            ReadOp::UpsertPosition(position("4")),
            ReadOp::OrderClosed {
                order_id: 7,
                status: "canceled".into(),
                reason: Some("user".into()),
                ts_us: 4,
            },
            ReadOp::UpsertPosition(position("5")),
        ];
        let plan = Plan::new(&ops).unwrap();
        assert_eq!(
            plan.new_orders,
            [OrderRow {
                price_ticks: Some(99),
                quantity_lots: 7,
                filled_lots: 4,
                leaves_lots: 0,
                status: "canceled".into(),
                cancel_reason: Some("user".into()),
                updated_at_us: 4,
                ..order.clone()
            }]
        );
        assert_eq!(
            plan.order_changes,
            [OrderChange {
                order_id: 8,
                filled_add: 1,
                leaves_lots: 0,
                price_ticks: None,
                quantity_over_filled: None,
                status: Some("filled".into()),
                cancel_reason: None,
                updated_at_us: 2,
            }]
        );
        assert_eq!(plan.positions, [&position("5")]);
        // The changes of a stored order fold into one.
        let stored = [
            ReadOp::OrderFilled {
                order_id: 9,
                quantity_lots: 2,
                leaves_lots: 8,
                ts_us: 5,
            },
            ReadOp::OrderAmended {
                order_id: 9,
                price_ticks: 50,
                leaves_lots: 5,
                ts_us: 6,
            },
            ReadOp::OrderFilled {
                order_id: 9,
                quantity_lots: 1,
                leaves_lots: 4,
                ts_us: 7,
            },
            ReadOp::OrderClosed {
                order_id: 9,
                status: "expired".into(),
                reason: None,
                ts_us: 8,
            },
        ];
        assert_eq!(
            Plan::new(&stored).unwrap().order_changes,
            [OrderChange {
                order_id: 9,
                filled_add: 3,
                leaves_lots: 0,
                price_ticks: Some(50),
                quantity_over_filled: Some(7),
                status: Some("expired".into()),
                cancel_reason: Some(None),
                updated_at_us: 8,
            }]
        );
        // The same order twice in one batch, or changed before it is inserted.
        let late = [
            stored[0].clone(),
            ReadOp::InsertOrder(OrderRow {
                order_id: 9,
                ..order.clone()
            }),
        ];
        assert!(matches!(Plan::new(&late), Err(StoreError::Conflict)));
        let twice = [
            ReadOp::InsertOrder(order.clone()),
            ReadOp::InsertOrder(order),
        ];
        assert!(matches!(Plan::new(&twice), Err(StoreError::Conflict)));
        assert!(matches!(
            Plan::new(&[ReadOp::UpsertPosition(position("01"))]),
            Err(StoreError::Internal)
        ));
    }
}
