//! What the trading routes share: the engine handle, the user → trading account map,
//! conversions between the wire's decimal strings and the core's integers (ticks, lots,
//! micro-units), and the mapping of core rejections to problems.
//!
//! Conversions never round: a price that is not a whole number of ticks, a quantity
//! that is not a whole number of lots, or an amount with more than six decimals is
//! refused with a field error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use bourse_engine::core::{
    AccountId, Command, InstrumentKind as CoreKind, InstrumentSpec, Money,
    OptionRight as CoreRight, Price, RejectReason, Symbol as CoreSymbol, Timestamp,
};
use bourse_engine::{Engine, EngineError, Meta, Outcome};
use bourse_store::Store;
use bourse_types::decimal::parse_decimal;
use bourse_types::{Decimal, Instrument, InstrumentKind, OptionRight};
use time::OffsetDateTime;

use crate::error::{ApiError, FieldError};

/// How long a read waits for the read models to include the caller's last write.
pub const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

/// Micro-units per unit of money.
const MICROS: i128 = 1_000_000;

/// The engine and the user → account map, shared by every handler.
#[derive(Clone, Debug)]
pub struct Trading {
    /// The engine.
    pub engine: Engine,
    accounts: Arc<Mutex<HashMap<String, AccountId>>>,
    /// Withdrawals above this many micro-units need two different admin approvals.
    pub dual_approval_above: Money,
}

impl Trading {
    /// Wraps a started engine.
    pub fn new(engine: Engine, dual_approval_above: Money) -> Self {
        Self {
            engine,
            accounts: Arc::default(),
            dual_approval_above,
        }
    }

    /// The trading account of `user_id`, created on first use and cached.
    pub async fn account(&self, store: &Store, user_id: &str) -> Result<AccountId, ApiError> {
        if let Some(a) = self.cached(user_id) {
            return Ok(a);
        }
        let id = store.trading_account_id(user_id).await?;
        let account = AccountId(u64::try_from(id).map_err(|_| ApiError::internal())?);
        self.accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(user_id.to_owned(), account);
        Ok(account)
    }

    fn cached(&self, user_id: &str) -> Option<AccountId> {
        self.accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(user_id)
            .copied()
    }

    /// Submits a command; engine failures become 503 problems.
    pub async fn submit(&self, command: Command, meta: Meta) -> Result<Outcome, ApiError> {
        self.engine
            .submit(command, meta)
            .await
            .map_err(engine_error)
    }

    /// Waits until the read models include the account's last acknowledged command.
    pub async fn caught_up(&self, account: AccountId) -> Result<(), ApiError> {
        self.engine
            .wait_for_account(account, READ_YOUR_WRITES_TIMEOUT)
            .await
            .map_err(engine_error)
    }
}

/// Runs a handler's work in its own task and waits for it. A client that hangs up
/// drops the handler's future, which would stop the work between two of its writes;
/// the task goes on to the end whatever the client does. Keeps the request id.
pub async fn run_to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    let id = crate::request_id::current();
    let audit = crate::audit::current();
    tokio::spawn(crate::request_id::propagate(
        id,
        crate::audit::propagate(audit, work),
    ))
    .await
    .map_err(|_| ApiError::internal())?
}

/// The time the API stamps on a command: Unix nanoseconds.
pub fn now_ts() -> Timestamp {
    timestamp(OffsetDateTime::now_utc())
}

/// An instant as the core's timestamp (Unix nanoseconds; 0 before 1970).
pub fn timestamp(t: OffsetDateTime) -> Timestamp {
    Timestamp(u64::try_from(t.unix_timestamp_nanos()).unwrap_or(0))
}

