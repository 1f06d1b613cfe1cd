//! Newtypes and instrument specifications the core speaks in.
//!
//! Money is an `i128` count of **micro-units** (10^-6) of an asset: 1 USDC is
//! `1_000_000`. Prices and quantities are the matching engine's integer ticks and
//! lots; an instrument's [`InstrumentSpec::tick_value`] turns one tick × one lot into
//! micro-units exactly. Rates are integers in parts per million (ppm) or, for funding,
//! parts per billion. Nothing here is ever `f64`.

use std::fmt;

pub use bourse_matching::{
    AccountId, OrderId, OrderType, Price, Quantity, SelfTradePrevention, Side, TimeInForce,
    Timestamp,
};

/// An amount of money in micro-units (10^-6) of an asset. Signed: deltas and PnL can
/// be negative.
pub type Money = i128;

/// Micro-units per whole unit of an asset.
pub const MICROS_PER_UNIT: Money = 1_000_000;

/// Parts per million: the scale of margin and fee rates.
pub const PPM: i128 = 1_000_000;

/// Parts per billion: the scale of funding rates.
pub const PPB: i128 = 1_000_000_000;

/// The highest price, index, mark or strike the core accepts, in ticks: 2^48 - 1.
/// With [`MAX_TICK_VALUE`] and [`Quantity::MAX`] one fill's value stays below 2^100
/// micro-units, so sums of many fills stay far inside `i128`.
pub const MAX_PRICE: Price = Price((1 << 48) - 1);

/// The highest [`InstrumentSpec::tick_value`]: 2^20 micro-units per tick·lot.
pub const MAX_TICK_VALUE: Money = 1 << 20;

/// The largest single balance, deposit or withdrawal: 2^100 micro-units (about
/// 1.27·10^24 units). Also the bound the pre-trade check puts on every notional it
/// computes; an order that would exceed it is rejected as an overflow.
pub const MAX_AMOUNT: Money = 1 << 100;

/// The account that collects trading fees and funding rounding dust. It can hold
/// money but cannot trade, deposit or withdraw.
pub const FEE_ACCOUNT: AccountId = AccountId(0);

/// Fixed-capacity inline ASCII text: the storage of [`Symbol`], [`Asset`] and
/// [`ClientOrderId`]. They are keys of the core's maps and ride in every event, so
/// keeping them `Copy` and off the heap removes an allocation per clone and a pointer
/// chase per comparison (see docs/benchmarks.md, replay). Ordering, equality and
/// hashing are those of the text, so maps keep the order they had as `String`s and the
/// state hash is unchanged.
#[derive(Clone, Copy)]
struct Inline<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Inline<N> {
    /// `text` must already be validated (ASCII, at most `N` bytes).
    fn new(text: &str) -> Self {
        debug_assert!(text.len() <= N && N <= u8::MAX as usize);
        let mut bytes = [0; N];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Inline {
            len: text.len() as u8,
            bytes,
        }
    }

    fn as_str(&self) -> &str {
        // Only validated ASCII is ever stored, so this cannot fail; stay total anyway.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

// Valid text never contains a NUL byte and the tail is zero-filled, so comparing the
// whole arrays orders exactly as comparing the texts: where one text is a prefix of
// the other, its padding (0) sorts before the other's next byte. The comparisons below
// work on whole arrays, eight bytes at a time, with no UTF-8 check and no call.
impl<const N: usize> PartialEq for Inline<N> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<const N: usize> Eq for Inline<N> {}

impl<const N: usize> PartialOrd for Inline<N> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for Inline<N> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let mut a = self.bytes.chunks_exact(8);
        let mut b = other.bytes.chunks_exact(8);
        for (x, y) in a.by_ref().zip(b.by_ref()) {
            let x = u64::from_be_bytes(x.try_into().unwrap_or_default());
            let y = u64::from_be_bytes(y.try_into().unwrap_or_default());
            if x != y {
                return x.cmp(&y);
            }
        }
        a.remainder().cmp(b.remainder())
    }
}

