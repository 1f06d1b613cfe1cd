//! JWT signing keys: the private key as an encrypted blob, the public one as a JWK.
//!
//! The newest key that is not retired signs; every key that has not expired verifies
//! (and is published). Rotation stores a new key, then retires the others, which keep
//! verifying until the tokens they signed have expired.

use std::fmt;

use time::OffsetDateTime;

use crate::convert::{instant, opt_instant, unix};
use crate::error::db_error;
use crate::{Pool, Store, StoreError};

/// A stored signing key. `Debug` leaves the private blob out.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id (the JWT header's `kid`).
    pub kid: String,
    /// The private key, encrypted by the caller.
    pub private_enc: Vec<u8>,
    /// The public key as a JWK (JSON text).
    pub public_jwk: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// From then on it no longer signs.
    pub retired_at: Option<OffsetDateTime>,
    /// From then on it no longer verifies.
    pub expires_at: Option<OffsetDateTime>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("private_enc", &"<redacted>")
            .field("public_jwk", &self.public_jwk)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    kid: String,
    private_enc: Vec<u8>,
    public_jwk: String,
    created_at: i64,
    retired_at: Option<i64>,
    expires_at: Option<i64>,
}

impl Row {
    fn into_record(self) -> Result<SigningKeyRecord, StoreError> {
        Ok(SigningKeyRecord {
            kid: self.kid,
            private_enc: self.private_enc,
            public_jwk: self.public_jwk,
            created_at: instant("signing_keys", "created_at", self.created_at)?,
            retired_at: opt_instant("signing_keys", "retired_at", self.retired_at)?,
            expires_at: opt_instant("signing_keys", "expires_at", self.expires_at)?,
        })
    }
}

macro_rules! columns {
    () => {
        "kid, private_enc, public_jwk, created_at, retired_at, expires_at"
    };
}

impl Store {
    /// Stores a new signing key; `Conflict` if the kid exists.
    pub async fn insert_signing_key(&self, k: &SigningKeyRecord) -> Result<(), StoreError> {
        let (retired, expires) = (k.retired_at.map(unix), k.expires_at.map(unix));
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(concat!(
                "INSERT INTO signing_keys (",
                columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ))
            .bind(&k.kid)
            .bind(&k.private_enc)
            .bind(&k.public_jwk)
            .bind(unix(k.created_at))
            .bind(retired)
            .bind(expires)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(concat!(
                "INSERT INTO signing_keys (",
                columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6)"
            ))
            .bind(&k.kid)
            .bind(&k.private_enc)
            .bind(&k.public_jwk)
            .bind(unix(k.created_at))
            .bind(retired)
            .bind(expires)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map(drop)
        .map_err(|e| db_error("insert_signing_key", e))
    }

    /// Every signing key, newest first (retired and expired ones too: the caller
    /// filters by `now`).
    pub async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            columns!(),
            " FROM signing_keys ORDER BY created_at DESC, kid DESC"
        );
        let rows: Vec<Row> = match &self.pool {
            Pool::Sqlite(p) => sqlx::query_as(SQL).fetch_all(p).await,
            Pool::Postgres(p) => sqlx::query_as(SQL).fetch_all(p).await,
        }
        .map_err(|e| db_error("list_signing_keys", e))?;
        rows.into_iter().map(Row::into_record).collect()
    }

    /// Retires every unretired key other than `kid` at `now`, to verify until
    /// `verify_until`; returns how many. Only when `kid` itself is an unretired key
    /// (checked inside the update, so atomically): `None` (nothing changed) otherwise, so
    /// a wrong kid cannot leave no key to sign with.
    pub async fn retire_signing_keys_except(
        &self,
        kid: &str,
        now: OffsetDateTime,
        verify_until: OffsetDateTime,
    ) -> Result<Option<u64>, StoreError> {
        let op = "retire_signing_keys_except";
        let active: bool = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM signing_keys \
                     WHERE kid = ?1 AND retired_at IS NULL)",
                )
                .bind(kid)
                .fetch_one(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM signing_keys \
                     WHERE kid = $1 AND retired_at IS NULL)",
                )
                .bind(kid)
                .fetch_one(p)
                .await
            }
        }
        .map_err(|e| db_error(op, e))?;
        if !active {
            return Ok(None);
        }
        // The same condition again inside the update: a concurrent retirement of `kid`
        // between the two statements makes this one change nothing.
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE signing_keys SET retired_at = ?1, expires_at = ?2 \
                     WHERE kid <> ?3 AND retired_at IS NULL AND EXISTS \
                     (SELECT 1 FROM signing_keys WHERE kid = ?3 AND retired_at IS NULL)",
            )
            .bind(unix(now))
            .bind(unix(verify_until))
            .bind(kid)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE signing_keys SET retired_at = $1, expires_at = $2 \
                     WHERE kid <> $3 AND retired_at IS NULL AND EXISTS \
                     (SELECT 1 FROM signing_keys WHERE kid = $3 AND retired_at IS NULL)",
            )
            .bind(unix(now))
            .bind(unix(verify_until))
            .bind(kid)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error(op, e))?;
        Ok(Some(done))
    }

    /// Replaces the key's private blob with `new_enc` (the same key under a new master
    /// key) only if it is still `old_enc`; false otherwise.
    pub async fn replace_signing_key_blob(
        &self,
        kid: &str,
        old_enc: &[u8],
        new_enc: &[u8],
    ) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE signing_keys SET private_enc = ?1 WHERE kid = ?2 AND private_enc = ?3",
            )
            .bind(new_enc)
            .bind(kid)
            .bind(old_enc)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE signing_keys SET private_enc = $1 WHERE kid = $2 AND private_enc = $3",
            )
            .bind(new_enc)
            .bind(kid)
            .bind(old_enc)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("replace_signing_key_blob", e))?;
        Ok(done == 1)
    }
}
