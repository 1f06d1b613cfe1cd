//! The SQLite backend: a WAL file in the data folder (or a shared in-memory database).
//!
//! SQLite has no decimal or timestamp type, so decimals are stored as their exact text
//! and expiries as fixed-width RFC 3339 UTC text (see the migration).

use std::str::FromStr;

use bourse_types::{Decimal, Instrument};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::database_url::bad_url;
use crate::error::{db_error, invalid_row, unavailable};
use crate::row::{AppliedMigrationRow, InstrumentRow};
use crate::{ACQUIRE_TIMEOUT, InstrumentQuery, StoreError};

pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Expiry as stored: UTC, always six fractional digits, so text order is time order.
const EXPIRY_FORMAT: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

pub(crate) async fn connect(url: &str) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|_| bad_url(url, "not a valid SQLite URL"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT);
    let mut pool = SqlitePoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
    if is_in_memory(url) {
        // An in-memory database lives as long as one connection to it: keep one open
        // for the life of the pool.
        pool = pool
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    pool.connect_with(options)
        .await
        .map_err(|e| unavailable("connect", e))
}

fn is_in_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    path == ":memory:" || query.split('&').any(|p| p == "mode=memory")
}

pub(crate) async fn select_one(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop)
}

pub(crate) async fn has_migrations_table(pool: &SqlitePool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(pool)
    .await
    .map(|n| n > 0)
}

pub(crate) async fn applied_migrations(
    pool: &SqlitePool,
) -> Result<Vec<AppliedMigrationRow>, sqlx::Error> {
    sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations")
        .fetch_all(pool)
        .await
}

/// `instruments` as SQLite returns it: text columns, parsed in [`SqliteInstrumentRow::parse`].
#[derive(Debug, sqlx::FromRow)]
struct SqliteInstrumentRow {
    symbol: String,
    kind: String,
    base_asset: String,
    quote_asset: String,
    settlement_asset: String,
    tick_size: String,
    lot_size: String,
    min_order_size: String,
    max_order_size: String,
    contract_multiplier: String,
    expiry: Option<String>,
    strike: Option<String>,
    option_right: Option<String>,
    status: String,
}

impl SqliteInstrumentRow {
    fn parse(self) -> Result<InstrumentRow, StoreError> {
        let symbol = self.symbol;
        let decimal = |column, text: &str| {
            Decimal::from_str_exact(text).map_err(|_| invalid_row(&symbol, column))
        };
        let tick_size = decimal("tick_size", &self.tick_size)?;
        let lot_size = decimal("lot_size", &self.lot_size)?;
        let min_order_size = decimal("min_order_size", &self.min_order_size)?;
        let max_order_size = decimal("max_order_size", &self.max_order_size)?;
        let contract_multiplier = decimal("contract_multiplier", &self.contract_multiplier)?;
        let strike = match &self.strike {
            None => None,
            Some(s) => Some(decimal("strike", s)?),
        };
        let expiry = match &self.expiry {
            None => None,
            Some(s) => Some(
                OffsetDateTime::parse(s, &Rfc3339).map_err(|_| invalid_row(&symbol, "expiry"))?,
            ),
        };
        Ok(InstrumentRow {
            symbol,
            kind: self.kind,
            base_asset: self.base_asset,
            quote_asset: self.quote_asset,
            settlement_asset: self.settlement_asset,
            tick_size,
            lot_size,
            min_order_size,
            max_order_size,
            contract_multiplier,
            expiry,
            strike,
            option_right: self.option_right,
            status: self.status,
        })
    }
}

/// The stored text of an expiry, truncated to microseconds like `TIMESTAMPTZ`.
fn expiry_text(t: OffsetDateTime) -> Result<String, StoreError> {
    let utc = t.to_offset(UtcOffset::UTC);
    utc.replace_nanosecond(utc.nanosecond() / 1_000 * 1_000)
        .ok()
        .and_then(|t| t.format(EXPIRY_FORMAT).ok())
        .ok_or_else(|| {
            tracing::error!("expiry cannot be stored (year out of range)");
            StoreError::Internal
        })
}

const INSERT: &str = concat!(
    "INSERT INTO instruments (",
    instrument_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ",
    "ON CONFLICT (symbol) DO NOTHING"
);

/// Inserts `i` unless its symbol exists; returns the number of rows inserted (0 or 1).
pub(crate) async fn insert_instrument<'e, E>(executor: E, i: &Instrument) -> Result<u64, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let expiry = i.expiry.map(expiry_text).transpose()?;
    sqlx::query(INSERT)
        .bind(i.symbol.as_str())
        .bind(i.kind.as_str())
        .bind(i.base_asset.as_str())
        .bind(i.quote_asset.as_str())
        .bind(i.settlement_asset.as_str())
        .bind(i.tick_size.to_string())
        .bind(i.lot_size.to_string())
        .bind(i.min_order_size.to_string())
        .bind(i.max_order_size.to_string())
        .bind(i.contract_multiplier.to_string())
        .bind(expiry)
        .bind(i.strike.map(|s| s.to_string()))
        .bind(i.option_right.map(|r| r.as_str()))
        .bind(i.status.as_str())
        .execute(executor)
        .await
        .map(|done| done.rows_affected())
        .map_err(|e| db_error("insert_instrument", e))
}

pub(crate) async fn get_instrument(
    pool: &SqlitePool,
    symbol: &str,
) -> Result<Option<InstrumentRow>, StoreError> {
    let row: Option<SqliteInstrumentRow> = sqlx::query_as(concat!(
        "SELECT ",
        instrument_columns!(),
        " FROM instruments WHERE symbol = ?1"
    ))
    .bind(symbol)
    .fetch_optional(pool)
    .await
    .map_err(|e| db_error("get_instrument", e))?;
    row.map(SqliteInstrumentRow::parse).transpose()
}

/// Up to `fetch` rows matching `q`, in symbol order.
pub(crate) async fn list_instruments(
    pool: &SqlitePool,
    q: &InstrumentQuery,
    fetch: i64,
) -> Result<Vec<InstrumentRow>, StoreError> {
    let rows: Vec<SqliteInstrumentRow> = sqlx::query_as(concat!(
        "SELECT ",
        instrument_columns!(),
        " FROM instruments",
        " WHERE (?1 IS NULL OR kind = ?1)",
        " AND (?2 IS NULL OR status = ?2)",
        " AND (?3 IS NULL OR symbol > ?3)",
        " ORDER BY symbol LIMIT ?4"
    ))
    .bind(q.kind.map(|k| k.as_str()))
    .bind(q.status.map(|s| s.as_str()))
    .bind(q.after.as_ref().map(|s| s.as_str()))
    .bind(fetch)
    .fetch_all(pool)
    .await
    .map_err(|e| db_error("list_instruments", e))?;
    rows.into_iter().map(SqliteInstrumentRow::parse).collect()
}

pub(crate) async fn seed(
    pool: &SqlitePool,
    instruments: &[Instrument],
) -> Result<usize, StoreError> {
    // IMMEDIATE takes the write lock up front, so the emptiness check and the inserts
    // cannot interleave with another writer (and a deferred transaction's lock upgrade
    // cannot fail with SQLITE_BUSY half way).
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| db_error("seed_demo_instruments", e))?;
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instruments")
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error("seed_demo_instruments", e))?;
    if existing > 0 {
        return Ok(0);
    }
    let mut inserted = 0;
    for i in instruments {
        if insert_instrument(&mut *tx, i).await? > 0 {
            inserted += 1;
        }
    }
    tx.commit()
        .await
        .map_err(|e| db_error("seed_demo_instruments", e))?;
    Ok(inserted)
}
