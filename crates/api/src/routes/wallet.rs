//! `/v1/wallet`: the withdrawal whitelist, withdrawals and deposits.
//!
//! Adding and removing addresses and requesting a withdrawal are sensitive (step-up); a
//! new address is usable only after a cool-down. A requested withdrawal holds its funds
//! in the core at once and waits for admin approval (`/admin/v1/withdrawals`); deposits
//! are credited by the admin API (`/admin/v1/deposits`) and listed here.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bourse_engine::Meta;
use bourse_engine::core::{Command, RejectReason, WithdrawalId};
use bourse_store::{AddressRecord, DepositRow, StoreError, WithdrawalRow};
use bourse_types::Asset;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Read, Scoped, SteppedScoped, Wallet};
use crate::error::{ApiError, FieldError, Problem};
use crate::json::ApiJson;
use crate::query::ApiQuery;
use crate::routes::orders::{account_i64, make_cursor, page_limit, parse_cursor};
use crate::trading::{self, money_amount, money_text_str, rejection, rfc3339_us};

/// A new whitelisted address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAddress {
    /// Asset code, e.g. `USDC`.
    #[schema(example = "USDC")]
    pub asset: String,
    /// The address: 16 to 128 characters of `A-Z a-z 0-9 : _ -`.
    #[schema(
        example = "0x8ba1f109551bd432803012645ac136ddd64dba72",
        min_length = 16,
        max_length = 128
    )]
    pub address: String,
    /// A label for the user's own use (at most 64 printable characters).
    #[schema(example = "cold wallet", max_length = 64)]
    pub label: String,
}

/// A whitelisted address.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddressView {
    /// Entry id.
    pub id: String,
    /// Asset code.
    pub asset: String,
    /// The address.
    pub address: String,
    /// Label.
    pub label: String,
    /// Added at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Withdrawals to it are accepted from this time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub usable_at: OffsetDateTime,
    /// Whether the cool-down is over.
    pub usable: bool,
}

impl AddressView {
    fn new(a: AddressRecord, now: OffsetDateTime) -> Self {
        Self {
            usable: a.usable_at <= now,
            id: a.id,
            asset: a.asset,
            address: a.address,
            label: a.label,
            created_at: a.created_at,
            usable_at: a.usable_at,
        }
    }
}

/// The caller's whitelist.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddressList {
    /// Oldest first.
    pub data: Vec<AddressView>,
}

fn invalid(pointer: &str, code: &str, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError {
        pointer: pointer.into(),
        code: code.into(),
        message: message.into(),
    }])
}

/// List withdrawal addresses (scope `read`).
#[utoipa::path(
    get, path = "/v1/wallet/addresses", tag = "wallet", operation_id = "listAddresses",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The caller's whitelist.", body = AddressList),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
) -> Result<Json<AddressList>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let list = state.store.list_addresses(user.user_id()).await?;
    Ok(Json(AddressList {
        data: list.into_iter().map(|a| AddressView::new(a, now)).collect(),
    }))
}

