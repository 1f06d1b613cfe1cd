//! Two-factor: one TOTP secret per user (pending until confirmed), its single-use
//! recovery codes, replay and brute-force state.
//!
//! The secret is an encrypted blob the store cannot read; codes are checked by the
//! caller. The store makes the state changes atomic: a time step is accepted at most
//! once, a recovery code is used at most once, whatever runs concurrently.

use std::fmt;

use time::{Duration, OffsetDateTime};

use crate::convert::{instant, opt_instant, seconds, unix};
use crate::error::db_error;
use crate::{Pool, Store, StoreError};

/// A user's TOTP secret and its state. `Debug` leaves the blob out.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// Owner.
    pub user_id: String,
    /// The secret, encrypted by the caller.
    pub secret_enc: Vec<u8>,
    /// When enrolment started (the pending secret was stored).
    pub created_at: OffsetDateTime,
    /// When enrolment was confirmed; `None` while pending.
    pub confirmed_at: Option<OffsetDateTime>,
    /// The last time step accepted; only later steps are accepted.
    pub last_used_step: Option<i64>,
    /// Wrong codes since the last accepted one (or since the last lock ran out).
    pub failed_attempts: i64,
    /// Codes are refused until then.
    pub locked_until: Option<OffsetDateTime>,
}

impl fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpRecord")
            .field("user_id", &self.user_id)
            .field("secret_enc", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_used_step", &self.last_used_step)
            .field("failed_attempts", &self.failed_attempts)
            .field("locked_until", &self.locked_until)
            .finish()
    }
}

/// The state after a wrong code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpFailure {
    /// Wrong codes counted so far, this one included.
    pub attempts: i64,
    /// Codes are refused until then.
    pub locked_until: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct Row {
    user_id: String,
    secret_enc: Vec<u8>,
    created_at: i64,
    confirmed_at: Option<i64>,
    last_used_step: Option<i64>,
    failed_attempts: i64,
    locked_until: Option<i64>,
}

impl Row {
    fn into_record(self) -> Result<TotpRecord, StoreError> {
        Ok(TotpRecord {
            user_id: self.user_id,
            secret_enc: self.secret_enc,
            created_at: instant("totp", "created_at", self.created_at)?,
            confirmed_at: opt_instant("totp", "confirmed_at", self.confirmed_at)?,
            last_used_step: self.last_used_step,
            failed_attempts: self.failed_attempts,
            locked_until: opt_instant("totp", "locked_until", self.locked_until)?,
        })
    }
}

macro_rules! columns {
    () => {
        "user_id, secret_enc, created_at, confirmed_at, last_used_step, failed_attempts, \
         locked_until"
    };
}

/// The statements of the multi-statement changes, per backend.
mod sql_sqlite {
    pub const CONFIRM: &str = "UPDATE totp SET confirmed_at = ?1, last_used_step = ?2, \
                               failed_attempts = 0, locked_until = NULL \
                               WHERE user_id = ?3 AND confirmed_at IS NULL";
    pub const DELETE_CODES: &str = "DELETE FROM recovery_codes WHERE user_id = ?1";
    pub const INSERT_CODE: &str = "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)";
    pub const MFA_CHANGED: &str = "UPDATE users SET mfa_changed_at = ?1 WHERE id = ?2";
    pub const DELETE: &str = "DELETE FROM totp WHERE user_id = ?1 RETURNING confirmed_at";
}

mod sql_postgres {
    pub const CONFIRM: &str = "UPDATE totp SET confirmed_at = $1, last_used_step = $2, \
                               failed_attempts = 0, locked_until = NULL \
                               WHERE user_id = $3 AND confirmed_at IS NULL";
    pub const DELETE_CODES: &str = "DELETE FROM recovery_codes WHERE user_id = $1";
    pub const INSERT_CODE: &str = "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)";
    pub const MFA_CHANGED: &str = "UPDATE users SET mfa_changed_at = $1 WHERE id = $2";
    pub const DELETE: &str = "DELETE FROM totp WHERE user_id = $1 RETURNING confirmed_at";
}

/// Confirmation, written once for both backends (`Result<bool, sqlx::Error>`).
macro_rules! confirm {
    ($tx:ident, $sql:ident, $user:expr, $step:expr, $now:expr, $codes:expr) => {{
        let confirmed = sqlx::query($sql::CONFIRM)
            .bind($now)
            .bind($step)
            .bind($user)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
            == 1;
        if confirmed {
            sqlx::query($sql::DELETE_CODES)
                .bind($user)
                .execute(&mut *$tx)
                .await?;
            for code in $codes {
                sqlx::query($sql::INSERT_CODE)
                    .bind($user)
                    .bind(code)
                    .execute(&mut *$tx)
                    .await?;
            }
            sqlx::query($sql::MFA_CHANGED)
                .bind($now)
                .bind($user)
                .execute(&mut *$tx)
                .await?;
            $tx.commit().await?;
        }
        Ok(confirmed)
    }};
}

