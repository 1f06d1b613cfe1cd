use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::Symbol;

/// What kind of contract an instrument is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentKind {
    /// A perpetual swap: no expiry, funding keeps it near the index.
    Perpetual,
    /// A dated future: settles in cash at the index price on expiry.
    Future,
    /// A European option: settles in cash at expiry.
    Option,
}

impl InstrumentKind {
    /// The stable text form, as stored and as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Perpetual => "perpetual",
            Self::Future => "future",
            Self::Option => "option",
        }
    }

    /// Parses the text form made by [`InstrumentKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "perpetual" => Some(Self::Perpetual),
            "future" => Some(Self::Future),
            "option" => Some(Self::Option),
            _ => None,
        }
    }
}

/// Whether an instrument can be traded now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentStatus {
    /// Open for trading.
    Active,
    /// Trading halted (circuit breaker or admin); orders are refused.
    Halted,
    /// Past expiry and settled; kept for history.
    Expired,
}

impl InstrumentStatus {
    /// The stable text form, as stored and as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Halted => "halted",
            Self::Expired => "expired",
        }
    }

    /// Parses the text form made by [`InstrumentStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "halted" => Some(Self::Halted),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OptionRight {
    /// The right to buy at the strike.
    Call,
    /// The right to sell at the strike.
    Put,
}

impl OptionRight {
    /// The stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Put => "put",
        }
    }

    /// Parses the text form made by [`OptionRight::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "call" => Some(Self::Call),
            "put" => Some(Self::Put),
            _ => None,
        }
    }
}

/// An asset code such as `BTC` or `USDC`: 2 to 10 upper-case letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "USDC", pattern = "^[A-Z0-9]{2,10}$")]
pub struct Asset(String);

