//! Withdrawals (with their admin approvals) and deposits of trading accounts.
//!
//! The store keeps their rows and makes state changes atomic (compare-and-set moves,
//! approvals counted in the transaction that records them); which moves are allowed
//! and how many approvals are needed is the caller's policy.

use crate::error::db_error;
use crate::trading::{check_integer, cursor, on_pool, page_limit};
use crate::{Pool, Store, StoreError};

/// A withdrawal request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalRow {
    /// Assigned by [`Store::insert_withdrawal`] (from 1 upward).
    pub withdrawal_id: i64,
    /// Owner.
    pub account_id: i64,
    /// Asset code.
    pub asset: String,
    /// Amount, micro-units (integer text).
    pub amount_micros: String,
    /// The whitelist entry it goes to.
    pub address_id: String,
    /// That entry's address.
    pub address: String,
    /// `requested`, `pending`, `approved`, `completed` or `rejected`.
    pub state: String,
    /// Why it is in this state (e.g. why it was rejected).
    pub reason: Option<String>,
    /// Admin key ids that approved it, oldest first.
    pub approvals: Vec<String>,
    /// Requested at.
    pub created_at_us: i64,
    /// Last changed at.
    pub updated_at_us: i64,
}

/// An incoming deposit.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DepositRow {
    /// Assigned by [`Store::insert_deposit`].
    pub deposit_id: i64,
    /// Owner.
    pub account_id: i64,
    /// Asset code.
    pub asset: String,
    /// Amount, micro-units (integer text).
    pub amount_micros: String,
    /// The transfer's reference; unique per asset.
    pub tx_ref: String,
    /// `pending`, `credited` or `failed`.
    pub state: String,
    /// Seen at.
    pub created_at_us: i64,
}

/// Every state a withdrawal can be in (the table's check says the same).
const WITHDRAWAL_STATES: [&str; 5] = ["requested", "pending", "approved", "completed", "rejected"];

/// A withdrawal row joined with at most one of its approvals.
#[derive(sqlx::FromRow)]
struct Joined {
    withdrawal_id: i64,
    account_id: i64,
    asset: String,
    amount_micros: String,
    address_id: String,
    address: String,
    state: String,
    reason: Option<String>,
    created_at_us: i64,
    updated_at_us: i64,
    key_id: Option<String>,
}

/// Withdrawals from rows ordered by withdrawal, then approval: one per run of rows.
fn group(rows: Vec<Joined>) -> Vec<WithdrawalRow> {
    let mut out: Vec<WithdrawalRow> = Vec::new();
    for r in rows {
        match out.last_mut() {
            Some(w) if w.withdrawal_id == r.withdrawal_id => w.approvals.extend(r.key_id),
            _ => out.push(WithdrawalRow {
                withdrawal_id: r.withdrawal_id,
                account_id: r.account_id,
                asset: r.asset,
                amount_micros: r.amount_micros,
                address_id: r.address_id,
                address: r.address,
                state: r.state,
                reason: r.reason,
                approvals: r.key_id.into_iter().collect(),
                created_at_us: r.created_at_us,
                updated_at_us: r.updated_at_us,
            }),
        }
    }
    out
}

/// The columns of a withdrawal, from an inner `SELECT` over `withdrawals`, and the
/// approvals joined to each.
macro_rules! withdrawal_select {
    ($inner:expr) => {
        concat!(
            "SELECT w.withdrawal_id, w.account_id, w.asset, w.amount_micros, w.address_id, \
             w.address, w.state, w.reason, w.created_at_us, w.updated_at_us, a.key_id FROM (\
             SELECT withdrawal_id, account_id, asset, amount_micros, address_id, address, \
             state, reason, created_at_us, updated_at_us FROM withdrawals ",
            $inner,
            ") w LEFT JOIN withdrawal_approvals a ON a.withdrawal_id = w.withdrawal_id \
             ORDER BY w.withdrawal_id DESC, a.approved_at_us, a.key_id"
        )
    };
}

