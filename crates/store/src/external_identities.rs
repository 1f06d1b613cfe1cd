//! External identities (OpenID Connect `(issuer, subject)` pairs linked to accounts)
//! and the logins in flight to a provider.
//!
//! Linking rules are the identity service's; this module only makes each step atomic:
//! a new account and its first identity are one transaction, unlinking the last way
//! to sign in is refused under a lock on the user, and a pending login is taken (and so
//! used up) by deleting it.

use time::OffsetDateTime;

use crate::convert::{instant, unix};
use crate::error::db_error;
use crate::users::UserRecord;
use crate::{Pool, Store, StoreError};

/// A linked external identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentityRecord {
    /// Row id (UUIDv7 text).
    pub id: String,
    /// The account it signs in to.
    pub user_id: String,
    /// The configured provider name at link time (display only).
    pub provider: String,
    /// The provider's issuer URL (`iss`).
    pub issuer: String,
    /// The provider's stable user id (`sub`).
    pub subject: String,
    /// The email the provider gave last, if any.
    pub email: Option<String>,
    /// Whether the provider said that email is verified.
    pub email_verified: bool,
    /// When it was linked.
    pub linked_at: OffsetDateTime,
    /// The last sign-in through it.
    pub last_login_at: OffsetDateTime,
}

/// What [`Store::unlink_external_identity`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkOutcome {
    /// The identity was removed.
    Unlinked,
    /// The user has no identity with this id.
    NotFound,
    /// It is the account's only way to sign in (no password, no other identity).
    LastSignInMethod,
}

/// A login sent to a provider, waiting for its callback. `Debug` leaves the sealed
/// verifier out.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingLoginRecord {
    /// SHA-256 (hex) of the `state` parameter.
    pub state_hash: String,
    /// SHA-256 (hex) of the browser-binding cookie.
    pub browser_hash: String,
    /// The configured provider name.
    pub provider: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier, sealed by the caller.
    pub verifier_enc: Vec<u8>,
    /// Where the browser goes afterwards (a path on this server), if given.
    pub return_to: Option<String>,
    /// When the login started.
    pub created_at: OffsetDateTime,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for PendingLoginRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLoginRecord")
            .field("provider", &self.provider)
            .field("return_to", &self.return_to)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct IdentityRow {
    id: String,
    user_id: String,
    provider: String,
    issuer: String,
    subject: String,
    email: Option<String>,
    email_verified: bool,
    linked_at: i64,
    last_login_at: i64,
}