/// Unix microseconds (the store's times) as RFC 3339.
pub fn rfc3339_us(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A 503 with `Retry-After` for an engine that is busy, stopped or behind.
pub fn engine_error(e: EngineError) -> ApiError {
    let (code, detail, retry) = match e {
        EngineError::Busy => (
            "overloaded",
            "the matching engine queue is full; retry shortly",
            "1",
        ),
        EngineError::Lagging => (
            "read_model_lagging",
            "the account's latest changes are not readable yet; retry shortly",
            "1",
        ),
        EngineError::Unavailable | EngineError::Corrupt => (
            "engine_unavailable",
            "the matching engine is unavailable",
            "5",
        ),
    };
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
        .with_header(header::RETRY_AFTER, HeaderValue::from_static(retry))
}

/// A refused command as a problem: the core's stable code, with a status that says
/// whose move it is.
pub fn rejection(reason: RejectReason) -> ApiError {
    use RejectReason as R;
    let unknown_order = match reason {
        R::UnknownOrder => true,
        R::Book(b) => b.code() == "unknown_order",
        _ => false,
    };
    if unknown_order {
        // The same answer as for an id that never existed: another account's order is
        // not even confirmed to exist (OWASP API1).
        return ApiError::not_found("order");
    }
    if reason == R::UnknownWithdrawal {
        return ApiError::not_found("withdrawal");
    }
    let (status, detail) = match reason {
        R::UnknownOrder | R::UnknownWithdrawal => (StatusCode::NOT_FOUND, "not found"),
        R::UnknownInstrument => (StatusCode::NOT_FOUND, "no such instrument"),
        R::AccountFrozen => (StatusCode::FORBIDDEN, "the account is frozen"),
        R::InstrumentHalted => (StatusCode::CONFLICT, "trading on this instrument is halted"),
        R::InstrumentExpired => (StatusCode::CONFLICT, "the instrument has expired"),
        R::InvalidStatusTransition
        | R::FreezeUnchanged
        | R::DuplicateInstrument
        | R::DuplicateWithdrawal => (
            StatusCode::CONFLICT,
            "the change does not apply to the current state",
        ),
        R::DuplicateClientOrderId => (
            StatusCode::CONFLICT,
            "another open order of this account has this client_order_id",
        ),
        R::UnknownAccount | R::InsufficientFunds => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the account's available balance is too low",
        ),
        R::InsufficientMargin => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the account's available margin does not cover the order's initial margin",
        ),
        R::ReduceOnlyWouldIncrease => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "a reduce-only order must shrink an existing position not already covered by other reduce-only orders",
        ),
        R::NoMarkPrice => (StatusCode::CONFLICT, "the instrument has no mark price yet"),
        R::NoIndexPrice => (
            StatusCode::CONFLICT,
            "the instrument has no index price yet",
        ),
        R::NotYetExpired => (
            StatusCode::CONFLICT,
            "the instrument has not reached its expiry",
        ),
        R::WrongInstrumentKind => (
            StatusCode::CONFLICT,
            "not possible for this kind of instrument",
        ),
        R::Book(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the order book refused the order",
        ),
        R::PriceBand => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the limit price is outside the instrument's price band around the mark",
        ),
        R::MaxOrderQuantity => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the quantity is above the maximum order quantity",
        ),
        R::MaxOrderNotional => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the order's notional is above the maximum order notional",
        ),
        R::MaxOpenOrders => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the account has the maximum number of open orders on this instrument",
        ),
        R::PositionLimit => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the position could exceed the position limit if this order and the account's resting orders on its side filled",
        ),
        R::KillSwitch => (
            StatusCode::CONFLICT,
            "the exchange's kill switch is on: only cancels are accepted",
        ),
        R::AccountKillSwitch => (
            StatusCode::FORBIDDEN,
            "the account's kill switch is on: only cancels are accepted",
        ),
        R::KillSwitchAdminOnly => (
            StatusCode::FORBIDDEN,
            "an operator turned this kill switch on; only an operator can turn it off",
        ),
        R::KillSwitchUnchanged => (StatusCode::CONFLICT, "the kill switch is already off"),
        R::MmpFrozen => (
            StatusCode::CONFLICT,
            "market-maker protection is frozen for this account's group; reset it first",
        ),
        R::MmpNotConfigured => (
            StatusCode::CONFLICT,
            "no market-maker protection is configured for this instrument's group",
        ),
        R::InvalidRiskConfig => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the risk settings are invalid",
        ),
        R::FeeAccount
        | R::InvalidInstrumentSpec
        | R::InvalidAmount
        | R::InvalidPrice
        | R::InvalidQuantity
        | R::InvalidFundingRate
        | R::Overflow => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the values are outside what the exchange accepts",
        ),
    };
    // Book reasons carry their own codes (e.g. `post_only_would_take`, `fok_not_fillable`).
    let detail = match reason {
        R::Book(b) => format!("{detail}: {}", b.code()),
        _ => detail.to_owned(),
    };
    ApiError::new(status, reason.code(), detail)
}

/// One field error as a 400.
pub fn invalid(pointer: &str, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError {
        pointer: pointer.into(),
        code: code.into(),
        message: message.into(),
    }])
}

/// A strict decimal string, > 0.
pub fn positive_decimal(text: &str, pointer: &str) -> Result<Decimal, ApiError> {
    match parse_decimal(text) {
        Ok(d) if d > Decimal::ZERO => Ok(d),
        Ok(_) => Err(invalid(
            pointer,
            "out_of_range",
            "must be greater than zero",
        )),
        Err(_) => Err(invalid(
            pointer,
            "invalid_decimal",
            "must be a decimal string such as \"123.45\" (no exponent)",
        )),
    }
}

/// The integer part of a decimal (truncated toward zero).
fn integer_part(d: Decimal) -> i128 {
    let t = d.trunc();
    t.mantissa() / 10i128.pow(t.scale())
}

