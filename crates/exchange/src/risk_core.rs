//! The risk handlers of [`Exchange`]: pre-trade limits, circuit breakers, kill
//! switches, the dead man's switch and market-maker protection. The types are in
//! [`crate::risk`]; the rules in `docs/risk.md`.

use bourse_matching as matching;

use crate::command::PlaceOrder;
use crate::event::{CancelReason, Event, EventKind, RejectReason};
use crate::exchange::{Account, Exchange, OpenOrder};
use crate::hash::Fnv1a;
use crate::risk::{
    self, CircuitBreaker, InstrumentRisk, Issuer, MmpConfig, MmpState, MmpTrigger, OrderLimits,
    RiskState,
};
use crate::types::{
    AccountId, Asset, ClientId, FEE_ACCOUNT, InstrumentKind, InstrumentStatus, OrderId, Price,
    Quantity, Side, Symbol, Timestamp,
};

type Outcome = Result<(), RejectReason>;

/// Delta of one lot of a perpetual or future, 10^-6.
pub(crate) const LINEAR_DELTA_E6: i128 = 1_000_000;

/// The circuit breaker's allowed range for an order at some time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BreakerRange {
    pub(crate) reference: Price,
    pub(crate) lo: i64,
    pub(crate) hi: i64,
    /// The reference is new (a window starts with this order).
    pub(crate) fresh: bool,
}

/// What the breaker says about an order before it goes to the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakerCheck {
    /// It cannot trade outside the range.
    Clear,
    /// Its first trade would be at this price, outside the range: trip now.
    Near(Price),
    /// It would run through the range's edge (this price): send it clipped there.
    Far(Price),
}

fn signed(side: Side, qty: i128) -> i128 {
    match side {
        Side::Buy => qty,
        Side::Sell => -qty,
    }
}

impl Exchange {
    // ----- pre-trade limits -------------------------------------------------------

    /// The limits an order of `account` (through `client`) on `idx` meets: field by
    /// field the tightest of the instrument's and the applicable overrides.
    pub(crate) fn effective_limits(
        &self,
        account: AccountId,
        client: Option<ClientId>,
        idx: usize,
    ) -> OrderLimits {
        let mut limits = self.instruments[idx].risk.limits;
        if !self.risk.account_limits.is_empty()
            && let Some(o) = self.risk.account_limits.get(&(account, idx))
        {
            limits = limits.tightest(*o);
        }
        if let Some(client) = client
            && !self.risk.client_limits.is_empty()
            && let Some(o) = self.risk.client_limits.get(&(account, client, idx))
        {
            limits = limits.tightest(*o);
        }
        limits
    }

