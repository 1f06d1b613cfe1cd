//! Newtypes the engine speaks in: integer ticks and lots, caller-supplied ids.
//!
//! Conversion from an instrument's decimal tick and lot size happens at the edge (in
//! `bourse-types`); inside the engine everything is an integer, never `f64`.

use std::fmt;

/// Identifies one order. Supplied by the caller; unique among the orders a book holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrderId(pub u64);

/// Identifies the account that owns an order; self-trade prevention compares these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AccountId(pub u64);

/// A price in integer ticks of the instrument's tick size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Price(pub i64);

/// A quantity in integer lots of the instrument's lot size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Quantity(pub u64);

/// A point in time chosen by the caller (the engine owns no clock), e.g. Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Timestamp(pub u64);

impl Price {
    /// The highest price a book accepts: 2^62 - 1 ticks, so that negating and
    /// subtracting two prices can never overflow an `i64`.
    pub const MAX: Price = Price((1 << 62) - 1);
}

impl Quantity {
    /// Zero lots.
    pub const ZERO: Quantity = Quantity(0);
    /// The largest order quantity a book accepts: 2^32 - 1 lots (about 4.3 million
    /// BTC at a lot of 0.001). The book stores quantities in 32 bits so that a
    /// resting order fits one cache line, and a level, holding fewer than 2^32
    /// orders, always has a total that fits in a `u64`.
    pub const MAX: Quantity = Quantity(u32::MAX as u64);
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which side of the book an order is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Side {
    /// A bid: wants to buy, rests on the bid side, takes asks.
    Buy,
    /// An ask: wants to sell, rests on the ask side, takes bids.
    Sell,
}

impl Side {
    /// The other side: the one this side's orders trade against.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Side::Buy => 0,
            Side::Sell => 1,
        }
    }
}

/// What an order should be: a limit order carries its worst acceptable price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OrderType {
    /// Trades at the limit price or better; what is left may rest (depending on the
    /// time in force).
    Limit(Price),
    /// Trades at any price against what rests now; never rests. Its time in force
    /// must be [`TimeInForce::Ioc`] or [`TimeInForce::Fok`].
    Market,
}

/// How long an order stays live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum TimeInForce {
    /// Good till canceled: the unfilled part rests until filled or canceled.
    Gtc,
    /// Immediate or cancel: fill what can be filled now, cancel the rest.
    Ioc,
    /// Fill or kill: fill completely now or not at all. Checked before any fill; an
    /// order that cannot fill completely is rejected and changes nothing.
    Fok,
    /// Good till time: rests like GTC until an [`crate::Command::Expire`] whose `now` is
    /// at or after this timestamp removes it. Expiry is data: the book reads no clock.
    Gtt(Timestamp),
}

/// Self-trade prevention: what happens when a taker would trade with a resting order
/// of the same account. The taker's mode decides (as on Binance and OKX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SelfTradePrevention {
    /// Cancel the rest of the taker; fills it made before are kept, the maker stays.
    /// Binance `EXPIRE_TAKER`, OKX `cancel_taker`.
    #[default]
    CancelTaker,
    /// Cancel the resting order and keep matching the taker against the next one.
    /// Binance `EXPIRE_MAKER`, OKX `cancel_maker`.
    CancelMaker,
    /// Cancel both the resting order and the rest of the taker.
    /// Binance `EXPIRE_BOTH`, OKX `cancel_both`.
    CancelBoth,
}
