//! `/v1/wallet/addresses`: the withdrawal whitelist. Adding and removing are sensitive
//! (step-up); a new address is usable only after a cool-down.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bourse_store::{AddressRecord, StoreError};
use bourse_types::Asset;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Read, Scoped, SteppedScoped, Wallet};
use crate::error::{ApiError, FieldError, Problem};
use crate::json::ApiJson;

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
