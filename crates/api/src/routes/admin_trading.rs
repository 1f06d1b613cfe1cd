//! Admin: credit deposits, approve or reject withdrawals, and look at the engine.
//!
//! A withdrawal above `dual_approval_above` needs two different admin keys; a key that
//! approves twice counts once. Approval confirms the held funds in the core (they leave
//! the exchange); rejection releases them back to the balance.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bourse_engine::Meta;
use bourse_engine::core::{Command, WithdrawalId};
use bourse_store::{DepositRow, StoreError, WithdrawalRow};
use bourse_types::Asset;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::admin::{AdminCaller, DepositsWrite, InstrumentsRead, WithdrawalsApprove};
use crate::error::{ApiError, Problem};
use crate::json::ApiJson;
use crate::query::ApiQuery;
use crate::routes::orders::{make_cursor, page_limit, parse_cursor};
use crate::routes::wallet::{DepositView, WithdrawalView, core_asset, now_us, numeric_id};
use crate::trading::{
    self, READ_YOUR_WRITES_TIMEOUT, engine_error, invalid, money_amount, rejection,
};

// --------------------------------------------------------------------- deposits

/// A deposit to credit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeposit {
    /// The user to credit.
    #[schema(example = "01900000-0000-7000-8000-000000000000", max_length = 64)]
    pub user_id: String,
    /// Asset code; only the settlement asset (USDC) for now.
    #[schema(example = "USDC")]
    pub asset: String,
    /// Amount, a decimal string > 0 with at most 6 decimals (never rounded).
    #[schema(example = "1000")]
    pub amount: String,
    /// The on-chain transaction reference: 1 to 128 printable ASCII characters, unique
    /// per asset (a second deposit with it is refused).
    #[schema(example = "0xabc123:0", max_length = 128)]
    pub tx_ref: String,
}

/// A credited deposit as the admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminDepositView {
    /// The deposit.
    #[serde(flatten)]
    pub deposit: DepositView,
    /// Whose.
    pub user_id: String,
}