/// Deletion, written once for both backends (`Result<bool, sqlx::Error>`).
macro_rules! delete {
    ($tx:ident, $sql:ident, $user:expr, $now:expr) => {{
        let deleted: Option<(Option<i64>,)> = sqlx::query_as($sql::DELETE)
            .bind($user)
            .fetch_optional(&mut *$tx)
            .await?;
        match deleted {
            None => Ok(false),
            Some((confirmed_at,)) => {
                // Recovery codes go with the secret (ON DELETE CASCADE).
                if confirmed_at.is_some() {
                    sqlx::query($sql::MFA_CHANGED)
                        .bind($now)
                        .bind($user)
                        .execute(&mut *$tx)
                        .await?;
                }
                $tx.commit().await?;
                Ok(true)
            }
        }
    }};
}

impl Store {
    /// Stores a pending (unconfirmed) TOTP secret for `user_id`, replacing a pending
    /// one and resetting its state. `Conflict` when a confirmed one exists (it must be
    /// deleted first); `Internal` when the user does not exist.
    pub async fn put_pending_totp(
        &self,
        user_id: &str,
        secret_enc: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "INSERT INTO totp (user_id, secret_enc, created_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (user_id) DO UPDATE SET secret_enc = excluded.secret_enc, \
                     created_at = excluded.created_at, last_used_step = NULL, \
                     failed_attempts = 0, locked_until = NULL \
                     WHERE totp.confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(secret_enc)
            .bind(unix(now))
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "INSERT INTO totp (user_id, secret_enc, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id) DO UPDATE SET secret_enc = excluded.secret_enc, \
                     created_at = excluded.created_at, last_used_step = NULL, \
                     failed_attempts = 0, locked_until = NULL \
                     WHERE totp.confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(secret_enc)
            .bind(unix(now))
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("put_pending_totp", e))?;
        if done == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    /// The user's TOTP secret and state, pending or confirmed.
    pub async fn get_totp(&self, user_id: &str) -> Result<Option<TotpRecord>, StoreError> {
        let row: Option<Row> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM totp WHERE user_id = ?1"
                ))
                .bind(user_id)
                .fetch_optional(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM totp WHERE user_id = $1"
                ))
                .bind(user_id)
                .fetch_optional(p)
                .await
            }
        }
        .map_err(|e| db_error("get_totp", e))?;
        row.map(Row::into_record).transpose()
    }

    /// Confirms a pending secret after the caller checked a code of time step `step`, in
    /// one transaction: marks it confirmed at `now` with `last_used_step = step` and no
    /// failures, replaces the user's recovery codes with `recovery_code_hashes`, and
    /// sets the user's `mfa_changed_at`. False (nothing changed) when there is no
    /// pending secret; `Conflict` (nothing changed) when two hashes are equal.
    pub async fn confirm_totp(
        &self,
        user_id: &str,
        step: i64,
        now: OffsetDateTime,
        recovery_code_hashes: &[String],
    ) -> Result<bool, StoreError> {
        let now = unix(now);
        match &self.pool {
            Pool::Sqlite(p) => {
                async {
                    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                    confirm!(tx, sql_sqlite, user_id, step, now, recovery_code_hashes)
                }
                .await
            }
            Pool::Postgres(p) => {
                async {
                    let mut tx = p.begin().await?;
                    confirm!(tx, sql_postgres, user_id, step, now, recovery_code_hashes)
                }
                .await
            }
        }
        .map_err(|e| db_error("confirm_totp", e))
    }

    /// Accepts a code of time step `step` for a confirmed secret: only when `step` is
    /// later than `last_used_step` (an atomic compare-and-set, so a step is accepted at
    /// most once even under concurrent requests). Also clears `failed_attempts` (a lock
    /// in force stays: checking it is the caller's). False when refused.
    pub async fn record_totp_success(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE totp SET last_used_step = ?1, failed_attempts = 0 \
                     WHERE user_id = ?2 AND confirmed_at IS NOT NULL \
                     AND (last_used_step IS NULL OR last_used_step < ?1)",
            )
            .bind(step)
            .bind(user_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE totp SET last_used_step = $1, failed_attempts = 0 \
                     WHERE user_id = $2 AND confirmed_at IS NOT NULL \
                     AND (last_used_step IS NULL OR last_used_step < $1)",
            )
            .bind(step)
            .bind(user_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("record_totp_success", e))?;
        Ok(done == 1)
    }

    /// Counts a wrong code, atomically. A lock that has run out (`locked_until <= now`)
    /// starts the count again from this failure. When the count reaches `max_attempts`,
    /// codes are locked until `now + lock` (each further failure moves that on).
    /// `None` when the user has no TOTP secret.
    pub async fn record_totp_failure(
        &self,
        user_id: &str,
        now: OffsetDateTime,
        max_attempts: i64,
        lock: Duration,
    ) -> Result<Option<TotpFailure>, StoreError> {
        let (now, lock) = (unix(now), seconds(lock));
        let row: Option<(i64, Option<i64>)> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(
                    "UPDATE totp SET \
                     failed_attempts = CASE WHEN locked_until <= ?2 THEN 1 \
                         ELSE failed_attempts + 1 END, \
                     locked_until = CASE \
                         WHEN (CASE WHEN locked_until <= ?2 THEN 1 \
                             ELSE failed_attempts + 1 END) >= ?3 THEN ?2 + ?4 \
                         WHEN locked_until <= ?2 THEN NULL \
                         ELSE locked_until END \
                     WHERE user_id = ?1 RETURNING failed_attempts, locked_until",
                )
                .bind(user_id)
                .bind(now)
                .bind(max_attempts)
                .bind(lock)
                .fetch_optional(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "UPDATE totp SET \
                     failed_attempts = CASE WHEN locked_until <= $2 THEN 1 \
                         ELSE failed_attempts + 1 END, \
                     locked_until = CASE \
                         WHEN (CASE WHEN locked_until <= $2 THEN 1 \
                             ELSE failed_attempts + 1 END) >= $3 THEN $2 + $4 \
                         WHEN locked_until <= $2 THEN NULL \
                         ELSE locked_until END \
                     WHERE user_id = $1 RETURNING failed_attempts, locked_until",
                )
                .bind(user_id)
                .bind(now)
                .bind(max_attempts)
                .bind(lock)
                .fetch_optional(p)
                .await
            }
        }
        .map_err(|e| db_error("record_totp_failure", e))?;
        row.map(|(attempts, locked_until)| {
            Ok(TotpFailure {
                attempts,
                locked_until: opt_instant("totp", "locked_until", locked_until)?,
            })
        })
        .transpose()
    }

    /// Deletes the user's TOTP secret, pending or confirmed, with its recovery codes;
    /// deleting a confirmed one sets the user's `mfa_changed_at` to `now`. False when
    /// there was none.
    pub async fn delete_totp(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let now = unix(now);
        match &self.pool {
            Pool::Sqlite(p) => {
                async {
                    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                    delete!(tx, sql_sqlite, user_id, now)
                }
                .await
            }
            Pool::Postgres(p) => {
                async {
                    let mut tx = p.begin().await?;
                    delete!(tx, sql_postgres, user_id, now)
                }
                .await
            }
        }
        .map_err(|e| db_error("delete_totp", e))
    }

    /// Uses the recovery code with hash `code_hash`: true the first time, false when the
    /// user has no such unused code (atomic: of concurrent uses, one succeeds).
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE recovery_codes SET used_at = ?1 \
                     WHERE user_id = ?2 AND code_hash = ?3 AND used_at IS NULL",
            )
            .bind(unix(now))
            .bind(user_id)
            .bind(code_hash)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE recovery_codes SET used_at = $1 \
                     WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
            )
            .bind(unix(now))
            .bind(user_id)
            .bind(code_hash)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("use_recovery_code", e))?;
        Ok(done == 1)
    }

    /// The stored forms of the user's unused recovery codes (the codes are salted, so
    /// the caller finds the match and then calls [`Store::use_recovery_code`]).
    pub async fn unused_recovery_code_hashes(
        &self,
        user_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_scalar(
                    "SELECT code_hash FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL \
                     ORDER BY code_hash",
                )
                .bind(user_id)
                .fetch_all(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar(
                    "SELECT code_hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL \
                     ORDER BY code_hash",
                )
                .bind(user_id)
                .fetch_all(p)
                .await
            }
        }
        .map_err(|e| db_error("unused_recovery_code_hashes", e))
    }

    /// How many unused recovery codes the user has.
    pub async fn remaining_recovery_codes(&self, user_id: &str) -> Result<i64, StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
                )
                .bind(user_id)
                .fetch_one(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user_id)
                .fetch_one(p)
                .await
            }
        }
        .map_err(|e| db_error("remaining_recovery_codes", e))
    }

    /// Every stored TOTP secret (pending or confirmed) as `(user_id, secret_enc)`, in
    /// user id order: for re-encryption under a new master key.
    pub async fn list_totp_secrets(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        const SQL: &str = "SELECT user_id, secret_enc FROM totp ORDER BY user_id";
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query_as(SQL).fetch_all(p).await,
            Pool::Postgres(p) => sqlx::query_as(SQL).fetch_all(p).await,
        }
        .map_err(|e| db_error("list_totp_secrets", e))
    }

    /// Replaces the user's encrypted secret with `new_enc` (the same secret under a new
    /// key) only if it is still `old_enc`: false when it changed meanwhile (say, a new
    /// enrolment), so a re-encryption never brings back an old secret.
    pub async fn replace_totp_secret_blob(
        &self,
        user_id: &str,
        old_enc: &[u8],
        new_enc: &[u8],
    ) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE totp SET secret_enc = ?1 WHERE user_id = ?2 AND secret_enc = ?3",
            )
            .bind(new_enc)
            .bind(user_id)
            .bind(old_enc)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE totp SET secret_enc = $1 WHERE user_id = $2 AND secret_enc = $3",
            )
            .bind(new_enc)
            .bind(user_id)
            .bind(old_enc)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("replace_totp_secret_blob", e))?;
        Ok(done == 1)
    }
}
