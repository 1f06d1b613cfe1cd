//! Storage for bourse: SQLite (embedded default, WAL) and PostgreSQL behind one type.
//!
//! Each backend has its own sqlx migrations (`migrations/sqlite`, `migrations/postgres`)
//! embedded in the binary. Callers never see SQL or driver errors: [`StoreError`]
//! carries only what a caller can act on, and the underlying error is logged once.
//! Rows are separate structs that become domain values only through
//! [`Instrument::validate`]. [`testing::TestDatabase`] gives each test a fresh database
//! on either backend.
//!
//! Identity (users, sessions and refresh tokens, TOTP and recovery codes, login
//! challenges, signing keys, login throttling, admin keys) is stored here too, one module
//! per area. The store keeps only hashes and encrypted blobs it cannot read, never
//! decides policy beyond atomic state transitions, and never reads the clock: every
//! time is passed in. Identity times are stored as unix seconds.
//!
//! Trading read models (`trading.rs`: orders, fills, ledger, positions, projected from
//! the engine's events in checkpointed batches; trading accounts) and wallet operations
//! (`wallet_ops.rs`: withdrawals with their approvals, deposits) keep times as unix
//! microseconds and amounts that can exceed 64 bits as integer text.

use std::fmt;
use std::time::Duration;

use bourse_types::{Instrument, InstrumentKind, InstrumentStatus, Symbol};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use time::OffsetDateTime;

/// The columns of `instruments` that the domain type has, in one order for every
/// statement of both backends (`created_at` is the database's own).
macro_rules! instrument_columns {
    () => {
        "symbol, kind, base_asset, quote_asset, settlement_asset, tick_size, lot_size, \
         min_order_size, max_order_size, contract_multiplier, expiry, strike, option_right, \
         status"
    };
}

mod addresses;
mod admin_keys;
mod audit;
mod convert;
mod database_url;
mod error;
mod external_identities;
mod idempotency;
mod login_throttle;
mod mfa_challenges;
mod postgres;
mod purge;
mod risk_alerts;
mod row;
mod seed;
#[doc(hidden)]
pub use seed::demo_instruments;
mod sessions;
mod signing_keys;
mod sqlite;
pub mod testing;
mod totp;
mod trading;
mod users;
mod wallet_ops;

pub use addresses::AddressRecord;
pub use admin_keys::AdminKeyRecord;
pub use audit::{
    AuditAnchor, AuditBreak, AuditEntry, AuditQuery, AuditRecord, AuditReport, ChainHead,
    GENESIS_HASH, record_hash,
};
pub use database_url::redact as redact_database_url;
pub use external_identities::{ExternalIdentityRecord, PendingLoginRecord, UnlinkOutcome};
pub use idempotency::IdempotencyStart;
pub use login_throttle::{BackoffPolicy, LoginThrottle};
pub use mfa_challenges::MfaChallenge;
pub use purge::Purged;
pub use risk_alerts::{RiskAlertQuery, RiskAlertRecord};
pub use sessions::{MAX_USER_AGENT_CHARS, RotateOutcome, SessionRecord};
pub use signing_keys::SigningKeyRecord;
pub use totp::{TotpFailure, TotpRecord};
pub use trading::{
    FillQuery, FillRow, LedgerQuery, LedgerRow, OrderQuery, OrderRow, PositionRow, ReadOp,
};
pub use users::{UserRecord, UserStatus};
pub use wallet_ops::{DepositRow, WithdrawalRow};

use error::{db_error, migrate_error, unavailable};
use row::{AppliedMigrationRow, InstrumentRow};

/// Longest wait for a pooled connection (including opening one), so that no caller, and
/// in particular no readiness probe, hangs on a dead database.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest a readiness check may take before the database counts as unavailable.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest page [`Store::list_instruments`] (and any other listing) returns, whatever
/// the caller asks.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file in the data folder.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Errors a caller can act on. Never contains SQL text or connection strings.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or the pool is closed.
    #[error("database unavailable")]
    Unavailable,
    /// Migrations embedded in this binary are not all applied.
    #[error("database schema is not up to date")]
    NotMigrated,
    /// A unique key already exists.
    #[error("already exists")]
    Conflict,
    /// The URL is not a supported database URL.
    #[error("unsupported database url: {0}")]
    BadUrl(String),
    /// Anything else; details went to the log.
    #[error("database error")]
    Internal,
}