/// Credit a deposit to a user's trading account (scope `deposits:write`).
#[utoipa::path(
    post, path = "/admin/v1/deposits", tag = "admin", operation_id = "creditDeposit",
    security(("admin_key" = ["deposits:write"])),
    request_body(content = NewDeposit, content_type = "application/json"),
    responses(
        (status = 201, description = "Credited and durable (`state` `credited`).", body = AdminDepositView),
        (status = 400, description = "Invalid user id, asset (only the settlement asset), amount or tx_ref (`validation_failed`), or malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `deposits:write` (`insufficient_scope`), or the account is frozen (`account_frozen`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A deposit with this asset and tx_ref exists (`duplicate_deposit`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused by the core, e.g. an amount above its limit (`invalid_amount`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn credit_deposit(
    State(state): State<AppState>,
    caller: AdminCaller<DepositsWrite>,
    ApiJson(body): ApiJson<NewDeposit>,
) -> Result<Response, ApiError> {
    crate::audit::action(
        "admin.deposit_credit",
        serde_json::json!({
            "user_id": crate::audit::short(&body.user_id),
            "asset": crate::audit::short(&body.asset),
            "amount": crate::audit::short(&body.amount),
            "tx_ref": crate::audit::short(&body.tx_ref),
        }),
    );
    // Runs to completion even if the client hangs up: a half-done money movement
    // (a row recorded, its command not yet submitted) must not be left behind.
    crate::trading::run_to_completion(credit_deposit_inner(state, caller, body)).await
}

async fn credit_deposit_inner(
    state: AppState,
    caller: AdminCaller<DepositsWrite>,
    body: NewDeposit,
) -> Result<Response, ApiError> {
    if body.user_id.is_empty()
        || body.user_id.len() > 64
        || !body
            .user_id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-')
    {
        return Err(invalid("/user_id", "invalid_id", "user ids are UUIDs"));
    }
    let asset = Asset::parse(&body.asset).map_err(|_| {
        invalid(
            "/asset",
            "invalid_asset",
            "asset codes are 2 to 10 characters A-Z or 0-9",
        )
    })?;
    let core_asset = core_asset(&asset)?;
    let settlement = state
        .trading
        .engine
        .read(|ex| *ex.settlement_asset())
        .map_err(engine_error)?;
    if core_asset != settlement {
        return Err(invalid(
            "/asset",
            "unsupported_asset",
            format!("only the settlement asset {settlement} can be deposited"),
        ));
    }
    let amount = money_amount(&body.amount, "/amount")?;
    let tx_ref = body.tx_ref.as_str();
    if tx_ref.is_empty() || tx_ref.len() > 128 || !tx_ref.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "/tx_ref",
            "invalid_tx_ref",
            "1 to 128 printable ASCII characters without spaces",
        ));
    }
    if state.store.get_user(&body.user_id).await?.is_none() {
        return Err(ApiError::not_found("user"));
    }
    let account = state.trading.account(&state.store, &body.user_id).await?;
    let mut row = DepositRow {
        deposit_id: 0,
        account_id: crate::routes::orders::account_i64(account),
        asset: asset.as_str().to_owned(),
        amount_micros: amount.to_string(),
        tx_ref: tx_ref.to_owned(),
        state: "pending".into(),
        created_at_us: now_us(),
    };
    let id = match state.store.insert_deposit(&row).await {
        Ok(id) => id,
        Err(StoreError::Conflict) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "duplicate_deposit",
                "a deposit with this asset and tx_ref was already recorded",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    row.deposit_id = id;
    let submitted = state
        .trading
        .submit(
            Command::Deposit {
                account,
                asset: core_asset,
                amount,
                ts: trading::now_ts(),
            },
            Meta {
                idempotency_key: None,
                reference: Some(format!("deposit:{id}")),
            },
        )
        .await;
    let outcome = match submitted {
        Ok(o) => o,
        Err(e) => {
            state.store.set_deposit_state(id, "failed").await?;
            return Err(e);
        }
    };
    if let Some(reason) = outcome.rejection() {
        state.store.set_deposit_state(id, "failed").await?;
        return Err(rejection(reason));
    }
    state.store.set_deposit_state(id, "credited").await?;
    row.state = "credited".into();
    state.trading.caught_up(account).await?;
    tracing::info!(
        admin_key = %caller.key_id,
        user_id = %body.user_id,
        deposit_id = id,
        "deposit credited"
    );
    Ok((
        StatusCode::CREATED,
        Json(AdminDepositView {
            deposit: DepositView::from(&row),
            user_id: body.user_id,
        }),
    )
        .into_response())
}

// ------------------------------------------------------------------ withdrawals

/// A withdrawal as the admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminWithdrawalView {
    /// The withdrawal.
    #[serde(flatten)]
    pub withdrawal: WithdrawalView,
    /// Whose (the user id; `null` if the account has no user).
    pub user_id: Option<String>,
    /// Ids of the admin keys that approved it so far.
    pub approvals: Vec<String>,
    /// How many different keys must approve it (2 above the dual-approval threshold).
    #[schema(example = 1)]
    pub approvals_required: u32,
}

fn approvals_required(state: &AppState, row: &WithdrawalRow) -> u32 {
    let amount = row.amount_micros.parse::<i128>().unwrap_or(i128::MAX);
    if amount > state.trading.dual_approval_above {
        2
    } else {
        1
    }
}

async fn admin_view(
    state: &AppState,
    row: &WithdrawalRow,
    users: &mut HashMap<i64, Option<String>>,
) -> Result<AdminWithdrawalView, ApiError> {
    let user_id = match users.get(&row.account_id) {
        Some(u) => u.clone(),
        None => {
            let u = state.store.trading_account_user(row.account_id).await?;
            users.insert(row.account_id, u.clone());
            u
        }
    };
    Ok(AdminWithdrawalView {
        withdrawal: WithdrawalView::from(row),
        user_id,
        approvals: row.approvals.clone(),
        approvals_required: approvals_required(state, row),
    })
}

