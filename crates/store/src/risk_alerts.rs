//! Risk alerts from the surveillance pipeline, the users they concern, and the
//! restrictions their actions put on users (`step_up`, `freeze_withdrawals`).
//!
//! The SQL is shared by both backends: parameters are written `$1…$n` in order of first
//! appearance, which PostgreSQL reads as positions and SQLite as named parameters
//! numbered in that same order.

use crate::error::db_error;
use crate::{Pool, Store, StoreError};

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RiskAlertRecord {
    /// Alert id (UUIDv7 text).
    pub id: String,
    /// When it was raised, Unix microseconds.
    pub created_at_us: i64,
    /// The rule's stable name, e.g. `wash_trading`.
    pub rule: String,
    /// 0–100.
    pub score: i64,
    /// The configured action: `notify`, `step_up`, `freeze_withdrawals`, `halt_trading`.
    pub action: String,
    /// JSON: `{"users": [...], "accounts": [...]}`.
    pub subjects: String,
    /// JSON: the rule's evidence.
    pub evidence: String,
    /// `open` or `resolved`.
    pub status: String,
    /// When it was resolved.
    pub resolved_at_us: Option<i64>,
    /// The admin key that resolved it.
    pub resolved_by: Option<String>,
    /// The resolution note.
    pub resolution: Option<String>,
    /// `none` (notify), `applied`, `failed` or `lifted`.
    pub action_state: String,
    /// When the action was lifted.
    pub action_lifted_at_us: Option<i64>,
    /// The admin key that lifted it.
    pub action_lifted_by: Option<String>,
}

/// Filter and cursor of [`Store::list_risk_alerts`], newest first.
#[derive(Debug, Clone, Default)]
pub struct RiskAlertQuery {
    /// Only `open` or `resolved`.
    pub status: Option<String>,
    /// Only this rule.
    pub rule: Option<String>,
    /// Only alerts concerning this user.
    pub user_id: Option<String>,
    /// Only alerts created before this one (the cursor: `(created_at_us, id)`).
    pub before: Option<(i64, String)>,
    /// Page size.
    pub limit: u32,
}

macro_rules! columns {
    () => {
        "id, created_at_us, rule, score, action, subjects, evidence, status, resolved_at_us, \
         resolved_by, resolution, action_state, action_lifted_at_us, action_lifted_by"
    };
}

