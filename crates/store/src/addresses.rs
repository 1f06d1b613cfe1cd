//! The withdrawal whitelist. Every query is scoped by the owner's user id, so one user
//! can never read or delete another user's entry.

use time::OffsetDateTime;

use crate::convert::{instant, opt_instant, unix};
use crate::error::db_error;
use crate::{Pool, Store, StoreError};

/// A whitelisted withdrawal address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRecord {
    /// Entry id (UUIDv7 text).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Asset code, e.g. `USDC`.
    pub asset: String,
    /// The address, as validated by the caller.
    pub address: String,
    /// The user's label.
    pub label: String,
    /// Added at.
    pub created_at: OffsetDateTime,
    /// Withdrawals to it are allowed from this time (the cool-down).
    pub usable_at: OffsetDateTime,
    /// Removed at.
    pub deleted_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    user_id: String,
    asset: String,
    address: String,
    label: String,
    created_at: i64,
    usable_at: i64,
    deleted_at: Option<i64>,
}

impl Row {
    fn into_record(self) -> Result<AddressRecord, StoreError> {
        const T: &str = "withdrawal_addresses";
        Ok(AddressRecord {
            created_at: instant(T, "created_at", self.created_at)?,
            usable_at: instant(T, "usable_at", self.usable_at)?,
            deleted_at: opt_instant(T, "deleted_at", self.deleted_at)?,
            id: self.id,
            user_id: self.user_id,
            asset: self.asset,
            address: self.address,
            label: self.label,
        })
    }
}

macro_rules! columns {
    () => {
        "id, user_id, asset, address, label, created_at, usable_at, deleted_at"
    };
}

impl Store {
    /// Adds an address; `Conflict` if the user already has it live for this asset.
    pub async fn insert_address(&self, a: &AddressRecord) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(concat!(
                "INSERT INTO withdrawal_addresses (",
                columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))
            .bind(&a.id)
            .bind(&a.user_id)
            .bind(&a.asset)
            .bind(&a.address)
            .bind(&a.label)
            .bind(unix(a.created_at))
            .bind(unix(a.usable_at))
            .bind(a.deleted_at.map(unix))
            .execute(p)
            .await
            .map(drop),
            Pool::Postgres(p) => sqlx::query(concat!(
                "INSERT INTO withdrawal_addresses (",
                columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(&a.id)
            .bind(&a.user_id)
            .bind(&a.asset)
            .bind(&a.address)
            .bind(&a.label)
            .bind(unix(a.created_at))
            .bind(unix(a.usable_at))
            .bind(a.deleted_at.map(unix))
            .execute(p)
            .await
            .map(drop),
        }
        .map_err(|e| db_error("insert_address", e))
    }

    /// The user's live addresses, oldest first.
    pub async fn list_addresses(&self, user_id: &str) -> Result<Vec<AddressRecord>, StoreError> {
        let rows: Vec<Row> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM withdrawal_addresses WHERE user_id = ?1 AND deleted_at IS NULL \
                     ORDER BY created_at, id"
                ))
                .bind(user_id)
                .fetch_all(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM withdrawal_addresses WHERE user_id = $1 AND deleted_at IS NULL \
                     ORDER BY created_at, id"
                ))
                .bind(user_id)
                .fetch_all(p)
                .await
            }
        }
        .map_err(|e| db_error("list_addresses", e))?;
        rows.into_iter().map(Row::into_record).collect()
    }

    /// One live address of the user; `None` for another user's entry.
    pub async fn get_address(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<AddressRecord>, StoreError> {
        let row: Option<Row> = match &self.pool {
            Pool::Sqlite(p) => sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM withdrawal_addresses WHERE id = ?1 AND user_id = ?2 AND deleted_at IS NULL"
            ))
            .bind(id)
            .bind(user_id)
            .fetch_optional(p)
            .await,
            Pool::Postgres(p) => sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM withdrawal_addresses WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL"
            ))
            .bind(id)
            .bind(user_id)
            .fetch_optional(p)
            .await,
        }
        .map_err(|e| db_error("get_address", e))?;
        row.map(Row::into_record).transpose()
    }

    /// Removes one of the user's live addresses; false if none matches.
    pub async fn delete_address(
        &self,
        user_id: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE withdrawal_addresses SET deleted_at = ?1 \
                 WHERE id = ?2 AND user_id = ?3 AND deleted_at IS NULL",
            )
            .bind(unix(now))
            .bind(id)
            .bind(user_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE withdrawal_addresses SET deleted_at = $1 \
                 WHERE id = $2 AND user_id = $3 AND deleted_at IS NULL",
            )
            .bind(unix(now))
            .bind(id)
            .bind(user_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("delete_address", e))?;
        Ok(done == 1)
    }
}