/// Filter and cursor for listing instruments, ordered by symbol.
#[derive(Debug, Clone, Default)]
pub struct InstrumentQuery {
    /// Only this kind.
    pub kind: Option<InstrumentKind>,
    /// Only this status.
    pub status: Option<InstrumentStatus>,
    /// Start strictly after this symbol (the cursor).
    pub after: Option<Symbol>,
    /// Page size; callers bound it (1..=1000), and the store brings any other value into
    /// `1..=`[`MAX_PAGE_SIZE`].
    pub limit: u32,
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page<T, C> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Cursor for the next page, `None` on the last page.
    pub next: Option<C>,
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl fmt::Debug for Store {
    // Only what is safe to log: no URL, no connect options.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let closed = match &self.pool {
            Pool::Sqlite(p) => p.is_closed(),
            Pool::Postgres(p) => p.is_closed(),
        };
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("closed", &closed)
            .finish()
    }
}

impl Store {
    /// Opens `url`: `sqlite://PATH` or `sqlite:PATH` (file created if missing, WAL,
    /// foreign keys on, `synchronous=NORMAL`, busy timeout; `sqlite::memory:` also works)
    /// or `postgres://…` / `postgresql://…`. Does not run migrations.
    ///
    /// `BadUrl` (with user info and query redacted) for anything else; `Unavailable` when
    /// the database cannot be opened or reached within a few seconds.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = match database_url::backend_of(url)? {
            Backend::Sqlite => Pool::Sqlite(sqlite::connect(url).await?),
            Backend::Postgres => Pool::Postgres(postgres::connect(url).await?),
        };
        Ok(Self { pool })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs the embedded migrations for this backend; applying them again is a no-op.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => sqlite::MIGRATOR.run(p).await,
            Pool::Postgres(p) => postgres::MIGRATOR.run(p).await,
        }
        .map_err(migrate_error)
    }

    /// Ok when the database answers within a short timeout and every embedded migration is applied.
    ///
    /// `Unavailable` when it does not answer (or the store is closed); `NotMigrated` when
    /// a migration of this binary is missing, failed or was applied with other contents.
    pub async fn readiness(&self) -> Result<(), StoreError> {
        match tokio::time::timeout(READINESS_TIMEOUT, self.check_readiness()).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(op = "readiness", "database did not answer in time");
                Err(StoreError::Unavailable)
            }
        }
    }

    async fn check_readiness(&self) -> Result<(), StoreError> {
        let op = "readiness";
        let (migrator, applied) = match &self.pool {
            Pool::Sqlite(p) => {
                sqlite::select_one(p)
                    .await
                    .map_err(|e| unavailable(op, e))?;
                if !sqlite::has_migrations_table(p)
                    .await
                    .map_err(|e| db_error(op, e))?
                {
                    return Err(StoreError::NotMigrated);
                }
                let applied = sqlite::applied_migrations(p)
                    .await
                    .map_err(|e| db_error(op, e))?;
                (&sqlite::MIGRATOR, applied)
            }
            Pool::Postgres(p) => {
                postgres::select_one(p)
                    .await
                    .map_err(|e| unavailable(op, e))?;
                if !postgres::has_migrations_table(p)
                    .await
                    .map_err(|e| db_error(op, e))?
                {
                    return Err(StoreError::NotMigrated);
                }
                let applied = postgres::applied_migrations(p)
                    .await
                    .map_err(|e| db_error(op, e))?;
                (&postgres::MIGRATOR, applied)
            }
        };
        all_applied(migrator, &applied)
    }

    /// Closes the pool; later calls fail with `Unavailable`.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// Inserts one validated instrument; `Conflict` if the symbol exists.
    ///
    /// The instrument is checked again first (its fields are public, so it may have
    /// been changed since it was validated): a stored row that fails the check would
    /// break every page that contains it. An invalid one is refused as `Internal`.
    pub async fn insert_instrument(&self, i: &Instrument) -> Result<(), StoreError> {
        if let Err(reason) = i.clone().validate() {
            tracing::error!(symbol = %i.symbol, %reason, "refusing to store an invalid instrument");
            return Err(StoreError::Internal);
        }
        let inserted = match &self.pool {
            Pool::Sqlite(p) => sqlite::insert_instrument(p, i).await?,
            Pool::Postgres(p) => postgres::insert_instrument(p, i).await?,
        };
        if inserted == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    /// Sets an instrument's trading status (halt, resume, expiry); false if no such
    /// instrument.
    pub async fn set_instrument_status(
        &self,
        s: &Symbol,
        status: InstrumentStatus,
    ) -> Result<bool, StoreError> {
        let changed = match &self.pool {
            Pool::Sqlite(p) => sqlx::query("UPDATE instruments SET status = ?1 WHERE symbol = ?2")
                .bind(status.as_str())
                .bind(s.as_str())
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Pool::Postgres(p) => {
                sqlx::query("UPDATE instruments SET status = $1 WHERE symbol = $2")
                    .bind(status.as_str())
                    .bind(s.as_str())
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected())
            }
        }
        .map_err(|e| db_error("set_instrument_status", e))?;
        Ok(changed == 1)
    }

    /// One instrument by symbol.
    pub async fn get_instrument(&self, s: &Symbol) -> Result<Option<Instrument>, StoreError> {
        let row = match &self.pool {
            Pool::Sqlite(p) => sqlite::get_instrument(p, s.as_str()).await?,
            Pool::Postgres(p) => postgres::get_instrument(p, s.as_str()).await?,
        };
        row.map(InstrumentRow::into_instrument).transpose()
    }

    /// A page of instruments ordered by symbol (byte order on both backends).
    ///
    /// `limit` is brought into `1..=`[`MAX_PAGE_SIZE`]. `next` is the last symbol of the
    /// page when more rows match, to be passed back as `after`.
    pub async fn list_instruments(
        &self,
        q: &InstrumentQuery,
    ) -> Result<Page<Instrument, Symbol>, StoreError> {
        let limit = usize::try_from(q.limit.clamp(1, MAX_PAGE_SIZE)).unwrap_or(1);
        // One row more than the page tells whether there is a next page.
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let mut rows = match &self.pool {
            Pool::Sqlite(p) => sqlite::list_instruments(p, q, fetch).await?,
            Pool::Postgres(p) => postgres::list_instruments(p, q, fetch).await?,
        };
        let more = rows.len() > limit;
        rows.truncate(limit);
        let items = rows
            .into_iter()
            .map(InstrumentRow::into_instrument)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if more {
            items.last().map(|i| i.symbol.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// Seeds the demo instruments (BTC-PERP, ETH-PERP, a dated future, a call and a put)
    /// when the instruments table is empty; returns how many were inserted.
    ///
    /// The future expires on the last Friday, 08:00 UTC, of the first month in which that
    /// is at least 30 days after `now` (`BTC-25DEC26`); the options share its expiry, with
    /// strike 100000. All in one transaction, so a second call inserts 0.
    pub async fn seed_demo_instruments(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let demo = seed::demo_instruments(now)?;
        let inserted = match &self.pool {
            Pool::Sqlite(p) => sqlite::seed(p, &demo).await?,
            Pool::Postgres(p) => postgres::seed(p, &demo).await?,
        };
        if inserted > 0 {
            tracing::info!(inserted, "seeded demo instruments");
        }
        Ok(inserted)
    }
}

/// Ok when every up-migration of `migrator` is recorded as applied, successfully and
/// with the same checksum.
fn all_applied(migrator: &Migrator, applied: &[AppliedMigrationRow]) -> Result<(), StoreError> {
    let missing = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .find(|m| {
            !applied.iter().any(|a| {
                a.version == m.version && a.success && a.checksum.as_slice() == &*m.checksum
            })
        });
    match missing {
        None => Ok(()),
        Some(m) => {
            tracing::warn!(version = m.version, "database migration not applied");
            Err(StoreError::NotMigrated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_queries_the_migrators_table() {
        // `has_migrations_table` and `applied_migrations` name the table literally.
        assert_eq!(sqlite::MIGRATOR.table_name, "_sqlx_migrations");
        assert_eq!(postgres::MIGRATOR.table_name, "_sqlx_migrations");
        assert!(sqlite::MIGRATOR.iter().count() > 0);
        assert_eq!(
            sqlite::MIGRATOR
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>(),
            postgres::MIGRATOR
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>(),
            "both backends have the same migration versions"
        );
    }

    #[test]
    fn all_applied_needs_every_migration_successful_and_unchanged() {
        let migrator = &sqlite::MIGRATOR;
        let good: Vec<_> = migrator
            .iter()
            .map(|m| AppliedMigrationRow {
                version: m.version,
                success: true,
                checksum: m.checksum.to_vec(),
            })
            .collect();
        assert!(all_applied(migrator, &good).is_ok());
        assert!(matches!(
            all_applied(migrator, &[]),
            Err(StoreError::NotMigrated)
        ));
        let mut failed = good.clone();
        failed[0].success = false;
        assert!(matches!(
            all_applied(migrator, &failed),
            Err(StoreError::NotMigrated)
        ));
        let mut changed = good;
        changed[0].checksum[0] ^= 1;
        assert!(matches!(
            all_applied(migrator, &changed),
            Err(StoreError::NotMigrated)
        ));
    }
}
