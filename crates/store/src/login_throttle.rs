//! Failed-login backoff per key (`acct:<email>`, `ip:<address>`, as the caller names
//! them): a count of recent failures and, past a threshold, a lock that doubles with
//! every further failure up to a maximum.

use time::{Duration, OffsetDateTime};

use crate::convert::{opt_instant, seconds, unix};
use crate::error::db_error;
use crate::{Pool, Store, StoreError};

/// The failed-login state of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginThrottle {
    /// Failures counted in the current run (0 when none is stored).
    pub failures: i64,
    /// Logins for this key are refused until then; `None` when not locked.
    pub locked_until: Option<OffsetDateTime>,
}

/// Parameters of [`Store::record_login_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// A failure this long after the previous one starts the count again (unless a lock
    /// is still in force).
    pub window: Duration,
    /// Failures before the first lock (at least 1).
    pub threshold: i64,
    /// The first lock; each further failure doubles it.
    pub base_lock: Duration,
    /// The longest lock.
    pub max_lock: Duration,
}

impl BackoffPolicy {
    /// The lock after `failures` failures: none below the threshold, then
    /// `min(base_lock * 2^(failures - threshold), max_lock)` in whole seconds.
    pub fn lock_secs(&self, failures: i64) -> Option<i64> {
        let threshold = self.threshold.max(1);
        if failures < threshold {
            return None;
        }
        let (base, max) = (seconds(self.base_lock), seconds(self.max_lock));
        let doublings = u32::try_from(failures - threshold).unwrap_or(u32::MAX);
        let lock = 1i64
            .checked_shl(doublings)
            .filter(|factor| *factor > 0)
            .and_then(|factor| base.checked_mul(factor))
            .unwrap_or(max);
        Some(lock.min(max))
    }
}

mod sql_sqlite {
    // ?1 key, ?2 now, ?3 now - window. A run restarts when the last failure is older
    // than the window and no lock is in force.
    pub const COUNT: &str = "INSERT INTO login_throttle \
         (throttle_key, failures, last_failure_at, locked_until) VALUES (?1, 1, ?2, NULL) \
         ON CONFLICT (throttle_key) DO UPDATE SET \
         failures = CASE WHEN login_throttle.last_failure_at <= ?3 \
             AND (login_throttle.locked_until IS NULL OR login_throttle.locked_until <= ?2) \
             THEN 1 ELSE login_throttle.failures + 1 END, \
         locked_until = CASE WHEN login_throttle.last_failure_at <= ?3 \
             AND (login_throttle.locked_until IS NULL OR login_throttle.locked_until <= ?2) \
             THEN NULL ELSE login_throttle.locked_until END, \
         last_failure_at = ?2 \
         RETURNING failures, locked_until";
    pub const LOCK: &str = "UPDATE login_throttle SET locked_until = ?1 WHERE throttle_key = ?2";
}

mod sql_postgres {
    pub const COUNT: &str = "INSERT INTO login_throttle \
         (throttle_key, failures, last_failure_at, locked_until) VALUES ($1, 1, $2, NULL) \
         ON CONFLICT (throttle_key) DO UPDATE SET \
         failures = CASE WHEN login_throttle.last_failure_at <= $3 \
             AND (login_throttle.locked_until IS NULL OR login_throttle.locked_until <= $2) \
             THEN 1 ELSE login_throttle.failures + 1 END, \
         locked_until = CASE WHEN login_throttle.last_failure_at <= $3 \
             AND (login_throttle.locked_until IS NULL OR login_throttle.locked_until <= $2) \
             THEN NULL ELSE login_throttle.locked_until END, \
         last_failure_at = $2 \
         RETURNING failures, locked_until";
    pub const LOCK: &str = "UPDATE login_throttle SET locked_until = $1 WHERE throttle_key = $2";
}

