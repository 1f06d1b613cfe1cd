//! What happened, in the past tense: the only output of the core.

use std::fmt;

use crate::risk::{CircuitBreaker, Issuer, MmpConfig, MmpTrigger, OrderLimits};
use crate::types::{
    AccountId, Asset, ClientId, ClientOrderId, InstrumentStatus, Money, OrderId, Price, Quantity,
    Side, Symbol, Timestamp, WithdrawalId,
};

/// One thing that happened, stamped with the time of the command that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Event {
    /// The command's `ts`.
    pub ts: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

/// Which side of a trade an account was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Liquidity {
    /// The resting order.
    Maker,
    /// The arriving order.
    Taker,
}

/// Why a balance changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum BalanceReason {
    /// A deposit was credited.
    Deposit,
    /// Funds moved to a withdrawal hold.
    WithdrawalHeld,
    /// A held withdrawal was released back.
    WithdrawalReleased,
    /// Realised PnL of a linear position (perpetual or future) on a reducing trade.
    RealisedPnl,
    /// An option premium paid (buyer) or received (seller).
    OptionPremium,
    /// A trading fee paid, or collected by the fee account.
    Fee,
    /// A funding payment paid or received (the fee account receives rounding dust).
    Funding,
    /// Cash settlement at expiry.
    Settlement,
    /// The insurance fund covered a liquidated account's negative cash (the fund
    /// pays, the account receives).
    InsuranceFund,
}

/// Why an order (or its rest) was canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CancelReason {
    /// Its owner asked.
    Requested,
    /// Its owner asked to cancel all.
    CancelAll,
    /// The unfilled rest of an IOC or market order.
    Unfilled,
    /// Self-trade prevention.
    SelfTradePrevention,
    /// A reduce-only order no longer had a position to reduce.
    ReduceOnly,
    /// The account was frozen.
    AccountFrozen,
    /// The instrument was settled.
    InstrumentSettled,
    /// The exchange-wide kill switch was activated with `cancel_resting`.
    KillSwitch,
    /// The account's kill switch was activated.
    AccountKillSwitch,
    /// The account's dead man's switch fired.
    DeadManSwitch,
    /// Market-maker protection fired in the order's group.
    Mmp,
    /// The order would have traded beyond the circuit breaker's range.
    CircuitBreaker,
    /// The account was liquidated (its equity fell below maintenance margin).
    Liquidation,
}

impl CancelReason {
    /// A stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            CancelReason::Requested => "requested",
            CancelReason::CancelAll => "cancel_all",
            CancelReason::Unfilled => "unfilled",
            CancelReason::SelfTradePrevention => "self_trade_prevention",
            CancelReason::ReduceOnly => "reduce_only",
            CancelReason::AccountFrozen => "account_frozen",
            CancelReason::InstrumentSettled => "instrument_settled",
            CancelReason::KillSwitch => "kill_switch",
            CancelReason::AccountKillSwitch => "account_kill_switch",
            CancelReason::DeadManSwitch => "dead_man_switch",
            CancelReason::Mmp => "mmp",
            CancelReason::CircuitBreaker => "circuit_breaker",
            CancelReason::Liquidation => "liquidation",
        }
    }
}

