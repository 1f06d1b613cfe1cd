//! What comes in: one [`Command`] per state change, time supplied by the caller.

use crate::risk::{CircuitBreaker, Issuer, MmpConfig, OrderLimits, OrderOptions};
use crate::types::{
    AccountId, Asset, ClientId, ClientOrderId, InstrumentSpec, Money, OrderId, Price, Quantity,
    SelfTradePrevention, Side, StatusChange, Symbol, TimeInForce, Timestamp, WithdrawalId,
};

/// Limit or market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OrderKind {
    /// Trades at `price` or better; what is left may rest.
    Limit {
        /// The limit, in ticks.
        price: Price,
    },
    /// Trades at any price against what rests now; never rests (IOC or FOK).
    Market,
}

/// A new order as the API submits it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PlaceOrder {
    /// Whose order.
    pub account: AccountId,
    /// On which instrument.
    pub instrument: Symbol,
    /// The caller's id, unique among the account's open orders.
    pub client_order_id: ClientOrderId,
    /// Buy or sell.
    pub side: Side,
    /// Limit (with its price) or market.
    pub kind: OrderKind,
    /// Quantity in lots.
    pub quantity: Quantity,
    /// GTC, IOC, FOK or GTT.
    pub time_in_force: TimeInForce,
    /// Maker only.
    pub post_only: bool,
    /// May only shrink the position; capped to what it can shrink.
    pub reduce_only: bool,
    /// Self-trade prevention mode.
    pub self_trade_prevention: SelfTradePrevention,
    /// The caller's time.
    pub ts: Timestamp,
}

