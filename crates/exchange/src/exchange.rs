//! The single-writer state machine: [`Exchange::apply`] takes a [`Command`] and
//! returns the [`Event`]s it caused.

use std::collections::{BTreeMap, BTreeSet};

use bourse_matching::{self as matching, NewOrder, OrderBook, OrderType};

use crate::command::{Command, OrderKind, PlaceOrder};
use crate::event::{BalanceReason, CancelReason, Event, EventKind, Liquidity, RejectReason};
use crate::hash::Fnv1a;
use crate::margin::{self, Exposure, MarginParams, MulChecked};
use crate::risk::{self, InstrumentRisk, Issuer, OrderOptions, RiskState};
use crate::risk_core::BreakerCheck;
use crate::types::{
    AccountId, Asset, ClientId, ClientOrderId, FEE_ACCOUNT, InstrumentKind, InstrumentSpec,
    InstrumentStatus, MAX_AMOUNT, MAX_PRICE, Money, OrderId, PPB, PPM, Price, Quantity, Side,
    StatusChange, Symbol, TimeInForce, Timestamp, WithdrawalId,
};

/// One listed instrument: its spec, status, prices and book.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Instrument {
    pub(crate) spec: InstrumentSpec,
    pub(crate) tick_value: Money,
    pub(crate) status: InstrumentStatus,
    pub(crate) mark: Option<Price>,
    pub(crate) index: Option<Price>,
    /// The rate of the last funding payment (perpetuals), ppb.
    pub(crate) last_funding_ppb: Option<i64>,
    pub(crate) book: OrderBook,
    /// Limits, circuit breaker, MMP group and greeks (docs/risk.md).
    pub(crate) risk: InstrumentRisk,
}

impl Instrument {
    /// The margin formulas' inputs. A missing mark or index counts as 0; no exposure
    /// can exist before both that it needs are set (orders require them).
    pub(crate) fn params(&self) -> MarginParams {
        MarginParams {
            kind: self.spec.kind,
            tick_value: self.tick_value,
            initial_margin_ppm: self.spec.initial_margin_ppm,
            maintenance_margin_ppm: self.spec.maintenance_margin_ppm,
            mark: i128::from(self.mark.map_or(0, |p| p.0)),
            index: i128::from(self.index.map_or(0, |p| p.0)),
        }
    }
}

/// An order the exchange tracks from acceptance until it leaves the book.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct OpenOrder {
    pub(crate) account: AccountId,
    pub(crate) instrument: usize,
    pub(crate) client_order_id: ClientOrderId,
    pub(crate) side: Side,
    /// The limit; `None` for market orders (which never rest).
    pub(crate) price: Option<Price>,
    /// Open quantity, lots.
    pub(crate) leaves: u64,
    /// True once on the book (counted in the exposure's resting totals).
    pub(crate) resting: bool,
    pub(crate) reduce_only: bool,
    /// A market-maker-protection quote.
    pub(crate) mmp: bool,
    /// The OAuth client it came through: an amend meets that client's limits too.
    pub(crate) oauth_client: Option<ClientId>,
}

/// The open-order index: ids are sequential integers, so the Fx hash is cheap and
/// spreads them well.
pub(crate) type OrderMap = std::collections::HashMap<OrderId, OpenOrder, rustc_hash::FxBuildHasher>;

/// The account index (see `orders`).
pub(crate) type AccountMap =
    std::collections::HashMap<AccountId, Account, rustc_hash::FxBuildHasher>;

/// One account: balances, holds, positions and resting orders per instrument.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct Account {
    pub(crate) balances: BTreeMap<Asset, Money>,
    pub(crate) held: BTreeMap<Asset, Money>,
    pub(crate) frozen: bool,
    /// Keyed by instrument index.
    pub(crate) exposures: BTreeMap<usize, Exposure>,
    /// Client order ids of open orders.
    /// (A hash map: it is touched on every accept and every order that leaves.)
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::snapshot::sorted_map")
    )]
    pub(crate) client_ids:
        std::collections::HashMap<ClientOrderId, OrderId, rustc_hash::FxBuildHasher>,
    /// Open reduce-only orders, by instrument index.
    pub(crate) reduce_only: BTreeSet<(usize, OrderId)>,
    /// The account's kill switch, and who set it.
    pub(crate) kill_switch: Option<Issuer>,
}

/// Where a withdrawal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum WithdrawalState {
    /// Funds are held.
    Pending,
    /// Funds left the exchange. Final.
    Confirmed,
    /// Funds went back to the balance. Final.
    Released,
}

/// A withdrawal and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Withdrawal {
    /// Whose.
    pub account: AccountId,
    /// Which asset.
    pub asset: Asset,
    /// How much, micro-units.
    pub amount: Money,
    /// Pending, confirmed or released.
    pub state: WithdrawalState,
}

/// The exchange core. One writer owns it; it reads no clock and does no I/O, so the
/// same commands always give the same events and the same [`Exchange::state_hash`].
///
/// See the crate documentation for the accounting model and `docs/ARCHITECTURE.md`
/// for the invariants.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Exchange {
    pub(crate) settlement: Asset,
    pub(crate) instruments: Vec<Instrument>,
    pub(crate) by_symbol: BTreeMap<Symbol, usize>,
    /// Accounts by id: a hash map for the same reason as `orders`; walks go through
    /// [`Exchange::accounts_by_id`], which sorts.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::snapshot::sorted_map")
    )]
    pub(crate) accounts: AccountMap,
    /// Open orders by id. The hottest map of the core (every accept, fill and
    /// cancel touches it), so a hash map; everything that walks it (state hash,
    /// snapshot, queries) sorts by id first, so no result depends on hash order.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::snapshot::sorted_map")
    )]
    pub(crate) orders: OrderMap,
    pub(crate) withdrawals: BTreeMap<WithdrawalId, Withdrawal>,
    pub(crate) next_order_id: u64,
    pub(crate) deposited: BTreeMap<Asset, Money>,
    pub(crate) withdrawn: BTreeMap<Asset, Money>,
    /// Exchange-wide risk state: overrides, kill switch, dead man's switches, MMP.
    pub(crate) risk: RiskState,
    /// Scratch list of MMP fills (account, instrument, side, lots) of one command;
    /// empty between commands.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) mmp_fills: Vec<(AccountId, usize, Side, u64)>,
    /// Scratch buffer for the books' events; empty between commands, so a snapshot
    /// leaves it out.
    #[cfg_attr(feature = "serde", serde(skip))]
    book_events: Vec<matching::Event>,
    /// Scratch list of the accounts a command's trades touched; empty between
    /// commands, like `book_events`.
    #[cfg_attr(feature = "serde", serde(skip))]
    touched: Vec<AccountId>,
}

type Outcome = Result<(), RejectReason>;

/// `Some(x)` if `x` is a valid amount of money: `1..=MAX_AMOUNT`.
fn valid_amount(x: Money) -> bool {
    (1..=MAX_AMOUNT).contains(&x)
}

fn valid_price(p: Price) -> bool {
    (1..=MAX_PRICE.0).contains(&p.0)
}

fn valid_quantity(q: Quantity) -> bool {
    (1..=Quantity::MAX.0).contains(&q.0)
}

fn signed(side: Side, qty: i128) -> i128 {
    match side {
        Side::Buy => qty,
        Side::Sell => -qty,
    }
}

/// Applies a trade of `qty` lots at `price` to a position and returns the realised
/// PnL in tick·lots. Increasing adds `±qty·price` to the cost basis; reducing removes
/// the closed share of the cost, `cost · closed / |size|` (truncated), and realises
/// `±closed·price − removed`; a flip closes, then opens the rest at `price`. However
/// the cost share rounds, `cash − cost·v` changes by exactly `−signed_qty·price·v`,
/// which is what makes the books balance (see the crate doc).
pub(crate) fn apply_trade(e: &mut Exposure, side: Side, qty: i128, price: i128) -> i128 {
    let d = signed(side, qty);
    if e.size == 0 || e.size.signum() == d.signum() {
        e.size += d;
        e.cost += d * price;
        return 0;
    }
    let held = e.size.abs();
    let close = qty.min(held);
    let removed = margin::div_trunc(e.cost * close, held);
    let realised = e.size.signum() * close * price - removed;
    e.cost -= removed;
    e.size += d.signum() * close;
    let open = qty - close;
    if open > 0 {
        e.size += d.signum() * open;
        e.cost += d.signum() * open * price;
    }
    realised
}

/// Adds (`sign` = 1) or removes (`sign` = -1) a resting order's open quantity to or
/// from its exposure's totals.
fn count_resting(e: &mut Exposure, side: Side, price: Price, leaves: u64, sign: i128) {
    let qty = sign * i128::from(leaves);
    let notional = qty * i128::from(price.0);
    match side {
        Side::Buy => {
            e.buy_qty += qty;
            e.buy_notional += notional;
        }
        Side::Sell => {
            e.sell_qty += qty;
            e.sell_notional += notional;
        }
    }
}

