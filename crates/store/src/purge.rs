//! Removing identity rows that can no longer matter, so that tables written on every
//! refresh, login and failed login do not grow without bound.

use time::{Duration, OffsetDateTime};

use crate::convert::{seconds, unix};
use crate::error::db_error;
use crate::{Pool, Store, StoreError};

/// How many rows [`Store::purge_expired`] removed, per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    /// Refresh tokens expired at `now` (used or not).
    pub refresh_tokens: u64,
    /// Login challenges expired at `now` (consumed or not).
    pub mfa_challenges: u64,
    /// Throttle entries whose last failure is older than the window and whose lock
    /// has run out.
    pub login_throttle: u64,
    /// Logins to an external provider that expired at `now` without coming back.
    pub pending_logins: u64,
}

mod sql_sqlite {
    pub const TOKENS: &str = "DELETE FROM refresh_tokens WHERE expires_at <= ?1";
    pub const CHALLENGES: &str = "DELETE FROM mfa_challenges WHERE expires_at <= ?1";
    pub const PENDING: &str = "DELETE FROM oidc_pending_logins WHERE expires_at <= ?1";
    pub const THROTTLE: &str = "DELETE FROM login_throttle WHERE last_failure_at <= ?1 \
                                AND (locked_until IS NULL OR locked_until <= ?2)";
}

mod sql_postgres {
    pub const TOKENS: &str = "DELETE FROM refresh_tokens WHERE expires_at <= $1";
    pub const CHALLENGES: &str = "DELETE FROM mfa_challenges WHERE expires_at <= $1";
    pub const PENDING: &str = "DELETE FROM oidc_pending_logins WHERE expires_at <= $1";
    pub const THROTTLE: &str = "DELETE FROM login_throttle WHERE last_failure_at <= $1 \
                                AND (locked_until IS NULL OR locked_until <= $2)";
}

/// The deletions, written once for both backends (`Result<Purged, sqlx::Error>`).
/// Each is atomic on its own; together they need not be.
macro_rules! purge {
    ($pool:ident, $sql:ident, $now:expr, $stale:expr) => {
        async {
            let refresh_tokens = sqlx::query($sql::TOKENS)
                .bind($now)
                .execute($pool)
                .await?
                .rows_affected();
            let mfa_challenges = sqlx::query($sql::CHALLENGES)
                .bind($now)
                .execute($pool)
                .await?
                .rows_affected();
            let login_throttle = sqlx::query($sql::THROTTLE)
                .bind($stale)
                .bind($now)
                .execute($pool)
                .await?
                .rows_affected();
            let pending_logins = sqlx::query($sql::PENDING)
                .bind($now)
                .execute($pool)
                .await?
                .rows_affected();
            Ok::<_, sqlx::Error>(Purged {
                refresh_tokens,
                mfa_challenges,
                login_throttle,
                pending_logins,
            })
        }
        .await
    };
}

impl Store {
    /// Deletes what is dead at `now`: expired refresh tokens (an expired token is
    /// refused as unknown instead of invalid afterwards), expired login challenges and
    /// pending external logins, and login-throttle entries that [`Store::record_login_failure`] with this
    /// `throttle_window` would start afresh anyway. Safe to run at any time.
    pub async fn purge_expired(
        &self,
        now: OffsetDateTime,
        throttle_window: Duration,
    ) -> Result<Purged, StoreError> {
        let now = unix(now);
        let stale = now.saturating_sub(seconds(throttle_window));
        match &self.pool {
            Pool::Sqlite(p) => purge!(p, sql_sqlite, now, stale),
            Pool::Postgres(p) => purge!(p, sql_postgres, now, stale),
        }
        .map_err(|e| db_error("purge_expired", e))
    }
}