/// Whitelist an address (sensitive: scope `wallet` and a fresh second factor). It can
/// receive withdrawals after the cool-down (`usable_at`).
#[utoipa::path(
    post, path = "/v1/wallet/addresses", tag = "wallet", operation_id = "addAddress",
    security(("bearer" = ["wallet"])),
    request_body(content = NewAddress, content_type = "application/json"),
    responses(
        (status = 201, description = "Added; usable from `usable_at`.", body = AddressView),
        (status = 400, description = "Invalid asset, address or label, unknown fields (`validation_failed`), or malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No fresh second factor (`insufficient_user_authentication`, RFC 9470 challenge) or an invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Two-factor not enabled (`mfa_enrollment_required`) or the token lacks `wallet` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already on the whitelist (`conflict`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn add(
    State(state): State<AppState>,
    SteppedScoped(user, _): SteppedScoped<Wallet>,
    ApiJson(body): ApiJson<NewAddress>,
) -> Result<Response, ApiError> {
    crate::audit::action(
        "wallet.address_add",
        serde_json::json!({ "asset": crate::audit::short(&body.asset), "address": crate::audit::short(body.address.trim()) }),
    );
    let asset = Asset::parse(&body.asset).map_err(|_| {
        invalid(
            "/asset",
            "invalid_asset",
            "asset codes are 2 to 10 characters A-Z or 0-9",
        )
    })?;
    let address = body.address.trim();
    if !(16..=128).contains(&address.len())
        || !address
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
    {
        return Err(invalid(
            "/address",
            "invalid_address",
            "an address is 16 to 128 characters of A-Z a-z 0-9 : _ -",
        ));
    }
    let label = body.label.trim();
    if label.chars().count() > 64 || label.chars().any(char::is_control) {
        return Err(invalid(
            "/label",
            "invalid_label",
            "at most 64 printable characters",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let record = AddressRecord {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.user_id().to_owned(),
        asset: asset.as_str().to_owned(),
        address: address.to_owned(),
        label: label.to_owned(),
        created_at: now,
        usable_at: now + state.wallet.address_cooldown,
        deleted_at: None,
    };
    match state.store.insert_address(&record).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "this address is already on the whitelist",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user_id = %user.user_id(), address_id = %record.id, "withdrawal address added");
    crate::audit::detail("address_id", record.id.clone());
    Ok((StatusCode::CREATED, Json(AddressView::new(record, now))).into_response())
}

/// Remove an address (sensitive: scope `wallet` and a fresh second factor).
#[utoipa::path(
    delete, path = "/v1/wallet/addresses/{id}", tag = "wallet", operation_id = "deleteAddress",
    security(("bearer" = ["wallet"])),
    params(("id" = String, Path, description = "Entry id.", max_length = 64)),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = "Malformed id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No fresh second factor (`insufficient_user_authentication`) or an invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Two-factor not enabled or the token lacks `wallet`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry of the caller (`not_found`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    SteppedScoped(user, _): SteppedScoped<Wallet>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    crate::audit::action(
        "wallet.address_delete",
        serde_json::json!({ "address_id": crate::audit::short(&id) }),
    );
    super::check_path_id(&id)?;
    if state
        .store
        .delete_address(user.user_id(), &id, OffsetDateTime::now_utc())
        .await?
    {
        tracing::info!(user_id = %user.user_id(), address_id = %id, "withdrawal address removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("address"))
    }
}

// ------------------------------------------------------------------ withdrawals

/// Unix microseconds (the store's trading times).
pub(crate) fn now_us() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// A numeric id (withdrawals, deposits) from the path: 1 to 18 digits.
pub(crate) fn numeric_id(text: &str) -> Result<i64, ApiError> {
    let refuse = || invalid("/path/id", "invalid_id", "ids are decimal integers");
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    text.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(refuse)
}

/// The wire's asset code as the core's.
pub(crate) fn core_asset(asset: &Asset) -> Result<bourse_engine::core::Asset, ApiError> {
    bourse_engine::core::Asset::parse(asset.as_str()).ok_or_else(|| {
        invalid(
            "/asset",
            "invalid_asset",
            "asset codes are 2 to 10 characters A-Z or 0-9",
        )
    })
}

/// A withdrawal request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWithdrawal {
    /// Asset code; must be the asset of the address.
    #[schema(example = "USDC")]
    pub asset: String,
    /// Amount, a decimal string > 0 with at most 6 decimals (never rounded).
    #[schema(example = "250.5")]
    pub amount: String,
    /// Id of one of the caller's whitelisted addresses whose cool-down is over.
    #[schema(example = "01900000-0000-7000-8000-000000000000", max_length = 64)]
    pub address_id: String,
}

/// A withdrawal.
#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawalView {
    /// Withdrawal id (a decimal string).
    #[schema(example = "17")]
    pub id: String,
    /// Asset code.
    pub asset: String,
    /// Amount (decimal string).
    #[schema(example = "250.5")]
    pub amount: String,
    /// The whitelist entry it goes to.
    pub address_id: String,
    /// The address it goes to.
    pub address: String,
    /// `requested` (being placed), `pending` (funds held, awaiting approval),
    /// `approved` (being sent), `completed` (funds left the exchange) or `rejected`
    /// (funds returned, or never held).
    #[schema(example = "pending")]
    pub state: String,
    /// Why it was rejected (a code such as `insufficient_funds`, or the operator's reason).
    pub reason: Option<String>,
    /// Requested at (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Last change (RFC 3339).
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&WithdrawalRow> for WithdrawalView {
    fn from(r: &WithdrawalRow) -> Self {
        Self {
            id: r.withdrawal_id.to_string(),
            asset: r.asset.clone(),
            amount: money_text_str(&r.amount_micros),
            address_id: r.address_id.clone(),
            address: r.address.clone(),
            state: r.state.clone(),
            reason: r.reason.clone(),
            created_at: rfc3339_us(r.created_at_us),
            updated_at: rfc3339_us(r.updated_at_us),
        }
    }
}

/// A page of withdrawals, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawalPage {
    /// The withdrawals.
    pub data: Vec<WithdrawalView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Paging of a wallet list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Opaque cursor from `next_cursor`.
    #[param(max_length = 32)]
    pub cursor: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

fn address_not_usable(detail: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "address_not_usable", detail)
}