/// Adds `delta` to `acct`'s (the account `account`'s) balance of `asset` and records
/// it; nothing for a zero delta. Callers guarantee the result stays within bounds.
fn credit_account(
    acct: &mut Account,
    account: AccountId,
    asset: &Asset,
    delta: Money,
    reason: BalanceReason,
    ts: Timestamp,
    out: &mut Vec<Event>,
) {
    if delta == 0 {
        return;
    }
    let balance = acct.balances.entry(*asset).or_insert(0);
    *balance += delta;
    let balance = *balance;
    out.push(Event {
        ts,
        kind: EventKind::BalanceChanged {
            account,
            asset: *asset,
            delta,
            balance,
            reason,
        },
    });
}

/// Drops the order `order_id` (already out of `orders`) from its account's indexes
/// and, if it rested, from the account's resting totals.
fn forget_in_account(acct: &mut Account, order_id: OrderId, o: &OpenOrder) {
    if let std::collections::hash_map::Entry::Occupied(e) = acct.client_ids.entry(o.client_order_id)
        && *e.get() == order_id
    {
        e.remove();
    }
    acct.reduce_only.remove(&(o.instrument, order_id));
    if let (true, Some(price)) = (o.resting, o.price) {
        let e = acct.exposures.entry(o.instrument).or_default();
        count_resting(e, o.side, price, o.leaves, -1);
        e.open_orders -= 1;
    }
}