impl<const N: usize> std::hash::Hash for Inline<N> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // The text only, not the zero padding: equal values have equal texts, and a
        // short client order id hashes in a step or two instead of eight.
        self.bytes[..usize::from(self.len)].hash(state);
    }
}

/// Declares a validated inline-text newtype: `parse`, `as_str`, `Display`, `Debug`
/// (as the text), and serde as a plain string that re-validates on the way in, so a
/// corrupt snapshot or journal entry cannot create an invalid value.
macro_rules! inline_text {
    ($(#[$doc:meta])* $name:ident, $cap:literal, $what:literal, $valid:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Inline<$cap>);

        impl $name {
            #[doc = concat!("Parses a ", $what, "; `None` unless valid (see the type).")]
            pub fn parse(text: &str) -> Option<$name> {
                let valid: fn(&str) -> bool = $valid;
                ((1..=$cap).contains(&text.len()) && valid(text))
                    .then(|| $name(Inline::new(text)))
            }

            #[doc = concat!("The ", $what, "'s text.")]
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                $name::parse(&text).ok_or_else(|| format!(concat!("invalid ", $what, ": {:?}"), text))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.as_str().to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.as_str()).finish()
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a valid ", $what))
                    }

                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$name, E> {
                        $name::parse(text).ok_or_else(|| {
                            E::custom(format!(concat!("invalid ", $what, ": {:?}"), text))
                        })
                    }
                }
                d.deserialize_str(Visitor)
            }
        }
    };
}

inline_text!(
    /// An instrument's symbol, e.g. `BTC-PERP`: 1 to 32 ASCII letters, digits, `-` or `_`.
    Symbol,
    32,
    "symbol",
    |t| t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
);

inline_text!(
    /// An asset code, e.g. `USDC`: 1 to 16 ASCII uppercase letters or digits.
    Asset,
    16,
    "asset",
    |t| t.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
);

inline_text!(
    /// The caller's id for an order, unique among an account's open orders: 1 to 64
    /// bytes of printable ASCII.
    ClientOrderId,
    64,
    "client order id",
    |t| t.bytes().all(|b| b.is_ascii_graphic())
);

inline_text!(
    /// The OAuth client (partner application) an order came through, as the API
    /// names it: 1 to 64 bytes of printable ASCII. Limits can be set per (account,
    /// client); see [`crate::Command::SetClientLimits`].
    ClientId,
    64,
    "OAuth client id",
    |t| t.bytes().all(|b| b.is_ascii_graphic())
);

/// Identifies one withdrawal; chosen by the caller (the API assigns them from a
/// sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct WithdrawalId(pub u64);

/// A call or a put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OptionRight {
    /// The right to buy at the strike: pays `max(0, S - K)` at expiry.
    Call,
    /// The right to sell at the strike: pays `max(0, K - S)` at expiry.
    Put,
}

impl OptionRight {
    /// The payoff per unit at underlying price `s` for strike `k`, in ticks.
    pub fn intrinsic(self, s: i128, k: i128) -> i128 {
        match self {
            OptionRight::Call => (s - k).max(0),
            OptionRight::Put => (k - s).max(0),
        }
    }

    /// How far out of the money the option is at underlying price `s`, in ticks:
    /// `max(0, K - S)` for a call, `max(0, S - K)` for a put.
    pub fn out_of_the_money(self, s: i128, k: i128) -> i128 {
        match self {
            OptionRight::Call => (k - s).max(0),
            OptionRight::Put => (s - k).max(0),
        }
    }
}

/// What kind of contract an instrument is. All are linear and cash-settled in the
/// exchange's settlement asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum InstrumentKind {
    /// Never expires; funding moves money between longs and shorts.
    Perpetual,
    /// Settles in cash at the index price by [`crate::Command::SettleExpiry`] at or
    /// after `expiry`.
    Future {
        /// When it may be settled.
        expiry: Timestamp,
    },
    /// A European option, cash-settled at the index price at or after `expiry`.
    /// Its order, mark and index prices share the instrument's tick: order and mark
    /// prices are premiums, the index is the underlying's price.
    Option {
        /// When it may be settled.
        expiry: Timestamp,
        /// The strike, in ticks.
        strike: Price,
        /// Call or put.
        right: OptionRight,
        /// The floor of the short margin as a fraction of the underlying (Deribit:
        /// 10% = 100_000 ppm). See [`crate::margin`].
        min_margin_ppm: u32,
    },
}

