//! Admin API keys: stored by the SHA-256 of the key, found by it, revoked by id.

use time::OffsetDateTime;

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
            scopes: self
                .scopes
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            created_at: ts(self.created_at)?,
            revoked_at: self.revoked_at.map(ts).transpose()?,
        })
    }
}

macro_rules! columns {
    () => {
        "id, name, hint, key_hash, scopes, created_at, revoked_at"
    };
}

impl Store {
    /// Stores a new admin key; `Conflict` if its id or hash exists.
    pub async fn insert_admin_key(&self, k: &AdminKeyRecord) -> Result<(), StoreError> {
        let op = "insert_admin_key";
        let scopes = k.scopes.join(" ");
        let created = k.created_at.unix_timestamp();
        let revoked = k.revoked_at.map(OffsetDateTime::unix_timestamp);
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "INSERT INTO admin_keys (id, name, hint, key_hash, scopes, created_at, revoked_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(&k.id)
            .bind(&k.name)
            .bind(&k.hint)
            .bind(&k.key_hash)
            .bind(&scopes)
            .bind(created)
            .bind(revoked)
            .execute(p)
            .await
            .map(|_| ()),
            Pool::Postgres(p) => sqlx::query(
                "INSERT INTO admin_keys (id, name, hint, key_hash, scopes, created_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&k.id)
            .bind(&k.name)
            .bind(&k.hint)
            .bind(&k.key_hash)
            .bind(&scopes)
            .bind(created)
            .bind(revoked)
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
}