mod sql_sqlite {
    pub const INSERT_WITHDRAWAL: &str = "INSERT INTO withdrawals (account_id, asset, \
         amount_micros, address_id, address, state, reason, created_at_us, updated_at_us) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'requested', ?6, ?7, ?8) RETURNING withdrawal_id";
    pub const GET_WITHDRAWAL: &str =
        withdrawal_select!("WHERE withdrawal_id = ?1 AND account_id = ?2");
    pub const GET_WITHDRAWAL_ANY: &str = withdrawal_select!("WHERE withdrawal_id = ?1");
    pub const LIST_WITHDRAWALS: &str = withdrawal_select!(
        "WHERE account_id = ?1 AND withdrawal_id < ?2 ORDER BY withdrawal_id DESC LIMIT ?3"
    );
    pub const LIST_WITHDRAWALS_ANY: &str = withdrawal_select!(
        "WHERE (?1 IS NULL OR state = ?1) AND withdrawal_id < ?2 \
         ORDER BY withdrawal_id DESC LIMIT ?3"
    );
    pub const WITHDRAWAL_STATE_LOCK: &str =
        "SELECT state FROM withdrawals WHERE withdrawal_id = ?1";
    pub const INSERT_APPROVAL: &str = "INSERT INTO withdrawal_approvals (withdrawal_id, key_id, \
         approved_at_us) VALUES (?1, ?2, ?3) ON CONFLICT (withdrawal_id, key_id) DO NOTHING";
    pub const TOUCH_WITHDRAWAL: &str =
        "UPDATE withdrawals SET updated_at_us = ?1 WHERE withdrawal_id = ?2";
    pub const COUNT_APPROVALS: &str =
        "SELECT COUNT(*) FROM withdrawal_approvals WHERE withdrawal_id = ?1";
    pub const MOVE_WITHDRAWAL: &str = "UPDATE withdrawals SET state = ?1, reason = ?2, \
         updated_at_us = ?3 WHERE withdrawal_id = ?4 AND state IN (?5, ?6, ?7, ?8, ?9)";

    pub const INSERT_DEPOSIT: &str = "INSERT INTO deposits (account_id, asset, amount_micros, \
         tx_ref, state, created_at_us) VALUES (?1, ?2, ?3, ?4, 'pending', ?5) \
         ON CONFLICT (asset, tx_ref) DO NOTHING RETURNING deposit_id";
    pub const SET_DEPOSIT_STATE: &str = "UPDATE deposits SET state = ?1 WHERE deposit_id = ?2";
    pub const LIST_DEPOSITS: &str = "SELECT deposit_id, account_id, asset, amount_micros, \
         tx_ref, state, created_at_us FROM deposits WHERE account_id = ?1 AND deposit_id < ?2 \
         ORDER BY deposit_id DESC LIMIT ?3";
}

mod sql_postgres {
    pub const INSERT_WITHDRAWAL: &str = "INSERT INTO withdrawals (account_id, asset, \
         amount_micros, address_id, address, state, reason, created_at_us, updated_at_us) \
         VALUES ($1, $2, $3, $4, $5, 'requested', $6, $7, $8) RETURNING withdrawal_id";
    pub const GET_WITHDRAWAL: &str =
        withdrawal_select!("WHERE withdrawal_id = $1 AND account_id = $2");
    pub const GET_WITHDRAWAL_ANY: &str = withdrawal_select!("WHERE withdrawal_id = $1");
    pub const LIST_WITHDRAWALS: &str = withdrawal_select!(
        "WHERE account_id = $1 AND withdrawal_id < $2 ORDER BY withdrawal_id DESC LIMIT $3"
    );
    pub const LIST_WITHDRAWALS_ANY: &str = withdrawal_select!(
        "WHERE ($1::text IS NULL OR state = $1) AND withdrawal_id < $2 \
         ORDER BY withdrawal_id DESC LIMIT $3"
    );
    // The row lock makes approvals of one withdrawal, and its state moves, take turns.
    pub const WITHDRAWAL_STATE_LOCK: &str =
        "SELECT state FROM withdrawals WHERE withdrawal_id = $1 FOR UPDATE";
    pub const INSERT_APPROVAL: &str = "INSERT INTO withdrawal_approvals (withdrawal_id, key_id, \
         approved_at_us) VALUES ($1, $2, $3) ON CONFLICT (withdrawal_id, key_id) DO NOTHING";
    pub const TOUCH_WITHDRAWAL: &str =
        "UPDATE withdrawals SET updated_at_us = $1 WHERE withdrawal_id = $2";
    pub const COUNT_APPROVALS: &str =
        "SELECT COUNT(*) FROM withdrawal_approvals WHERE withdrawal_id = $1";
    pub const MOVE_WITHDRAWAL: &str = "UPDATE withdrawals SET state = $1, reason = $2, \
         updated_at_us = $3 WHERE withdrawal_id = $4 AND state IN ($5, $6, $7, $8, $9)";

