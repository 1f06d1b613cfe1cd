//! The PostgreSQL backend: NUMERIC decimals and TIMESTAMPTZ expiries, read natively.

use std::str::FromStr;

use bourse_types::Instrument;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::database_url::bad_url;
use crate::error::{db_error, unavailable};
use crate::row::{AppliedMigrationRow, InstrumentRow};
use crate::{ACQUIRE_TIMEOUT, InstrumentQuery, StoreError};

pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

pub(crate) async fn connect(url: &str) -> Result<PgPool, StoreError> {
    let options =
        PgConnectOptions::from_str(url).map_err(|_| bad_url(url, "not a valid PostgreSQL URL"))?;
    PgPoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| unavailable("connect", e))
}

pub(crate) async fn select_one(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop)
}

pub(crate) async fn has_migrations_table(pool: &PgPool) -> Result<bool, sqlx::Error> {
    // Resolved through search_path, where the migrator created it.
    sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
}

pub(crate) async fn applied_migrations(
    pool: &PgPool,
) -> Result<Vec<AppliedMigrationRow>, sqlx::Error> {
    sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations")
        .fetch_all(pool)
        .await
}

const INSERT: &str = concat!(
    "INSERT INTO instruments (",
    instrument_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ",
    "ON CONFLICT (symbol) DO NOTHING"
);

/// Inserts `i` unless its symbol exists; returns the number of rows inserted (0 or 1).
pub(crate) async fn insert_instrument<'e, E>(executor: E, i: &Instrument) -> Result<u64, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(INSERT)
        .bind(i.symbol.as_str())
        .bind(i.kind.as_str())
        .bind(i.base_asset.as_str())
        .bind(i.quote_asset.as_str())
        .bind(i.settlement_asset.as_str())
        .bind(i.tick_size)
        .bind(i.lot_size)
        .bind(i.min_order_size)
        .bind(i.max_order_size)
        .bind(i.contract_multiplier)
        .bind(i.expiry)
        .bind(i.strike)
        .bind(i.option_right.map(|r| r.as_str()))
        .bind(i.status.as_str())
        .execute(executor)
        .await
        .map(|done| done.rows_affected())
        .map_err(|e| db_error("insert_instrument", e))
}

pub(crate) async fn get_instrument(
    pool: &PgPool,
    symbol: &str,
) -> Result<Option<InstrumentRow>, StoreError> {
    sqlx::query_as(concat!(
        "SELECT ",
        instrument_columns!(),
        " FROM instruments WHERE symbol = $1"
    ))
    .bind(symbol)
    .fetch_optional(pool)
    .await
    .map_err(|e| db_error("get_instrument", e))
}

/// Up to `fetch` rows matching `q`, in symbol order (byte order: the column is `COLLATE "C"`).
pub(crate) async fn list_instruments(
    pool: &PgPool,
    q: &InstrumentQuery,
    fetch: i64,
) -> Result<Vec<InstrumentRow>, StoreError> {
    sqlx::query_as(concat!(
        "SELECT ",
        instrument_columns!(),
        " FROM instruments",
        " WHERE ($1::text IS NULL OR kind = $1)",
        " AND ($2::text IS NULL OR status = $2)",
        " AND ($3::text IS NULL OR symbol > $3)",
        " ORDER BY symbol LIMIT $4"
    ))
    .bind(q.kind.map(|k| k.as_str()))
    .bind(q.status.map(|s| s.as_str()))
    .bind(q.after.as_ref().map(|s| s.as_str()))
    .bind(fetch)
    .fetch_all(pool)
    .await
    .map_err(|e| db_error("list_instruments", e))
}

pub(crate) async fn seed(pool: &PgPool, instruments: &[Instrument]) -> Result<usize, StoreError> {
    let mut tx = pool
        .begin()
        .await
        .map_err(|e| db_error("seed_demo_instruments", e))?;
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instruments")
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error("seed_demo_instruments", e))?;
    if existing > 0 {
        return Ok(0);
    }
    // Two first starts racing both see an empty table; ON CONFLICT DO NOTHING in the
    // insert makes the second one insert nothing instead of failing.
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
