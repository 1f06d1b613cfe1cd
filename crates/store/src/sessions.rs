//! Login sessions and their refresh tokens.
//!
//! A session is one family of refresh tokens. Each refresh rotates the token: the
//! presented one is marked used and a new one is stored, in one transaction that holds
//! the token's row (SQLite: `BEGIN IMMEDIATE`, the database write lock; PostgreSQL:
//! `SELECT … FOR UPDATE`), so two rotations of one token cannot both succeed. Presenting
//! a used token again is reuse: the session is revoked, which makes every token of the
//! family unusable.

use time::OffsetDateTime;

use crate::convert::{instant, join_words, opt_instant, split_words, truncate_chars, unix};
use crate::error::db_error;
use crate::{MAX_PAGE_SIZE, Pool, Store, StoreError};

/// Longest user agent kept, in characters; longer ones are cut.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Session id (UUIDv7 text); the `sid` claim.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// When the user logged in.
    pub created_at: OffsetDateTime,
    /// Last refresh (the login itself at first).
    pub last_used_at: OffsetDateTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
    /// When the user last authenticated (`auth_time`), moved by step-up.
    pub auth_time: OffsetDateTime,
    /// Authentication context class (`acr`), e.g. `pwd` or `mfa`.
    pub acr: String,
    /// Authentication methods (`amr`, RFC 8176): non-empty words without whitespace.
    pub amr: Vec<String>,
    /// Client address at login, as the caller formats it.
    pub client_ip: Option<String>,
    /// Client user agent at login, cut to [`MAX_USER_AGENT_CHARS`] when stored.
    pub user_agent: Option<String>,
}

/// What became of a presented refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// No such token.
    Unknown,
    /// Expired, or its session is revoked; nothing changed.
    Invalid,
    /// It had been rotated already: its session is now revoked.
    Reused {
        /// The revoked session.
        session_id: String,
        /// Its owner.
        user_id: String,
    },
    /// Marked used; the new token is stored and the session's `last_used_at` moved.
    Rotated {
        /// The session, still active.
        session_id: String,
        /// Its owner.
        user_id: String,
    },
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    user_id: String,
    created_at: i64,
    last_used_at: i64,
    revoked_at: Option<i64>,
    auth_time: i64,
    acr: String,
    amr: String,
    client_ip: Option<String>,
    user_agent: Option<String>,
}

impl Row {
    fn into_record(self) -> Result<SessionRecord, StoreError> {
        Ok(SessionRecord {
            id: self.id,
            user_id: self.user_id,
            created_at: instant("sessions", "created_at", self.created_at)?,
            last_used_at: instant("sessions", "last_used_at", self.last_used_at)?,
            revoked_at: opt_instant("sessions", "revoked_at", self.revoked_at)?,
            auth_time: instant("sessions", "auth_time", self.auth_time)?,
            acr: self.acr,
            amr: split_words(&self.amr),
            client_ip: self.client_ip,
            user_agent: self.user_agent,
        })
    }
}

macro_rules! columns {
    () => {
        "id, user_id, created_at, last_used_at, revoked_at, auth_time, acr, amr, client_ip, \
         user_agent"
    };
}

/// The presented token as locked for rotation.
#[derive(sqlx::FromRow)]
struct TokenRow {
    session_id: String,
    expires_at: i64,
    used_at: Option<i64>,
}

/// The session of a token being rotated.
#[derive(sqlx::FromRow)]
struct SessionState {
    user_id: String,
    revoked_at: Option<i64>,
}

/// The statements of a rotation, per backend; [`rotate!`] runs them.
mod rotate_sqlite {
    pub const TOKEN: &str =
        "SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = ?1";
    pub const SESSION: &str = "SELECT user_id, revoked_at FROM sessions WHERE id = ?1";
    pub const REVOKE: &str =
        "UPDATE sessions SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL";
    pub const MARK_USED: &str =
        "UPDATE refresh_tokens SET used_at = ?1 WHERE token_hash = ?2 AND used_at IS NULL";
    pub const INSERT: &str = "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, \
                              expires_at) VALUES (?1, ?2, ?3, ?4)";
    pub const TOUCH: &str = "UPDATE sessions SET last_used_at = ?1 WHERE id = ?2";
}

mod rotate_postgres {
    // The token row first, then the session row: every transaction that locks both
    // does so in this order (revocations lock only the session), so none deadlock.
    pub const TOKEN: &str = "SELECT session_id, expires_at, used_at FROM refresh_tokens \
                             WHERE token_hash = $1 FOR UPDATE";
    pub const SESSION: &str = "SELECT user_id, revoked_at FROM sessions WHERE id = $1 FOR UPDATE";
    pub const REVOKE: &str =
        "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
    pub const MARK_USED: &str =
        "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL";
    pub const INSERT: &str = "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, \
                              expires_at) VALUES ($1, $2, $3, $4)";
    pub const TOUCH: &str = "UPDATE sessions SET last_used_at = $1 WHERE id = $2";
}