/// Request a withdrawal to a whitelisted address (sensitive: scope `wallet` and a fresh
/// second factor). The funds are held at once; the withdrawal then waits for approval.
#[utoipa::path(
    post, path = "/v1/wallet/withdrawals", tag = "wallet", operation_id = "requestWithdrawal",
    security(("bearer" = ["wallet"])),
    request_body(content = NewWithdrawal, content_type = "application/json"),
    responses(
        (status = 201, description = "Requested and durable: the funds are held (`state` `pending`); `Location` names it.", body = WithdrawalView),
        (status = 400, description = "Invalid asset, amount (more than 6 decimals, not > 0) or address id, unknown fields (`validation_failed`), or malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No fresh second factor (`insufficient_user_authentication`, RFC 9470 challenge) or an invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Two-factor not enabled (`mfa_enrollment_required`), the token lacks `wallet` (`insufficient_scope`), the account is frozen (`account_frozen`), or a risk alert put withdrawals on hold (`withdrawals_frozen`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such whitelisted address of the caller (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The address is still in its cool-down (the detail names `usable_at`) or is for another asset (`address_not_usable`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The available balance does not cover the amount (`insufficient_funds`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The engine queue is full (`overloaded`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn request_withdrawal(
    State(state): State<AppState>,
    SteppedScoped(user, _): SteppedScoped<Wallet>,
    ApiJson(body): ApiJson<NewWithdrawal>,
) -> Result<Response, ApiError> {
    crate::audit::action(
        "wallet.withdrawal_request",
        serde_json::json!({
            "asset": crate::audit::short(&body.asset),
            "amount": crate::audit::short(&body.amount),
            "address_id": crate::audit::short(&body.address_id),
        }),
    );
    // Runs to completion even if the client hangs up: a half-done money movement
    // (a row recorded, its command not yet submitted) must not be left behind.
    crate::trading::run_to_completion(request_withdrawal_inner(state, user, body)).await
}

async fn request_withdrawal_inner(
    state: AppState,
    user: crate::auth::AuthUser,
    body: NewWithdrawal,
) -> Result<Response, ApiError> {
    // A risk alert froze this user's withdrawals until the risk desk lifts it.
    if state
        .store
        .risk_restriction(user.user_id(), "freeze_withdrawals")
        .await?
        .is_some()
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "withdrawals_frozen",
            "withdrawals from this account are on hold pending a risk review",
        ));
    }
    // Everything that needs no state first.
    let asset = Asset::parse(&body.asset).map_err(|_| {
        invalid(
            "/asset",
            "invalid_asset",
            "asset codes are 2 to 10 characters A-Z or 0-9",
        )
    })?;
    let core_asset = core_asset(&asset)?;
    let amount = money_amount(&body.amount, "/amount")?;
    if body.address_id.len() > 64
        || !body
            .address_id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-')
    {
        return Err(invalid("/address_id", "invalid_id", "ids are UUIDs"));
    }
    let now = OffsetDateTime::now_utc();
    let address = state
        .store
        .get_address(user.user_id(), &body.address_id)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    if address.asset != asset.as_str() {
        return Err(address_not_usable(format!(
            "this address is for {}, not {}",
            address.asset,
            asset.as_str()
        )));
    }
    if address.usable_at > now {
        let at = address
            .usable_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        return Err(address_not_usable(format!(
            "this address is in its cool-down and can receive withdrawals from {at}"
        )));
    }
    let account = state.trading.account(&state.store, user.user_id()).await?;
    let created = now_us();
    let id = state
        .store
        .insert_withdrawal(&WithdrawalRow {
            withdrawal_id: 0,
            account_id: account_i64(account),
            asset: asset.as_str().to_owned(),
            amount_micros: amount.to_string(),
            address_id: address.id.clone(),
            address: address.address.clone(),
            state: "requested".into(),
            reason: None,
            approvals: Vec::new(),
            created_at_us: created,
            updated_at_us: created,
        })
        .await?;
    let withdrawal = WithdrawalId(u64::try_from(id).map_err(|_| ApiError::internal())?);
    let submitted = state
        .trading
        .submit(
            Command::Withdraw {
                withdrawal,
                account,
                asset: core_asset,
                amount,
                ts: trading::timestamp(now),
            },
            Meta::default(),
        )
        .await;
    let outcome = match submitted {
        Ok(o) => o,
        Err(e) => {
            // Not applied (busy) or not durable (a failed commit stops the engine): the
            // request did not happen.
            state
                .store
                .set_withdrawal_state(id, &["requested"], "rejected", Some(e.code()), now_us())
                .await?;
            return Err(e);
        }
    };
    if let Some(reason) = outcome.rejection() {
        // An account that never received a deposit has no funds either.
        let reason = match reason {
            RejectReason::UnknownAccount => RejectReason::InsufficientFunds,
            r => r,
        };
        state
            .store
            .set_withdrawal_state(
                id,
                &["requested"],
                "rejected",
                Some(reason.code()),
                now_us(),
            )
            .await?;
        return Err(rejection(reason));
    }
    // The projector sets `pending` too (on WithdrawalHeld); whichever runs first wins.
    state
        .store
        .set_withdrawal_state(id, &["requested"], "pending", None, now_us())
        .await?;
    state.trading.caught_up(account).await?;
    let row = state
        .store
        .get_withdrawal(account_i64(account), id)
        .await?
        .ok_or_else(ApiError::internal)?;
    tracing::info!(user_id = %user.user_id(), withdrawal_id = id, "withdrawal requested");
    crate::audit::detail("withdrawal_id", id);
    let location = HeaderValue::from_str(&format!("/v1/wallet/withdrawals/{id}"))
        .map_err(|_| ApiError::internal())?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(WithdrawalView::from(&row)),
    )
        .into_response())
}