/// `value / step` as an exact integer in `1..=max`, or `None`.
fn whole_steps(value: Decimal, step: Decimal, max: i128) -> Option<i128> {
    if step <= Decimal::ZERO {
        return None;
    }
    let q = value.checked_div(step)?;
    if !q.fract().is_zero() {
        return None;
    }
    let n = integer_part(q);
    (1..=max).contains(&n).then_some(n)
}

/// A price in ticks of `inst`.
pub fn price_ticks(inst: &Instrument, text: &str, pointer: &str) -> Result<Price, ApiError> {
    let d = positive_decimal(text, pointer)?;
    whole_steps(
        d,
        inst.tick_size,
        i128::from(bourse_engine::core::MAX_PRICE.0),
    )
    .and_then(|n| i64::try_from(n).ok())
    .map(Price)
    .ok_or_else(|| {
        invalid(
            pointer,
            "price_not_on_tick",
            format!(
                "must be a positive multiple of the tick size {}",
                inst.tick_size
            ),
        )
    })
}

/// A quantity in lots of `inst`, within its order size bounds.
pub fn quantity_lots(inst: &Instrument, text: &str, pointer: &str) -> Result<u64, ApiError> {
    let d = positive_decimal(text, pointer)?;
    if d < inst.min_order_size || d > inst.max_order_size {
        return Err(invalid(
            pointer,
            "out_of_range",
            format!(
                "must be between {} and {}",
                inst.min_order_size, inst.max_order_size
            ),
        ));
    }
    whole_steps(d, inst.lot_size, i128::from(u32::MAX))
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| {
            invalid(
                pointer,
                "quantity_not_on_lot",
                format!("must be a multiple of the lot size {}", inst.lot_size),
            )
        })
}

/// A count of lots of `inst` for a limit (no order size bounds): a positive multiple
/// of the lot size.
pub fn lots_count(inst: &Instrument, text: &str, pointer: &str) -> Result<u64, ApiError> {
    let d = positive_decimal(text, pointer)?;
    whole_steps(d, inst.lot_size, i128::from(u64::MAX >> 1))
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| {
            invalid(
                pointer,
                "quantity_not_on_lot",
                format!(
                    "must be a positive multiple of the lot size {}",
                    inst.lot_size
                ),
            )
        })
}

/// Ticks as a decimal string.
pub fn price_text(inst: &Instrument, ticks: i64) -> String {
    (Decimal::from(ticks) * inst.tick_size)
        .normalize()
        .to_string()
}

/// Lots (possibly a signed or large count) as a decimal string.
pub fn lots_text(inst: &Instrument, lots: i128) -> String {
    match Decimal::try_from_i128_with_scale(lots, 0) {
        Ok(d) => d
            .checked_mul(inst.lot_size)
            .map(|v| v.normalize().to_string())
            .unwrap_or_else(|| "overflow".into()),
        Err(_) => "overflow".into(),
    }
}

/// Micro-units as a decimal string, exact for every `i128` (no float, no `Decimal`
/// range limit): `-1234500000` → `"-1234.5"`.
pub fn money_text(micros: Money) -> String {
    let negative = micros < 0;
    let abs = micros.unsigned_abs();
    let whole = abs / MICROS as u128;
    let frac = abs % MICROS as u128;
    let mut s = String::with_capacity(24);
    if negative {
        s.push('-');
    }
    s.push_str(&whole.to_string());
    if frac > 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

/// A store's decimal integer text of micro-units as money text.
pub fn money_text_str(micros: &str) -> String {
    micros
        .parse::<i128>()
        .map(money_text)
        .unwrap_or_else(|_| "0".into())
}

/// A positive amount of money with at most six decimals, in micro-units.
pub fn money_amount(text: &str, pointer: &str) -> Result<Money, ApiError> {
    let d = positive_decimal(text, pointer)?;
    if d.scale() > 6 && !(d * Decimal::from(1_000_000)).fract().is_zero() {
        return Err(invalid(pointer, "too_many_decimals", "at most 6 decimals"));
    }
    let micros = (d * Decimal::from(1_000_000)).trunc();
    match integer_part(micros) {
        n if (1..=bourse_engine::core::MAX_AMOUNT).contains(&n) => Ok(n),
        _ => Err(invalid(pointer, "out_of_range", "amount out of range")),
    }
}

/// Margin and fee rates of a new instrument, in ppm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Initial margin (options: the 15% of Deribit's formula).
    pub initial_margin_ppm: u32,
    /// Maintenance margin (options: 7.5%).
    pub maintenance_margin_ppm: u32,
    /// Maker fee.
    pub maker_fee_ppm: u32,
    /// Taker fee.
    pub taker_fee_ppm: u32,
}