/// Filters of `GET /admin/v1/withdrawals`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WithdrawalListParams {
    /// Only this state: `requested`, `pending`, `approved`, `completed` or `rejected`.
    #[param(max_length = 20)]
    pub state: Option<String>,
    /// Opaque cursor from `next_cursor`.
    #[param(max_length = 32)]
    pub cursor: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A page of withdrawals, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminWithdrawalPage {
    /// The withdrawals.
    pub data: Vec<AdminWithdrawalView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// List withdrawals of every user, newest first (scope `withdrawals:approve`).
#[utoipa::path(
    get, path = "/admin/v1/withdrawals", tag = "admin", operation_id = "adminListWithdrawals",
    security(("admin_key" = ["withdrawals:approve"])),
    params(WithdrawalListParams),
    responses(
        (status = 200, description = "A page of withdrawals.", body = AdminWithdrawalPage),
        (status = 400, description = "Invalid state, cursor or limit (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `withdrawals:approve` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_withdrawals(
    State(state): State<AppState>,
    _caller: AdminCaller<WithdrawalsApprove>,
    ApiQuery(p): ApiQuery<WithdrawalListParams>,
) -> Result<Json<AdminWithdrawalPage>, ApiError> {
    let filter = match p.state.as_deref() {
        None => None,
        Some(s @ ("requested" | "pending" | "approved" | "completed" | "rejected")) => Some(s),
        Some(_) => {
            return Err(invalid(
                "/query/state",
                "invalid_value",
                "requested, pending, approved, completed or rejected",
            ));
        }
    };
    let limit = page_limit(p.limit)?;
    let before = parse_cursor(p.cursor.as_deref(), "w")?;
    let rows = state
        .store
        .list_withdrawals_any(filter, before, limit)
        .await?;
    let next_cursor = make_cursor("w", rows.len(), limit, rows.last().map(|r| r.withdrawal_id));
    let mut users = HashMap::new();
    let mut data = Vec::with_capacity(rows.len());
    for r in &rows {
        data.push(admin_view(&state, r, &mut users).await?);
    }
    Ok(Json(AdminWithdrawalPage { data, next_cursor }))
}

fn invalid_state(row: &WithdrawalRow) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "invalid_state",
        format!(
            "the withdrawal is {}; only a pending withdrawal can be approved or rejected",
            row.state
        ),
    )
}

async fn withdrawal_or_404(state: &AppState, id: i64) -> Result<WithdrawalRow, ApiError> {
    state
        .store
        .get_withdrawal_any(id)
        .await?
        .ok_or_else(|| ApiError::not_found("withdrawal"))
}

fn core_withdrawal(id: i64) -> Result<WithdrawalId, ApiError> {
    u64::try_from(id)
        .map(WithdrawalId)
        .map_err(|_| ApiError::internal())
}