/// List the caller's withdrawals, newest first (scope `read`).
#[utoipa::path(
    get, path = "/v1/wallet/withdrawals", tag = "wallet", operation_id = "listWithdrawals",
    security(("bearer" = ["read"])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of withdrawals.", body = WithdrawalPage),
        (status = 400, description = "Invalid cursor or limit (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read models are behind (`read_model_lagging`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_withdrawals(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> Result<Json<WithdrawalPage>, ApiError> {
    let limit = page_limit(p.limit)?;
    let before = parse_cursor(p.cursor.as_deref(), "w")?;
    let account = state.trading.account(&state.store, user.user_id()).await?;
    state.trading.caught_up(account).await?;
    let rows = state
        .store
        .list_withdrawals(account_i64(account), before, limit)
        .await?;
    let next_cursor = make_cursor("w", rows.len(), limit, rows.last().map(|r| r.withdrawal_id));
    Ok(Json(WithdrawalPage {
        data: rows.iter().map(WithdrawalView::from).collect(),
        next_cursor,
    }))
}

/// Get one of the caller's withdrawals (scope `read`).
#[utoipa::path(
    get, path = "/v1/wallet/withdrawals/{id}", tag = "wallet", operation_id = "getWithdrawal",
    security(("bearer" = ["read"])),
    params(("id" = String, Path, description = "Withdrawal id.", max_length = 18)),
    responses(
        (status = 200, description = "The withdrawal.", body = WithdrawalView),
        (status = 400, description = "Malformed id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such withdrawal of the caller (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read models are behind (`read_model_lagging`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_withdrawal(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
    Path(id): Path<String>,
) -> Result<Json<WithdrawalView>, ApiError> {
    let id = numeric_id(&id)?;
    let account = state.trading.account(&state.store, user.user_id()).await?;
    state.trading.caught_up(account).await?;
    let row = state
        .store
        .get_withdrawal(account_i64(account), id)
        .await?
        .ok_or_else(|| ApiError::not_found("withdrawal"))?;
    Ok(Json(WithdrawalView::from(&row)))
}

// --------------------------------------------------------------------- deposits

/// A deposit.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepositView {
    /// Deposit id (a decimal string).
    #[schema(example = "3")]
    pub id: String,
    /// Asset code.
    pub asset: String,
    /// Amount (decimal string).
    #[schema(example = "1000")]
    pub amount: String,
    /// The transaction reference it was credited for.
    pub tx_ref: String,
    /// `pending`, `credited` or `failed`.
    #[schema(example = "credited")]
    pub state: String,
    /// Recorded at (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&DepositRow> for DepositView {
    fn from(r: &DepositRow) -> Self {
        Self {
            id: r.deposit_id.to_string(),
            asset: r.asset.clone(),
            amount: money_text_str(&r.amount_micros),
            tx_ref: r.tx_ref.clone(),
            state: r.state.clone(),
            created_at: rfc3339_us(r.created_at_us),
        }
    }
}

/// A page of deposits, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepositPage {
    /// The deposits.
    pub data: Vec<DepositView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// List the caller's deposits, newest first (scope `read`).
#[utoipa::path(
    get, path = "/v1/wallet/deposits", tag = "wallet", operation_id = "listDeposits",
    security(("bearer" = ["read"])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of deposits.", body = DepositPage),
        (status = 400, description = "Invalid cursor or limit (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `read` (`insufficient_scope`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read models are behind (`read_model_lagging`) or the engine is unavailable; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_deposits(
    State(state): State<AppState>,
    Scoped(user, _): Scoped<Read>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> Result<Json<DepositPage>, ApiError> {
    let limit = page_limit(p.limit)?;
    let before = parse_cursor(p.cursor.as_deref(), "d")?;
    let account = state.trading.account(&state.store, user.user_id()).await?;
    state.trading.caught_up(account).await?;
    let rows = state
        .store
        .list_deposits(account_i64(account), before, limit)
        .await?;
    let next_cursor = make_cursor("d", rows.len(), limit, rows.last().map(|r| r.deposit_id));
    Ok(Json(DepositPage {
        data: rows.iter().map(DepositView::from).collect(),
        next_cursor,
    }))
}
