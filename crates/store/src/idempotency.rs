//! Idempotency keys (the `Idempotency-Key` header): the first request under a key is
//! processed and its response stored; a retry with the same request gets that response
//! again; a different request under the same key is refused.

use time::OffsetDateTime;

use crate::convert::unix;
use crate::error::db_error;
use crate::{Pool, Store, StoreError};

/// What to do with a request carrying an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyStart {
    /// First time: process it, then call [`Store::finish_idempotency`].
    New,
    /// Seen and finished: send this response again.
    Replay {
        /// HTTP status of the first response.
        status: u16,
        /// Body of the first response.
        body: Vec<u8>,
    },
    /// Seen and still being processed (a concurrent retry): ask the client to retry later.
    InFlight,
    /// The key was used with a different request.
    Mismatch,
}

impl Store {
    /// Claims `(account_id, key)` for a request whose canonical hash is `request_hash`,
    /// atomically: of two concurrent first requests exactly one gets `New`.
    pub async fn start_idempotency(
        &self,
        account_id: &str,
        key: &str,
        request_hash: &str,
        now: OffsetDateTime,
    ) -> Result<IdempotencyStart, StoreError> {
        let op = "start_idempotency";
        let inserted = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "INSERT INTO idempotency_keys (account_id, idem_key, request_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (account_id, idem_key) DO NOTHING",
            )
            .bind(account_id)
            .bind(key)
            .bind(request_hash)
            .bind(unix(now))
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "INSERT INTO idempotency_keys (account_id, idem_key, request_hash, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, idem_key) DO NOTHING",
            )
            .bind(account_id)
            .bind(key)
            .bind(request_hash)
            .bind(unix(now))
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error(op, e))?;
        if inserted == 1 {
            return Ok(IdempotencyStart::New);
        }
        let row: Option<(String, Option<i64>, Option<Vec<u8>>)> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT request_hash, status, body FROM idempotency_keys \
                     WHERE account_id = ?1 AND idem_key = ?2",
                )
                .bind(account_id)
                .bind(key)
                .fetch_optional(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "SELECT request_hash, status, body FROM idempotency_keys \
                     WHERE account_id = $1 AND idem_key = $2",
                )
                .bind(account_id)
                .bind(key)
                .fetch_optional(p)
                .await
            }
        }
        .map_err(|e| db_error(op, e))?;
        Ok(match row {
            // Deleted between the insert and the select (abandoned and released): retry.
            None => IdempotencyStart::InFlight,
            Some((hash, _, _)) if hash != request_hash => IdempotencyStart::Mismatch,
            Some((_, Some(status), Some(body))) => IdempotencyStart::Replay {
                status: u16::try_from(status).map_err(|_| StoreError::Internal)?,
                body,
            },
            Some(_) => IdempotencyStart::InFlight,
        })
    }

    /// Stores the response of a request started with [`IdempotencyStart::New`].
    pub async fn finish_idempotency(
        &self,
        account_id: &str,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE idempotency_keys SET status = ?1, body = ?2 \
                 WHERE account_id = ?3 AND idem_key = ?4",
            )
            .bind(i64::from(status))
            .bind(body)
            .bind(account_id)
            .bind(key)
            .execute(p)
            .await
            .map(drop),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE idempotency_keys SET status = $1, body = $2 \
                 WHERE account_id = $3 AND idem_key = $4",
            )
            .bind(i64::from(status))
            .bind(body)
            .bind(account_id)
            .bind(key)
            .execute(p)
            .await
            .map(drop),
        }
        .map_err(|e| db_error("finish_idempotency", e))
    }

    /// Forgets an unfinished claim (the request failed before it changed anything), so
    /// that a retry is processed afresh.
    pub async fn release_idempotency(&self, account_id: &str, key: &str) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "DELETE FROM idempotency_keys WHERE account_id = ?1 AND idem_key = ?2 AND status IS NULL",
            )
            .bind(account_id)
            .bind(key)
            .execute(p)
            .await
            .map(drop),
            Pool::Postgres(p) => sqlx::query(
                "DELETE FROM idempotency_keys WHERE account_id = $1 AND idem_key = $2 AND status IS NULL",
            )
            .bind(account_id)
            .bind(key)
            .execute(p)
            .await
            .map(drop),
        }
        .map_err(|e| db_error("release_idempotency", e))
    }
}
