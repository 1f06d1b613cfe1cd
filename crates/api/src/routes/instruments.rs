//! Reference data: instruments.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bourse_store::InstrumentQuery;
use bourse_types::{Instrument, InstrumentKind, InstrumentStatus, Symbol};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, FieldError, Problem};
use crate::query::ApiQuery;

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest page size; larger requests are capped to it.
pub const MAX_LIMIT: u32 = 1000;
const CURSOR_PREFIX: &str = "i1:";

/// Query parameters of `GET /v1/instruments`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only instruments of this kind.
    pub kind: Option<InstrumentKind>,
    /// Only instruments with this status.
    pub status: Option<InstrumentStatus>,
    /// Opaque cursor from a previous page's `next_cursor`.
    #[param(max_length = 128)]
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (larger values are capped at 1000); default 100.
    #[param(minimum = 1, example = 100)]
    pub limit: Option<u32>,
}

/// A page of instruments.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstrumentPage {
    /// Instruments ordered by symbol.
    pub data: Vec<Instrument>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A 200 with a JSON body that was encoded ahead of time (see `catalog`).
fn json_response(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn encode_cursor(s: &Symbol) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{s}"))
}

fn decode_cursor(c: &str) -> Result<Symbol, ApiError> {
    let bad = || {
        ApiError::validation(vec![FieldError {
            pointer: "/query/cursor".into(),
            code: "invalid_cursor".into(),
            message: "the cursor is not one this API issued".into(),
        }])
    };
    if c.len() > 128 {
        return Err(bad());
    }
    let raw = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let sym = text.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    Symbol::parse(sym).map_err(|_| bad())
}

/// List instruments.
///
/// Served from the node's in-memory catalog; a change made on another node shows up
/// within the catalog refresh interval (5 s).
#[utoipa::path(
    get, path = "/v1/instruments", tag = "instruments", operation_id = "listInstruments", security(()),
    params(ListParams),
    responses(
        (status = 200, description = "A page of instruments, ordered by symbol.", body = InstrumentPage),
        (status = 400, description = "A query parameter is invalid or unknown (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let limit = match p.limit {
        None => DEFAULT_LIMIT,
        Some(0) => {
            return Err(ApiError::validation(vec![FieldError {
                pointer: "/query/limit".into(),
                code: "out_of_range".into(),
                message: "limit must be at least 1".into(),
            }]));
        }
        Some(n) => n.min(MAX_LIMIT),
    };
    let after = p.cursor.as_deref().map(decode_cursor).transpose()?;
    let body = state.catalog.list_json(
        &InstrumentQuery {
            kind: p.kind,
            status: p.status,
            after,
            limit,
        },
        encode_cursor,
    );
    Ok(json_response(body))
}

/// One instrument by symbol.
#[utoipa::path(
    get, path = "/v1/instruments/{symbol}", tag = "instruments", operation_id = "getInstrument", security(()),
    params(("symbol" = String, Path, description = "Instrument symbol, e.g. `BTC-PERP`.", max_length = 40, pattern = "^[A-Z][A-Z0-9-]{0,39}$")),
    responses(
        (status = 200, description = "The instrument.", body = Instrument),
        (status = 400, description = "The symbol is malformed (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No instrument has this symbol (`not_found`).", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
) -> Result<Response, ApiError> {
    let symbol = Symbol::parse(&symbol).map_err(|e| {
        ApiError::validation(vec![FieldError {
            pointer: "/path/symbol".into(),
            code: "invalid_symbol".into(),
            message: e.to_string(),
        }])
    })?;
    state
        .catalog
        .get_json(&symbol)
        .map(|json| json_response(json.to_string()))
        .ok_or_else(|| ApiError::not_found("instrument"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_refuses_forgeries() {
        let s = Symbol::parse("BTC-PERP").unwrap();
        assert_eq!(decode_cursor(&encode_cursor(&s)).unwrap(), s);
        for bad in ["", "!!", "aTE6Li4v", &"A".repeat(200)] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