impl Exchange {
    /// An empty exchange whose instruments settle, and whose margin is counted, in
    /// `settlement` (e.g. USDC). The fee account exists from the start.
    pub fn new(settlement: Asset) -> Self {
        let mut accounts = AccountMap::default();
        accounts.insert(FEE_ACCOUNT, Account::default());
        Exchange {
            settlement,
            instruments: Vec::new(),
            by_symbol: BTreeMap::new(),
            accounts,
            orders: OrderMap::default(),
            withdrawals: BTreeMap::new(),
            next_order_id: 1,
            deposited: BTreeMap::new(),
            withdrawn: BTreeMap::new(),
            risk: RiskState::default(),
            mmp_fills: Vec::new(),
            book_events: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// Every account in id order: the one way to walk the accounts, so that no
    /// event, hash or answer depends on the hash map's order.
    pub(crate) fn accounts_by_id(&self) -> Vec<(AccountId, &Account)> {
        let mut all: Vec<(AccountId, &Account)> =
            self.accounts.iter().map(|(&id, a)| (id, a)).collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// The settlement (collateral) asset.
    pub fn settlement_asset(&self) -> &Asset {
        &self.settlement
    }

    /// Applies one command and returns its events.
    pub fn apply(&mut self, command: &Command) -> Vec<Event> {
        let mut out = Vec::new();
        self.apply_into(command, &mut out);
        out
    }

    /// Applies one command, appending its events to `out`. A rejected command
    /// appends exactly one [`EventKind::Rejected`] and changes nothing.
    pub fn apply_into(&mut self, command: &Command, out: &mut Vec<Event>) {
        let ts = command.ts();
        let start = out.len();
        let result = match command {
            Command::CreateInstrument { spec, .. } => self.create_instrument(spec, ts, out),
            Command::SetInstrumentStatus {
                instrument, change, ..
            } => self.set_status(instrument, *change, ts, out),
            Command::Deposit {
                account,
                asset,
                amount,
                ..
            } => self.deposit(*account, asset, *amount, ts, out),
            Command::Withdraw {
                withdrawal,
                account,
                asset,
                amount,
                ..
            } => self.withdraw(*withdrawal, *account, asset, *amount, ts, out),
            Command::ConfirmWithdrawal { withdrawal, .. } => {
                self.finish_withdrawal(*withdrawal, true, ts, out)
            }
            Command::ReleaseWithdrawal { withdrawal, .. } => {
                self.finish_withdrawal(*withdrawal, false, ts, out)
            }
            Command::PlaceOrder(order) => self.place_order(order, OrderOptions::default(), out),
            Command::PlaceOrderWith { order, options } => self.place_order(order, *options, out),
            Command::CancelOrder {
                account, order_id, ..
            } => self.cancel_order(*account, *order_id, ts, out),
            Command::CancelAll {
                account,
                instrument,
                ..
            } => self.cancel_all(*account, instrument.as_ref(), ts, out),
            Command::AmendOrder {
                account,
                order_id,
                price,
                quantity,
                ..
            } => self.amend_order(*account, *order_id, *price, *quantity, ts, out),
            Command::ExpireOrders { .. } => {
                self.expire_orders(ts, out);
                Ok(())
            }
            Command::SetMarkPrice {
                instrument, price, ..
            } => self.set_price(instrument, *price, true, ts, out),
            Command::SetIndexPrice {
                instrument, price, ..
            } => self.set_price(instrument, *price, false, ts, out),
            Command::ApplyFunding {
                instrument,
                rate_ppb,
                ..
            } => self.apply_funding(instrument, *rate_ppb, ts, out),
            Command::SettleExpiry { instrument, .. } => self.settle_expiry(instrument, ts, out),
            Command::FreezeAccount { account, .. } => self.freeze(*account, true, ts, out),
            Command::UnfreezeAccount { account, .. } => self.freeze(*account, false, ts, out),
            Command::SetInstrumentLimits {
                instrument, limits, ..
            } => self.set_instrument_limits(instrument, *limits, ts, out),
            Command::SetAccountLimits {
                account,
                instrument,
                limits,
                ..
            } => self.set_account_limits(*account, None, instrument, *limits, ts, out),
            Command::SetClientLimits {
                account,
                client,
                instrument,
                limits,
                ..
            } => self.set_account_limits(*account, Some(*client), instrument, *limits, ts, out),
            Command::SetCircuitBreaker {
                instrument,
                breaker,
                ..
            } => self.set_circuit_breaker(instrument, *breaker, ts, out),
            Command::Tick { .. } => {
                self.tick(ts, out);
                Ok(())
            }
            Command::SetKillSwitch {
                active,
                cancel_resting,
                ..
            } => self.set_kill_switch(*active, *cancel_resting, ts, out),
            Command::SetAccountKillSwitch {
                account,
                active,
                issued_by,
                ..
            } => self.set_account_kill_switch(*account, *active, *issued_by, ts, out),
            Command::CancelAfter {
                account, timeout, ..
            } => self.cancel_after(*account, *timeout, ts, out),
            Command::SetInstrumentGroup {
                instrument, group, ..
            } => self.set_instrument_group(instrument, *group, ts, out),
            Command::SetMmpConfig {
                account,
                group,
                config,
                ..
            } => self.set_mmp_config(*account, *group, *config, ts, out),
            Command::ResetMmp { account, group, .. } => self.reset_mmp(*account, *group, ts, out),
            Command::SetGreeks {
                instrument,
                delta_e6,
                vega_e6,
                ..
            } => self.set_greeks(instrument, *delta_e6, *vega_e6, ts, out),
            Command::SetInsuranceFund { account, .. } => self.set_insurance_fund(*account, ts, out),
        };
        if result.is_ok()
            && self.risk.insurance_fund.is_some()
            && matches!(
                command,
                Command::SetMarkPrice { .. }
                    | Command::SetIndexPrice { .. }
                    | Command::ApplyFunding { .. }
                    | Command::SettleExpiry { .. }
            )
        {
            // Only these commands move equity or maintenance margin without an
            // order of the account (docs/risk.md, "Liquidation").
            self.liquidate_under_maintenance(ts, out);
        }
        if let Err(reason) = result {
            // Every handler checks before it changes anything, so nothing was
            // emitted either; drop anything that was, to be safe.
            out.truncate(start);
            let (account, order_id, client_order_id) = match command {
                Command::PlaceOrder(o) | Command::PlaceOrderWith { order: o, .. } => {
                    (Some(o.account), None, Some(o.client_order_id))
                }
                Command::CancelOrder {
                    account, order_id, ..
                }
                | Command::AmendOrder {
                    account, order_id, ..
                } => (Some(*account), Some(*order_id), None),
                Command::Deposit { account, .. }
                | Command::Withdraw { account, .. }
                | Command::CancelAll { account, .. }
                | Command::FreezeAccount { account, .. }
                | Command::UnfreezeAccount { account, .. }
                | Command::SetAccountLimits { account, .. }
                | Command::SetClientLimits { account, .. }
                | Command::SetAccountKillSwitch { account, .. }
                | Command::CancelAfter { account, .. }
                | Command::SetMmpConfig { account, .. }
                | Command::ResetMmp { account, .. } => (Some(*account), None, None),
                Command::SetInsuranceFund { account, .. } => (*account, None, None),
                _ => (None, None, None),
            };
            out.push(Event {
                ts,
                kind: EventKind::Rejected {
                    account,
                    order_id,
                    client_order_id,
                    reason,
                },
            });
        }
    }

    // ----- lookups -------------------------------------------------------------

    pub(crate) fn instrument_index(&self, symbol: &Symbol) -> Result<usize, RejectReason> {
        self.by_symbol
            .get(symbol)
            .copied()
            .ok_or(RejectReason::UnknownInstrument)
    }

    pub(crate) fn tradable(&self, idx: usize) -> Outcome {
        match self.instruments[idx].status {
            InstrumentStatus::Active => Ok(()),
            InstrumentStatus::Halted => Err(RejectReason::InstrumentHalted),
            InstrumentStatus::Expired => Err(RejectReason::InstrumentExpired),
        }
    }

    pub(crate) fn trading_account(&self, account: AccountId) -> Result<&Account, RejectReason> {
        if account == FEE_ACCOUNT {
            return Err(RejectReason::FeeAccount);
        }
        let acct = self
            .accounts
            .get(&account)
            .ok_or(RejectReason::UnknownAccount)?;
        if acct.frozen {
            return Err(RejectReason::AccountFrozen);
        }
        Ok(acct)
    }

    /// Equity and initial margin of an account, scaled (ppm-micros), with its
    /// settlement cash changed by `cash_delta_scaled` and, if given, one exposure
    /// replaced. `None` on overflow.
    fn margin_state(
        &self,
        account: &Account,
        cash_delta_scaled: i128,
        replace: Option<(usize, &Exposure)>,
    ) -> Option<(i128, i128)> {
        let cash = account.balances.get(&self.settlement).copied().unwrap_or(0);
        let mut equity = cash.mul_checked(PPM)?.checked_add(cash_delta_scaled)?;
        let mut im: i128 = 0;
        let mut visit = |idx: usize, e: &Exposure| -> Option<()> {
            let params = self.instruments[idx].params();
            equity =
                equity.checked_add(margin::equity_contribution(&params, e)?.mul_checked(PPM)?)?;
            im = im.checked_add(margin::initial_margin_scaled(&params, e)?)?;
            Some(())
        };
        for (&idx, e) in &account.exposures {
            match replace {
                Some((r, _)) if r == idx => {}
                _ => visit(idx, e)?,
            }
        }
        if let Some((idx, e)) = replace {
            visit(idx, e)?;
        }
        Some((equity, im))
    }

    /// Fails unless equity covers initial margin in the given state.
    fn require_margin(
        &self,
        account: &Account,
        cash_delta_scaled: i128,
        replace: Option<(usize, &Exposure)>,
    ) -> Outcome {
        let (equity, im) = self
            .margin_state(account, cash_delta_scaled, replace)
            .ok_or(RejectReason::Overflow)?;
        if equity >= im {
            Ok(())
        } else {
            Err(RejectReason::InsufficientMargin)
        }
    }

    // ----- instruments and prices ---------------------------------------------------

    fn create_instrument(
        &mut self,
        spec: &InstrumentSpec,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if self.by_symbol.contains_key(&spec.symbol) {
            return Err(RejectReason::DuplicateInstrument);
        }
        let tick_value = spec
            .tick_value()
            .ok_or(RejectReason::InvalidInstrumentSpec)?;
        let ppm = PPM as u32;
        let rates_ok = spec.initial_margin_ppm <= ppm
            && spec.maintenance_margin_ppm > 0
            && spec.maintenance_margin_ppm <= spec.initial_margin_ppm
            && spec.maker_fee_ppm <= 100_000
            && spec.taker_fee_ppm <= 100_000;
        let kind_ok = match spec.kind {
            InstrumentKind::Perpetual | InstrumentKind::Future { .. } => true,
            InstrumentKind::Option {
                strike,
                min_margin_ppm,
                ..
            } => valid_price(strike) && min_margin_ppm <= spec.initial_margin_ppm,
        };
        if !rates_ok || !kind_ok {
            return Err(RejectReason::InvalidInstrumentSpec);
        }
        let idx = self.instruments.len();
        self.instruments.push(Instrument {
            spec: spec.clone(),
            tick_value,
            status: InstrumentStatus::Active,
            mark: None,
            index: None,
            last_funding_ppb: None,
            book: OrderBook::new(),
            risk: InstrumentRisk::default(),
        });
        self.by_symbol.insert(spec.symbol, idx);
        out.push(Event {
            ts,
            kind: EventKind::InstrumentCreated {
                instrument: spec.symbol,
            },
        });
        Ok(())
    }

    fn set_status(
        &mut self,
        symbol: &Symbol,
        change: StatusChange,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let idx = self.instrument_index(symbol)?;
        if change == StatusChange::Expire {
            // Expiry only happens with settlement.
            return Err(RejectReason::InvalidStatusTransition);
        }
        let inst = &mut self.instruments[idx];
        // An operator's halt of an instrument the circuit breaker halted makes it an
        // operator's halt: no `Tick` resumes it.
        let status = if change == StatusChange::Halt && inst.risk.halted_until.is_some() {
            InstrumentStatus::Halted
        } else {
            inst.status
                .transition(change)
                .ok_or(RejectReason::InvalidStatusTransition)?
        };
        inst.status = status;
        inst.risk.halted_until = None;
        if change == StatusChange::Resume {
            // A new breaker window starts with the next order.
            inst.risk.reference = None;
        }
        out.push(Event {
            ts,
            kind: EventKind::InstrumentStatusChanged {
                instrument: *symbol,
                status,
            },
        });
        Ok(())
    }

    fn set_price(
        &mut self,
        symbol: &Symbol,
        price: Price,
        mark: bool,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let idx = self.instrument_index(symbol)?;
        if self.instruments[idx].status == InstrumentStatus::Expired {
            return Err(RejectReason::InstrumentExpired);
        }
        if !valid_price(price) {
            return Err(RejectReason::InvalidPrice);
        }
        let inst = &mut self.instruments[idx];
        let instrument = *symbol;
        let kind = if mark {
            inst.mark = Some(price);
            EventKind::MarkPriceSet { instrument, price }
        } else {
            inst.index = Some(price);
            EventKind::IndexPriceSet { instrument, price }
        };
        out.push(Event { ts, kind });
        Ok(())
    }

    // ----- money in and out ---------------------------------------------------------

    /// Adds `delta` to a balance and records it. Callers guarantee the result stays
    /// within the documented bounds.
    pub(crate) fn credit(
        &mut self,
        account: AccountId,
        asset: &Asset,
        delta: Money,
        reason: BalanceReason,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) {
        if delta == 0 {
            return;
        }
        let acct = self.accounts.entry(account).or_default();
        credit_account(acct, account, asset, delta, reason, ts, out);
    }

    fn deposit(
        &mut self,
        account: AccountId,
        asset: &Asset,
        amount: Money,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if account == FEE_ACCOUNT {
            return Err(RejectReason::FeeAccount);
        }
        if !valid_amount(amount) {
            return Err(RejectReason::InvalidAmount);
        }
        let current = self
            .accounts
            .get(&account)
            .and_then(|a| a.balances.get(asset))
            .copied()
            .unwrap_or(0);
        let total = self.deposited.get(asset).copied().unwrap_or(0);
        if current.checked_add(amount).is_none_or(|b| b > MAX_AMOUNT)
            || total
                .checked_add(amount)
                .is_none_or(|t| t > MAX_AMOUNT * 1024)
        {
            return Err(RejectReason::Overflow);
        }
        *self.deposited.entry(*asset).or_insert(0) += amount;
        self.credit(account, asset, amount, BalanceReason::Deposit, ts, out);
        Ok(())
    }

    fn withdraw(
        &mut self,
        id: WithdrawalId,
        account: AccountId,
        asset: &Asset,
        amount: Money,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let acct = self.trading_account(account)?;
        if !valid_amount(amount) {
            return Err(RejectReason::InvalidAmount);
        }
        if self.withdrawals.contains_key(&id) {
            return Err(RejectReason::DuplicateWithdrawal);
        }
        let balance = acct.balances.get(asset).copied().unwrap_or(0);
        if *asset == self.settlement {
            // Available margin, not just cash: the withdrawal may not leave the
            // account's positions and orders under-margined.
            let (equity, im) = self
                .margin_state(acct, 0, None)
                .ok_or(RejectReason::Overflow)?;
            let spare = equity - im;
            if spare < amount * PPM || balance < amount {
                return Err(RejectReason::InsufficientFunds);
            }
        } else if balance < amount {
            return Err(RejectReason::InsufficientFunds);
        }
        self.credit(
            account,
            asset,
            -amount,
            BalanceReason::WithdrawalHeld,
            ts,
            out,
        );
        let acct = self.accounts.entry(account).or_default();
        *acct.held.entry(*asset).or_insert(0) += amount;
        self.withdrawals.insert(
            id,
            Withdrawal {
                account,
                asset: *asset,
                amount,
                state: WithdrawalState::Pending,
            },
        );
        out.push(Event {
            ts,
            kind: EventKind::WithdrawalHeld {
                withdrawal: id,
                account,
                asset: *asset,
                amount,
            },
        });
        Ok(())
    }

    fn finish_withdrawal(
        &mut self,
        id: WithdrawalId,
        confirm: bool,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let w = match self.withdrawals.get(&id) {
            Some(w) if w.state == WithdrawalState::Pending => w.clone(),
            _ => return Err(RejectReason::UnknownWithdrawal),
        };
        let acct = self.accounts.entry(w.account).or_default();
        *acct.held.entry(w.asset).or_insert(0) -= w.amount;
        let state = if confirm {
            *self.withdrawn.entry(w.asset).or_insert(0) += w.amount;
            out.push(Event {
                ts,
                kind: EventKind::WithdrawalConfirmed { withdrawal: id },
            });
            WithdrawalState::Confirmed
        } else {
            self.credit(
                w.account,
                &w.asset,
                w.amount,
                BalanceReason::WithdrawalReleased,
                ts,
                out,
            );
            out.push(Event {
                ts,
                kind: EventKind::WithdrawalReleased { withdrawal: id },
            });
            WithdrawalState::Released
        };
        if let Some(entry) = self.withdrawals.get_mut(&id) {
            entry.state = state;
        }
        Ok(())
    }

    fn freeze(
        &mut self,
        account: AccountId,
        freeze: bool,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if account == FEE_ACCOUNT {
            return Err(RejectReason::FeeAccount);
        }
        let acct = self
            .accounts
            .get_mut(&account)
            .ok_or(RejectReason::UnknownAccount)?;
        if acct.frozen == freeze {
            return Err(RejectReason::FreezeUnchanged);
        }
        acct.frozen = freeze;
        if freeze {
            out.push(Event {
                ts,
                kind: EventKind::AccountFrozen { account },
            });
            let instruments: Vec<usize> = acct.exposures.keys().copied().collect();
            for idx in instruments {
                self.book_cancel_all(idx, account, CancelReason::AccountFrozen, ts, out);
            }
        } else {
            out.push(Event {
                ts,
                kind: EventKind::AccountUnfrozen { account },
            });
        }
        Ok(())
    }

    // ----- orders ---------------------------------------------------------------------

    /// The worst price a market order of `qty` lots on `side` could trade at now:
    /// walking the other side from the best level and skipping the account's own
    /// orders (self-trade prevention never trades them). `None` if nothing could
    /// trade.
    fn market_worst_price(
        &self,
        idx: usize,
        account: AccountId,
        side: Side,
        qty: u64,
    ) -> Option<Price> {
        let book = &self.instruments[idx].book;
        let opposite = side.opposite();
        let mut own: BTreeMap<Price, u64> = BTreeMap::new();
        for o in book.open_orders(account).filter(|o| o.side == opposite) {
            *own.entry(o.price).or_insert(0) += o.leaves.0;
        }
        let mut levels = Vec::new();
        book.depth_into(opposite, usize::MAX, &mut levels);
        let mut need = qty;
        let mut worst = None;
        for level in levels {
            let others = level
                .quantity
                .0
                .saturating_sub(own.get(&level.price).copied().unwrap_or(0));
            if others == 0 {
                continue;
            }
            worst = Some(level.price);
            if others >= need {
                break;
            }
            need -= others;
        }
        worst
    }

    /// How many lots a reduce-only order on `side` may still have, given the position
    /// and the account's other open reduce-only orders on that side (excluding `skip`).
    fn reduce_only_room(
        &self,
        acct: &Account,
        idx: usize,
        side: Side,
        skip: Option<OrderId>,
    ) -> u64 {
        let size = acct.exposures.get(&idx).map_or(0, |e| e.size);
        let reduces = match side {
            Side::Buy => size < 0,
            Side::Sell => size > 0,
        };
        if !reduces {
            return 0;
        }
        let committed: u64 = acct
            .reduce_only
            .range((idx, OrderId(0))..=(idx, OrderId(u64::MAX)))
            .filter(|(_, id)| Some(*id) != skip)
            .filter_map(|(_, id)| self.orders.get(id))
            .filter(|o| o.side == side)
            .map(|o| o.leaves)
            .sum();
        u64::try_from(size.unsigned_abs())
            .unwrap_or(u64::MAX)
            .saturating_sub(committed)
    }

    fn place_order(
        &mut self,
        order: &PlaceOrder,
        options: OrderOptions,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let ts = order.ts;
        if self.risk.kill_switch {
            return Err(RejectReason::KillSwitch);
        }
        let acct = self.trading_account(order.account)?;
        if acct.kill_switch.is_some() {
            return Err(RejectReason::AccountKillSwitch);
        }
        let idx = self.instrument_index(&order.instrument)?;
        self.tradable(idx)?;
        if !valid_quantity(order.quantity) {
            return Err(RejectReason::InvalidQuantity);
        }
        let limit = match order.kind {
            OrderKind::Limit { price } if !valid_price(price) => {
                return Err(RejectReason::InvalidPrice);
            }
            OrderKind::Limit { price } => Some(price),
            OrderKind::Market => None,
        };
        if acct.client_ids.contains_key(&order.client_order_id) {
            return Err(RejectReason::DuplicateClientOrderId);
        }
        let mut qty = order.quantity.0;
        if order.reduce_only {
            let room = self.reduce_only_room(acct, idx, order.side, None);
            if room == 0 {
                return Err(RejectReason::ReduceOnlyWouldIncrease);
            }
            qty = qty.min(room);
        }
        let inst = &self.instruments[idx];
        let mark = inst.mark.ok_or(RejectReason::NoMarkPrice)?;
        if !inst.spec.kind.is_linear() && inst.index.is_none() {
            return Err(RejectReason::NoIndexPrice);
        }
        let can_rest = limit.is_some()
            && matches!(order.time_in_force, TimeInForce::Gtc | TimeInForce::Gtt(_));
        let limits = self.effective_limits(order.account, options.oauth_client, idx);
        let band = limits.price_band_bps.map(|bps| risk::band(mark, bps));
        // A market order does not trade beyond the price band: it goes to the book
        // as a limit at the band's edge (same IOC/FOK).
        let market_edge = match (limit, band, order.time_in_force) {
            (None, Some((lo, hi)), TimeInForce::Ioc | TimeInForce::Fok) => {
                Some(Price(match order.side {
                    Side::Buy => hi,
                    Side::Sell => lo,
                }))
            }
            _ => None,
        };
        // The worst price the order can trade at: its limit, or for a market order
        // the deepest level it could reach now (no further than the band).
        let worst = match limit {
            Some(price) => price,
            None => {
                let w = self
                    .market_worst_price(idx, order.account, order.side, qty)
                    .unwrap_or(mark);
                match (market_edge, order.side) {
                    (Some(edge), Side::Buy) => w.min(edge),
                    (Some(edge), Side::Sell) => w.max(edge),
                    (None, _) => w,
                }
            }
        };
        if !limits.is_none() {
            self.check_limits(acct, idx, order, qty, worst, band, can_rest, &limits)?;
        }
        if options.mmp {
            self.check_mmp(order.account, idx, ts)?;
        }
        let ends = if order.post_only {
            // A post-only order never trades on arrival; it can only rest whole.
            CheckEnds::RestOnly
        } else if can_rest {
            CheckEnds::RestAndFill
        } else if order.time_in_force == TimeInForce::Fok {
            CheckEnds::FillOnly
        } else {
            CheckEnds::NowAndFill
        };
        self.pre_trade_check(acct, idx, order.side, qty, worst, ends)?;

        // The circuit breaker (docs/risk.md): trip before any fill if the first
        // trade would be outside the window's range; clip the order at the range's
        // edge if it would otherwise run through it.
        let mut submit_limit = market_edge.or(limit);
        let mut time_in_force = order.time_in_force;
        let mut clipped = None;
        let breaker = if order.post_only {
            None
        } else {
            self.breaker_range(idx, ts)
        };
        if let Some(range) = breaker {
            match self.breaker_precheck(idx, order.account, order.side, qty, submit_limit, &range) {
                BreakerCheck::Clear => {}
                BreakerCheck::Near(price) => {
                    self.commit_breaker_reference(idx, &range, ts);
                    self.trip_before_matching(order, idx, qty, limit, &range, price, out);
                    return Ok(());
                }
                BreakerCheck::Far(edge) => {
                    clipped = Some(submit_limit);
                    submit_limit = Some(edge);
                    if matches!(time_in_force, TimeInForce::Gtc | TimeInForce::Gtt(_)) {
                        time_in_force = TimeInForce::Ioc;
                    }
                }
            }
        }

        // Every check passed: the book decides the rest.
        let order_id = OrderId(self.next_order_id);
        let new_order = NewOrder {
            id: order_id,
            account: order.account,
            side: order.side,
            order_type: match submit_limit {
                Some(price) => OrderType::Limit(price),
                None => OrderType::Market,
            },
            quantity: Quantity(qty),
            time_in_force,
            post_only: order.post_only,
            self_trade_prevention: order.self_trade_prevention,
        };
        let mut book_events = std::mem::take(&mut self.book_events);
        book_events.clear();
        self.instruments[idx]
            .book
            .submit(&new_order, &mut book_events);
        if let Some(matching::Event::Rejected { reason, .. }) = book_events.first() {
            let reason = *reason;
            book_events.clear();
            self.book_events = book_events;
            return Err(RejectReason::Book(reason));
        }
        self.next_order_id += 1;
        let pending = PendingOrder {
            id: order_id,
            client_order_id: order.client_order_id,
            reduce_only: order.reduce_only,
            price: limit,
            mmp: options.mmp,
            oauth_client: options.oauth_client,
        };
        let start = out.len();
        self.absorb(idx, &book_events, Some(&pending), None, ts, out);
        book_events.clear();
        self.book_events = book_events;
        if let Some(range) = breaker {
            self.commit_breaker_reference(idx, &range, ts);
            if let Some(original) = clipped {
                self.trip_after_matching(
                    idx, order_id, order.side, original, &range, start, ts, out,
                );
            }
        }
        if !self.mmp_fills.is_empty() {
            self.process_mmp_fills(ts, out);
        }
        Ok(())
    }

    /// Sends the exchange's own IOC limit order for `account` to the book and
    /// absorbs its events like any taker's (used by liquidation): no pre-trade
    /// check, limit, kill switch or MMP freeze applies. Does nothing if the book
    /// refuses it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submit_internal_ioc(
        &mut self,
        account: AccountId,
        idx: usize,
        side: Side,
        qty: u64,
        limit: Price,
        client_order_id: ClientOrderId,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) {
        let order_id = OrderId(self.next_order_id);
        let new_order = NewOrder {
            id: order_id,
            account,
            side,
            order_type: OrderType::Limit(limit),
            quantity: Quantity(qty),
            time_in_force: TimeInForce::Ioc,
            post_only: false,
            self_trade_prevention: matching::SelfTradePrevention::CancelTaker,
        };
        let mut book_events = std::mem::take(&mut self.book_events);
        book_events.clear();
        self.instruments[idx]
            .book
            .submit(&new_order, &mut book_events);
        if !matches!(book_events.first(), Some(matching::Event::Rejected { .. })) {
            self.next_order_id += 1;
            let pending = PendingOrder {
                id: order_id,
                client_order_id,
                reduce_only: true,
                price: Some(limit),
                mmp: false,
                oauth_client: None,
            };
            self.absorb(idx, &book_events, Some(&pending), None, ts, out);
        }
        book_events.clear();
        self.book_events = book_events;
        if !self.mmp_fills.is_empty() {
            self.process_mmp_fills(ts, out);
        }
    }

    /// The pre-trade margin check. Equity is linear and initial margin convex in how
    /// much of the order fills (see `margin`), so available margin is concave in it
    /// and checking the two ends covers every partial fill: nothing filled (the order
    /// rests whole, or for an order that cannot rest the account as it is) and all
    /// filled at the worst price with the taker fee. A fill at a better price only
    /// raises equity and leaves the margin unchanged. Fill-or-kill orders fill
    /// completely or not at all, so only the filled end is checked; post-only orders
    /// never fill on arrival, so only the resting end is.
    fn pre_trade_check(
        &self,
        acct: &Account,
        idx: usize,
        side: Side,
        qty: u64,
        worst: Price,
        ends: CheckEnds,
    ) -> Outcome {
        let inst = &self.instruments[idx];
        let base = acct.exposures.get(&idx).copied().unwrap_or_default();
        let q = i128::from(qty);
        let p = i128::from(worst.0);
        let notional_ticks = q.mul_checked(p).ok_or(RejectReason::Overflow)?;
        let notional = notional_ticks
            .mul_checked(inst.tick_value)
            .filter(|n| *n <= MAX_AMOUNT)
            .ok_or(RejectReason::Overflow)?;
        // Nothing filled. An option buyer must also be able to fund the premium up
        // front, as if the order rested (a long option needs no margin afterwards, but
        // its own value must not pay for it).
        let option_buy = !inst.spec.kind.is_linear() && side == Side::Buy;
        match ends {
            _ if option_buy => {
                let mut resting = base;
                count_resting(&mut resting, side, worst, qty, 1);
                self.require_margin(acct, 0, Some((idx, &resting)))?;
            }
            CheckEnds::RestOnly | CheckEnds::RestAndFill => {
                let mut resting = base;
                count_resting(&mut resting, side, worst, qty, 1);
                self.require_margin(acct, 0, Some((idx, &resting)))?;
            }
            CheckEnds::NowAndFill => self.require_margin(acct, 0, None)?,
            CheckEnds::FillOnly => {}
        }
        if ends == CheckEnds::RestOnly {
            return Ok(());
        }
        // All filled at the worst price.
        let mut filled = base;
        let realised = apply_trade(&mut filled, side, q, p);
        let fee_scaled = notional * i128::from(inst.spec.taker_fee_ppm);
        let cash_scaled = if inst.spec.kind.is_linear() {
            realised * inst.tick_value * PPM
        } else {
            -signed(side, notional) * PPM
        };
        self.require_margin(acct, cash_scaled - fee_scaled, Some((idx, &filled)))
    }

    fn owned_order(
        &self,
        account: AccountId,
        order_id: OrderId,
    ) -> Result<&OpenOrder, RejectReason> {
        match self.orders.get(&order_id) {
            Some(o) if o.account == account && o.resting => Ok(o),
            _ => Err(RejectReason::UnknownOrder),
        }
    }

    fn cancel_order(
        &mut self,
        account: AccountId,
        order_id: OrderId,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let idx = self.owned_order(account, order_id)?.instrument;
        self.book_command(
            idx,
            &matching::Command::Cancel { order_id },
            CancelReason::Requested,
            ts,
            out,
        )
    }

    pub(crate) fn cancel_all(
        &mut self,
        account: AccountId,
        symbol: Option<&Symbol>,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let acct = self
            .accounts
            .get(&account)
            .ok_or(RejectReason::UnknownAccount)?;
        let instruments: Vec<usize> = match symbol {
            Some(symbol) => vec![self.instrument_index(symbol)?],
            None => acct.exposures.keys().copied().collect(),
        };
        for idx in instruments {
            self.book_cancel_all(idx, account, CancelReason::CancelAll, ts, out);
        }
        Ok(())
    }

    pub(crate) fn book_cancel_all(
        &mut self,
        idx: usize,
        account: AccountId,
        reason: CancelReason,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) {
        let command = matching::Command::CancelAll {
            account,
            side: None,
        };
        // Cancel-all never rejects.
        let _ = self.book_command(idx, &command, reason, ts, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn amend_order(
        &mut self,
        account: AccountId,
        order_id: OrderId,
        price: Option<Price>,
        quantity: Option<Quantity>,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if self.risk.kill_switch {
            return Err(RejectReason::KillSwitch);
        }
        let acct = self.trading_account(account)?;
        if acct.kill_switch.is_some() {
            return Err(RejectReason::AccountKillSwitch);
        }
        let order = self.owned_order(account, order_id)?;
        let idx = order.instrument;
        self.tradable(idx)?;
        if price.is_some_and(|p| !valid_price(p)) {
            return Err(RejectReason::InvalidPrice);
        }
        if quantity.is_some_and(|q| !valid_quantity(q)) {
            return Err(RejectReason::InvalidQuantity);
        }
        let old_price = order.price.ok_or(RejectReason::UnknownOrder)?;
        let new_price = price.unwrap_or(old_price);
        let new_leaves = quantity.map_or(order.leaves, |q| q.0);
        if order.reduce_only
            && new_leaves > self.reduce_only_room(acct, idx, order.side, Some(order_id))
        {
            return Err(RejectReason::ReduceOnlyWouldIncrease);
        }
        self.check_amend_limits(acct, order, idx, new_price, new_leaves)?;
        if new_price != old_price || new_leaves > order.leaves {
            let mut e = acct.exposures.get(&idx).copied().unwrap_or_default();
            count_resting(&mut e, order.side, old_price, order.leaves, -1);
            count_resting(&mut e, order.side, new_price, new_leaves, 1);
            self.require_margin(acct, 0, Some((idx, &e)))?;
        }
        let command = matching::Command::Amend {
            order_id,
            price,
            quantity,
        };
        self.book_command(idx, &command, CancelReason::Requested, ts, out)
    }

    fn expire_orders(&mut self, ts: Timestamp, out: &mut Vec<Event>) {
        for idx in 0..self.instruments.len() {
            let _ = self.book_command(
                idx,
                &matching::Command::Expire {
                    now: bourse_matching::Timestamp(ts.0),
                },
                CancelReason::Requested,
                ts,
                out,
            );
        }
    }

    /// Sends a cancel, cancel-all, amend or expire to a book and absorbs its events;
    /// cancels are reported with `cancel_reason`.
    pub(crate) fn book_command(
        &mut self,
        idx: usize,
        command: &matching::Command,
        cancel_reason: CancelReason,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let mut book_events = std::mem::take(&mut self.book_events);
        book_events.clear();
        self.instruments[idx].book.apply(command, &mut book_events);
        let result = match book_events.first() {
            Some(matching::Event::Rejected { reason, .. }) => Err(RejectReason::Book(*reason)),
            _ => {
                self.absorb(idx, &book_events, None, Some(cancel_reason), ts, out);
                Ok(())
            }
        };
        book_events.clear();
        self.book_events = book_events;
        result
    }

    /// Turns one book command's events into state changes and exchange events, then
    /// caps the reduce-only orders of every account whose position changed.
    fn absorb(
        &mut self,
        idx: usize,
        book_events: &[matching::Event],
        taker: Option<&PendingOrder>,
        cancel_reason: Option<CancelReason>,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) {
        let mut touched = std::mem::take(&mut self.touched);
        touched.clear();
        // The order being submitted while it is not yet in the indexes.
        let mut arriving: Option<(OrderId, OpenOrder)> = None;
        let mut arriving_account = None;
        let mut arriving_reduce_only = false;
        for event in book_events {
            match *event {
                matching::Event::Accepted {
                    order_id,
                    account,
                    side,
                    price,
                    quantity,
                } => {
                    let Some(taker) = taker else { continue };
                    // Indexed (in `orders`, the client ids and the reduce-only set)
                    // after the loop, and only if it is still open then: most takers
                    // that trade fill completely and never need an entry.
                    arriving = Some((
                        order_id,
                        OpenOrder {
                            account,
                            instrument: idx,
                            client_order_id: taker.client_order_id,
                            side,
                            price,
                            leaves: quantity.0,
                            resting: false,
                            reduce_only: taker.reduce_only,
                            mmp: taker.mmp,
                            oauth_client: taker.oauth_client,
                        },
                    ));
                    arriving_account = Some(account);
                    arriving_reduce_only = taker.reduce_only;
                    out.push(Event {
                        ts,
                        kind: EventKind::OrderAccepted {
                            order_id,
                            account,
                            instrument: self.instruments[idx].spec.symbol,
                            client_order_id: taker.client_order_id,
                            side,
                            // As sent: a market order bounded by the price band or
                            // an order clipped by the breaker reach the book as a
                            // limit at the edge.
                            price: taker.price,
                            quantity,
                            reduce_only: taker.reduce_only,
                        },
                    });
                    debug_assert_eq!(order_id, taker.id);
                }
                matching::Event::Rested {
                    order_id,
                    side,
                    price,
                    quantity,
                } => {
                    match &mut arriving {
                        Some((id, o)) if *id == order_id => {
                            // Counted in the resting totals when it is indexed, below.
                            o.resting = true;
                            o.leaves = quantity.0;
                        }
                        _ => {
                            if let Some(o) = self.orders.get_mut(&order_id) {
                                let was_resting = o.resting;
                                o.resting = true;
                                o.leaves = quantity.0;
                                let account = o.account;
                                let e = self
                                    .accounts
                                    .entry(account)
                                    .or_default()
                                    .exposures
                                    .entry(idx)
                                    .or_default();
                                count_resting(e, side, price, quantity.0, 1);
                                if !was_resting {
                                    e.open_orders += 1;
                                }
                            }
                        }
                    }
                    out.push(Event {
                        ts,
                        kind: EventKind::OrderRested {
                            order_id,
                            price,
                            quantity,
                        },
                    });
                }
                matching::Event::Traded {
                    maker_order_id,
                    taker_order_id,
                    maker_account,
                    taker_account,
                    price,
                    quantity,
                    aggressor,
                    maker_leaves,
                    taker_leaves,
                } => {
                    out.push(Event {
                        ts,
                        kind: EventKind::OrderTraded {
                            instrument: self.instruments[idx].spec.symbol,
                            maker_order_id,
                            taker_order_id,
                            maker_account,
                            taker_account,
                            price,
                            quantity,
                            aggressor,
                            maker_leaves,
                            taker_leaves,
                        },
                    });
                    // The maker first, then the taker, each with one account lookup.
                    let maker_side = aggressor.opposite();
                    let risk = &mut self.instruments[idx].risk;
                    if risk.breaker.is_some() {
                        risk.last_trade = Some(price);
                    }
                    let (maker_gone, maker_mmp) = self.set_leaves(maker_order_id, maker_leaves.0);
                    if !self.risk.mmp.is_empty() {
                        if maker_mmp {
                            self.mmp_fills
                                .push((maker_account, idx, maker_side, quantity.0));
                        }
                        let taker_mmp = match taker {
                            Some(t) if t.id == taker_order_id => t.mmp,
                            _ => self.orders.get(&taker_order_id).is_some_and(|o| o.mmp),
                        };
                        if taker_mmp {
                            self.mmp_fills
                                .push((taker_account, idx, aggressor, quantity.0));
                        }
                    }
                    let maker_capped = self.fill(
                        idx,
                        maker_account,
                        maker_order_id,
                        maker_side,
                        price,
                        quantity,
                        Liquidity::Maker,
                        maker_gone,
                        ts,
                        out,
                    );
                    let taker_gone = match &mut arriving {
                        Some((id, o)) if *id == taker_order_id => {
                            o.leaves = taker_leaves.0;
                            if taker_leaves.0 == 0 {
                                // Filled: it was never indexed, so nothing to forget.
                                arriving = None;
                            }
                            None
                        }
                        _ => self.set_leaves(taker_order_id, taker_leaves.0).0,
                    };
                    let taker_capped = self.fill(
                        idx,
                        taker_account,
                        taker_order_id,
                        aggressor,
                        price,
                        quantity,
                        Liquidity::Taker,
                        taker_gone,
                        ts,
                        out,
                    );
                    // Only accounts with reduce-only orders can need capping: those
                    // that have some now, and the arriving order's if it is one (it
                    // is indexed after the loop).
                    let arriving_caps =
                        |account| arriving_reduce_only && arriving_account == Some(account);
                    if maker_capped || arriving_caps(maker_account) {
                        touched.push(maker_account);
                    }
                    if taker_capped || arriving_caps(taker_account) {
                        touched.push(taker_account);
                    }
                }
                matching::Event::Canceled {
                    order_id,
                    account,
                    quantity,
                    reason,
                } => {
                    let reason = match (reason, cancel_reason) {
                        (matching::CancelReason::Unfilled, _) => CancelReason::Unfilled,
                        (matching::CancelReason::SelfTradePrevention, _) => {
                            CancelReason::SelfTradePrevention
                        }
                        (_, Some(r)) => r,
                        (matching::CancelReason::CancelAll, None) => CancelReason::CancelAll,
                        (matching::CancelReason::Requested, None) => CancelReason::Requested,
                    };
                    match &arriving {
                        // Never indexed, so nothing to forget.
                        Some((id, _)) if *id == order_id => arriving = None,
                        _ => self.forget_order(order_id),
                    }
                    out.push(Event {
                        ts,
                        kind: EventKind::OrderCanceled {
                            order_id,
                            account,
                            quantity,
                            reason,
                        },
                    });
                }
                matching::Event::Amended {
                    order_id,
                    price,
                    quantity,
                    kept_priority,
                } => {
                    if let Some(o) = self.orders.get_mut(&order_id) {
                        let (old_price, old_leaves, side, account) =
                            (o.price, o.leaves, o.side, o.account);
                        o.price = Some(price);
                        o.leaves = quantity.0;
                        let e = self
                            .accounts
                            .entry(account)
                            .or_default()
                            .exposures
                            .entry(idx)
                            .or_default();
                        if let Some(old_price) = old_price {
                            count_resting(e, side, old_price, old_leaves, -1);
                        }
                        count_resting(e, side, price, quantity.0, 1);
                    }
                    out.push(Event {
                        ts,
                        kind: EventKind::OrderAmended {
                            order_id,
                            price,
                            quantity,
                            kept_priority,
                        },
                    });
                }
                matching::Event::Expired {
                    order_id,
                    account,
                    quantity,
                } => {
                    self.forget_order(order_id);
                    out.push(Event {
                        ts,
                        kind: EventKind::OrderExpired {
                            order_id,
                            account,
                            quantity,
                        },
                    });
                }
                matching::Event::Rejected { .. } => {}
            }
        }
        if let Some(account) = arriving_account {
            let acct = self.accounts.entry(account).or_default();
            let e = acct.exposures.entry(idx).or_default();
            if let Some((order_id, o)) = arriving {
                // Still open: index it, and count it as resting if it rests.
                if let (true, Some(price)) = (o.resting, o.price) {
                    count_resting(e, o.side, price, o.leaves, 1);
                    e.open_orders += 1;
                }
                acct.client_ids.insert(o.client_order_id, order_id);
                if o.reduce_only {
                    acct.reduce_only.insert((idx, order_id));
                }

                self.orders.insert(order_id, o);
            }
        }
        // In id order, once each, as the set this replaced gave them.
        touched.sort_unstable();
        touched.dedup();
        for &account in &touched {
            self.cap_reduce_only(idx, account, ts, out);
        }
        self.touched = touched;
    }

    /// Drops an order that left the book (or never rested) from every index.
    fn forget_order(&mut self, order_id: OrderId) {
        let Some(o) = self.orders.remove(&order_id) else {
            return;
        };
        let acct = self.accounts.entry(o.account).or_default();
        forget_in_account(acct, order_id, &o);
    }

    /// Shrinks or cancels an account's reduce-only orders on one instrument so that
    /// together they can at most close the position, oldest first kept.
    pub(crate) fn cap_reduce_only(
        &mut self,
        idx: usize,
        account: AccountId,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) {
        let Some(acct) = self.accounts.get(&account) else {
            return;
        };
        if acct.reduce_only.is_empty() {
            return;
        }
        let size = acct.exposures.get(&idx).map_or(0, |e| e.size);
        let closing_side = match size.signum() {
            1 => Some(Side::Sell),
            -1 => Some(Side::Buy),
            _ => None,
        };
        let mut room = u64::try_from(size.unsigned_abs()).unwrap_or(u64::MAX);
        let mut changes = Vec::new();
        for &(_, id) in acct
            .reduce_only
            .range((idx, OrderId(0))..=(idx, OrderId(u64::MAX)))
        {
            let Some(o) = self.orders.get(&id) else {
                continue;
            };
            if Some(o.side) != closing_side || room == 0 {
                changes.push((id, None));
            } else if o.leaves > room {
                changes.push((id, Some(Quantity(room))));
                room = 0;
            } else {
                room -= o.leaves;
            }
        }
        for (order_id, quantity) in changes {
            let command = match quantity {
                None => matching::Command::Cancel { order_id },
                Some(q) => matching::Command::Amend {
                    order_id,
                    price: None,
                    quantity: Some(q),
                },
            };
            // Both name a resting order and shrink it, so the book cannot reject them.
            let _ = self.book_command(idx, &command, CancelReason::ReduceOnly, ts, out);
        }
    }

    /// Sets a traded order's open quantity; an order with none left leaves `orders`
    /// and is returned, for [`Exchange::fill`] to drop from its account's indexes.
    /// Also returns whether the order is an MMP quote (read with the same lookup).
    fn set_leaves(&mut self, order_id: OrderId, leaves: u64) -> (Option<OpenOrder>, bool) {
        if leaves == 0 {
            // Nothing of it rests any more: forgetting it takes nothing off the totals.
            let gone = self
                .orders
                .remove(&order_id)
                .map(|o| OpenOrder { leaves: 0, ..o });
            let mmp = gone.as_ref().is_some_and(|o| o.mmp);
            return (gone, mmp);
        }
        if let Some(o) = self.orders.get_mut(&order_id) {
            o.leaves = leaves;
            return (None, o.mmp);
        }
        (None, false)
    }

    /// Books one side of a trade: the maker's resting totals, position, realised PnL
    /// or premium, fee; and drops a `gone` (filled) order from the account's indexes.
    /// The account is looked up once. Returns whether the account has open
    /// reduce-only orders (which the position change may have to cap).
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        idx: usize,
        account: AccountId,
        order_id: OrderId,
        side: Side,
        price: Price,
        quantity: Quantity,
        liquidity: Liquidity,
        gone: Option<OpenOrder>,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> bool {
        let inst = &self.instruments[idx];
        let v = inst.tick_value;
        let linear = inst.spec.kind.is_linear();
        let fee_ppm = match liquidity {
            Liquidity::Maker => inst.spec.maker_fee_ppm,
            Liquidity::Taker => inst.spec.taker_fee_ppm,
        };
        let symbol = inst.spec.symbol;
        let settlement = self.settlement;
        let q = i128::from(quantity.0);
        let p = i128::from(price.0);
        let notional = q * p * v;
        let fee = margin::div_trunc(notional * i128::from(fee_ppm), PPM);
        let acct = self.accounts.entry(account).or_default();
        let e = acct.exposures.entry(idx).or_default();
        if liquidity == Liquidity::Maker {
            // The maker's resting totals shrink by what traded.
            count_resting(e, side, price, quantity.0, -1);
        }
        let realised = apply_trade(e, side, q, p) * v;
        e.realised_pnl += realised;
        let (size, cost, realised_pnl) = (e.size, e.cost, e.realised_pnl);
        if linear {
            credit_account(
                acct,
                account,
                &settlement,
                realised,
                BalanceReason::RealisedPnl,
                ts,
                out,
            );
        } else {
            credit_account(
                acct,
                account,
                &settlement,
                -signed(side, notional),
                BalanceReason::OptionPremium,
                ts,
                out,
            );
        }
        if fee > 0 {
            credit_account(
                acct,
                account,
                &settlement,
                -fee,
                BalanceReason::Fee,
                ts,
                out,
            );
        }
        if let Some(o) = gone {
            forget_in_account(acct, order_id, &o);
        }
        let has_reduce_only = !acct.reduce_only.is_empty();
        if fee > 0 {
            let fees = self.accounts.entry(FEE_ACCOUNT).or_default();
            credit_account(
                fees,
                FEE_ACCOUNT,
                &settlement,
                fee,
                BalanceReason::Fee,
                ts,
                out,
            );
            out.push(Event {
                ts,
                kind: EventKind::FeeCharged {
                    account,
                    order_id,
                    liquidity,
                    amount: fee,
                },
            });
        }
        out.push(Event {
            ts,
            kind: EventKind::PositionChanged {
                account,
                instrument: symbol,
                size,
                cost,
                realised_pnl,
            },
        });
        has_reduce_only
    }

    // ----- funding and expiry ---------------------------------------------------------

    /// Funding: each position pays `size · mark · v · rate / 10^9` micro-units
    /// (positive rate: longs pay, shorts receive). Payers' amounts round up and
    /// receivers' round down; the difference (at most one micro-unit per position)
    /// goes to the fee account, so the payments sum to exactly zero.
    fn apply_funding(
        &mut self,
        symbol: &Symbol,
        rate_ppb: i64,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let idx = self.instrument_index(symbol)?;
        let inst = &self.instruments[idx];
        if inst.spec.kind != InstrumentKind::Perpetual {
            return Err(RejectReason::WrongInstrumentKind);
        }
        if i128::from(rate_ppb).abs() > PPB {
            return Err(RejectReason::InvalidFundingRate);
        }
        let mark = inst.mark.ok_or(RejectReason::NoMarkPrice)?;
        let v = inst.tick_value;
        let rate = i128::from(rate_ppb);
        let mut payments: Vec<(AccountId, Money)> = Vec::new();
        for (account, acct) in self.accounts_by_id() {
            let Some(e) = acct.exposures.get(&idx) else {
                continue;
            };
            if e.size == 0 {
                continue;
            }
            // |size·mark·v| < 2^100 (bounded by the pre-trade check) and |rate| ≤ 10^9.
            let exact = e.size * i128::from(mark.0) * v * rate;
            let pays = if exact > 0 {
                exact.div_euclid(PPB) + i128::from(exact.rem_euclid(PPB) != 0)
            } else {
                -((-exact).div_euclid(PPB))
            };
            if pays != 0 {
                payments.push((account, pays));
            }
        }
        let paid_by_longs: Money = payments
            .iter()
            .filter(|(a, _)| {
                self.accounts
                    .get(a)
                    .and_then(|x| x.exposures.get(&idx))
                    .is_some_and(|e| e.size > 0)
            })
            .map(|(_, p)| *p)
            .sum();
        let dust: Money = payments.iter().map(|(_, p)| *p).sum();
        let settlement = self.settlement;
        for (account, pays) in payments {
            self.credit(account, &settlement, -pays, BalanceReason::Funding, ts, out);
        }
        self.credit(
            FEE_ACCOUNT,
            &settlement,
            dust,
            BalanceReason::Funding,
            ts,
            out,
        );
        out.push(Event {
            ts,
            kind: EventKind::FundingApplied {
                instrument: *symbol,
                rate_ppb,
                mark,
                paid_by_longs,
                dust,
            },
        });
        self.instruments[idx].last_funding_ppb = Some(rate_ppb);
        Ok(())
    }

    /// Settlement at expiry at the index price `S`: open orders are canceled; a
    /// future's position realises `(size·S − cost)·v`; an option position receives
    /// (long) or pays (short) `size · intrinsic(S) · v` and its informational
    /// realised PnL is that minus the premium cost basis. The instrument expires.
    fn settle_expiry(&mut self, symbol: &Symbol, ts: Timestamp, out: &mut Vec<Event>) -> Outcome {
        let idx = self.instrument_index(symbol)?;
        let inst = &self.instruments[idx];
        let expiry = inst
            .spec
            .kind
            .expiry()
            .ok_or(RejectReason::WrongInstrumentKind)?;
        let status = inst
            .status
            .transition(StatusChange::Expire)
            .ok_or(RejectReason::InstrumentExpired)?;
        if ts < expiry {
            return Err(RejectReason::NotYetExpired);
        }
        let index = inst.index.ok_or(RejectReason::NoIndexPrice)?;
        let kind = inst.spec.kind;
        let v = inst.tick_value;
        let s = i128::from(index.0);
        let holders: Vec<AccountId> = self
            .accounts_by_id()
            .into_iter()
            .filter(|(_, a)| a.exposures.contains_key(&idx))
            .map(|(id, _)| id)
            .collect();
        for &account in &holders {
            self.book_cancel_all(idx, account, CancelReason::InstrumentSettled, ts, out);
        }
        let settlement = self.settlement;
        for account in holders {
            let Some(e) = self
                .accounts
                .get_mut(&account)
                .and_then(|a| a.exposures.get_mut(&idx))
            else {
                continue;
            };
            if e.size == 0 && e.cost == 0 {
                continue;
            }
            let cash = match kind {
                InstrumentKind::Option { strike, right, .. } => {
                    let payoff = e.size * right.intrinsic(s, i128::from(strike.0)) * v;
                    e.realised_pnl += payoff - e.cost * v;
                    payoff
                }
                _ => {
                    let pnl = (e.size * s - e.cost) * v;
                    e.realised_pnl += pnl;
                    pnl
                }
            };
            e.size = 0;
            e.cost = 0;
            let realised_pnl = e.realised_pnl;
            self.credit(
                account,
                &settlement,
                cash,
                BalanceReason::Settlement,
                ts,
                out,
            );
            out.push(Event {
                ts,
                kind: EventKind::PositionChanged {
                    account,
                    instrument: *symbol,
                    size: 0,
                    cost: 0,
                    realised_pnl,
                },
            });
        }
        self.instruments[idx].status = status;
        out.push(Event {
            ts,
            kind: EventKind::InstrumentStatusChanged {
                instrument: *symbol,
                status,
            },
        });
        out.push(Event {
            ts,
            kind: EventKind::InstrumentSettled {
                instrument: *symbol,
                price: index,
            },
        });
        Ok(())
    }

    // ----- state hash -----------------------------------------------------------------

    /// A hash of the whole state that is the same on every run, machine and Rust
    /// version: FNV-1a (64-bit) over a canonical traversal — the order-id sequence;
    /// each instrument in creation order (symbol, spec, status, mark, index, and its
    /// book's own [`OrderBook::state_hash`]); each account in id order (frozen flag,
    /// balances and holds by asset, exposures by instrument, client ids, reduce-only
    /// orders); every open order in id order; every withdrawal in id order; deposit
    /// and withdrawal totals by asset. Hash maps are walked sorted by key, so the order
    /// is fixed.
    pub fn state_hash(&self) -> u64 {
        let mut h = Fnv1a::new();
        h.str(self.settlement.as_str());
        h.u64(self.next_order_id);
        h.u64(self.instruments.len() as u64);
        for inst in &self.instruments {
            h.str(inst.spec.symbol.as_str());
            hash_spec(&mut h, &inst.spec);
            h.str(inst.status.code());
            h.i128(inst.mark.map_or(-1, |p| i128::from(p.0)));
            h.i128(inst.index.map_or(-1, |p| i128::from(p.0)));
            h.i128(inst.last_funding_ppb.map_or(i128::MIN, i128::from));
            h.u64(inst.book.state_hash());
            crate::risk_core::hash_instrument_risk(&mut h, &inst.risk);
        }
        h.u64(self.accounts.len() as u64);
        for (id, acct) in self.accounts_by_id() {
            h.u64(id.0);
            h.u64(u64::from(acct.frozen));
            for (name, map) in [("b", &acct.balances), ("h", &acct.held)] {
                h.str(name);
                h.u64(map.len() as u64);
                for (asset, amount) in map {
                    h.str(asset.as_str());
                    h.i128(*amount);
                }
            }
            h.u64(acct.exposures.len() as u64);
            for (idx, e) in &acct.exposures {
                h.u64(*idx as u64);
                for x in [
                    e.size,
                    e.cost,
                    e.realised_pnl,
                    e.buy_qty,
                    e.buy_notional,
                    e.sell_qty,
                    e.sell_notional,
                ] {
                    h.i128(x);
                }
            }
            h.u64(acct.client_ids.len() as u64);
            let mut client_ids: Vec<_> = acct.client_ids.iter().collect();
            client_ids.sort_unstable_by_key(|(cid, _)| **cid);
            for (cid, oid) in client_ids {
                h.str(cid.as_str());
                h.u64(oid.0);
            }
            h.u64(acct.reduce_only.len() as u64);
            for (idx, oid) in &acct.reduce_only {
                h.u64(*idx as u64);
                h.u64(oid.0);
            }
            crate::risk_core::hash_account_risk(&mut h, acct);
        }
        h.u64(self.orders.len() as u64);
        let mut orders: Vec<_> = self.orders.iter().collect();
        orders.sort_unstable_by_key(|(id, _)| **id);
        for (id, o) in orders {
            h.u64(id.0);
            h.u64(o.account.0);
            h.u64(o.instrument as u64);
            h.str(o.client_order_id.as_str());
            h.u64(u64::from(o.side == Side::Buy));
            h.i128(o.price.map_or(-1, |p| i128::from(p.0)));
            h.u64(o.leaves);
            h.u64(u64::from(o.resting));
            h.u64(u64::from(o.reduce_only));
            if o.mmp {
                h.str("mmp");
            }
            if let Some(c) = &o.oauth_client {
                h.str("client");
                h.str(c.as_str());
            }
        }
        h.u64(self.withdrawals.len() as u64);
        for (id, w) in &self.withdrawals {
            h.u64(id.0);
            h.u64(w.account.0);
            h.str(w.asset.as_str());
            h.i128(w.amount);
            h.u64(match w.state {
                WithdrawalState::Pending => 0,
                WithdrawalState::Confirmed => 1,
                WithdrawalState::Released => 2,
            });
        }
        for (name, map) in [("d", &self.deposited), ("w", &self.withdrawn)] {
            h.str(name);
            h.u64(map.len() as u64);
            for (asset, amount) in map {
                h.str(asset.as_str());
                h.i128(*amount);
            }
        }
        crate::risk_core::hash_risk_state(&mut h, &self.risk);
        h.finish()
    }
}

/// Which ends of "how much of the order fills" the pre-trade check covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckEnds {
    /// Post-only: rests whole or is rejected.
    RestOnly,
    /// GTC/GTT limit: anything from resting whole to filling whole.
    RestAndFill,
    /// IOC or market: anything from nothing (the account as it is) to filling whole.
    NowAndFill,
    /// FOK: fills whole or is rejected.
    FillOnly,
}

/// What the absorber needs to know about the order being submitted.
struct PendingOrder {
    id: OrderId,
    client_order_id: ClientOrderId,
    reduce_only: bool,
    /// Its limit as sent (`None`: market, even if the book got a band-edge limit).
    price: Option<Price>,
    mmp: bool,
    oauth_client: Option<ClientId>,
}

fn hash_spec(h: &mut Fnv1a, spec: &InstrumentSpec) {
    match spec.kind {
        InstrumentKind::Perpetual => h.u64(0),
        InstrumentKind::Future { expiry } => {
            h.u64(1);
            h.u64(expiry.0);
        }
        InstrumentKind::Option {
            expiry,
            strike,
            right,
            min_margin_ppm,
        } => {
            h.u64(2);
            h.u64(expiry.0);
            h.i128(i128::from(strike.0));
            h.u64(u64::from(right == crate::types::OptionRight::Call));
            h.u64(u64::from(min_margin_ppm));
        }
    }
    for x in [spec.tick_size_e8, spec.lot_size_e8, spec.multiplier] {
        h.u64(x);
    }
    for x in [
        spec.initial_margin_ppm,
        spec.maintenance_margin_ppm,
        spec.maker_fee_ppm,
        spec.taker_fee_ppm,
    ] {
        h.u64(u64::from(x));
    }
}