macro_rules! on_pool {
    ($self:expr, $p:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

impl Store {
    /// Stores an alert, the users it concerns and the restrictions its action puts on
    /// them (`restrictions`: (user, kind)), in one transaction.
    pub async fn insert_risk_alert(
        &self,
        a: &RiskAlertRecord,
        users: &[String],
        restrictions: &[(String, &'static str)],
    ) -> Result<(), StoreError> {
        on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            sqlx::query(concat!(
                "INSERT INTO risk_alerts (",
                columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ))
            .bind(&a.id)
            .bind(a.created_at_us)
            .bind(&a.rule)
            .bind(a.score)
            .bind(&a.action)
            .bind(&a.subjects)
            .bind(&a.evidence)
            .bind(&a.status)
            .bind(a.resolved_at_us)
            .bind(&a.resolved_by)
            .bind(&a.resolution)
            .bind(&a.action_state)
            .bind(a.action_lifted_at_us)
            .bind(&a.action_lifted_by)
            .execute(&mut *tx)
            .await?;
            for u in users {
                sqlx::query("INSERT INTO risk_alert_users (alert_id, user_id) VALUES ($1, $2)")
                    .bind(&a.id)
                    .bind(u)
                    .execute(&mut *tx)
                    .await?;
            }
            for (u, kind) in restrictions {
                sqlx::query(
                    "INSERT INTO risk_restrictions (alert_id, user_id, kind, created_at_us) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&a.id)
                .bind(u)
                .bind(*kind)
                .bind(a.created_at_us)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }.await)
        .map_err(|e| db_error("insert_risk_alert", e))
    }

    /// Sets an alert's action state (`applied` or `failed` once the action ran).
    pub async fn set_risk_alert_action_state(
        &self,
        id: &str,
        state: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query("UPDATE risk_alerts SET action_state = $1 WHERE id = $2")
            .bind(state)
            .bind(id)
            .execute(p)
            .await
            .map(drop))
        .map_err(|e| db_error("set_risk_alert_action_state", e))
    }

    /// One alert.
    pub async fn get_risk_alert(&self, id: &str) -> Result<Option<RiskAlertRecord>, StoreError> {
        const SQL: &str = concat!("SELECT ", columns!(), " FROM risk_alerts WHERE id = $1");
        on_pool!(self, p => sqlx::query_as::<_, RiskAlertRecord>(SQL)
            .bind(id)
            .fetch_optional(p)
            .await)
        .map_err(|e| db_error("get_risk_alert", e))
    }

    /// The users an alert concerns.
    pub async fn risk_alert_users(&self, id: &str) -> Result<Vec<String>, StoreError> {
        on_pool!(self, p => sqlx::query_scalar::<_, String>(
                "SELECT user_id FROM risk_alert_users WHERE alert_id = $1 ORDER BY user_id",
            )
            .bind(id)
            .fetch_all(p)
            .await)
        .map_err(|e| db_error("risk_alert_users", e))
    }

    /// A page of alerts, newest first.
    pub async fn list_risk_alerts(
        &self,
        q: &RiskAlertQuery,
    ) -> Result<Vec<RiskAlertRecord>, StoreError> {
        let limit = i64::from(q.limit.clamp(1, crate::MAX_PAGE_SIZE));
        let (before_ts, before_id) = match &q.before {
            Some((ts, id)) => (Some(*ts), Some(id.clone())),
            None => (None, None),
        };
        const SQL: &str = concat!(
            "SELECT ",
            columns!(),
            " FROM risk_alerts WHERE ($1 IS NULL OR status = $1) \
             AND ($2 IS NULL OR rule = $2) \
             AND ($3 IS NULL OR id IN (SELECT alert_id FROM risk_alert_users WHERE user_id = $3)) \
             AND ($4 IS NULL OR created_at_us < $4 OR (created_at_us = $4 AND id < $5)) \
             ORDER BY created_at_us DESC, id DESC LIMIT $6"
        );
        on_pool!(self, p => sqlx::query_as::<_, RiskAlertRecord>(SQL)
            .bind(&q.status)
            .bind(&q.rule)
            .bind(&q.user_id)
            .bind(before_ts)
            .bind(&before_id)
            .bind(limit)
            .fetch_all(p)
            .await)
        .map_err(|e| db_error("list_risk_alerts", e))
    }

    /// Resolves an open alert; `false` if it is not open (or does not exist).
    pub async fn resolve_risk_alert(
        &self,
        id: &str,
        by: &str,
        note: &str,
        now_us: i64,
    ) -> Result<bool, StoreError> {
        on_pool!(self, p => sqlx::query(
                "UPDATE risk_alerts SET status = 'resolved', resolved_at_us = $1, \
                 resolved_by = $2, resolution = $3 WHERE id = $4 AND status = 'open'",
            )
            .bind(now_us)
            .bind(by)
            .bind(note)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1))
        .map_err(|e| db_error("resolve_risk_alert", e))
    }

    /// Marks an alert's applied action lifted and lifts its restrictions; `false` if
    /// its action is not in force (never applied, already lifted, or `notify`).
    pub async fn lift_risk_alert_action(
        &self,
        id: &str,
        by: &str,
        now_us: i64,
    ) -> Result<bool, StoreError> {
        on_pool!(self, p => async {
            let mut tx = p.begin().await?;
            let lifted = sqlx::query(
                "UPDATE risk_alerts SET action_state = 'lifted', action_lifted_at_us = $1, \
                 action_lifted_by = $2 WHERE id = $3 AND action_state = 'applied'",
            )
            .bind(now_us)
            .bind(by)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if lifted {
                sqlx::query(
                    "UPDATE risk_restrictions SET lifted_at_us = $1 \
                     WHERE alert_id = $2 AND lifted_at_us IS NULL",
                )
                .bind(now_us)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(lifted)
        }.await)
        .map_err(|e| db_error("lift_risk_alert_action", e))
    }

    /// The newest restriction of `kind` in force on the user: its start, Unix µs.
    pub async fn risk_restriction(
        &self,
        user_id: &str,
        kind: &str,
    ) -> Result<Option<i64>, StoreError> {
        on_pool!(self, p => sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(created_at_us) FROM risk_restrictions \
                 WHERE user_id = $1 AND kind = $2 AND lifted_at_us IS NULL",
            )
            .bind(user_id)
            .bind(kind)
            .fetch_one(p)
            .await)
        .map_err(|e| db_error("risk_restriction", e))
    }
}
