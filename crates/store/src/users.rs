//! User accounts: found by id or by (normalised) email, paged by id.

use std::fmt;

use time::OffsetDateTime;

use crate::convert::{instant, opt_instant, unix};
use crate::error::db_error;
use crate::{MAX_PAGE_SIZE, Page, Pool, Store, StoreError};

/// Whether a user may use the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    /// May log in and trade.
    Active,
    /// Frozen by an administrator.
    Frozen,
}

impl UserStatus {
    /// The stored (and API) name: `active` or `frozen`.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Frozen => "frozen",
        }
    }

    /// The status named `s` by [`UserStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(UserStatus::Active),
            "frozen" => Some(UserStatus::Frozen),
            _ => None,
        }
    }
}

/// A stored user. `Debug` leaves the password hash out.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// User id (UUIDv7 text).
    pub id: String,
    /// Email, normalised by the caller; unique.
    pub email: String,
    /// Password hash (PHC string) made by bourse-auth.
    pub password_hash: String,
    /// Active or frozen.
    pub status: UserStatus,
    /// When the account was made.
    pub created_at: OffsetDateTime,
    /// When the password was last set.
    pub password_changed_at: OffsetDateTime,
    /// When two-factor was last turned on or off, if ever.
    pub mfa_changed_at: Option<OffsetDateTime>,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"<redacted>")
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .field("password_changed_at", &self.password_changed_at)
            .field("mfa_changed_at", &self.mfa_changed_at)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    email: String,
    password_hash: String,
    status: String,
    created_at: i64,
    password_changed_at: i64,
    mfa_changed_at: Option<i64>,
}

impl Row {
    fn into_record(self) -> Result<UserRecord, StoreError> {
        let status = UserStatus::parse(&self.status).ok_or_else(|| {
            tracing::error!(
                table = "users",
                column = "status",
                "stored user is not valid"
            );
            StoreError::Internal
        })?;
        Ok(UserRecord {
            id: self.id,
            email: self.email,
            password_hash: self.password_hash,
            status,
            created_at: instant("users", "created_at", self.created_at)?,
            password_changed_at: instant("users", "password_changed_at", self.password_changed_at)?,
            mfa_changed_at: opt_instant("users", "mfa_changed_at", self.mfa_changed_at)?,
        })
    }
}

macro_rules! columns {
    () => {
        "id, email, password_hash, status, created_at, password_changed_at, mfa_changed_at"
    };
}

impl Store {
    /// Stores a new user; `Conflict` if the id or the email exists.
    pub async fn insert_user(&self, u: &UserRecord) -> Result<(), StoreError> {
        let op = "insert_user";
        let mfa = u.mfa_changed_at.map(unix);
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(concat!(
                "INSERT INTO users (",
                columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))
            .bind(&u.id)
            .bind(&u.email)
            .bind(&u.password_hash)
            .bind(u.status.as_str())
            .bind(unix(u.created_at))
            .bind(unix(u.password_changed_at))
            .bind(mfa)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(concat!(
                "INSERT INTO users (",
                columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ))
            .bind(&u.id)
            .bind(&u.email)
            .bind(&u.password_hash)
            .bind(u.status.as_str())
            .bind(unix(u.created_at))
            .bind(unix(u.password_changed_at))
            .bind(mfa)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map(drop)
        .map_err(|e| db_error(op, e))
    }

    /// The user with this id.
    pub async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<Row> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(concat!("SELECT ", columns!(), " FROM users WHERE id = ?1"))
                    .bind(id)
                    .fetch_optional(p)
                    .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(concat!("SELECT ", columns!(), " FROM users WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(p)
                    .await
            }
        }
        .map_err(|e| db_error("get_user", e))?;
        row.map(Row::into_record).transpose()
    }

    /// The user with exactly this email (the caller normalises it first).
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<Row> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM users WHERE email = ?1"
                ))
                .bind(email)
                .fetch_optional(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM users WHERE email = $1"
                ))
                .bind(email)
                .fetch_optional(p)
                .await
            }
        }
        .map_err(|e| db_error("find_user_by_email", e))?;
        row.map(Row::into_record).transpose()
    }

    /// Replaces the password hash and sets `password_changed_at` to `now`; false when no
    /// user has this id. Sessions are the caller's to revoke.
    pub async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE users SET password_hash = ?1, password_changed_at = ?2 WHERE id = ?3",
            )
            .bind(password_hash)
            .bind(unix(now))
            .bind(user_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3",
            )
            .bind(password_hash)
            .bind(unix(now))
            .bind(user_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("set_password", e))?;
        Ok(done == 1)
    }

    /// Sets the status; false when no user has this id. Setting the status a user
    /// already has succeeds (true).
    pub async fn set_user_status(
        &self,
        user_id: &str,
        status: UserStatus,
    ) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query("UPDATE users SET status = ?1 WHERE id = ?2")
                .bind(status.as_str())
                .bind(user_id)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query("UPDATE users SET status = $1 WHERE id = $2")
                .bind(status.as_str())
                .bind(user_id)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("set_user_status", e))?;
        Ok(done == 1)
    }

    /// A page of users in id order (creation order for UUIDv7 ids), starting strictly
    /// after the id `after`.
    ///
    /// `limit` is brought into `1..=`[`MAX_PAGE_SIZE`]; `next` is the last id of the page
    /// when more users follow.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<UserRecord, String>, StoreError> {
        let limit = usize::try_from(limit.clamp(1, MAX_PAGE_SIZE)).unwrap_or(1);
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let mut rows: Vec<Row> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM users WHERE (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2"
                ))
                .bind(after)
                .bind(fetch)
                .fetch_all(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM users WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2"
                ))
                .bind(after)
                .bind(fetch)
                .fetch_all(p)
                .await
            }
        }
        .map_err(|e| db_error("list_users", e))?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let items = rows
            .into_iter()
            .map(Row::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if more {
            items.last().map(|u| u.id.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}