    /// The pre-trade limits of a new order of `qty` lots (after the reduce-only
    /// cap) whose worst price is `worst`. O(1): counters only.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check_limits(
        &self,
        acct: &Account,
        idx: usize,
        order: &PlaceOrder,
        qty: u64,
        worst: Price,
        band: Option<(i64, i64)>,
        can_rest: bool,
        limits: &OrderLimits,
    ) -> Outcome {
        if limits.max_order_quantity.is_some_and(|m| qty > m) {
            return Err(RejectReason::MaxOrderQuantity);
        }
        if let (Some((lo, hi)), crate::command::OrderKind::Limit { price }) = (band, order.kind)
            && (price.0 < lo || price.0 > hi)
        {
            return Err(RejectReason::PriceBand);
        }
        if let Some(max) = limits.max_order_notional {
            let notional = i128::from(qty) * i128::from(worst.0) * self.instruments[idx].tick_value;
            if notional > max {
                return Err(RejectReason::MaxOrderNotional);
            }
        }
        let e = acct.exposures.get(&idx).copied().unwrap_or_default();
        if can_rest && limits.max_open_orders.is_some_and(|m| e.open_orders >= m) {
            return Err(RejectReason::MaxOpenOrders);
        }
        if let Some(max) = limits.max_position
            && !order.reduce_only
        {
            let q = i128::from(qty);
            let after = match order.side {
                Side::Buy => e.size + e.buy_qty + q,
                Side::Sell => -(e.size - e.sell_qty - q),
            };
            if after > i128::from(max) {
                return Err(RejectReason::PositionLimit);
            }
        }
        Ok(())
    }

    /// The limits of an amend to `new_price` × `new_leaves`: the band if the price
    /// changes, the quantity and position limits if the quantity grows, the
    /// notional limit if the notional grows. The account's limits apply (an amend
    /// names no OAuth client).
    pub(crate) fn check_amend_limits(
        &self,
        acct: &Account,
        order: &OpenOrder,
        idx: usize,
        new_price: Price,
        new_leaves: u64,
    ) -> Outcome {
        let limits = self.effective_limits(order.account, order.oauth_client, idx);
        if limits.is_none() {
            return Ok(());
        }
        let inst = &self.instruments[idx];
        let old_price = order.price.unwrap_or(new_price);
        if let (Some(bps), Some(mark)) = (limits.price_band_bps, inst.mark)
            && new_price != old_price
        {
            let (lo, hi) = risk::band(mark, bps);
            if new_price.0 < lo || new_price.0 > hi {
                return Err(RejectReason::PriceBand);
            }
        }
        let grows = new_leaves > order.leaves;
        if grows && limits.max_order_quantity.is_some_and(|m| new_leaves > m) {
            return Err(RejectReason::MaxOrderQuantity);
        }
        if let Some(max) = limits.max_order_notional {
            let old = i128::from(order.leaves) * i128::from(old_price.0);
            let new = i128::from(new_leaves) * i128::from(new_price.0);
            if new > old && new * inst.tick_value > max {
                return Err(RejectReason::MaxOrderNotional);
            }
        }
        if let Some(max) = limits.max_position
            && grows
            && !order.reduce_only
        {
            let e = acct.exposures.get(&idx).copied().unwrap_or_default();
            let extra = i128::from(new_leaves - order.leaves);
            let after = match order.side {
                Side::Buy => e.size + e.buy_qty + extra,
                Side::Sell => -(e.size - e.sell_qty - extra),
            };
            if after > i128::from(max) {
                return Err(RejectReason::PositionLimit);
            }
        }
        Ok(())
    }

    pub(crate) fn set_instrument_limits(
        &mut self,
        symbol: &Symbol,
        limits: OrderLimits,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let idx = self.instrument_index(symbol)?;
        if !limits.valid() {
            return Err(RejectReason::InvalidRiskConfig);
        }
        self.instruments[idx].risk.limits = limits;
        out.push(Event {
            ts,
            kind: EventKind::InstrumentLimitsSet {
                instrument: *symbol,
                limits,
            },
        });
        Ok(())
    }

    pub(crate) fn set_account_limits(
        &mut self,
        account: AccountId,
        client: Option<ClientId>,
        symbol: &Symbol,
        limits: Option<OrderLimits>,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if account == FEE_ACCOUNT {
            return Err(RejectReason::FeeAccount);
        }
        let idx = self.instrument_index(symbol)?;
        if limits.is_some_and(|l| !l.valid()) {
            return Err(RejectReason::InvalidRiskConfig);
        }
        let instrument = *symbol;
        let kind = match client {
            None => {
                match limits {
                    Some(l) => self.risk.account_limits.insert((account, idx), l),
                    None => self.risk.account_limits.remove(&(account, idx)),
                };
                EventKind::AccountLimitsSet {
                    account,
                    instrument,
                    limits,
                }
            }
            Some(client) => {
                match limits {
                    Some(l) => self.risk.client_limits.insert((account, client, idx), l),
                    None => self.risk.client_limits.remove(&(account, client, idx)),
                };
                EventKind::ClientLimitsSet {
                    account,
                    client,
                    instrument,
                    limits,
                }
            }
        };
        out.push(Event { ts, kind });
        Ok(())
    }

    // ----- circuit breaker --------------------------------------------------------

    /// The breaker's range for an order at `ts`, if a breaker is configured and a
    /// reference exists: the current window's reference, or — once the window has
    /// passed (or none started) — the last trade since the breaker was configured,
    /// else the mark. Pure: the new reference is committed only with the order.
    pub(crate) fn breaker_range(&self, idx: usize, ts: Timestamp) -> Option<BreakerRange> {
        let inst = &self.instruments[idx];
        let breaker = inst.risk.breaker?;
        let (reference, fresh) = match inst.risk.reference {
            Some((price, start)) if ts.0 < start.0.saturating_add(breaker.window) => (price, false),
            _ => (inst.risk.last_trade.or(inst.mark)?, true),
        };
        let (lo, hi) = risk::band(reference, breaker.max_move_bps);
        Some(BreakerRange {
            reference,
            lo,
            hi,
            fresh,
        })
    }

    pub(crate) fn commit_breaker_reference(
        &mut self,
        idx: usize,
        range: &BreakerRange,
        ts: Timestamp,
    ) {
        if range.fresh {
            self.instruments[idx].risk.reference = Some((range.reference, ts));
        }
    }

    /// Where a taker on `side` with limit `limit` (`None`: market) for `qty` lots
    /// would trade relative to the range. The first trade is at the best opposite
    /// price (whoever's order it is); if the limit lies beyond the range's far edge
    /// the opposite side is walked (skipping the account's own orders, which
    /// self-trade prevention never trades) to see whether the order would fill
    /// inside the range or run into a price beyond it.
    pub(crate) fn breaker_precheck(
        &self,
        idx: usize,
        account: AccountId,
        side: Side,
        qty: u64,
        limit: Option<Price>,
        range: &BreakerRange,
    ) -> BreakerCheck {
        let book = &self.instruments[idx].book;
        let opposite = side.opposite();
        let Some(best) = book.best(opposite) else {
            return BreakerCheck::Clear;
        };
        let within = |p: i64| {
            limit.is_none_or(|l| match side {
                Side::Buy => p <= l.0,
                Side::Sell => p >= l.0,
            })
        };
        let beyond_far = |p: i64| match side {
            Side::Buy => p > range.hi,
            Side::Sell => p < range.lo,
        };
        if !within(best.0) {
            return BreakerCheck::Clear;
        }
        if best.0 < range.lo || best.0 > range.hi {
            return BreakerCheck::Near(best);
        }
        if limit.is_some_and(|l| !beyond_far(l.0)) {
            return BreakerCheck::Clear;
        }
        let edge = Price(match side {
            Side::Buy => range.hi,
            Side::Sell => range.lo,
        });
        let mut own = std::collections::BTreeMap::new();
        for o in book.open_orders(account).filter(|o| o.side == opposite) {
            *own.entry(o.price).or_insert(0u64) += o.leaves.0;
        }
        let mut levels = Vec::new();
        book.depth_into(opposite, usize::MAX, &mut levels);
        let mut need = qty;
        for level in levels {
            let others = level
                .quantity
                .0
                .saturating_sub(own.get(&level.price).copied().unwrap_or(0));
            if others == 0 {
                continue;
            }
            if beyond_far(level.price.0) {
                return if within(level.price.0) {
                    BreakerCheck::Far(edge)
                } else {
                    BreakerCheck::Clear
                };
            }
            if others >= need {
                return BreakerCheck::Clear;
            }
            need -= others;
        }
        BreakerCheck::Clear
    }

    /// Halts the instrument for the breaker's cool-off.
    fn trip(
        &mut self,
        idx: usize,
        reference: Price,
        price: Price,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) {
        let inst = &mut self.instruments[idx];
        let cool_off = inst.risk.breaker.map_or(0, |b| b.cool_off);
        let halted_until = Timestamp(ts.0.saturating_add(cool_off));
        inst.risk.halted_until = Some(halted_until);
        inst.risk.reference = None;
        inst.status = InstrumentStatus::Halted;
        let instrument = inst.spec.symbol;
        out.push(Event {
            ts,
            kind: EventKind::CircuitBreakerTripped {
                instrument,
                reference,
                price,
                halted_until,
            },
        });
        out.push(Event {
            ts,
            kind: EventKind::InstrumentStatusChanged {
                instrument,
                status: InstrumentStatus::Halted,
            },
        });
    }

    /// The order's first trade would be outside the range: it is accepted and
    /// canceled whole (`circuit_breaker`) without touching the book, and the
    /// instrument halts.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn trip_before_matching(
        &mut self,
        order: &PlaceOrder,
        idx: usize,
        qty: u64,
        limit: Option<Price>,
        range: &BreakerRange,
        price: Price,
        out: &mut Vec<Event>,
    ) {
        let ts = order.ts;
        let order_id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        out.push(Event {
            ts,
            kind: EventKind::OrderAccepted {
                order_id,
                account: order.account,
                instrument: order.instrument,
                client_order_id: order.client_order_id,
                side: order.side,
                price: limit,
                quantity: Quantity(qty),
                reduce_only: order.reduce_only,
            },
        });
        out.push(Event {
            ts,
            kind: EventKind::OrderCanceled {
                order_id,
                account: order.account,
                quantity: Quantity(qty),
                reason: CancelReason::CircuitBreaker,
            },
        });
        self.trip(idx, range.reference, price, ts, out);
    }

    /// After a clipped order matched: if its rest was canceled and the best
    /// opposite price is now beyond the range but within the order's own limit,
    /// the order would have traded there: the rest's cancel becomes
    /// `circuit_breaker` and the instrument halts.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn trip_after_matching(
        &mut self,
        idx: usize,
        order_id: OrderId,
        side: Side,
        limit: Option<Price>,
        range: &BreakerRange,
        start: usize,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) {
        let Some(pos) = out[start..].iter().rposition(|e| {
            matches!(e.kind, EventKind::OrderCanceled { order_id: id, reason: CancelReason::Unfilled, .. } if id == order_id)
        }) else {
            return;
        };
        let Some(best) = self.instruments[idx].book.best(side.opposite()) else {
            return;
        };
        let (beyond, within) = match side {
            Side::Buy => (best.0 > range.hi, limit.is_none_or(|l| best <= l)),
            Side::Sell => (best.0 < range.lo, limit.is_none_or(|l| best >= l)),
        };
        if !(beyond && within) {
            return;
        }
        if let EventKind::OrderCanceled { reason, .. } = &mut out[start + pos].kind {
            *reason = CancelReason::CircuitBreaker;
        }
        self.trip(idx, range.reference, best, ts, out);
    }

    pub(crate) fn set_circuit_breaker(
        &mut self,
        symbol: &Symbol,
        breaker: Option<CircuitBreaker>,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let idx = self.instrument_index(symbol)?;
        if breaker.is_some_and(|b| !b.valid()) {
            return Err(RejectReason::InvalidRiskConfig);
        }
        let r = &mut self.instruments[idx].risk;
        r.breaker = breaker;
        r.reference = None;
        r.last_trade = None;
        out.push(Event {
            ts,
            kind: EventKind::CircuitBreakerSet {
                instrument: *symbol,
                breaker,
            },
        });
        Ok(())
    }

    // ----- time -------------------------------------------------------------------

    /// Resumes instruments whose breaker cool-off ended (creation order), lifts MMP
    /// freezes that ended (by account, then group), fires due dead man's switches
    /// (by deadline, then account).
    pub(crate) fn tick(&mut self, ts: Timestamp, out: &mut Vec<Event>) {
        for inst in &mut self.instruments {
            if let Some(until) = inst.risk.halted_until
                && ts >= until
                && inst.status == InstrumentStatus::Halted
            {
                inst.risk.halted_until = None;
                inst.risk.reference = None;
                inst.status = InstrumentStatus::Active;
                out.push(Event {
                    ts,
                    kind: EventKind::InstrumentStatusChanged {
                        instrument: inst.spec.symbol,
                        status: InstrumentStatus::Active,
                    },
                });
            }
        }
        for (&(account, group), st) in &mut self.risk.mmp {
            if let Some(Some(until)) = st.frozen
                && ts >= until
            {
                *st = MmpState::new(st.config);
                out.push(Event {
                    ts,
                    kind: EventKind::MmpReset { account, group },
                });
            }
        }
        while let Some(&(deadline, account)) = self.risk.cancel_after_due.first() {
            if deadline > ts {
                break;
            }
            self.risk.cancel_after_due.pop_first();
            self.risk.cancel_after.remove(&account);
            out.push(Event {
                ts,
                kind: EventKind::DeadManSwitchFired { account, deadline },
            });
            self.cancel_everything(account, CancelReason::DeadManSwitch, ts, out);
        }
    }

    /// Cancels every open order of the account, instrument by instrument.
    pub(crate) fn cancel_everything(
        &mut self,
        account: AccountId,
        reason: CancelReason,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) {
        let Some(acct) = self.accounts.get(&account) else {
            return;
        };
        let instruments: Vec<usize> = acct
            .exposures
            .iter()
            .filter(|(_, e)| e.open_orders > 0)
            .map(|(&idx, _)| idx)
            .collect();
        for idx in instruments {
            self.book_cancel_all(idx, account, reason, ts, out);
        }
    }

    // ----- kill switches and the dead man's switch --------------------------------

    pub(crate) fn set_kill_switch(
        &mut self,
        active: bool,
        cancel_resting: bool,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if !active && !self.risk.kill_switch {
            return Err(RejectReason::KillSwitchUnchanged);
        }
        self.risk.kill_switch = active;
        let cancel_resting = active && cancel_resting;
        out.push(Event {
            ts,
            kind: EventKind::KillSwitchSet {
                active,
                cancel_resting,
            },
        });
        if cancel_resting {
            let accounts: Vec<AccountId> = self
                .accounts_by_id()
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            for account in accounts {
                self.cancel_everything(account, CancelReason::KillSwitch, ts, out);
            }
        }
        Ok(())
    }

    pub(crate) fn set_account_kill_switch(
        &mut self,
        account: AccountId,
        active: bool,
        issued_by: Issuer,
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
        if active {
            // An admin's switch stays an admin's.
            let issuer = match acct.kill_switch {
                Some(Issuer::Admin) => Issuer::Admin,
                _ => issued_by,
            };
            acct.kill_switch = Some(issuer);
        } else {
            match acct.kill_switch {
                None => return Err(RejectReason::KillSwitchUnchanged),
                Some(Issuer::Admin) if issued_by != Issuer::Admin => {
                    return Err(RejectReason::KillSwitchAdminOnly);
                }
                _ => acct.kill_switch = None,
            }
        }
        out.push(Event {
            ts,
            kind: EventKind::AccountKillSwitchSet {
                account,
                active,
                issued_by,
            },
        });
        if active {
            self.cancel_everything(account, CancelReason::AccountKillSwitch, ts, out);
        }
        Ok(())
    }

    pub(crate) fn cancel_after(
        &mut self,
        account: AccountId,
        timeout: u64,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if account == FEE_ACCOUNT {
            return Err(RejectReason::FeeAccount);
        }
        if !self.accounts.contains_key(&account) {
            return Err(RejectReason::UnknownAccount);
        }
        if let Some(old) = self.risk.cancel_after.remove(&account) {
            self.risk.cancel_after_due.remove(&(old, account));
        }
        let deadline = (timeout > 0).then(|| Timestamp(ts.0.saturating_add(timeout)));
        if let Some(deadline) = deadline {
            self.risk.cancel_after.insert(account, deadline);
            self.risk.cancel_after_due.insert((deadline, account));
        }
        out.push(Event {
            ts,
            kind: EventKind::CancelAfterSet { account, deadline },
        });
        Ok(())
    }

    // ----- market-maker protection -----------------------------------------------

    /// An MMP order needs a group and the account's MMP config on it, not frozen.
    pub(crate) fn check_mmp(&self, account: AccountId, idx: usize, ts: Timestamp) -> Outcome {
        let group = self.instruments[idx]
            .risk
            .group
            .ok_or(RejectReason::MmpNotConfigured)?;
        let st = self
            .risk
            .mmp
            .get(&(account, group))
            .ok_or(RejectReason::MmpNotConfigured)?;
        if st.frozen_at(ts) {
            return Err(RejectReason::MmpFrozen);
        }
        Ok(())
    }

    /// Counts one command's MMP fills (in trade order) and fires the limits they
    /// reach: the account's MMP orders in the group are canceled and the group
    /// freezes. Every fill of the command counts, also those after the one that
    /// reached a limit (the book matched them already).
    pub(crate) fn process_mmp_fills(&mut self, ts: Timestamp, out: &mut Vec<Event>) {
        let mut fills = std::mem::take(&mut self.mmp_fills);
        let mut fired: Vec<(AccountId, Asset, MmpTrigger, Option<Timestamp>)> = Vec::new();
        for &(account, idx, side, qty) in &fills {
            let inst = &self.instruments[idx];
            let Some(group) = inst.risk.group else {
                continue;
            };
            let (delta, vega) = if inst.spec.kind.is_linear() {
                (LINEAR_DELTA_E6, 0)
            } else {
                inst.risk
                    .greeks
                    .map_or((0, 0), |(d, v)| (i128::from(d), i128::from(v)))
            };
            let Some(st) = self.risk.mmp.get_mut(&(account, group)) else {
                continue;
            };
            if st.frozen_at(ts) {
                continue;
            }
            if st.frozen.is_some() {
                // An ended freeze no Tick has lifted yet.
                *st = MmpState::new(st.config);
                out.push(Event {
                    ts,
                    kind: EventKind::MmpReset { account, group },
                });
            }
            let c = st.config;
            if st
                .window_start
                .is_none_or(|s| ts.0 >= s.0.saturating_add(c.interval))
            {
                *st = MmpState::new(c);
                st.window_start = Some(ts);
            }
            let q = i128::from(qty);
            st.quantity += q;
            st.delta_e6 += signed(side, q) * delta;
            st.vega_e6 += signed(side, q) * vega;
            let trigger = if c.max_quantity.is_some_and(|m| st.quantity >= i128::from(m)) {
                Some(MmpTrigger::Quantity)
            } else if c.max_delta_e6.is_some_and(|m| st.delta_e6.abs() >= m) {
                Some(MmpTrigger::Delta)
            } else if c.max_vega_e6.is_some_and(|m| st.vega_e6.abs() >= m) {
                Some(MmpTrigger::Vega)
            } else {
                None
            };
            if let Some(trigger) = trigger {
                let until =
                    (c.freeze_for > 0).then(|| Timestamp(ts.0.saturating_add(c.freeze_for)));
                st.frozen = Some(until);
                fired.push((account, group, trigger, until));
            }
        }
        fills.clear();
        self.mmp_fills = fills;
        for (account, group, trigger, frozen_until) in fired {
            out.push(Event {
                ts,
                kind: EventKind::MmpTriggered {
                    account,
                    group,
                    trigger,
                    frozen_until,
                },
            });
            self.cancel_mmp_orders(account, group, ts, out);
        }
    }

    /// Cancels the account's open MMP orders on the group's instruments (found
    /// through the books' per-account index: this runs only when MMP fires, so the
    /// hot path keeps no MMP index of its own).
    fn cancel_mmp_orders(
        &mut self,
        account: AccountId,
        group: Asset,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) {
        let mut orders: Vec<(usize, OrderId)> = Vec::new();
        for (idx, inst) in self.instruments.iter().enumerate() {
            if inst.risk.group != Some(group) {
                continue;
            }
            orders.extend(
                inst.book
                    .open_orders(account)
                    .filter(|o| self.orders.get(&o.id).is_some_and(|x| x.mmp))
                    .map(|o| (idx, o.id)),
            );
        }
        orders.sort_unstable();
        for (idx, order_id) in orders {
            // A resting order: the book cannot refuse its cancel.
            let _ = self.book_command(
                idx,
                &matching::Command::Cancel { order_id },
                CancelReason::Mmp,
                ts,
                out,
            );
        }
    }

    pub(crate) fn set_instrument_group(
        &mut self,
        symbol: &Symbol,
        group: Option<Asset>,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let idx = self.instrument_index(symbol)?;
        self.instruments[idx].risk.group = group;
        out.push(Event {
            ts,
            kind: EventKind::InstrumentGroupSet {
                instrument: *symbol,
                group,
            },
        });
        Ok(())
    }

    pub(crate) fn set_mmp_config(
        &mut self,
        account: AccountId,
        group: Asset,
        config: Option<MmpConfig>,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if account == FEE_ACCOUNT {
            return Err(RejectReason::FeeAccount);
        }
        if !self.accounts.contains_key(&account) {
            return Err(RejectReason::UnknownAccount);
        }
        if config.is_some_and(|c| !c.valid()) {
            return Err(RejectReason::InvalidRiskConfig);
        }
        match config {
            Some(c) => self.risk.mmp.insert((account, group), MmpState::new(c)),
            None => self.risk.mmp.remove(&(account, group)),
        };
        out.push(Event {
            ts,
            kind: EventKind::MmpConfigSet {
                account,
                group,
                config,
            },
        });
        Ok(())
    }

    pub(crate) fn reset_mmp(
        &mut self,
        account: AccountId,
        group: Asset,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let st = self
            .risk
            .mmp
            .get_mut(&(account, group))
            .ok_or(RejectReason::MmpNotConfigured)?;
        *st = MmpState::new(st.config);
        out.push(Event {
            ts,
            kind: EventKind::MmpReset { account, group },
        });
        Ok(())
    }

    pub(crate) fn set_greeks(
        &mut self,
        symbol: &Symbol,
        delta_e6: i64,
        vega_e6: i64,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let idx = self.instrument_index(symbol)?;
        if !matches!(
            self.instruments[idx].spec.kind,
            InstrumentKind::Option { .. }
        ) {
            return Err(RejectReason::WrongInstrumentKind);
        }
        self.instruments[idx].risk.greeks = Some((delta_e6, vega_e6));
        out.push(Event {
            ts,
            kind: EventKind::GreeksSet {
                instrument: *symbol,
                delta_e6,
                vega_e6,
            },
        });
        Ok(())
    }
}