/// The rotation, written once for both backends: `$tx` is an open transaction and
/// `$sql` one of the statement modules above. Evaluates to
/// `Result<RotateOutcome, sqlx::Error>`; returning early drops (rolls back) `$tx`.
macro_rules! rotate {
    ($tx:ident, $sql:ident, $presented:expr, $new:expr, $now:expr, $expires:expr) => {{
        let token: Option<TokenRow> = sqlx::query_as($sql::TOKEN)
            .bind($presented)
            .fetch_optional(&mut *$tx)
            .await?;
        match token {
            None => Ok(RotateOutcome::Unknown),
            Some(token) => {
                let session: Option<SessionState> = sqlx::query_as($sql::SESSION)
                    .bind(&token.session_id)
                    .fetch_optional(&mut *$tx)
                    .await?;
                match session {
                    // The foreign key makes a missing session impossible.
                    None => Ok(RotateOutcome::Invalid),
                    Some(s) if s.revoked_at.is_some() || token.expires_at <= $now => {
                        Ok(RotateOutcome::Invalid)
                    }
                    Some(s) => {
                        let fresh = token.used_at.is_none()
                            && sqlx::query($sql::MARK_USED)
                                .bind($now)
                                .bind($presented)
                                .execute(&mut *$tx)
                                .await?
                                .rows_affected()
                                == 1;
                        if fresh {
                            sqlx::query($sql::INSERT)
                                .bind($new)
                                .bind(&token.session_id)
                                .bind($now)
                                .bind($expires)
                                .execute(&mut *$tx)
                                .await?;
                            sqlx::query($sql::TOUCH)
                                .bind($now)
                                .bind(&token.session_id)
                                .execute(&mut *$tx)
                                .await?;
                            $tx.commit().await?;
                            Ok(RotateOutcome::Rotated {
                                session_id: token.session_id,
                                user_id: s.user_id,
                            })
                        } else {
                            sqlx::query($sql::REVOKE)
                                .bind($now)
                                .bind(&token.session_id)
                                .execute(&mut *$tx)
                                .await?;
                            $tx.commit().await?;
                            Ok(RotateOutcome::Reused {
                                session_id: token.session_id,
                                user_id: s.user_id,
                            })
                        }
                    }
                }
            }
        }
    }};
}