/// Counting and locking in one transaction, written once for both backends
/// (`Result<(i64, Option<i64>), sqlx::Error>`: failures and the lock in force).
macro_rules! record {
    ($tx:ident, $sql:ident, $key:expr, $now:expr, $policy:expr) => {{
        let (failures, mut locked_until): (i64, Option<i64>) = sqlx::query_as($sql::COUNT)
            .bind($key)
            .bind($now)
            .bind($now.saturating_sub(seconds($policy.window)))
            .fetch_one(&mut *$tx)
            .await?;
        if let Some(lock) = $policy.lock_secs(failures) {
            let until = $now.saturating_add(lock);
            // A lock never gets shorter.
            if locked_until.is_none_or(|current| current < until) {
                sqlx::query($sql::LOCK)
                    .bind(until)
                    .bind($key)
                    .execute(&mut *$tx)
                    .await?;
                locked_until = Some(until);
            }
        }
        $tx.commit().await?;
        Ok((failures, locked_until))
    }};
}

impl Store {
    /// Counts a failed login for `key` at `now`, atomically, and returns the new state.
    ///
    /// A failure more than `policy.window` after the previous one starts a new run
    /// (count 1, no lock), unless a lock is still in force. Once the run reaches
    /// `policy.threshold` failures, logins are locked until
    /// `now + min(base_lock * 2^(failures - threshold), max_lock)` (never shortening a
    /// lock in force).
    pub async fn record_login_failure(
        &self,
        key: &str,
        now: OffsetDateTime,
        policy: &BackoffPolicy,
    ) -> Result<LoginThrottle, StoreError> {
        let now_secs = unix(now);
        let (failures, locked_until) = match &self.pool {
            Pool::Sqlite(p) => {
                async {
                    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                    record!(tx, sql_sqlite, key, now_secs, policy)
                }
                .await
            }
            Pool::Postgres(p) => {
                async {
                    let mut tx = p.begin().await?;
                    record!(tx, sql_postgres, key, now_secs, policy)
                }
                .await
            }
        }
        .map_err(|e| db_error("record_login_failure", e))?;
        Ok(LoginThrottle {
            failures,
            locked_until: opt_instant("login_throttle", "locked_until", locked_until)?
                .filter(|until| *until > now),
        })
    }

    /// The state of `key` at `now`: `locked_until` only while the lock is in force;
    /// `failures` as stored (the caller's window decides whether they still count).
    pub async fn login_throttle(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<LoginThrottle, StoreError> {
        let row: Option<(i64, Option<i64>)> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT failures, locked_until FROM login_throttle WHERE throttle_key = ?1",
                )
                .bind(key)
                .fetch_optional(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "SELECT failures, locked_until FROM login_throttle WHERE throttle_key = $1",
                )
                .bind(key)
                .fetch_optional(p)
                .await
            }
        }
        .map_err(|e| db_error("login_throttle", e))?;
        let Some((failures, locked_until)) = row else {
            return Ok(LoginThrottle::default());
        };
        Ok(LoginThrottle {
            failures,
            locked_until: opt_instant("login_throttle", "locked_until", locked_until)?
                .filter(|until| *until > now),
        })
    }

    /// Forgets the failures of `key` (after a successful login); true when there were
    /// any.
    pub async fn clear_login_failures(&self, key: &str) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query("DELETE FROM login_throttle WHERE throttle_key = ?1")
                .bind(key)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
                .bind(key)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("clear_login_failures", e))?;
        Ok(done == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_doubles_from_the_threshold_up_to_the_maximum() {
        let policy = BackoffPolicy {
            window: Duration::minutes(15),
            threshold: 5,
            base_lock: Duration::seconds(30),
            max_lock: Duration::minutes(15),
        };
        assert_eq!(policy.lock_secs(0), None);
        assert_eq!(policy.lock_secs(4), None);
        assert_eq!(policy.lock_secs(5), Some(30));
        assert_eq!(policy.lock_secs(6), Some(60));
        assert_eq!(policy.lock_secs(9), Some(480));
        assert_eq!(policy.lock_secs(10), Some(900));
        assert_eq!(policy.lock_secs(70), Some(900));
        assert_eq!(policy.lock_secs(i64::MAX), Some(900));
        let zero_threshold = BackoffPolicy {
            threshold: 0,
            ..policy
        };
        assert_eq!(zero_threshold.lock_secs(0), None);
        assert_eq!(zero_threshold.lock_secs(1), Some(30));
    }
}