// ----- state hash -------------------------------------------------------------------
//
// Risk state is hashed only where it differs from the default, so an exchange that
// never configured any has exactly the hash it had before these features.

fn hash_opt(h: &mut Fnv1a, x: Option<i128>) {
    match x {
        None => h.u64(0),
        Some(v) => {
            h.u64(1);
            h.i128(v);
        }
    }
}

fn hash_limits(h: &mut Fnv1a, l: &OrderLimits) {
    hash_opt(h, l.price_band_bps.map(i128::from));
    hash_opt(h, l.max_order_quantity.map(i128::from));
    hash_opt(h, l.max_order_notional);
    hash_opt(h, l.max_open_orders.map(i128::from));
    hash_opt(h, l.max_position.map(i128::from));
}

pub(crate) fn hash_instrument_risk(h: &mut Fnv1a, r: &InstrumentRisk) {
    if r.is_default() {
        return;
    }
    h.str("risk");
    hash_limits(h, &r.limits);
    match r.breaker {
        None => h.u64(0),
        Some(b) => {
            h.u64(1);
            h.u64(u64::from(b.max_move_bps));
            h.u64(b.window);
            h.u64(b.cool_off);
        }
    }
    match r.reference {
        None => h.u64(0),
        Some((p, t)) => {
            h.u64(1);
            h.i128(i128::from(p.0));
            h.u64(t.0);
        }
    }
    hash_opt(h, r.last_trade.map(|p| i128::from(p.0)));
    hash_opt(h, r.halted_until.map(|t| i128::from(t.0)));
    match r.group {
        None => h.u64(0),
        Some(g) => {
            h.u64(1);
            h.str(g.as_str());
        }
    }
    match r.greeks {
        None => h.u64(0),
        Some((d, v)) => {
            h.u64(1);
            h.i128(i128::from(d));
            h.i128(i128::from(v));
        }
    }
}

