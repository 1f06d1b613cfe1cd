//! Storage for bourse: SQLite (embedded default, WAL) and PostgreSQL behind one type.
//!
//! Each backend has its own sqlx migrations (`migrations/sqlite`, `migrations/postgres`)
//! embedded in the binary. Callers never see SQL or driver errors: [`StoreError`]
//! carries only what a caller can act on, and the underlying error is logged once.
//!
//! SKELETON: signatures agreed between crates; bodies are being filled in.

use bourse_types::{Instrument, InstrumentKind, InstrumentStatus, Symbol};
use time::OffsetDateTime;

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
    /// Page size; callers bound it (1..=1000).
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
#[derive(Clone, Debug)]
pub struct Store {/* sqlite or postgres pool */}

impl Store {
    /// Opens `url`: `sqlite://PATH` (file created, WAL, foreign keys on) or `postgres://…`.
    /// Does not run migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        todo!("{url}")
    }
    /// The backend in use.
    pub fn backend(&self) -> Backend {
        todo!()
    }
    /// Runs the embedded migrations for this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        todo!()
    }
    /// Ok when the database answers within a short timeout and every embedded migration is applied.
    pub async fn readiness(&self) -> Result<(), StoreError> {
        todo!()
    }
    /// Closes the pool; later calls fail with `Unavailable`.
    pub async fn close(&self) {}
    /// Inserts one validated instrument; `Conflict` if the symbol exists.
    pub async fn insert_instrument(&self, i: &Instrument) -> Result<(), StoreError> {
        todo!("{i:?}")
    }
    /// One instrument by symbol.
    pub async fn get_instrument(&self, s: &Symbol) -> Result<Option<Instrument>, StoreError> {
        todo!("{s}")
    }
    /// A page of instruments ordered by symbol.
    pub async fn list_instruments(
        &self,
        q: &InstrumentQuery,
    ) -> Result<Page<Instrument, Symbol>, StoreError> {
        todo!("{q:?}")
    }
    /// Seeds the demo instruments (BTC-PERP, ETH-PERP, a dated future, a call and a put)
    /// when the instruments table is empty; returns how many were inserted.
    pub async fn seed_demo_instruments(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        todo!("{now}")
    }
}