impl InstrumentKind {
    /// True for perpetuals and futures, whose positions carry a cost basis that
    /// realises into cash; false for options, whose premium moves as cash at trade time.
    pub fn is_linear(self) -> bool {
        !matches!(self, InstrumentKind::Option { .. })
    }

    /// When the instrument may be settled; `None` for a perpetual.
    pub fn expiry(self) -> Option<Timestamp> {
        match self {
            InstrumentKind::Perpetual => None,
            InstrumentKind::Future { expiry } | InstrumentKind::Option { expiry, .. } => {
                Some(expiry)
            }
        }
    }
}

/// Everything needed to create an instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InstrumentSpec {
    /// Its symbol.
    pub symbol: Symbol,
    /// Perpetual, future or option.
    pub kind: InstrumentKind,
    /// The price increment, in 10^-8 units of the settlement asset per unit of the
    /// underlying (e.g. 0.5 USDC → `50_000_000`).
    pub tick_size_e8: u64,
    /// The quantity increment, in 10^-8 contracts (e.g. 0.001 → `100_000`).
    pub lot_size_e8: u64,
    /// Units of the underlying per contract.
    pub multiplier: u64,
    /// Initial margin rate in ppm of notional (options: the 15% of Deribit's formula).
    pub initial_margin_ppm: u32,
    /// Maintenance margin rate in ppm of notional (options: Deribit's 7.5%).
    pub maintenance_margin_ppm: u32,
    /// Fee charged to the resting side of a trade, in ppm of the trade's value.
    pub maker_fee_ppm: u32,
    /// Fee charged to the arriving side of a trade, in ppm of the trade's value.
    pub taker_fee_ppm: u32,
}

impl InstrumentSpec {
    /// The value of one tick of price times one lot in micro-units of the settlement
    /// asset: `tick_size_e8 · lot_size_e8 · multiplier / 10^10`. `None` unless that is
    /// an exact integer in `1..=MAX_TICK_VALUE`, so that every value the core computes
    /// is exact.
    pub fn tick_value(&self) -> Option<Money> {
        let raw = i128::from(self.tick_size_e8)
            .checked_mul(i128::from(self.lot_size_e8))?
            .checked_mul(i128::from(self.multiplier))?;
        let scale: i128 = 10_000_000_000;
        if raw % scale != 0 {
            return None;
        }
        let value = raw / scale;
        (1..=MAX_TICK_VALUE).contains(&value).then_some(value)
    }
}

/// Whether an instrument trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum InstrumentStatus {
    /// Orders are accepted and matched.
    Active,
    /// New orders and amends are rejected; cancels work; resting orders stay.
    Halted,
    /// Settled. Nothing trades again. Final.
    Expired,
}

/// What an operator or settlement does to an instrument's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StatusChange {
    /// Stop trading.
    Halt,
    /// Trade again after a halt.
    Resume,
    /// Settle at expiry.
    Expire,
}

impl InstrumentStatus {
    /// The transition table: status × change → new status; anything not listed is
    /// an error.
    ///
    /// | from    | Halt   | Resume | Expire  |
    /// |---------|--------|--------|---------|
    /// | Active  | Halted | —      | Expired |
    /// | Halted  | —      | Active | Expired |
    /// | Expired | —      | —      | —       |
    pub fn transition(self, change: StatusChange) -> Option<InstrumentStatus> {
        use InstrumentStatus::*;
        match (self, change) {
            (Active, StatusChange::Halt) => Some(Halted),
            (Halted, StatusChange::Resume) => Some(Active),
            (Active | Halted, StatusChange::Expire) => Some(Expired),
            _ => None,
        }
    }

    /// A stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            InstrumentStatus::Active => "active",
            InstrumentStatus::Halted => "halted",
            InstrumentStatus::Expired => "expired",
        }
    }
}