pub(crate) fn hash_account_risk(h: &mut Fnv1a, acct: &Account) {
    if let Some(issuer) = acct.kill_switch {
        h.str("kill");
        h.u64(match issuer {
            Issuer::Admin => 1,
            Issuer::Owner => 2,
        });
    }
}

pub(crate) fn hash_risk_state(h: &mut Fnv1a, r: &RiskState) {
    if r.is_default() {
        return;
    }
    h.str("risk");
    h.u64(r.account_limits.len() as u64);
    for ((account, idx), l) in &r.account_limits {
        h.u64(account.0);
        h.u64(*idx as u64);
        hash_limits(h, l);
    }
    h.u64(r.client_limits.len() as u64);
    for ((account, client, idx), l) in &r.client_limits {
        h.u64(account.0);
        h.str(client.as_str());
        h.u64(*idx as u64);
        hash_limits(h, l);
    }
    h.u64(u64::from(r.kill_switch));
    h.u64(r.cancel_after.len() as u64);
    for (account, deadline) in &r.cancel_after {
        h.u64(account.0);
        h.u64(deadline.0);
    }
    h.u64(r.mmp.len() as u64);
    for ((account, group), st) in &r.mmp {
        h.u64(account.0);
        h.str(group.as_str());
        let c = &st.config;
        h.u64(c.interval);
        hash_opt(h, c.max_quantity.map(i128::from));
        hash_opt(h, c.max_delta_e6);
        hash_opt(h, c.max_vega_e6);
        h.u64(c.freeze_for);
        hash_opt(h, st.window_start.map(|t| i128::from(t.0)));
        h.i128(st.quantity);
        h.i128(st.delta_e6);
        h.i128(st.vega_e6);
        match st.frozen {
            None => h.u64(0),
            Some(None) => h.u64(1),
            Some(Some(t)) => {
                h.u64(2);
                h.u64(t.0);
            }
        }
    }
    // Last, and only when set, so that every other risk state hashes as before.
    if let Some(fund) = r.insurance_fund {
        h.str("insurance_fund");
        h.u64(fund.0);
    }
}