impl IdentityRow {
    fn into_record(self) -> Result<ExternalIdentityRecord, StoreError> {
        const T: &str = "external_identities";
        Ok(ExternalIdentityRecord {
            id: self.id,
            user_id: self.user_id,
            provider: self.provider,
            issuer: self.issuer,
            subject: self.subject,
            email: self.email,
            email_verified: self.email_verified,
            linked_at: instant(T, "linked_at", self.linked_at)?,
            last_login_at: instant(T, "last_login_at", self.last_login_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    state_hash: String,
    browser_hash: String,
    provider: String,
    nonce: String,
    verifier_enc: Vec<u8>,
    return_to: Option<String>,
    created_at: i64,
    expires_at: i64,
}

impl PendingRow {
    fn into_record(self) -> Result<PendingLoginRecord, StoreError> {
        const T: &str = "oidc_pending_logins";
        Ok(PendingLoginRecord {
            state_hash: self.state_hash,
            browser_hash: self.browser_hash,
            provider: self.provider,
            nonce: self.nonce,
            verifier_enc: self.verifier_enc,
            return_to: self.return_to,
            created_at: instant(T, "created_at", self.created_at)?,
            expires_at: instant(T, "expires_at", self.expires_at)?,
        })
    }
}

macro_rules! identity_columns {
    () => {
        "id, user_id, provider, issuer, subject, email, email_verified, linked_at, last_login_at"
    };
}

macro_rules! pending_columns {
    () => {
        "state_hash, browser_hash, provider, nonce, verifier_enc, return_to, created_at, expires_at"
    };
}

/// One SQL text per statement and backend (`?N` for SQLite, `$N` for PostgreSQL).
mod sql_sqlite {
    pub const INSERT_IDENTITY: &str = concat!(
        "INSERT INTO external_identities (",
        identity_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    );
    pub const INSERT_USER: &str = "INSERT INTO users (id, email, password_hash, status, \
        created_at, password_changed_at, mfa_changed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    pub const FIND: &str = concat!(
        "SELECT ",
        identity_columns!(),
        " FROM external_identities WHERE issuer = ?1 AND subject = ?2"
    );
    pub const LIST: &str = concat!(
        "SELECT ",
        identity_columns!(),
        " FROM external_identities WHERE user_id = ?1 ORDER BY linked_at, id LIMIT 100"
    );
    pub const TOUCH: &str = "UPDATE external_identities SET last_login_at = ?2, email = ?3, \
        email_verified = ?4 WHERE id = ?1";
    pub const EXISTS: &str =
        "SELECT count(*) FROM external_identities WHERE id = ?1 AND user_id = ?2";
    pub const OTHERS: &str =
        "SELECT count(*) FROM external_identities WHERE user_id = ?1 AND id <> ?2";
    pub const PASSWORD: &str = "SELECT password_hash FROM users WHERE id = ?1";
    pub const DELETE: &str = "DELETE FROM external_identities WHERE id = ?1 AND user_id = ?2";
    pub const INSERT_PENDING: &str = concat!(
        "INSERT INTO oidc_pending_logins (",
        pending_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    );
    pub const TAKE_PENDING: &str = concat!(
        "DELETE FROM oidc_pending_logins WHERE state_hash = ?1 AND browser_hash = ?2 \
         AND expires_at > ?3 RETURNING ",
        pending_columns!()
    );
}

mod sql_postgres {
    pub const INSERT_IDENTITY: &str = concat!(
        "INSERT INTO external_identities (",
        identity_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    pub const INSERT_USER: &str = "INSERT INTO users (id, email, password_hash, status, \
        created_at, password_changed_at, mfa_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    pub const FIND: &str = concat!(
        "SELECT ",
        identity_columns!(),
        " FROM external_identities WHERE issuer = $1 AND subject = $2"
    );
    pub const LIST: &str = concat!(
        "SELECT ",
        identity_columns!(),
        " FROM external_identities WHERE user_id = $1 ORDER BY linked_at, id LIMIT 100"
    );
    pub const TOUCH: &str = "UPDATE external_identities SET last_login_at = $2, email = $3, \
        email_verified = $4 WHERE id = $1";
    pub const EXISTS: &str =
        "SELECT count(*) FROM external_identities WHERE id = $1 AND user_id = $2";
    pub const OTHERS: &str =
        "SELECT count(*) FROM external_identities WHERE user_id = $1 AND id <> $2";
    /// Locks the user's row: concurrent unlinks of two identities cannot both pass the
    /// "another way to sign in is left" check.
    pub const PASSWORD: &str = "SELECT password_hash FROM users WHERE id = $1 FOR UPDATE";
    pub const DELETE: &str = "DELETE FROM external_identities WHERE id = $1 AND user_id = $2";
    pub const INSERT_PENDING: &str = concat!(
        "INSERT INTO oidc_pending_logins (",
        pending_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    );
    pub const TAKE_PENDING: &str = concat!(
        "DELETE FROM oidc_pending_logins WHERE state_hash = $1 AND browser_hash = $2 \
         AND expires_at > $3 RETURNING ",
        pending_columns!()
    );
}

/// Binds an identity's columns in `identity_columns!` order.
macro_rules! bind_identity {
    ($q:expr, $r:expr) => {
        $q.bind(&$r.id)
            .bind(&$r.user_id)
            .bind(&$r.provider)
            .bind(&$r.issuer)
            .bind(&$r.subject)
            .bind(&$r.email)
            .bind($r.email_verified)
            .bind(unix($r.linked_at))
            .bind(unix($r.last_login_at))
    };
}

/// Binds a user's columns in the order of `INSERT_USER`.
macro_rules! bind_user {
    ($q:expr, $u:expr) => {
        $q.bind(&$u.id)
            .bind(&$u.email)
            .bind(&$u.password_hash)
            .bind($u.status.as_str())
            .bind(unix($u.created_at))
            .bind(unix($u.password_changed_at))
            .bind($u.mfa_changed_at.map(unix))
    };
}

/// The unlink transaction, written once for both backends.
macro_rules! unlink {
    ($tx:ident, $sql:ident, $user_id:expr, $id:expr) => {{
        let exists: i64 = sqlx::query_scalar($sql::EXISTS)
            .bind($id)
            .bind($user_id)
            .fetch_one(&mut *$tx)
            .await?;
        if exists == 0 {
            return Ok(UnlinkOutcome::NotFound);
        }
        let password: Option<String> = sqlx::query_scalar($sql::PASSWORD)
            .bind($user_id)
            .fetch_optional(&mut *$tx)
            .await?;
        let others: i64 = sqlx::query_scalar($sql::OTHERS)
            .bind($user_id)
            .bind($id)
            .fetch_one(&mut *$tx)
            .await?;
        if others == 0 && password.unwrap_or_default().is_empty() {
            return Ok(UnlinkOutcome::LastSignInMethod);
        }
        sqlx::query($sql::DELETE)
            .bind($id)
            .bind($user_id)
            .execute(&mut *$tx)
            .await?;
        $tx.commit().await?;
        Ok::<_, sqlx::Error>(UnlinkOutcome::Unlinked)
    }};
}

impl Store {
    /// The identity linked for `(issuer, subject)`, if any.
    pub async fn find_external_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<ExternalIdentityRecord>, StoreError> {
        let row: Option<IdentityRow> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(sql_sqlite::FIND)
                    .bind(issuer)
                    .bind(subject)
                    .fetch_optional(p)
                    .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(sql_postgres::FIND)
                    .bind(issuer)
                    .bind(subject)
                    .fetch_optional(p)
                    .await
            }
        }
        .map_err(|e| db_error("find_external_identity", e))?;
        row.map(IdentityRow::into_record).transpose()
    }

    /// Links an identity to an existing account; `Conflict` if the `(issuer, subject)`
    /// pair is linked already (to any account).
    pub async fn insert_external_identity(
        &self,
        r: &ExternalIdentityRecord,
    ) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => bind_identity!(sqlx::query(sql_sqlite::INSERT_IDENTITY), r)
                .execute(p)
                .await
                .map(drop),
            Pool::Postgres(p) => bind_identity!(sqlx::query(sql_postgres::INSERT_IDENTITY), r)
                .execute(p)
                .await
                .map(drop),
        }
        .map_err(|e| db_error("insert_external_identity", e))
    }

    /// Creates an account together with its first external identity, in one
    /// transaction: `Conflict` (and nothing written) if the email or the pair exists.
    pub async fn insert_user_with_external_identity(
        &self,
        user: &UserRecord,
        r: &ExternalIdentityRecord,
    ) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                async {
                    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                    bind_user!(sqlx::query(sql_sqlite::INSERT_USER), user)
                        .execute(&mut *tx)
                        .await?;
                    bind_identity!(sqlx::query(sql_sqlite::INSERT_IDENTITY), r)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                }
                .await
            }
            Pool::Postgres(p) => {
                async {
                    let mut tx = p.begin().await?;
                    bind_user!(sqlx::query(sql_postgres::INSERT_USER), user)
                        .execute(&mut *tx)
                        .await?;
                    bind_identity!(sqlx::query(sql_postgres::INSERT_IDENTITY), r)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                }
                .await
            }
        }
        .map_err(|e| db_error("insert_user_with_external_identity", e))
    }

    /// Records a sign-in through an identity, with the email the provider gave now.
    pub async fn touch_external_identity(
        &self,
        id: &str,
        now: OffsetDateTime,
        email: Option<&str>,
        email_verified: bool,
    ) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(sql_sqlite::TOUCH)
                .bind(id)
                .bind(unix(now))
                .bind(email)
                .bind(email_verified)
                .execute(p)
                .await
                .map(drop),
            Pool::Postgres(p) => sqlx::query(sql_postgres::TOUCH)
                .bind(id)
                .bind(unix(now))
                .bind(email)
                .bind(email_verified)
                .execute(p)
                .await
                .map(drop),
        }
        .map_err(|e| db_error("touch_external_identity", e))
    }

    /// The user's linked identities, oldest first (at most 100).
    pub async fn list_external_identities(
        &self,
        user_id: &str,
    ) -> Result<Vec<ExternalIdentityRecord>, StoreError> {
        let rows: Vec<IdentityRow> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(sql_sqlite::LIST)
                    .bind(user_id)
                    .fetch_all(p)
                    .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(sql_postgres::LIST)
                    .bind(user_id)
                    .fetch_all(p)
                    .await
            }
        }
        .map_err(|e| db_error("list_external_identities", e))?;
        rows.into_iter().map(IdentityRow::into_record).collect()
    }

    /// Unlinks one of the user's identities unless it is the account's last way to
    /// sign in (no password and no other identity). Atomic against concurrent unlinks.
    pub async fn unlink_external_identity(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<UnlinkOutcome, StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                async {
                    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                    unlink!(tx, sql_sqlite, user_id, id)
                }
                .await
            }
            Pool::Postgres(p) => {
                async {
                    let mut tx = p.begin().await?;
                    unlink!(tx, sql_postgres, user_id, id)
                }
                .await
            }
        }
        .map_err(|e| db_error("unlink_external_identity", e))
    }

    /// Stores a pending login; `Conflict` if the state hash exists.
    pub async fn insert_pending_login(&self, r: &PendingLoginRecord) -> Result<(), StoreError> {
        macro_rules! bind {
            ($q:expr) => {
                $q.bind(&r.state_hash)
                    .bind(&r.browser_hash)
                    .bind(&r.provider)
                    .bind(&r.nonce)
                    .bind(&r.verifier_enc)
                    .bind(&r.return_to)
                    .bind(unix(r.created_at))
                    .bind(unix(r.expires_at))
            };
        }
        match &self.pool {
            Pool::Sqlite(p) => bind!(sqlx::query(sql_sqlite::INSERT_PENDING))
                .execute(p)
                .await
                .map(drop),
            Pool::Postgres(p) => bind!(sqlx::query(sql_postgres::INSERT_PENDING))
                .execute(p)
                .await
                .map(drop),
        }
        .map_err(|e| db_error("insert_pending_login", e))
    }

    /// Takes (deletes and returns) the pending login with this state hash when it was
    /// started by this browser and has not expired at `now`: of concurrent calls, one
    /// gets it. `None` for an unknown, used, expired or other browser's state.
    pub async fn take_pending_login(
        &self,
        state_hash: &str,
        browser_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PendingLoginRecord>, StoreError> {
        let row: Option<PendingRow> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(sql_sqlite::TAKE_PENDING)
                    .bind(state_hash)
                    .bind(browser_hash)
                    .bind(unix(now))
                    .fetch_optional(p)
                    .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(sql_postgres::TAKE_PENDING)
                    .bind(state_hash)
                    .bind(browser_hash)
                    .bind(unix(now))
                    .fetch_optional(p)
                    .await
            }
        }
        .map_err(|e| db_error("take_pending_login", e))?;
        row.map(PendingRow::into_record).transpose()
    }
}