/// Why a command was refused. A refused command changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RejectReason {
    /// No account with this id (it is created by its first deposit).
    UnknownAccount,
    /// The fee account cannot trade, deposit or withdraw.
    FeeAccount,
    /// The account is frozen.
    AccountFrozen,
    /// The account is not frozen (unfreeze) or already is (freeze).
    FreezeUnchanged,
    /// No instrument with this symbol.
    UnknownInstrument,
    /// An instrument with this symbol already exists.
    DuplicateInstrument,
    /// The specification is invalid: tick value not an exact integer in range,
    /// rates out of range, maintenance above initial, zero strike.
    InvalidInstrumentSpec,
    /// The instrument is halted.
    InstrumentHalted,
    /// The instrument has expired.
    InstrumentExpired,
    /// The status change is not allowed from the current status.
    InvalidStatusTransition,
    /// Not a perpetual (funding) or a perpetual (settlement).
    WrongInstrumentKind,
    /// Settlement before the instrument's expiry.
    NotYetExpired,
    /// The instrument has no mark price yet.
    NoMarkPrice,
    /// The instrument has no index price yet.
    NoIndexPrice,
    /// Zero, negative, or above the maximum.
    InvalidAmount,
    /// Outside `1..=MAX_PRICE` ticks.
    InvalidPrice,
    /// Outside `1..=Quantity::MAX` lots.
    InvalidQuantity,
    /// The funding rate is outside ±10^9 ppb (±100%).
    InvalidFundingRate,
    /// The account cannot spare the amount (available balance too low).
    InsufficientFunds,
    /// The account's available margin would not cover the initial margin.
    InsufficientMargin,
    /// A value the check computes would exceed `MAX_AMOUNT`.
    Overflow,
    /// A reduce-only order would not shrink the position (none, same side, or
    /// already covered by other reduce-only orders).
    ReduceOnlyWouldIncrease,
    /// Another open order of the account has this client order id.
    DuplicateClientOrderId,
    /// No open order with this id belongs to the account.
    UnknownOrder,
    /// A withdrawal with this id already exists.
    DuplicateWithdrawal,
    /// No pending withdrawal with this id.
    UnknownWithdrawal,
    /// The matching engine refused the order.
    Book(bourse_matching::RejectReason),
    /// The limit price is outside the price band around the mark.
    PriceBand,
    /// The quantity is above the maximum order quantity.
    MaxOrderQuantity,
    /// The notional is above the maximum order notional.
    MaxOrderNotional,
    /// The account already has the maximum number of open orders on the instrument.
    MaxOpenOrders,
    /// The position could exceed the position limit if the order and the account's
    /// resting orders on its side filled.
    PositionLimit,
    /// The exchange-wide kill switch is active: only cancels are accepted.
    KillSwitch,
    /// The account's kill switch is active.
    AccountKillSwitch,
    /// The account's kill switch was set by an admin; only an admin can lift it.
    KillSwitchAdminOnly,
    /// The kill switch is already off.
    KillSwitchUnchanged,
    /// Market-maker protection is frozen for the account's group.
    MmpFrozen,
    /// An MMP order on an instrument without a group, or without an MMP config of
    /// the account for the group; or a reset with nothing configured.
    MmpNotConfigured,
    /// The limits, breaker or MMP configuration is invalid (a zero limit, a band
    /// above 100%, a zero window or interval, no MMP limit).
    InvalidRiskConfig,
}