/// Approve a pending withdrawal (scope `withdrawals:approve`). Once enough different
/// keys approved it (two above the dual-approval threshold, else one), the held funds
/// are confirmed as sent and the withdrawal completes.
#[utoipa::path(
    post, path = "/admin/v1/withdrawals/{id}/approve", tag = "admin", operation_id = "approveWithdrawal",
    security(("admin_key" = ["withdrawals:approve"])),
    params(("id" = String, Path, description = "Withdrawal id.", max_length = 18)),
    responses(
        (status = 200, description = "Approved by enough keys and completed: the funds left the exchange.", body = AdminWithdrawalView),
        (status = 202, description = "Approval recorded; it needs another key's approval (`approvals` < `approvals_required`).", body = AdminWithdrawalView),
        (status = 400, description = "Malformed id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `withdrawals:approve` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such withdrawal (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The withdrawal is not pending (`invalid_state`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`. The approval stays recorded; retry.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn approve_withdrawal(
    State(state): State<AppState>,
    caller: AdminCaller<WithdrawalsApprove>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    crate::audit::action(
        "admin.withdrawal_approve",
        serde_json::json!({ "withdrawal_id": crate::audit::short(&id) }),
    );
    // Runs to completion even if the client hangs up: a half-done money movement
    // (a row recorded, its command not yet submitted) must not be left behind.
    crate::trading::run_to_completion(approve_withdrawal_inner(state, caller, id)).await
}

async fn approve_withdrawal_inner(
    state: AppState,
    caller: AdminCaller<WithdrawalsApprove>,
    id: String,
) -> Result<Response, ApiError> {
    let id = numeric_id(&id)?;
    let row = withdrawal_or_404(&state, id).await?;
    if row.state != "pending" {
        return Err(invalid_state(&row));
    }
    let approvals = match state
        .store
        .approve_withdrawal(id, &caller.key_id, now_us())
        .await
    {
        Ok(n) => n,
        Err(StoreError::Conflict) => {
            let row = withdrawal_or_404(&state, id).await?;
            return Err(invalid_state(&row));
        }
        Err(e) => return Err(e.into()),
    };
    let required = approvals_required(&state, &row);
    tracing::info!(
        admin_key = %caller.key_id,
        withdrawal_id = id,
        approvals,
        required,
        "withdrawal approved"
    );
    let mut users = HashMap::new();
    if (approvals as u64) < u64::from(required) {
        let row = withdrawal_or_404(&state, id).await?;
        let view = admin_view(&state, &row, &mut users).await?;
        return Ok((StatusCode::ACCEPTED, Json(view)).into_response());
    }
    if !state
        .store
        .set_withdrawal_state(id, &["pending"], "approved", None, now_us())
        .await?
    {
        // Another approver's request got there first (or it was rejected meanwhile).
        let row = withdrawal_or_404(&state, id).await?;
        return match row.state.as_str() {
            "approved" | "completed" => {
                let view = admin_view(&state, &row, &mut users).await?;
                Ok((StatusCode::OK, Json(view)).into_response())
            }
            _ => Err(invalid_state(&row)),
        };
    }
    let outcome = submit_or_revert(
        &state,
        id,
        "approved",
        Command::ConfirmWithdrawal {
            withdrawal: core_withdrawal(id)?,
            ts: trading::now_ts(),
        },
    )
    .await?;
    if let Some(seq) = outcome.seq {
        state
            .trading
            .engine
            .wait_for_seq(seq, READ_YOUR_WRITES_TIMEOUT)
            .await
            .map_err(engine_error)?;
    }
    let row = withdrawal_or_404(&state, id).await?;
    let view = admin_view(&state, &row, &mut users).await?;
    Ok((StatusCode::OK, Json(view)).into_response())
}

/// Submits the core command that carries out an admin decision already recorded as
/// `moved_to`. If the engine is unavailable or the core refuses, nothing happened to
/// the funds: the withdrawal goes back to `pending` (approvals stay recorded), so that
/// the store never says more than the core did and a retry can finish it.
async fn submit_or_revert(
    state: &AppState,
    id: i64,
    moved_to: &str,
    command: Command,
) -> Result<bourse_engine::Outcome, ApiError> {
    let revert = || async {
        state
            .store
            .set_withdrawal_state(id, &[moved_to], "pending", None, now_us())
            .await
    };
    match state.trading.submit(command, Meta::default()).await {
        Err(e) => {
            revert().await?;
            Err(e)
        }
        Ok(outcome) => match outcome.rejection() {
            Some(reason) => {
                tracing::error!(withdrawal_id = id, %reason, moved_to, "the core refused an admin withdrawal decision");
                revert().await?;
                Err(rejection(reason))
            }
            None => Ok(outcome),
        },
    }
}

/// Why a withdrawal is rejected.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectWithdrawal {
    /// Shown to the user: 1 to 200 printable characters.
    #[schema(example = "address failed screening", max_length = 200)]
    pub reason: String,
}