impl Asset {
    /// Parses and checks an asset code.
    pub fn parse(s: &str) -> Result<Self, InstrumentError> {
        let ok = (2..=10).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InstrumentError::InvalidAsset)
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Asset {
    type Error = InstrumentError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Asset> for String {
    fn from(a: Asset) -> Self {
        a.0
    }
}

/// Why an instrument definition is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentError {
    /// An asset code is malformed.
    #[error("asset codes are 2 to 10 characters A-Z or 0-9")]
    InvalidAsset,
    /// Tick size, lot size, multiplier or order size bounds are not positive.
    #[error("{0} must be greater than zero")]
    NotPositive(&'static str),
    /// The minimum order size is above the maximum, or not a multiple of the lot size.
    #[error("order size bounds are inconsistent with the lot size")]
    SizeBounds,
    /// A perpetual with an expiry, a future or option without one, and similar.
    #[error("{0}")]
    KindMismatch(&'static str),
}

/// A tradable contract and its reference data.
///
/// Construct with [`Instrument::validate`] after filling the fields; the store and the
/// API only hand out instruments that passed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Instrument {
    /// Unique symbol, e.g. `BTC-PERP`.
    pub symbol: Symbol,
    /// Contract kind.
    pub kind: InstrumentKind,
    /// Asset the contract is on, e.g. `BTC`.
    pub base_asset: Asset,
    /// Asset prices are quoted in, e.g. `USD`.
    pub quote_asset: Asset,
    /// Asset margin and PnL are settled in, e.g. `USDC`.
    pub settlement_asset: Asset,
    /// Smallest price increment, as a decimal string.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "0.5")]
    pub tick_size: Decimal,
    /// Smallest size increment, in contracts, as a decimal string.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "0.001")]
    pub lot_size: Decimal,
    /// Smallest order size, a multiple of `lot_size`.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "0.001")]
    pub min_order_size: Decimal,
    /// Largest order size, a multiple of `lot_size`.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "1000")]
    pub max_order_size: Decimal,
    /// Base-asset amount one contract represents.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "1")]
    pub contract_multiplier: Decimal,
    /// Expiry (futures and options), RFC 3339 UTC.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expiry: Option<OffsetDateTime>,
    /// Strike price (options only), as a decimal string.
    #[serde(with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>, example = "100000")]
    pub strike: Option<Decimal>,
    /// Call or put (options only).
    pub option_right: Option<OptionRight>,
    /// Trading status.
    pub status: InstrumentStatus,
}

impl Instrument {
    /// Checks the invariants between the fields.
    pub fn validate(self) -> Result<Self, InstrumentError> {
        for (name, v) in [
            ("tick_size", self.tick_size),
            ("lot_size", self.lot_size),
            ("min_order_size", self.min_order_size),
            ("max_order_size", self.max_order_size),
            ("contract_multiplier", self.contract_multiplier),
        ] {
            if v <= Decimal::ZERO {
                return Err(InstrumentError::NotPositive(name));
            }
        }
        if self.min_order_size > self.max_order_size
            || !(self.min_order_size % self.lot_size).is_zero()
            || !(self.max_order_size % self.lot_size).is_zero()
        {
            return Err(InstrumentError::SizeBounds);
        }
        match self.kind {
            InstrumentKind::Perpetual => {
                if self.expiry.is_some() || self.strike.is_some() || self.option_right.is_some() {
                    return Err(InstrumentError::KindMismatch(
                        "a perpetual has no expiry, strike or option right",
                    ));
                }
            }
            InstrumentKind::Future => {
                if self.expiry.is_none() || self.strike.is_some() || self.option_right.is_some() {
                    return Err(InstrumentError::KindMismatch(
                        "a future has an expiry and no strike or option right",
                    ));
                }
            }
            InstrumentKind::Option => {
                if self.expiry.is_none() || self.option_right.is_none() {
                    return Err(InstrumentError::KindMismatch(
                        "an option has an expiry, a strike and an option right",
                    ));
                }
                match self.strike {
                    Some(k) if k > Decimal::ZERO => {}
                    _ => return Err(InstrumentError::NotPositive("strike")),
                }
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn perp() -> Instrument {
        Instrument {
            symbol: Symbol::parse("BTC-PERP").unwrap(),
            kind: InstrumentKind::Perpetual,
            base_asset: Asset::parse("BTC").unwrap(),
            quote_asset: Asset::parse("USD").unwrap(),
            settlement_asset: Asset::parse("USDC").unwrap(),
            tick_size: Decimal::new(5, 1),
            lot_size: Decimal::new(1, 3),
            min_order_size: Decimal::new(1, 3),
            max_order_size: Decimal::new(1000, 0),
            contract_multiplier: Decimal::ONE,
            expiry: None,
            strike: None,
            option_right: None,
            status: InstrumentStatus::Active,
        }
    }

    #[test]
    fn valid_perpetual_round_trips_as_decimal_strings() {
        let i = perp().validate().unwrap();
        let json = serde_json::to_value(&i).unwrap();
        assert_eq!(json["tick_size"], "0.5");
        assert_eq!(json["lot_size"], "0.001");
        assert_eq!(json["expiry"], serde_json::Value::Null);
        let back: Instrument = serde_json::from_value(json).unwrap();
        assert_eq!(back, i);
    }

    #[test]
    fn kind_rules_are_enforced() {
        let mut f = perp();
        f.kind = InstrumentKind::Future;
        assert!(matches!(
            f.clone().validate(),
            Err(InstrumentError::KindMismatch(_))
        ));
        f.expiry = Some(datetime!(2026-12-25 08:00 UTC));
        assert!(f.clone().validate().is_ok());
        let mut o = f;
        o.kind = InstrumentKind::Option;
        o.option_right = Some(OptionRight::Call);
        assert_eq!(
            o.clone().validate(),
            Err(InstrumentError::NotPositive("strike"))
        );
        o.strike = Some(Decimal::new(100_000, 0));
        assert!(o.validate().is_ok());
    }

    #[test]
    fn size_bounds_must_fit_the_lot() {
        let mut i = perp();
        i.min_order_size = Decimal::new(15, 4);
        assert_eq!(i.validate(), Err(InstrumentError::SizeBounds));
        let mut i = perp();
        i.tick_size = Decimal::ZERO;
        assert_eq!(i.validate(), Err(InstrumentError::NotPositive("tick_size")));
    }
}