impl RejectReason {
    /// A stable machine-readable code, e.g. for an API error body.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::UnknownAccount => "unknown_account",
            RejectReason::FeeAccount => "fee_account",
            RejectReason::AccountFrozen => "account_frozen",
            RejectReason::FreezeUnchanged => "freeze_unchanged",
            RejectReason::UnknownInstrument => "unknown_instrument",
            RejectReason::DuplicateInstrument => "duplicate_instrument",
            RejectReason::InvalidInstrumentSpec => "invalid_instrument_spec",
            RejectReason::InstrumentHalted => "instrument_halted",
            RejectReason::InstrumentExpired => "instrument_expired",
            RejectReason::InvalidStatusTransition => "invalid_status_transition",
            RejectReason::WrongInstrumentKind => "wrong_instrument_kind",
            RejectReason::NotYetExpired => "not_yet_expired",
            RejectReason::NoMarkPrice => "no_mark_price",
            RejectReason::NoIndexPrice => "no_index_price",
            RejectReason::InvalidAmount => "invalid_amount",
            RejectReason::InvalidPrice => "invalid_price",
            RejectReason::InvalidQuantity => "invalid_quantity",
            RejectReason::InvalidFundingRate => "invalid_funding_rate",
            RejectReason::InsufficientFunds => "insufficient_funds",
            RejectReason::InsufficientMargin => "insufficient_margin",
            RejectReason::Overflow => "overflow",
            RejectReason::ReduceOnlyWouldIncrease => "reduce_only_would_increase",
            RejectReason::DuplicateClientOrderId => "duplicate_client_order_id",
            RejectReason::UnknownOrder => "unknown_order",
            RejectReason::DuplicateWithdrawal => "duplicate_withdrawal",
            RejectReason::UnknownWithdrawal => "unknown_withdrawal",
            RejectReason::Book(reason) => reason.code(),
            RejectReason::PriceBand => "price_band",
            RejectReason::MaxOrderQuantity => "max_order_quantity",
            RejectReason::MaxOrderNotional => "max_order_notional",
            RejectReason::MaxOpenOrders => "max_open_orders",
            RejectReason::PositionLimit => "position_limit",
            RejectReason::KillSwitch => "kill_switch",
            RejectReason::AccountKillSwitch => "account_kill_switch",
            RejectReason::KillSwitchAdminOnly => "kill_switch_admin_only",
            RejectReason::KillSwitchUnchanged => "kill_switch_unchanged",
            RejectReason::MmpFrozen => "mmp_frozen",
            RejectReason::MmpNotConfigured => "mmp_not_configured",
            RejectReason::InvalidRiskConfig => "invalid_risk_config",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum EventKind {
    /// The command was refused and changed nothing.
    Rejected {
        /// The account the command named, if any.
        account: Option<AccountId>,
        /// The order the command named, if any.
        order_id: Option<OrderId>,
        /// The client order id of a refused new order.
        client_order_id: Option<ClientOrderId>,
        /// Why.
        reason: RejectReason,
    },
    /// An instrument was listed.
    InstrumentCreated {
        /// Its symbol.
        instrument: Symbol,
    },
    /// An instrument's status changed (halt, resume, expiry).
    InstrumentStatusChanged {
        /// Which.
        instrument: Symbol,
        /// Its new status.
        status: InstrumentStatus,
    },
    /// A mark price was set.
    MarkPriceSet {
        /// Which instrument.
        instrument: Symbol,
        /// The new mark.
        price: Price,
    },
    /// An index price was set.
    IndexPriceSet {
        /// Which instrument.
        instrument: Symbol,
        /// The new index.
        price: Price,
    },
    /// An account was frozen.
    AccountFrozen {
        /// Whom.
        account: AccountId,
    },
    /// An account's freeze was lifted.
    AccountUnfrozen {
        /// Whom.
        account: AccountId,
    },
    /// A balance changed by `delta` micro-units.
    BalanceChanged {
        /// Whose.
        account: AccountId,
        /// Which asset.
        asset: Asset,
        /// The change.
        delta: Money,
        /// The balance after it.
        balance: Money,
        /// Why.
        reason: BalanceReason,
    },
    /// Funds were put on hold for a withdrawal.
    WithdrawalHeld {
        /// Which withdrawal.
        withdrawal: WithdrawalId,
        /// Whose.
        account: AccountId,
        /// Which asset.
        asset: Asset,
        /// How much.
        amount: Money,
    },
    /// Held funds left the exchange.
    WithdrawalConfirmed {
        /// Which withdrawal.
        withdrawal: WithdrawalId,
    },
    /// Held funds went back to the balance.
    WithdrawalReleased {
        /// Which withdrawal.
        withdrawal: WithdrawalId,
    },
    /// A new order passed every check and went to the book.
    OrderAccepted {
        /// The exchange's id for it.
        order_id: OrderId,
        /// Whose.
        account: AccountId,
        /// Which instrument.
        instrument: Symbol,
        /// The caller's id.
        client_order_id: ClientOrderId,
        /// Buy or sell.
        side: Side,
        /// Its limit; `None` for market.
        price: Option<Price>,
        /// Its quantity (after a reduce-only cap).
        quantity: Quantity,
        /// Reduce-only.
        reduce_only: bool,
    },
    /// The unfilled part of an order rests on the book.
    OrderRested {
        /// Which.
        order_id: OrderId,
        /// At which price.
        price: Price,
        /// How much rests.
        quantity: Quantity,
    },
    /// Two orders traded at the maker's price.
    OrderTraded {
        /// Which instrument.
        instrument: Symbol,
        /// The resting order.
        maker_order_id: OrderId,
        /// The arriving order.
        taker_order_id: OrderId,
        /// The resting order's account.
        maker_account: AccountId,
        /// The arriving order's account.
        taker_account: AccountId,
        /// Trade price.
        price: Price,
        /// Traded quantity.
        quantity: Quantity,
        /// The taker's side.
        aggressor: Side,
        /// What is left of the maker.
        maker_leaves: Quantity,
        /// What is left of the taker.
        taker_leaves: Quantity,
    },
    /// An order (or its rest) was canceled.
    OrderCanceled {
        /// Which.
        order_id: OrderId,
        /// Whose.
        account: AccountId,
        /// The canceled quantity.
        quantity: Quantity,
        /// Why.
        reason: CancelReason,
    },
    /// A resting order's price or quantity changed (by its owner, or by the
    /// reduce-only cap).
    OrderAmended {
        /// Which.
        order_id: OrderId,
        /// Its price now.
        price: Price,
        /// Its open quantity now.
        quantity: Quantity,
        /// Whether it kept its queue position.
        kept_priority: bool,
    },
    /// A good-till-time order expired.
    OrderExpired {
        /// Which.
        order_id: OrderId,
        /// Whose.
        account: AccountId,
        /// The open quantity it had.
        quantity: Quantity,
    },
    /// A trading fee was charged (and credited to the fee account).
    FeeCharged {
        /// Who paid.
        account: AccountId,
        /// For which order.
        order_id: OrderId,
        /// Maker or taker.
        liquidity: Liquidity,
        /// How much, in micro-units of the settlement asset.
        amount: Money,
    },
    /// A position changed.
    PositionChanged {
        /// Whose.
        account: AccountId,
        /// Which instrument.
        instrument: Symbol,
        /// Size now, in lots (positive long, negative short).
        size: i128,
        /// Cost basis now, in tick·lots (signed like `size`).
        cost: i128,
        /// Realised PnL so far, in micro-units.
        realised_pnl: Money,
    },
    /// A funding payment was applied to every position of a perpetual.
    FundingApplied {
        /// Which perpetual.
        instrument: Symbol,
        /// The rate, ppb.
        rate_ppb: i64,
        /// The mark it was applied at.
        mark: Price,
        /// What longs paid in total (negative: received).
        paid_by_longs: Money,
        /// Rounding dust credited to the fee account.
        dust: Money,
    },
    /// An instrument was settled in cash at `price`; its positions are closed.
    InstrumentSettled {
        /// Which.
        instrument: Symbol,
        /// The settlement (index) price.
        price: Price,
    },
    // ----- risk and market integrity (docs/risk.md); new variants go last -----
    /// An instrument's pre-trade limits were set.
    InstrumentLimitsSet {
        /// Which.
        instrument: Symbol,
        /// The limits.
        limits: OrderLimits,
    },
    /// An account's override of an instrument's limits was set or removed.
    AccountLimitsSet {
        /// Whose.
        account: AccountId,
        /// Which instrument.
        instrument: Symbol,
        /// The override; `None`: removed.
        limits: Option<OrderLimits>,
    },
    /// An (account, OAuth client) override was set or removed.
    ClientLimitsSet {
        /// Whose.
        account: AccountId,
        /// Which client.
        client: ClientId,
        /// Which instrument.
        instrument: Symbol,
        /// The override; `None`: removed.
        limits: Option<OrderLimits>,
    },
    /// A circuit breaker was configured or removed.
    CircuitBreakerSet {
        /// Which instrument.
        instrument: Symbol,
        /// The breaker; `None`: removed.
        breaker: Option<CircuitBreaker>,
    },
    /// The circuit breaker tripped: the instrument halts (an
    /// `InstrumentStatusChanged` follows) until `halted_until`.
    CircuitBreakerTripped {
        /// Which instrument.
        instrument: Symbol,
        /// The window's reference price.
        reference: Price,
        /// The price the next trade would have had, beyond the allowed range.
        price: Price,
        /// A `Tick` at or after this resumes the instrument.
        halted_until: Timestamp,
    },
    /// The exchange-wide kill switch was turned on or off.
    KillSwitchSet {
        /// On or off.
        active: bool,
        /// Whether resting orders were canceled.
        cancel_resting: bool,
    },
    /// An account's kill switch was turned on or off.
    AccountKillSwitchSet {
        /// Whose.
        account: AccountId,
        /// On or off.
        active: bool,
        /// Who did it.
        issued_by: Issuer,
    },
    /// A dead man's switch was armed, renewed (`Some`) or disarmed (`None`).
    CancelAfterSet {
        /// Whose.
        account: AccountId,
        /// When it fires.
        deadline: Option<Timestamp>,
    },
    /// A dead man's switch fired: the account's open orders were canceled (their
    /// `OrderCanceled` events follow) and it is disarmed.
    DeadManSwitchFired {
        /// Whose.
        account: AccountId,
        /// The deadline that passed.
        deadline: Timestamp,
    },
    /// An instrument's MMP group was set or removed.
    InstrumentGroupSet {
        /// Which.
        instrument: Symbol,
        /// The group.
        group: Option<Asset>,
    },
    /// An account's MMP configuration on a group was set or removed.
    MmpConfigSet {
        /// Whose.
        account: AccountId,
        /// Which group.
        group: Asset,
        /// The config; `None`: removed.
        config: Option<MmpConfig>,
    },
    /// Market-maker protection fired: the account's MMP orders in the group are
    /// canceled (their `OrderCanceled` events follow) and new ones are refused
    /// until `frozen_until` (`None`: until a reset).
    MmpTriggered {
        /// Whose.
        account: AccountId,
        /// Which group.
        group: Asset,
        /// Which limit.
        trigger: MmpTrigger,
        /// The end of the freeze, if it has one.
        frozen_until: Option<Timestamp>,
    },
    /// An MMP freeze was lifted (by `ResetMmp` or by a `Tick` after it ended) and the
    /// counters reset.
    MmpReset {
        /// Whose.
        account: AccountId,
        /// Which group.
        group: Asset,
    },
    /// An option's greeks were set.
    GreeksSet {
        /// Which.
        instrument: Symbol,
        /// Delta per lot, 10^-6.
        delta_e6: i64,
        /// Vega per lot, 10^-6.
        vega_e6: i64,
    },
    /// The insurance fund account was named (`Some`) or removed (`None`):
    /// liquidation is on exactly while a fund is named.
    InsuranceFundSet {
        /// The fund's account.
        account: Option<AccountId>,
    },
    /// An account's equity fell below its maintenance margin: it is being
    /// liquidated. Its orders are canceled (`OrderCanceled { reason: liquidation }`),
    /// each position is closed by an IOC order against the book (the usual order
    /// events), what the book does not absorb is taken over by the insurance fund
    /// (`PositionTakenOver`), negative cash is covered by the fund
    /// (`BalanceChanged { reason: insurance_fund }`), and `LiquidationFinished`
    /// ends it.
    LiquidationStarted {
        /// Whose.
        account: AccountId,
        /// Its equity at the marks, micro-units (rounded down).
        equity: Money,
        /// Its maintenance margin, micro-units (rounded up).
        maintenance: Money,
    },
    /// The insurance fund took over (part of) a liquidated position at the
    /// bankruptcy price; `PositionChanged` events for both accounts follow, and
    /// `BalanceChanged` events for the realised PnL (linear) or premium (options).
    PositionTakenOver {
        /// The liquidated account.
        from: AccountId,
        /// The insurance fund.
        to: AccountId,
        /// Which instrument.
        instrument: Symbol,
        /// The size taken over, lots, signed as `from`'s position was (the fund's
        /// position changes by this much).
        size: i128,
        /// The bankruptcy price, ticks.
        price: Price,
    },
    /// A liquidation ended: the account has no position left.
    LiquidationFinished {
        /// Whose.
        account: AccountId,
        /// Its equity (= cash) afterwards, micro-units: never negative.
        equity: Money,
        /// What the insurance fund paid to bring its cash up to zero.
        covered: Money,
    },
    /// After a liquidation the insurance fund's own equity is negative: the loss
    /// is not covered by anyone (socialised loss / auto-deleveraging is not
    /// implemented; operators must recapitalise the fund).
    InsuranceFundDeficit {
        /// The fund.
        account: AccountId,
        /// Its equity at the marks, micro-units (rounded down), negative.
        equity: Money,
    },
}
