//! Risk and market-integrity configuration and state: pre-trade limits, circuit
//! breakers, kill switches, the dead man's switch, market-maker protection and the
//! insurance fund that liquidation uses.
//!
//! Everything here is data set by commands and read by [`crate::Exchange::apply`];
//! nothing reads a clock. Durations are in the unit of [`Timestamp`] (the engine uses
//! Unix nanoseconds). The rules, when each is checked and the defaults are in
//! `docs/risk.md`.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::{AccountId, Asset, ClientId, Money, Price, Timestamp};

/// Basis points per unit: 10_000 bps = 100%.
pub const BPS: i128 = 10_000;

/// Pre-trade limits of one instrument, or an override of them for an account or an
/// (account, OAuth client). `None` is "no limit". The limit an order meets is, field
/// by field, the smallest of the instrument's, the account's override and the
/// (account, client) override that apply: an override can only tighten.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrderLimits {
    /// A limit price more than this many basis points away from the mark is
    /// rejected (`price_band`); a market order does not trade beyond the band.
    pub price_band_bps: Option<u32>,
    /// Largest quantity of one order, lots (`max_order_quantity`).
    pub max_order_quantity: Option<u64>,
    /// Largest `quantity × price × tick value` of one order, micro-units of the
    /// settlement asset, at its limit (market: its worst reachable price)
    /// (`max_order_notional`).
    pub max_order_notional: Option<Money>,
    /// Most open (resting) orders of one account on the instrument; checked for
    /// orders that can rest (`max_open_orders`).
    pub max_open_orders: Option<u32>,
    /// Largest absolute position, lots, after the order fills, counting the
    /// account's resting orders on the same side (`position_limit`).
    pub max_position: Option<u64>,
}

fn min_opt<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl OrderLimits {
    /// Field by field, the tighter of the two.
    pub fn tightest(self, other: OrderLimits) -> OrderLimits {
        OrderLimits {
            price_band_bps: min_opt(self.price_band_bps, other.price_band_bps),
            max_order_quantity: min_opt(self.max_order_quantity, other.max_order_quantity),
            max_order_notional: min_opt(self.max_order_notional, other.max_order_notional),
            max_open_orders: min_opt(self.max_open_orders, other.max_open_orders),
            max_position: min_opt(self.max_position, other.max_position),
        }
    }

    /// True if no field is set.
    pub fn is_none(&self) -> bool {
        *self == OrderLimits::default()
    }

    /// Every set field must be positive (a zero limit would refuse everything: halt
    /// the instrument or use a kill switch instead), the band at most 100%.
    pub(crate) fn valid(&self) -> bool {
        self.price_band_bps
            .is_none_or(|b| (1..=10_000).contains(&b))
            && self.max_order_quantity.is_none_or(|q| q > 0)
            && self
                .max_order_notional
                .is_none_or(|n| (1..=crate::types::MAX_AMOUNT).contains(&n))
            && self.max_open_orders.is_none_or(|n| n > 0)
            && self.max_position.is_none_or(|p| p > 0)
    }
}

/// A circuit breaker: a trade more than `max_move_bps` away from the window's
/// reference price halts the instrument for `cool_off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CircuitBreaker {
    /// The largest move from the reference, basis points (`1..=10_000`).
    pub max_move_bps: u32,
    /// How long a reference price holds, in timestamp units (`> 0`).
    pub window: u64,
    /// How long a trip halts the instrument, in timestamp units; a
    /// [`crate::Command::Tick`] at or after the end resumes it.
    pub cool_off: u64,
}

impl CircuitBreaker {
    pub(crate) fn valid(&self) -> bool {
        (1..=10_000).contains(&self.max_move_bps) && self.window > 0
    }
}

/// Who set or lifted a kill switch (recorded in the event; the core does not
/// authenticate, the API does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Issuer {
    /// An operator.
    Admin,
    /// The account's owner (or an app acting for them).
    Owner,
}

impl Issuer {
    /// A stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Issuer::Admin => "admin",
            Issuer::Owner => "owner",
        }
    }
}

/// Market-maker protection limits of one account on one instrument group. Each
/// `None` is "no limit"; at least one must be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MmpConfig {
    /// The counting interval, timestamp units (`> 0`): counters restart with the
    /// first MMP fill at or after `interval` past the current interval's start.
    pub interval: u64,
    /// Most lots the account's MMP orders in the group may trade per interval.
    pub max_quantity: Option<u64>,
    /// Largest absolute net delta traded per interval, 10^-6 delta units (one lot
    /// of a perpetual or future is 1_000_000).
    pub max_delta_e6: Option<i128>,
    /// Largest absolute net vega traded per interval, 10^-6 of the pricing
    /// service's vega unit (options only).
    pub max_vega_e6: Option<i128>,
    /// How long a trigger freezes the group's MMP orders, timestamp units; 0 means
    /// until a [`crate::Command::ResetMmp`].
    pub freeze_for: u64,
}