/// One command to the exchange. Each produces past-tense [`crate::Event`]s; a
/// rejected command produces one `Rejected` event and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Command {
    /// List a new instrument (status active, no mark or index price yet).
    CreateInstrument {
        /// Its specification.
        spec: InstrumentSpec,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Halt or resume an instrument (settlement is [`Command::SettleExpiry`]).
    SetInstrumentStatus {
        /// Which.
        instrument: Symbol,
        /// Halt or resume.
        change: StatusChange,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Credit a deposit; creates the account on first use.
    Deposit {
        /// To whom.
        account: AccountId,
        /// Which asset.
        asset: Asset,
        /// How much, in micro-units, `1..=MAX_AMOUNT`.
        amount: Money,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Ask to withdraw: the amount moves from the balance to a hold at once, or the
    /// command is rejected if the account cannot spare it.
    Withdraw {
        /// The withdrawal's id.
        withdrawal: WithdrawalId,
        /// From whom.
        account: AccountId,
        /// Which asset.
        asset: Asset,
        /// How much, in micro-units.
        amount: Money,
        /// The caller's time.
        ts: Timestamp,
    },
    /// The held funds left the exchange (the withdrawal was approved and sent).
    ConfirmWithdrawal {
        /// Which.
        withdrawal: WithdrawalId,
        /// The caller's time.
        ts: Timestamp,
    },
    /// The withdrawal was refused: the held funds return to the balance.
    ReleaseWithdrawal {
        /// Which.
        withdrawal: WithdrawalId,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Place an order.
    PlaceOrder(PlaceOrder),
    /// Cancel one of the account's open orders.
    CancelOrder {
        /// Whose order (must own it).
        account: AccountId,
        /// Which.
        order_id: OrderId,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Cancel every open order of the account, on one instrument or all.
    CancelAll {
        /// Whose orders.
        account: AccountId,
        /// `Some` limits it to one instrument.
        instrument: Option<Symbol>,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Change a resting order's price and/or open quantity (never trades).
    AmendOrder {
        /// Whose order (must own it).
        account: AccountId,
        /// Which.
        order_id: OrderId,
        /// New price; `None` keeps it.
        price: Option<Price>,
        /// New open quantity; `None` keeps it.
        quantity: Option<Quantity>,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Remove every good-till-time order due at `ts`, on every instrument.
    ExpireOrders {
        /// The caller's time.
        ts: Timestamp,
    },
    /// Set an instrument's mark price (used for equity, margin and funding).
    SetMarkPrice {
        /// Which.
        instrument: Symbol,
        /// The mark, in ticks.
        price: Price,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Set an instrument's index price (used for settlement and option margin).
    SetIndexPrice {
        /// Which.
        instrument: Symbol,
        /// The index, in ticks.
        price: Price,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Apply one funding payment on a perpetual at the mark price.
    ApplyFunding {
        /// Which perpetual.
        instrument: Symbol,
        /// The rate in parts per billion; positive: longs pay shorts.
        rate_ppb: i64,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Settle a future or option in cash at its index price and expire it.
    SettleExpiry {
        /// Which.
        instrument: Symbol,
        /// The caller's time; must be at or after the instrument's expiry.
        ts: Timestamp,
    },
    /// Freeze an account: cancels its open orders; it cannot trade or withdraw.
    FreezeAccount {
        /// Whom.
        account: AccountId,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Lift a freeze.
    UnfreezeAccount {
        /// Whom.
        account: AccountId,
        /// The caller's time.
        ts: Timestamp,
    },
    // ----- risk and market integrity (docs/risk.md); new variants go last -----
    /// Set an instrument's pre-trade limits (all `None`: no limits).
    SetInstrumentLimits {
        /// Which.
        instrument: Symbol,
        /// The limits.
        limits: OrderLimits,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Set (`Some`) or remove (`None`) an account's override of an instrument's
    /// limits. It can only tighten them.
    SetAccountLimits {
        /// Whose.
        account: AccountId,
        /// Which instrument.
        instrument: Symbol,
        /// The override.
        limits: Option<OrderLimits>,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Set (`Some`) or remove (`None`) the override for orders an account sends
    /// through one OAuth client (see [`Command::PlaceOrderWith`]). It can only
    /// tighten the account's limits.
    SetClientLimits {
        /// Whose.
        account: AccountId,
        /// Through which client.
        client: ClientId,
        /// Which instrument.
        instrument: Symbol,
        /// The override.
        limits: Option<OrderLimits>,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Place an order with options: the OAuth client it came through (its limits
    /// apply) and the market-maker-protection flag. `PlaceOrder(o)` is
    /// `PlaceOrderWith { order: o, options: Default::default() }`.
    PlaceOrderWith {
        /// The order.
        order: PlaceOrder,
        /// Its options.
        options: OrderOptions,
    },
    /// Configure (`Some`) or remove (`None`) an instrument's circuit breaker.
    SetCircuitBreaker {
        /// Which.
        instrument: Symbol,
        /// The breaker.
        breaker: Option<CircuitBreaker>,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Time passes: resumes instruments whose breaker cool-off ended, lifts MMP
    /// freezes that ended, fires dead man's switches that are due (in that order).
    Tick {
        /// The caller's time.
        ts: Timestamp,
    },
    /// The exchange-wide kill switch: while active every new order and amend is
    /// rejected (cancels work); activating with `cancel_resting` also cancels every
    /// resting order.
    SetKillSwitch {
        /// On or off.
        active: bool,
        /// On activation, cancel all resting orders too.
        cancel_resting: bool,
        /// The caller's time.
        ts: Timestamp,
    },
    /// An account's kill switch: activating cancels all its open orders and blocks
    /// new orders and amends until lifted. A switch an admin set only an admin can
    /// lift.
    SetAccountKillSwitch {
        /// Whose.
        account: AccountId,
        /// On or off.
        active: bool,
        /// Who asked.
        issued_by: Issuer,
        /// The caller's time.
        ts: Timestamp,
    },
    /// The dead man's switch: cancel all the account's open orders at `ts +
    /// timeout` unless renewed (a later `CancelAfter` moves the deadline);
    /// `timeout` 0 disables it. Fired by a [`Command::Tick`] at or after the
    /// deadline. `timeout` is in timestamp units.
    CancelAfter {
        /// Whose orders.
        account: AccountId,
        /// How long from `ts`; 0 disables.
        timeout: u64,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Put an instrument in (`Some`) or out of (`None`) an MMP group, e.g. its
    /// underlying asset `BTC`.
    SetInstrumentGroup {
        /// Which.
        instrument: Symbol,
        /// The group.
        group: Option<Asset>,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Configure (`Some`) or remove (`None`) an account's market-maker protection
    /// on a group; (re)configuring resets its counters and any freeze.
    SetMmpConfig {
        /// Whose.
        account: AccountId,
        /// Which group.
        group: Asset,
        /// The limits.
        config: Option<MmpConfig>,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Lift an MMP freeze and reset the counters.
    ResetMmp {
        /// Whose.
        account: AccountId,
        /// Which group.
        group: Asset,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Set an option's greeks per lot (from the pricing service; the core has no
    /// volatility model), 10^-6 units. Used by MMP.
    SetGreeks {
        /// Which option.
        instrument: Symbol,
        /// Delta per lot, 10^-6 (a call near the money: about 500_000).
        delta_e6: i64,
        /// Vega per lot, 10^-6 of the pricing service's unit.
        vega_e6: i64,
        /// The caller's time.
        ts: Timestamp,
    },
    /// Name (`Some`) or remove (`None`) the insurance fund account, which turns
    /// liquidation on or off (docs/risk.md, "Liquidation"). The fund is an ordinary
    /// account that already exists (a deposit creates it), never the fee account.
    SetInsuranceFund {
        /// The fund's account; `None`: no fund, no liquidation.
        account: Option<AccountId>,
        /// The caller's time.
        ts: Timestamp,
    },
}

impl Command {
    /// The caller's time the command carries.
    pub fn ts(&self) -> Timestamp {
        match self {
            Command::PlaceOrder(order) | Command::PlaceOrderWith { order, .. } => order.ts,
            Command::CreateInstrument { ts, .. }
            | Command::SetInstrumentStatus { ts, .. }
            | Command::Deposit { ts, .. }
            | Command::Withdraw { ts, .. }
            | Command::ConfirmWithdrawal { ts, .. }
            | Command::ReleaseWithdrawal { ts, .. }
            | Command::CancelOrder { ts, .. }
            | Command::CancelAll { ts, .. }
            | Command::AmendOrder { ts, .. }
            | Command::ExpireOrders { ts }
            | Command::SetMarkPrice { ts, .. }
            | Command::SetIndexPrice { ts, .. }
            | Command::ApplyFunding { ts, .. }
            | Command::SettleExpiry { ts, .. }
            | Command::FreezeAccount { ts, .. }
            | Command::UnfreezeAccount { ts, .. }
            | Command::SetInstrumentLimits { ts, .. }
            | Command::SetAccountLimits { ts, .. }
            | Command::SetClientLimits { ts, .. }
            | Command::SetCircuitBreaker { ts, .. }
            | Command::Tick { ts }
            | Command::SetKillSwitch { ts, .. }
            | Command::SetAccountKillSwitch { ts, .. }
            | Command::CancelAfter { ts, .. }
            | Command::SetInstrumentGroup { ts, .. }
            | Command::SetMmpConfig { ts, .. }
            | Command::ResetMmp { ts, .. }
            | Command::SetGreeks { ts, .. }
            | Command::SetInsuranceFund { ts, .. } => *ts,
        }
    }
}
