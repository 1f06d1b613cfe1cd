//! Turning driver errors into [`StoreError`], logging each once.
//!
//! Logs name the operation and the error's kind (and SQLSTATE or SQLite result code),
//! never its message: driver messages can quote row values, and connection errors can
//! quote the URL.

use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::migrate::MigrateError;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

use crate::StoreError;

/// Maps a driver error from operation `op`.
pub(crate) fn db_error(op: &'static str, e: sqlx::Error) -> StoreError {
    let kind = error_kind(&e);
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let constraint = db.constraint().unwrap_or_default();
            if is_transient(db.as_ref()) {
                tracing::warn!(op, kind, code, "database unavailable");
                StoreError::Unavailable
            } else {
                tracing::error!(op, kind, code, constraint, "database error");
                StoreError::Internal
            }
        }
        sqlx::Error::PoolClosed
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => {
            tracing::warn!(op, kind, "database unavailable");
            StoreError::Unavailable
        }
        _ => {
            tracing::error!(op, kind, "database error");
            StoreError::Internal
        }
    }
}

/// Maps an error from running the migrations.
pub(crate) fn migrate_error(e: MigrateError) -> StoreError {
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => db_error("migrate", e),
        other => {
            let kind = match other {
                MigrateError::VersionMissing(_) => "version_missing",
                MigrateError::VersionMismatch(_) => "version_mismatch",
                MigrateError::Dirty(_) => "dirty",
                MigrateError::Source(_) => "source",
                _ => "other",
            };
            tracing::error!(op = "migrate", kind, "database migration failed");
            StoreError::Internal
        }
    }
}

/// A stored value that does not make a valid domain value (edited by hand, or written
/// by a newer version). Only the symbol and the column are logged: symbols are safe to
/// log by construction, and a column name says where to look.
pub(crate) fn invalid_row(symbol: &str, column: &'static str) -> StoreError {
    let symbol = bourse_types::Symbol::parse(symbol)
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "<invalid>".to_owned());
    tracing::error!(symbol, column, "stored instrument is not valid");
    StoreError::Internal
}

/// A short, stable name for the kind of `e`; never its message.
fn error_kind(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Configuration(_) => "configuration",
        sqlx::Error::InvalidArgument(_) => "invalid_argument",
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => "unique_violation",
            ErrorKind::ForeignKeyViolation => "foreign_key_violation",
            ErrorKind::NotNullViolation => "not_null_violation",
            ErrorKind::CheckViolation => "check_violation",
            ErrorKind::ExclusionViolation => "exclusion_violation",
            _ => "database",
        },
        sqlx::Error::Io(_) => "io",
        sqlx::Error::Tls(_) => "tls",
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::RowNotFound => "row_not_found",
        sqlx::Error::TypeNotFound { .. } => "type_not_found",
        sqlx::Error::ColumnIndexOutOfBounds { .. } => "column_index_out_of_bounds",
        sqlx::Error::ColumnNotFound(_) => "column_not_found",
        sqlx::Error::ColumnDecode { .. } => "column_decode",
        sqlx::Error::Encode(_) => "encode",
        sqlx::Error::Decode(_) => "decode",
        sqlx::Error::PoolTimedOut => "pool_timed_out",
        sqlx::Error::PoolClosed => "pool_closed",
        sqlx::Error::WorkerCrashed => "worker_crashed",
        sqlx::Error::Migrate(_) => "migrate",
        sqlx::Error::BeginFailed => "begin_failed",
        _ => "other",
    }
}

/// Errors that mean "the database cannot serve us right now" rather than "this request
/// is wrong": a retry later, or on another connection, may succeed.
fn is_transient(db: &dyn DatabaseError) -> bool {
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        let code = pg.code();
        // 08: connection exception; 53: insufficient resources (too many connections,
        // disk full); 57P01-57P05: shutdown, crash, starting up, database dropped, idle
        // timeout; 3D000: the database does not exist (dropped under us).
        return code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57P")
            || code == "3D000";
    }
    if db.try_downcast_ref::<SqliteError>().is_some() {
        // The primary result code is the low byte of the extended one.
        let primary = db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .map(|c| c & 0xff);
        // BUSY, LOCKED, IOERR, FULL, CANTOPEN.
        return matches!(primary, Some(5 | 6 | 10 | 13 | 14));
    }
    false
}

/// Maps a failure where any error means the database cannot be reached: opening the
/// pool (refused, timed out, bad password, missing folder) or the readiness probe.
pub(crate) fn unavailable(op: &'static str, e: sqlx::Error) -> StoreError {
    let kind = error_kind(&e);
    match &e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            tracing::warn!(op, kind, code, "database unavailable");
        }
        sqlx::Error::Io(io) => {
            let io_kind = io.kind().to_string();
            tracing::warn!(op, kind, io_kind, "database unavailable");
        }
        _ => tracing::warn!(op, kind, "database unavailable"),
    }
    StoreError::Unavailable
}
