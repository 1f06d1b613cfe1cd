//! One module per feature; each exposes its handlers to [`crate::router`].

pub mod account;
pub mod admin_alerts;
pub mod admin_identity;
pub mod admin_instruments;
pub mod admin_risk;
pub mod admin_trading;
pub mod audit;
pub mod auth;
pub mod health;
pub mod instruments;
pub mod market;
pub mod oidc;
pub mod orders;
pub mod risk;
pub mod wallet;

use crate::error::{ApiError, FieldError};

/// Refuses a path id that cannot be one of ours (ids are UUIDs) before any lookup, so
/// overlong or hostile input never reaches the store. One rule for every `{id}` route.
pub(crate) fn check_path_id(id: &str) -> Result<(), ApiError> {
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(ApiError::validation(vec![FieldError {
            pointer: "/path/id".into(),
            code: "invalid_id".into(),
            message: "ids are UUIDs".into(),
        }]));
    }
    Ok(())
}