    pub const INSERT_DEPOSIT: &str = "INSERT INTO deposits (account_id, asset, amount_micros, \
         tx_ref, state, created_at_us) VALUES ($1, $2, $3, $4, 'pending', $5) \
         ON CONFLICT (asset, tx_ref) DO NOTHING RETURNING deposit_id";
    pub const SET_DEPOSIT_STATE: &str = "UPDATE deposits SET state = $1 WHERE deposit_id = $2";
    pub const LIST_DEPOSITS: &str = "SELECT deposit_id, account_id, asset, amount_micros, \
         tx_ref, state, created_at_us FROM deposits WHERE account_id = $1 AND deposit_id < $2 \
         ORDER BY deposit_id DESC LIMIT $3";
}

/// An approval in one transaction, written once for both backends
/// (`Result<Option<i64>, sqlx::Error>`: the number of approvals, `None` when the
/// withdrawal is not pending).
macro_rules! approve {
    ($tx:ident, $sql:ident, $id:expr, $key:expr, $now:expr) => {{
        let state: Option<String> = sqlx::query_scalar($sql::WITHDRAWAL_STATE_LOCK)
            .bind($id)
            .fetch_optional(&mut *$tx)
            .await?;
        if state.as_deref() != Some("pending") {
            return Ok(None);
        }
        let added = sqlx::query($sql::INSERT_APPROVAL)
            .bind($id)
            .bind($key)
            .bind($now)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        if added > 0 {
            sqlx::query($sql::TOUCH_WITHDRAWAL)
                .bind($now)
                .bind($id)
                .execute(&mut *$tx)
                .await?;
        }
        let count: i64 = sqlx::query_scalar($sql::COUNT_APPROVALS)
            .bind($id)
            .fetch_one(&mut *$tx)
            .await?;
        $tx.commit().await?;
        Ok(Some(count))
    }};
}

impl Store {
    /// Inserts a withdrawal in state `requested` and returns its new id;
    /// `row.withdrawal_id`, `row.state` and `row.approvals` are ignored. `Internal` if
    /// the amount is not integer text.
    pub async fn insert_withdrawal(&self, row: &WithdrawalRow) -> Result<i64, StoreError> {
        check_integer("withdrawals", "amount_micros", &row.amount_micros)?;
        on_pool!(
            self,
            "insert_withdrawal",
            query_scalar,
            INSERT_WITHDRAWAL,
            fetch_one,
            row.account_id,
            &row.asset,
            &row.amount_micros,
            &row.address_id,
            &row.address,
            &row.reason,
            row.created_at_us,
            row.updated_at_us,
        )
    }

    /// One of the account's withdrawals; `None` for another account's.
    pub async fn get_withdrawal(
        &self,
        account_id: i64,
        withdrawal_id: i64,
    ) -> Result<Option<WithdrawalRow>, StoreError> {
        let rows: Vec<Joined> = on_pool!(
            self,
            "get_withdrawal",
            query_as,
            GET_WITHDRAWAL,
            fetch_all,
            withdrawal_id,
            account_id
        )?;
        Ok(group(rows).pop())
    }

    /// Any account's withdrawal (admin use).
    pub async fn get_withdrawal_any(
        &self,
        withdrawal_id: i64,
    ) -> Result<Option<WithdrawalRow>, StoreError> {
        let rows: Vec<Joined> = on_pool!(
            self,
            "get_withdrawal_any",
            query_as,
            GET_WITHDRAWAL_ANY,
            fetch_all,
            withdrawal_id
        )?;
        Ok(group(rows).pop())
    }