impl MmpConfig {
    pub(crate) fn valid(&self) -> bool {
        self.interval > 0
            && (self.max_quantity.is_some()
                || self.max_delta_e6.is_some()
                || self.max_vega_e6.is_some())
            && self.max_quantity.is_none_or(|q| q > 0)
            && self
                .max_delta_e6
                .is_none_or(|d| (1..=crate::types::MAX_AMOUNT).contains(&d))
            && self
                .max_vega_e6
                .is_none_or(|v| (1..=crate::types::MAX_AMOUNT).contains(&v))
    }
}

/// Which MMP limit fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MmpTrigger {
    /// `max_quantity`.
    Quantity,
    /// `max_delta_e6`.
    Delta,
    /// `max_vega_e6`.
    Vega,
}

impl MmpTrigger {
    /// A stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            MmpTrigger::Quantity => "quantity",
            MmpTrigger::Delta => "delta",
            MmpTrigger::Vega => "vega",
        }
    }
}

/// What comes with an order besides [`crate::PlaceOrder`]; see
/// [`crate::Command::PlaceOrderWith`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrderOptions {
    /// The OAuth client the order came through, if any: its (account, client)
    /// limits apply on top of the account's.
    pub oauth_client: Option<ClientId>,
    /// A market-maker protection quote: counted by, and canceled by, MMP.
    pub mmp: bool,
}

/// Per-instrument risk state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct InstrumentRisk {
    pub(crate) limits: OrderLimits,
    pub(crate) breaker: Option<CircuitBreaker>,
    /// The current window's reference price and when it was anchored; `None`:
    /// anchor at the next order.
    pub(crate) reference: Option<(Price, Timestamp)>,
    /// The last trade price since a breaker was configured.
    pub(crate) last_trade: Option<Price>,
    /// Halted by the breaker until then (a `Tick` at or after it resumes).
    pub(crate) halted_until: Option<Timestamp>,
    /// The MMP group (e.g. the underlying asset).
    pub(crate) group: Option<Asset>,
    /// Option greeks per lot, 10^-6, from the pricing service.
    pub(crate) greeks: Option<(i64, i64)>,
}

impl InstrumentRisk {
    pub(crate) fn is_default(&self) -> bool {
        *self == InstrumentRisk::default()
    }
}

/// One account's MMP state on one group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct MmpState {
    pub(crate) config: MmpConfig,
    /// When the current interval started; `None` before the first fill.
    pub(crate) window_start: Option<Timestamp>,
    pub(crate) quantity: i128,
    pub(crate) delta_e6: i128,
    pub(crate) vega_e6: i128,
    /// Frozen: `Some(None)` until reset, `Some(Some(t))` until `t`.
    pub(crate) frozen: Option<Option<Timestamp>>,
}

impl MmpState {
    pub(crate) fn new(config: MmpConfig) -> Self {
        MmpState {
            config,
            window_start: None,
            quantity: 0,
            delta_e6: 0,
            vega_e6: 0,
            frozen: None,
        }
    }

    /// Frozen at `ts` (an expired freeze no longer counts, even before a `Tick`
    /// clears it).
    pub(crate) fn frozen_at(&self, ts: Timestamp) -> bool {
        match self.frozen {
            None => false,
            Some(None) => true,
            Some(Some(until)) => ts < until,
        }
    }
}

/// Exchange-wide risk state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct RiskState {
    /// Per-(account, instrument) overrides.
    pub(crate) account_limits: BTreeMap<(AccountId, usize), OrderLimits>,
    /// Per-(account, OAuth client, instrument) overrides.
    pub(crate) client_limits: BTreeMap<(AccountId, ClientId, usize), OrderLimits>,
    /// The exchange-wide kill switch.
    pub(crate) kill_switch: bool,
    /// Dead man's switch deadlines by account, and the same ordered by deadline.
    pub(crate) cancel_after: BTreeMap<AccountId, Timestamp>,
    pub(crate) cancel_after_due: BTreeSet<(Timestamp, AccountId)>,
    /// MMP per (account, group).
    pub(crate) mmp: BTreeMap<(AccountId, Asset), MmpState>,
    /// The insurance fund account; liquidation runs only while one is named.
    pub(crate) insurance_fund: Option<AccountId>,
}

impl RiskState {
    pub(crate) fn is_default(&self) -> bool {
        *self == RiskState::default()
    }
}

/// `reference ± reference·bps/10^4`, the allowed range, in ticks.
pub(crate) fn band(reference: Price, bps: u32) -> (i64, i64) {
    let r = i128::from(reference.0);
    let width = r * i128::from(bps) / BPS;
    let lo = (r - width).max(1);
    let hi = r + width;
    (
        i64::try_from(lo).unwrap_or(1),
        i64::try_from(hi).unwrap_or(i64::MAX),
    )
}
