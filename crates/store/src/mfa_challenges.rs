//! Login challenges: after a correct password for a user with 2FA on, a short-lived
//! challenge (stored as a hash) stands for "password done" until a code is given.
//!
//! A wrong code does not burn the challenge, it counts an attempt; a right one consumes
//! it, once.

use time::OffsetDateTime;

use crate::convert::{instant, unix};
use crate::error::db_error;
use crate::{Pool, Store, StoreError};

/// A live (unconsumed, unexpired) challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    /// The user who gave the right password.
    pub user_id: String,
    /// Wrong codes given so far.
    pub attempts: i64,
    /// What the first step was: `pwd` (a password) or `ext` (an external provider).
    pub first_factor: String,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

impl Store {
    /// Stores a challenge after a password; `Conflict` if the hash exists, `Internal` if
    /// the user does not.
    pub async fn insert_mfa_challenge(
        &self,
        challenge_hash: &str,
        user_id: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.insert_mfa_challenge_after(challenge_hash, user_id, "pwd", expires_at)
            .await
    }

    /// Stores a challenge after the first factor `first_factor` (`pwd` or `ext`).
    pub async fn insert_mfa_challenge_after(
        &self,
        challenge_hash: &str,
        user_id: &str,
        first_factor: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "INSERT INTO mfa_challenges (challenge_hash, user_id, expires_at, first_factor) \
                     VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(challenge_hash)
            .bind(user_id)
            .bind(unix(expires_at))
            .bind(first_factor)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "INSERT INTO mfa_challenges (challenge_hash, user_id, expires_at, first_factor) \
                     VALUES ($1, $2, $3, $4)",
            )
            .bind(challenge_hash)
            .bind(user_id)
            .bind(unix(expires_at))
            .bind(first_factor)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map(drop)
        .map_err(|e| db_error("insert_mfa_challenge", e))
    }

    /// The challenge with this hash if it is neither consumed nor expired at `now`.
    pub async fn get_mfa_challenge(
        &self,
        challenge_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        let row: Option<(String, i64, i64, String)> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT user_id, attempts, expires_at, first_factor FROM mfa_challenges \
                     WHERE challenge_hash = ?1 AND consumed_at IS NULL AND expires_at > ?2",
                )
                .bind(challenge_hash)
                .bind(unix(now))
                .fetch_optional(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "SELECT user_id, attempts, expires_at, first_factor FROM mfa_challenges \
                     WHERE challenge_hash = $1 AND consumed_at IS NULL AND expires_at > $2",
                )
                .bind(challenge_hash)
                .bind(unix(now))
                .fetch_optional(p)
                .await
            }
        }
        .map_err(|e| db_error("get_mfa_challenge", e))?;
        row.map(|(user_id, attempts, expires_at, first_factor)| {
            Ok(MfaChallenge {
                user_id,
                attempts,
                first_factor,
                expires_at: instant("mfa_challenges", "expires_at", expires_at)?,
            })
        })
        .transpose()
    }

    /// Counts a wrong code against the challenge, atomically; returns the new count, or
    /// `None` when no unconsumed challenge has this hash. Burning it after too many is
    /// the caller's decision ([`Store::consume_mfa_challenge`]).
    pub async fn bump_mfa_challenge_attempts(
        &self,
        challenge_hash: &str,
    ) -> Result<Option<i64>, StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_scalar(
                    "UPDATE mfa_challenges SET attempts = attempts + 1 \
                     WHERE challenge_hash = ?1 AND consumed_at IS NULL RETURNING attempts",
                )
                .bind(challenge_hash)
                .fetch_optional(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar(
                    "UPDATE mfa_challenges SET attempts = attempts + 1 \
                     WHERE challenge_hash = $1 AND consumed_at IS NULL RETURNING attempts",
                )
                .bind(challenge_hash)
                .fetch_optional(p)
                .await
            }
        }
        .map_err(|e| db_error("bump_mfa_challenge_attempts", e))
    }

    /// Consumes a live challenge: true once, false when it is unknown, already consumed
    /// or expired at `now` (atomic: of concurrent calls, one succeeds).
    pub async fn consume_mfa_challenge(
        &self,
        challenge_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE mfa_challenges SET consumed_at = ?1 \
                     WHERE challenge_hash = ?2 AND consumed_at IS NULL AND expires_at > ?1",
            )
            .bind(unix(now))
            .bind(challenge_hash)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE mfa_challenges SET consumed_at = $1 \
                     WHERE challenge_hash = $2 AND consumed_at IS NULL AND expires_at > $1",
            )
            .bind(unix(now))
            .bind(challenge_hash)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("consume_mfa_challenge", e))?;
        Ok(done == 1)
    }
}