impl Rates {
    /// The defaults: linear 10% / 5%, options 15% / 7.5% (Deribit); fees 0.02% maker,
    /// 0.05% taker.
    pub fn default_for(kind: InstrumentKind) -> Self {
        let (im, mm) = match kind {
            InstrumentKind::Option => (150_000, 75_000),
            _ => (100_000, 50_000),
        };
        Self {
            initial_margin_ppm: im,
            maintenance_margin_ppm: mm,
            maker_fee_ppm: 200,
            taker_fee_ppm: 500,
        }
    }
}

fn e8(value: Decimal) -> Option<u64> {
    let v = value.checked_mul(Decimal::from(100_000_000))?;
    if !v.fract().is_zero() {
        return None;
    }
    u64::try_from(integer_part(v)).ok()
}

/// The core's specification of a catalog instrument. Fails with a message when the
/// instrument cannot be represented exactly (tick value not a whole number of
/// micro-units of the settlement asset, sizes finer than 10^-8).
pub fn core_spec(inst: &Instrument, rates: Rates) -> Result<InstrumentSpec, &'static str> {
    let symbol =
        CoreSymbol::parse(inst.symbol.as_str()).ok_or("symbol not accepted by the core")?;
    let tick_size_e8 = e8(inst.tick_size).ok_or("tick_size must have at most 8 decimals")?;
    // A fractional multiplier folds into the lot (only the product enters the values).
    let (lot_size_e8, multiplier) = if inst.contract_multiplier.fract().is_zero() {
        let m = u64::try_from(integer_part(inst.contract_multiplier))
            .map_err(|_| "contract_multiplier out of range")?;
        (
            e8(inst.lot_size).ok_or("lot_size must have at most 8 decimals")?,
            m,
        )
    } else {
        (
            e8(inst.lot_size * inst.contract_multiplier)
                .ok_or("lot_size × contract_multiplier must have at most 8 decimals")?,
            1,
        )
    };
    let expiry = inst.expiry.map(timestamp);
    let kind = match inst.kind {
        InstrumentKind::Perpetual => CoreKind::Perpetual,
        InstrumentKind::Future => CoreKind::Future {
            expiry: expiry.ok_or("a future needs an expiry")?,
        },
        InstrumentKind::Option => {
            let strike = inst.strike.ok_or("an option needs a strike")?;
            let k = whole_steps(
                strike,
                inst.tick_size,
                i128::from(bourse_engine::core::MAX_PRICE.0),
            )
            .and_then(|n| i64::try_from(n).ok())
            .ok_or("the strike must be a multiple of the tick size")?;
            CoreKind::Option {
                expiry: expiry.ok_or("an option needs an expiry")?,
                strike: Price(k),
                right: match inst.option_right {
                    Some(OptionRight::Put) => CoreRight::Put,
                    _ => CoreRight::Call,
                },
                min_margin_ppm: 100_000,
            }
        }
    };
    let spec = InstrumentSpec {
        symbol,
        kind,
        tick_size_e8,
        lot_size_e8,
        multiplier,
        initial_margin_ppm: rates.initial_margin_ppm,
        maintenance_margin_ppm: rates.maintenance_margin_ppm,
        maker_fee_ppm: rates.maker_fee_ppm,
        taker_fee_ppm: rates.taker_fee_ppm,
    };
    spec.tick_value()
        .ok_or("tick_size × lot_size × contract_multiplier must be a whole number of micro-units (10^-6) of the settlement asset")?;
    Ok(spec)
}

/// The core's symbol for a catalog symbol.
pub fn core_symbol(symbol: &bourse_types::Symbol) -> Result<CoreSymbol, ApiError> {
    CoreSymbol::parse(symbol.as_str()).ok_or_else(|| ApiError::not_found("instrument"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_text_is_exact() {
        assert_eq!(money_text(0), "0");
        assert_eq!(money_text(1), "0.000001");
        assert_eq!(money_text(-1_234_500_000), "-1234.5");
        assert_eq!(money_text(1 << 100), "1267650600228229401496703.205376");
        assert_eq!(
            money_text(i128::MIN),
            "-170141183460469231731687303715884.105728"
        );
    }

    #[test]
    fn money_amounts_refuse_rounding() {
        assert_eq!(money_amount("1.5", "/a").unwrap(), 1_500_000);
        assert_eq!(money_amount("0.000001", "/a").unwrap(), 1);
        assert!(money_amount("0.0000001", "/a").is_err());
        assert!(money_amount("0", "/a").is_err());
        assert!(money_amount("-1", "/a").is_err());
        assert!(money_amount("1e3", "/a").is_err());
        assert_eq!(money_amount("1.500000", "/a").unwrap(), 1_500_000);
    }
}