    /// A page of the account's withdrawals, newest first, ids below `before`.
    pub async fn list_withdrawals(
        &self,
        account_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<WithdrawalRow>, StoreError> {
        let rows: Vec<Joined> = on_pool!(
            self,
            "list_withdrawals",
            query_as,
            LIST_WITHDRAWALS,
            fetch_all,
            account_id,
            cursor(before),
            page_limit(limit)
        )?;
        Ok(group(rows))
    }

    /// A page of all accounts' withdrawals, optionally in one state, newest first (admin).
    pub async fn list_withdrawals_any(
        &self,
        state: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<WithdrawalRow>, StoreError> {
        let rows: Vec<Joined> = on_pool!(
            self,
            "list_withdrawals_any",
            query_as,
            LIST_WITHDRAWALS_ANY,
            fetch_all,
            state,
            cursor(before),
            page_limit(limit)
        )?;
        Ok(group(rows))
    }

    /// Records an approval by `key_id` at `now_us` (idempotent for the same key) and
    /// returns the number of distinct keys that approved so far, in one transaction.
    /// Only while the state is `pending`; otherwise (or when there is no such
    /// withdrawal) `Conflict` and nothing changes.
    pub async fn approve_withdrawal(
        &self,
        withdrawal_id: i64,
        key_id: &str,
        now_us: i64,
    ) -> Result<usize, StoreError> {
        let count = match &self.pool {
            Pool::Sqlite(p) => {
                async {
                    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                    approve!(tx, sql_sqlite, withdrawal_id, key_id, now_us)
                }
                .await
            }
            Pool::Postgres(p) => {
                async {
                    let mut tx = p.begin().await?;
                    approve!(tx, sql_postgres, withdrawal_id, key_id, now_us)
                }
                .await
            }
        }
        .map_err(|e| db_error("approve_withdrawal", e))?;
        let count = count.ok_or(StoreError::Conflict)?;
        usize::try_from(count).map_err(|_| StoreError::Internal)
    }

    /// Compare-and-set: moves the withdrawal to `to` (with `reason`, at `now_us`) only
    /// if its state is one of `from`. `Ok(true)` if it moved, `Ok(false)` otherwise (no
    /// such withdrawal, or another state). `Internal` if `to` is not a state.
    pub async fn set_withdrawal_state(
        &self,
        withdrawal_id: i64,
        from: &[&str],
        to: &str,
        reason: Option<&str>,
        now_us: i64,
    ) -> Result<bool, StoreError> {
        // One slot per known state, so the statement has one shape; unknown states match
        // nothing anyway.
        let slots = WITHDRAWAL_STATES.map(|s| from.contains(&s).then_some(s));
        if slots.iter().all(Option::is_none) {
            return Ok(false);
        }
        let [s1, s2, s3, s4, s5] = slots;
        let moved = on_pool!(
            self,
            "set_withdrawal_state",
            rows_affected,
            MOVE_WITHDRAWAL,
            to,
            reason,
            now_us,
            withdrawal_id,
            s1,
            s2,
            s3,
            s4,
            s5
        )?;
        Ok(moved == 1)
    }

    /// Inserts a deposit in state `pending` and returns its new id (`row.deposit_id` and
    /// `row.state` are ignored); `Conflict` if `(asset, tx_ref)` exists, `Internal` if
    /// the amount is not integer text.
    pub async fn insert_deposit(&self, row: &DepositRow) -> Result<i64, StoreError> {
        check_integer("deposits", "amount_micros", &row.amount_micros)?;
        let id: Option<i64> = on_pool!(
            self,
            "insert_deposit",
            query_scalar,
            INSERT_DEPOSIT,
            fetch_optional,
            row.account_id,
            &row.asset,
            &row.amount_micros,
            &row.tx_ref,
            row.created_at_us
        )?;
        id.ok_or(StoreError::Conflict)
    }

    /// Sets a deposit's state (`pending`, `credited` or `failed`; anything else is
    /// `Internal`); a missing deposit changes nothing.
    pub async fn set_deposit_state(&self, deposit_id: i64, state: &str) -> Result<(), StoreError> {
        on_pool!(
            self,
            "set_deposit_state",
            rows_affected,
            SET_DEPOSIT_STATE,
            state,
            deposit_id
        )
        .map(drop)
    }

    /// A page of the account's deposits, newest first, ids below `before`.
    pub async fn list_deposits(
        &self,
        account_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DepositRow>, StoreError> {
        on_pool!(
            self,
            "list_deposits",
            query_as,
            LIST_DEPOSITS,
            fetch_all,
            account_id,
            cursor(before),
            page_limit(limit)
        )
    }
}
