//! Admin API keys: stored by the SHA-256 of the key, found by it, revoked by id.
//!
//! Expiry and the IP allowlist are stored for the caller to enforce; the store only
//! keeps them, and the time of last use.

use time::OffsetDateTime;

use crate::convert::{join_words, opt_instant, split_words, unix};
use crate::error::db_error;
use crate::{Pool, Store, StoreError};

/// A stored admin key. `key_hash` is the SHA-256 of the key; the key itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminKeyRecord {
    /// Key id (UUIDv7 text).
    pub id: String,
    /// Who or what the key is for.
    pub name: String,
    /// Non-secret prefix of the key, for listings.
    pub hint: String,
    /// SHA-256 of the key, lower-case hex.
    pub key_hash: String,
    /// Granted scopes, sorted.
    pub scopes: Vec<String>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
    /// When it stops being accepted, if ever.
    pub expires_at: Option<OffsetDateTime>,
    /// Client networks (CIDR text, parsed by the caller) it is accepted from; empty
    /// means any. Each entry is non-empty without whitespace.
    pub allowed_cidrs: Vec<String>,
    /// When it was last accepted ([`Store::touch_admin_key`]).
    pub last_used_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    hint: String,
    key_hash: String,
    scopes: String,
    created_at: i64,
    revoked_at: Option<i64>,
    expires_at: Option<i64>,
    allowed_cidrs: String,
    last_used_at: Option<i64>,
}

impl Row {
    fn into_record(self) -> Result<AdminKeyRecord, StoreError> {
        let ts = |t: i64| {
            OffsetDateTime::from_unix_timestamp(t).map_err(|_| {
                tracing::error!(
                    column = "created_at/revoked_at",
                    "stored admin key is not valid"
                );
                StoreError::Internal
            })
        };
        Ok(AdminKeyRecord {
            id: self.id,
            name: self.name,
            hint: self.hint,
            key_hash: self.key_hash,
            scopes: split_words(&self.scopes),
            created_at: ts(self.created_at)?,
            revoked_at: self.revoked_at.map(ts).transpose()?,
            expires_at: opt_instant("admin_keys", "expires_at", self.expires_at)?,
            allowed_cidrs: split_words(&self.allowed_cidrs),
            last_used_at: opt_instant("admin_keys", "last_used_at", self.last_used_at)?,
        })
    }
}

macro_rules! columns {
    () => {
        "id, name, hint, key_hash, scopes, created_at, revoked_at, expires_at, allowed_cidrs, \
         last_used_at"
    };
}

impl Store {
    /// Stores a new admin key; `Conflict` if its id or hash exists. A scope or CIDR that
    /// is empty or has whitespace is refused as `Internal`.
    pub async fn insert_admin_key(&self, k: &AdminKeyRecord) -> Result<(), StoreError> {
        let op = "insert_admin_key";
        let scopes = join_words("admin_keys", "scopes", &k.scopes)?;
        let cidrs = join_words("admin_keys", "allowed_cidrs", &k.allowed_cidrs)?;
        let created = unix(k.created_at);
        let revoked = k.revoked_at.map(unix);
        let expires = k.expires_at.map(unix);
        let last_used = k.last_used_at.map(unix);
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(concat!(
                "INSERT INTO admin_keys (",
                columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))
            .bind(&k.id)
            .bind(&k.name)
            .bind(&k.hint)
            .bind(&k.key_hash)
            .bind(&scopes)
            .bind(created)
            .bind(revoked)
            .bind(expires)
            .bind(&cidrs)
            .bind(last_used)
            .execute(p)
            .await
            .map(|_| ()),
            Pool::Postgres(p) => sqlx::query(concat!(
                "INSERT INTO admin_keys (",
                columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(&k.id)
            .bind(&k.name)
            .bind(&k.hint)
            .bind(&k.key_hash)
            .bind(&scopes)
            .bind(created)
            .bind(revoked)
            .bind(expires)
            .bind(&cidrs)
            .bind(last_used)
            .execute(p)
            .await
            .map(|_| ()),
        }
        .map_err(|e| db_error(op, e))
    }

    /// The key with this hash, revoked or not (the caller checks `revoked_at`).
    pub async fn find_admin_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<AdminKeyRecord>, StoreError> {
        let op = "find_admin_key";
        let row: Option<Row> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM admin_keys WHERE key_hash = ?1"
                ))
                .bind(key_hash)
                .fetch_optional(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM admin_keys WHERE key_hash = $1"
                ))
                .bind(key_hash)
                .fetch_optional(p)
                .await
            }
        }
        .map_err(|e| db_error(op, e))?;
        row.map(Row::into_record).transpose()
    }

    /// Every admin key, oldest first.
    pub async fn list_admin_keys(&self) -> Result<Vec<AdminKeyRecord>, StoreError> {
        let op = "list_admin_keys";
        const SQL: &str = concat!(
            "SELECT ",
            columns!(),
            " FROM admin_keys ORDER BY created_at, id"
        );
        let rows: Vec<Row> = match &self.pool {
            Pool::Sqlite(p) => sqlx::query_as(SQL).fetch_all(p).await,
            Pool::Postgres(p) => sqlx::query_as(SQL).fetch_all(p).await,
        }
        .map_err(|e| db_error(op, e))?;
        rows.into_iter().map(Row::into_record).collect()
    }

    /// Revokes an active key; false when no active key has this id.
    pub async fn revoke_admin_key(&self, id: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
        let op = "revoke_admin_key";
        let t = at.unix_timestamp();
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE admin_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
            )
            .bind(t)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE admin_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(t)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error(op, e))?;
        Ok(done == 1)
    }

    /// Records that the key was accepted at `now` (`last_used_at` never moves back);
    /// false when no key has this id.
    pub async fn touch_admin_key(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE admin_keys SET last_used_at = CASE \
                     WHEN last_used_at IS NULL OR last_used_at < ?1 THEN ?1 \
                     ELSE last_used_at END WHERE id = ?2",
            )
            .bind(unix(now))
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE admin_keys SET last_used_at = CASE \
                     WHEN last_used_at IS NULL OR last_used_at < $1 THEN $1 \
                     ELSE last_used_at END WHERE id = $2",
            )
            .bind(unix(now))
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("touch_admin_key", e))?;
        Ok(done == 1)
    }
}