/// Reject a pending withdrawal (scope `withdrawals:approve`): the held funds return to
/// the user's balance.
#[utoipa::path(
    post, path = "/admin/v1/withdrawals/{id}/reject", tag = "admin", operation_id = "rejectWithdrawal",
    security(("admin_key" = ["withdrawals:approve"])),
    params(("id" = String, Path, description = "Withdrawal id.", max_length = 18)),
    request_body(content = RejectWithdrawal, content_type = "application/json"),
    responses(
        (status = 200, description = "Rejected; the funds are back in the balance.", body = AdminWithdrawalView),
        (status = 400, description = "Malformed id or reason (`validation_failed`), or malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `withdrawals:approve` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such withdrawal (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The withdrawal is not pending (`invalid_state`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reject_withdrawal(
    State(state): State<AppState>,
    caller: AdminCaller<WithdrawalsApprove>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RejectWithdrawal>,
) -> Result<Response, ApiError> {
    crate::audit::action(
        "admin.withdrawal_reject",
        serde_json::json!({ "withdrawal_id": crate::audit::short(&id), "reason": crate::audit::short(&body.reason) }),
    );
    // Runs to completion even if the client hangs up: a half-done money movement
    // (a row recorded, its command not yet submitted) must not be left behind.
    crate::trading::run_to_completion(reject_withdrawal_inner(state, caller, id, body)).await
}

async fn reject_withdrawal_inner(
    state: AppState,
    caller: AdminCaller<WithdrawalsApprove>,
    id: String,
    body: RejectWithdrawal,
) -> Result<Response, ApiError> {
    let id = numeric_id(&id)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(invalid(
            "/reason",
            "invalid_reason",
            "1 to 200 printable characters",
        ));
    }
    if !state
        .store
        .set_withdrawal_state(id, &["pending"], "rejected", Some(reason), now_us())
        .await?
    {
        let row = withdrawal_or_404(&state, id).await?;
        return Err(invalid_state(&row));
    }
    let outcome = submit_or_revert(
        &state,
        id,
        "rejected",
        Command::ReleaseWithdrawal {
            withdrawal: core_withdrawal(id)?,
            ts: trading::now_ts(),
        },
    )
    .await?;
    if let Some(seq) = outcome.seq {
        state
            .trading
            .engine
            .wait_for_seq(seq, READ_YOUR_WRITES_TIMEOUT)
            .await
            .map_err(engine_error)?;
    }
    tracing::info!(admin_key = %caller.key_id, withdrawal_id = id, "withdrawal rejected");
    let row = withdrawal_or_404(&state, id).await?;
    let view = admin_view(&state, &row, &mut HashMap::new()).await?;
    Ok((StatusCode::OK, Json(view)).into_response())
}

// ----------------------------------------------------------------------- engine

/// The engine's position and counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct EngineView {
    /// Last durable journal sequence number.
    pub durable_seq: u64,
    /// Last sequence number included in the read models.
    pub projected_seq: u64,
    /// The core's state hash at `durable_seq`, 16 hex digits (compare with
    /// `bourse engine verify`).
    #[schema(example = "00c0ffee12345678")]
    pub state_hash: String,
    /// Commands applied since start.
    pub commands: u64,
    /// Of them, journaled (not rejected).
    pub journaled: u64,
    /// Journal commits (fsyncs) since start.
    pub commits: u64,
    /// Submissions refused because the queue was full.
    pub rejected_busy: u64,
}

/// The engine's state hash and counters (scope `instruments:read`).
#[utoipa::path(
    get, path = "/admin/v1/engine", tag = "admin", operation_id = "engineStatus",
    security(("admin_key" = ["instruments:read"])),
    responses(
        (status = 200, description = "Sequence numbers, state hash and counters.", body = EngineView),
        (status = 401, description = "No, unknown, revoked or expired key.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `instruments:read` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine is unavailable (`engine_unavailable`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn engine_status(
    State(state): State<AppState>,
    _caller: AdminCaller<InstrumentsRead>,
) -> Result<Json<EngineView>, ApiError> {
    let engine = &state.trading.engine;
    let (durable_seq, hash) = engine.state_hash().map_err(engine_error)?;
    let stats = engine.stats();
    Ok(Json(EngineView {
        durable_seq,
        projected_seq: stats.projected_seq,
        state_hash: format!("{hash:016x}"),
        commands: stats.commands,
        journaled: stats.journaled,
        commits: stats.commits,
        rejected_busy: stats.rejected_busy,
    }))
}