impl Store {
    /// Stores a new session (the user agent cut to [`MAX_USER_AGENT_CHARS`]); `Conflict`
    /// if the id exists. The user must exist (`Internal` otherwise).
    pub async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        let op = "insert_session";
        let amr = join_words("sessions", "amr", &s.amr)?;
        let user_agent = s
            .user_agent
            .as_deref()
            .map(|ua| truncate_chars(ua, MAX_USER_AGENT_CHARS));
        let revoked = s.revoked_at.map(unix);
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(concat!(
                "INSERT INTO sessions (",
                columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))
            .bind(&s.id)
            .bind(&s.user_id)
            .bind(unix(s.created_at))
            .bind(unix(s.last_used_at))
            .bind(revoked)
            .bind(unix(s.auth_time))
            .bind(&s.acr)
            .bind(&amr)
            .bind(&s.client_ip)
            .bind(user_agent)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(concat!(
                "INSERT INTO sessions (",
                columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(&s.id)
            .bind(&s.user_id)
            .bind(unix(s.created_at))
            .bind(unix(s.last_used_at))
            .bind(revoked)
            .bind(unix(s.auth_time))
            .bind(&s.acr)
            .bind(&amr)
            .bind(&s.client_ip)
            .bind(user_agent)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map(drop)
        .map_err(|e| db_error(op, e))
    }

    /// The session with this id, revoked or not (the caller checks `revoked_at` and
    /// the owner).
    pub async fn get_session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<Row> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM sessions WHERE id = ?1"
                ))
                .bind(id)
                .fetch_optional(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM sessions WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(p)
                .await
            }
        }
        .map_err(|e| db_error("get_session", e))?;
        row.map(Row::into_record).transpose()
    }

    /// Up to `limit` (brought into `1..=`[`MAX_PAGE_SIZE`]) sessions of a user: active
    /// ones first, then revoked ones, each newest first.
    pub async fn list_sessions(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_PAGE_SIZE));
        let rows: Vec<Row> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM sessions WHERE user_id = ?1 ORDER BY ",
                    "CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id DESC ",
                    "LIMIT ?2"
                ))
                .bind(user_id)
                .bind(limit)
                .fetch_all(p)
                .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM sessions WHERE user_id = $1 ORDER BY ",
                    "CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id DESC ",
                    "LIMIT $2"
                ))
                .bind(user_id)
                .bind(limit)
                .fetch_all(p)
                .await
            }
        }
        .map_err(|e| db_error("list_sessions", e))?;
        rows.into_iter().map(Row::into_record).collect()
    }

    /// Revokes an active session of `user_id`, which makes all its refresh tokens
    /// unusable. False when `user_id` has no active session with this id: unknown,
    /// already revoked, or another user's.
    pub async fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE sessions SET revoked_at = ?1 \
                     WHERE id = ?2 AND user_id = ?3 AND revoked_at IS NULL",
            )
            .bind(unix(now))
            .bind(session_id)
            .bind(user_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE sessions SET revoked_at = $1 \
                     WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
            )
            .bind(unix(now))
            .bind(session_id)
            .bind(user_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("revoke_session", e))?;
        Ok(done == 1)
    }

    /// Ids of sessions revoked at or after `since`, with when: access tokens live at most
    /// ten minutes, so API nodes keep this short list as a deny list instead of reading
    /// the session on every request.
    pub async fn revoked_sessions_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as("SELECT id, revoked_at FROM sessions WHERE revoked_at >= ?1")
                    .bind(unix(since))
                    .fetch_all(p)
                    .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as("SELECT id, revoked_at FROM sessions WHERE revoked_at >= $1")
                    .bind(unix(since))
                    .fetch_all(p)
                    .await
            }
        }
        .map_err(|e| db_error("revoked_sessions_since", e))
    }

    /// Revokes every active session of `user_id` except the one with id `except`;
    /// returns how many were revoked.
    pub async fn revoke_all_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE sessions SET revoked_at = ?1 WHERE user_id = ?2 \
                     AND revoked_at IS NULL AND (?3 IS NULL OR id <> ?3)",
            )
            .bind(unix(now))
            .bind(user_id)
            .bind(except)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 \
                     AND revoked_at IS NULL AND ($3::text IS NULL OR id <> $3)",
            )
            .bind(unix(now))
            .bind(user_id)
            .bind(except)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("revoke_all_sessions", e))?;
        Ok(done)
    }

    /// Records a new authentication in an active session (after step-up): sets
    /// `auth_time`, `acr` and `amr`. False when no active session has this id.
    pub async fn update_session_auth(
        &self,
        session_id: &str,
        auth_time: OffsetDateTime,
        acr: &str,
        amr: &[String],
    ) -> Result<bool, StoreError> {
        let amr = join_words("sessions", "amr", amr)?;
        let done = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE sessions SET auth_time = ?1, acr = ?2, amr = ?3 \
                     WHERE id = ?4 AND revoked_at IS NULL",
            )
            .bind(unix(auth_time))
            .bind(acr)
            .bind(&amr)
            .bind(session_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(
                "UPDATE sessions SET auth_time = $1, acr = $2, amr = $3 \
                     WHERE id = $4 AND revoked_at IS NULL",
            )
            .bind(unix(auth_time))
            .bind(acr)
            .bind(&amr)
            .bind(session_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(|e| db_error("update_session_auth", e))?;
        Ok(done == 1)
    }

    /// Stores the first refresh token of a session (later ones come from
    /// [`Store::rotate_refresh_token`]); `Conflict` if the hash exists. The session
    /// must exist (`Internal` otherwise).
    pub async fn insert_refresh_token(
        &self,
        token_hash: &str,
        session_id: &str,
        issued_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query(rotate_sqlite::INSERT)
                .bind(token_hash)
                .bind(session_id)
                .bind(unix(issued_at))
                .bind(unix(expires_at))
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Pool::Postgres(p) => sqlx::query(rotate_postgres::INSERT)
                .bind(token_hash)
                .bind(session_id)
                .bind(unix(issued_at))
                .bind(unix(expires_at))
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        }
        .map(drop)
        .map_err(|e| db_error("insert_refresh_token", e))
    }

    /// Rotates the refresh token with hash `presented_hash`, in one transaction:
    ///
    /// - unknown hash: [`RotateOutcome::Unknown`];
    /// - expired (`now >= expires_at`) or its session revoked: [`RotateOutcome::Invalid`],
    ///   nothing changes;
    /// - already rotated: its session is revoked (so every token of the family is dead):
    ///   [`RotateOutcome::Reused`];
    /// - otherwise it is marked used, `new_hash` is stored for the same session (issued
    ///   `now`, expiring `new_expires_at`), the session's `last_used_at` becomes `now`:
    ///   [`RotateOutcome::Rotated`].
    ///
    /// Of two concurrent rotations of one token, one rotates and the other sees a used
    /// token (and so revokes the session). `Conflict` if `new_hash` exists.
    pub async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        new_hash: &str,
        now: OffsetDateTime,
        new_expires_at: OffsetDateTime,
    ) -> Result<RotateOutcome, StoreError> {
        let (now, expires) = (unix(now), unix(new_expires_at));
        let outcome = match &self.pool {
            Pool::Sqlite(p) => {
                async {
                    // The write lock up front: the check and the updates see no other
                    // writer, and the lock upgrade cannot fail half way.
                    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                    rotate!(tx, rotate_sqlite, presented_hash, new_hash, now, expires)
                }
                .await
            }
            Pool::Postgres(p) => {
                async {
                    let mut tx = p.begin().await?;
                    rotate!(tx, rotate_postgres, presented_hash, new_hash, now, expires)
                }
                .await
            }
        }
        .map_err(|e| db_error("rotate_refresh_token", e))?;
        if let RotateOutcome::Reused { session_id, .. } = &outcome {
            tracing::warn!(session_id, "refresh token reused: session revoked");
        }
        Ok(outcome)
    }
}
