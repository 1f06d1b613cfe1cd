//! Pre-trade limits, circuit breakers, kill switches, the dead man's switch and
//! market-maker protection (docs/risk.md): for each, a stream that should trigger it
//! does, with the expected event or rejection code, and one that should not doesn't.

use bourse_exchange::*;

use crate::fixture::*;

pub fn btc() -> Asset {
    Asset::parse("BTC").unwrap()
}

pub fn limits(f: impl FnOnce(&mut OrderLimits)) -> OrderLimits {
    let mut l = OrderLimits::default();
    f(&mut l);
    l
}

pub fn set_limits(ex: &mut Exchange, l: OrderLimits) {
    ok(
        ex,
        Command::SetInstrumentLimits {
            instrument: perp(),
            limits: l,
            ts: Timestamp(1),
        },
    );
}

/// A market with four funded accounts.
pub fn funded() -> Exchange {
    let mut ex = market();
    for a in 1..=4 {
        deposit(&mut ex, a, 10_000_000 * USDC);
    }
    ex
}

pub fn at(cmd: Command, ts: u64) -> Command {
    match cmd {
        Command::PlaceOrder(mut o) => {
            o.ts = Timestamp(ts);
            Command::PlaceOrder(o)
        }
        other => other,
    }
}

pub fn with(cmd: Command, options: OrderOptions) -> Command {
    match cmd {
        Command::PlaceOrder(order) => Command::PlaceOrderWith { order, options },
        other => other,
    }
}

pub fn mmp() -> OrderOptions {
    OrderOptions {
        oauth_client: None,
        mmp: true,
    }
}

fn via(client: &str) -> OrderOptions {
    OrderOptions {
        oauth_client: ClientId::parse(client),
        mmp: false,
    }
}

pub fn kinds(events: &[Event]) -> Vec<&EventKind> {
    events.iter().map(|e| &e.kind).collect()
}

pub fn canceled(events: &[Event]) -> Vec<(OrderId, CancelReason)> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::OrderCanceled {
                order_id, reason, ..
            } => Some((order_id, reason)),
            _ => None,
        })
        .collect()
}

pub fn traded(events: &[Event]) -> Vec<(i64, u64)> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::OrderTraded {
                price, quantity, ..
            } => Some((price.0, quantity.0)),
            _ => None,
        })
        .collect()
}

fn status(ex: &Exchange) -> InstrumentStatus {
    ex.instrument(&perp()).unwrap().status
}

// ----- pre-trade limits ---------------------------------------------------------------

#[test]
fn max_order_quantity() {
    let mut ex = funded();
    set_limits(&mut ex, limits(|l| l.max_order_quantity = Some(10)));
    ok(&mut ex, limit(1, perp(), "a", Side::Buy, 49_000, 10));
    rejected(
        &mut ex,
        limit(1, perp(), "b", Side::Buy, 49_000, 11),
        RejectReason::MaxOrderQuantity,
    );
    assert_eq!(RejectReason::MaxOrderQuantity.code(), "max_order_quantity");
}

#[test]
fn price_band_rejects_limits_and_bounds_market_orders() {
    let mut ex = funded();
    // 2% around the mark of 50_000: 49_000..=51_000.
    set_limits(&mut ex, limits(|l| l.price_band_bps = Some(200)));
    ok(&mut ex, limit(1, perp(), "in-hi", Side::Sell, 51_000, 2));
    ok(&mut ex, limit(1, perp(), "in-lo", Side::Buy, 49_000, 2));
    rejected(
        &mut ex,
        limit(1, perp(), "out-hi", Side::Sell, 51_001, 2),
        RejectReason::PriceBand,
    );
    rejected(
        &mut ex,
        limit(1, perp(), "out-lo", Side::Buy, 48_999, 2),
        RejectReason::PriceBand,
    );
    assert_eq!(RejectReason::PriceBand.code(), "price_band");
    // A market buy trades the ask inside the band but not one beyond it: that ask
    // rested before the band was set.
    set_limits(&mut ex, OrderLimits::default());
    ok(&mut ex, limit(2, perp(), "far", Side::Sell, 52_000, 5));
    set_limits(&mut ex, limits(|l| l.price_band_bps = Some(200)));
    let events = ok(&mut ex, market_order(3, perp(), "m", Side::Buy, 6));
    assert_eq!(traded(&events), vec![(51_000, 2)]);
    assert_eq!(canceled(&events)[0].1, CancelReason::Unfilled);
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::OrderAccepted { price: None, .. }))
    );
    // Without the band the same order sweeps on.
    set_limits(&mut ex, OrderLimits::default());
    let events = ok(&mut ex, market_order(3, perp(), "m2", Side::Buy, 6));
    assert_eq!(traded(&events), vec![(52_000, 5)]);
}

#[test]
fn max_order_notional() {
    let mut ex = funded();
    // 10 lots at 50_000 ticks × 10_000 micro-units = 5_000 USDC.
    set_limits(
        &mut ex,
        limits(|l| l.max_order_notional = Some(5_000 * USDC)),
    );
    ok(&mut ex, limit(1, perp(), "a", Side::Buy, 50_000, 10));
    rejected(
        &mut ex,
        limit(1, perp(), "b", Side::Buy, 50_001, 10),
        RejectReason::MaxOrderNotional,
    );
}

#[test]
fn max_open_orders_counts_resting_orders() {
    let mut ex = funded();
    set_limits(&mut ex, limits(|l| l.max_open_orders = Some(2)));
    let first = accepted_id(&ok(&mut ex, limit(1, perp(), "a", Side::Buy, 49_000, 1)));
    ok(&mut ex, limit(1, perp(), "b", Side::Buy, 49_001, 1));
    rejected(
        &mut ex,
        limit(1, perp(), "c", Side::Buy, 49_002, 1),
        RejectReason::MaxOpenOrders,
    );
    // Another account, and orders that cannot rest, are not limited.
    ok(&mut ex, limit(2, perp(), "c", Side::Buy, 49_002, 1));
    let mut ioc = order(1, perp(), "ioc", Side::Sell, 60_000, 1);
    ioc.time_in_force = TimeInForce::Ioc;
    ok(&mut ex, Command::PlaceOrder(ioc));
    // Once one leaves (canceled or filled), there is room again.
    ok(
        &mut ex,
        Command::CancelOrder {
            account: AccountId(1),
            order_id: first,
            ts: Timestamp(3),
        },
    );
    ok(&mut ex, limit(1, perp(), "c", Side::Buy, 49_002, 1));
    // Account 2's bid at 49_002 came first, then account 1's.
    ok(&mut ex, market_order(3, perp(), "hit", Side::Sell, 2));
    ok(&mut ex, limit(1, perp(), "d", Side::Buy, 49_003, 1));
}

#[test]
fn position_limit_counts_resting_orders_on_the_increasing_side() {
    let mut ex = funded();
    set_limits(&mut ex, limits(|l| l.max_position = Some(10)));
    open(&mut ex, perp(), 1, 2, 50_000, 6, "p");
    // Long 6: a resting buy of 4 is fine, one more lot is not.
    ok(&mut ex, limit(1, perp(), "b1", Side::Buy, 49_000, 4));
    rejected(
        &mut ex,
        limit(1, perp(), "b2", Side::Buy, 49_000, 1),
        RejectReason::PositionLimit,
    );
    // Selling is reducing: up to 16 lots (long 6 → short 10).
    ok(&mut ex, limit(1, perp(), "s1", Side::Sell, 51_000, 16));
    rejected(
        &mut ex,
        limit(1, perp(), "s2", Side::Sell, 51_000, 1),
        RejectReason::PositionLimit,
    );
    // Short 6, the other account: the same on its side.
    rejected(
        &mut ex,
        limit(2, perp(), "s3", Side::Sell, 51_000, 5),
        RejectReason::PositionLimit,
    );
    ok(&mut ex, limit(2, perp(), "s4", Side::Sell, 51_000, 4));
}

#[test]
fn overrides_only_tighten_and_client_overrides_apply_to_their_orders() {
    let mut ex = funded();
    set_limits(&mut ex, limits(|l| l.max_order_quantity = Some(10)));
    // A looser account override does not loosen.
    ok(
        &mut ex,
        Command::SetAccountLimits {
            account: AccountId(1),
            instrument: perp(),
            limits: Some(limits(|l| l.max_order_quantity = Some(100))),
            ts: Timestamp(1),
        },
    );
    rejected(
        &mut ex,
        limit(1, perp(), "a", Side::Buy, 49_000, 11),
        RejectReason::MaxOrderQuantity,
    );
    // A tighter one tightens, for that account only.
    ok(
        &mut ex,
        Command::SetAccountLimits {
            account: AccountId(1),
            instrument: perp(),
            limits: Some(limits(|l| l.max_order_quantity = Some(5))),
            ts: Timestamp(1),
        },
    );
    rejected(
        &mut ex,
        limit(1, perp(), "a", Side::Buy, 49_000, 6),
        RejectReason::MaxOrderQuantity,
    );
    ok(&mut ex, limit(2, perp(), "a", Side::Buy, 49_000, 10));
    // A partner app's limits apply to orders sent through it.
    ok(
        &mut ex,
        Command::SetClientLimits {
            account: AccountId(1),
            client: ClientId::parse("partner").unwrap(),
            instrument: perp(),
            limits: Some(limits(|l| l.max_order_quantity = Some(2))),
            ts: Timestamp(1),
        },
    );
    rejected(
        &mut ex,
        with(limit(1, perp(), "p", Side::Buy, 49_000, 3), via("partner")),
        RejectReason::MaxOrderQuantity,
    );
    ok(
        &mut ex,
        with(limit(1, perp(), "p", Side::Buy, 49_000, 2), via("partner")),
    );
    ok(
        &mut ex,
        with(limit(1, perp(), "q", Side::Buy, 49_000, 5), via("other")),
    );
    ok(&mut ex, limit(1, perp(), "r", Side::Buy, 49_000, 5));
    // Removing the account override leaves the instrument's.
    ok(
        &mut ex,
        Command::SetAccountLimits {
            account: AccountId(1),
            instrument: perp(),
            limits: None,
            ts: Timestamp(1),
        },
    );
    ok(&mut ex, limit(1, perp(), "s", Side::Buy, 49_000, 10));
}

#[test]
fn amends_meet_the_limits() {
    let mut ex = funded();
    set_limits(
        &mut ex,
        limits(|l| {
            l.price_band_bps = Some(200);
            l.max_order_quantity = Some(10);
        }),
    );
    let id = accepted_id(&ok(&mut ex, limit(1, perp(), "a", Side::Buy, 49_500, 5)));
    let amend = |price: Option<i64>, qty: Option<u64>| Command::AmendOrder {
        account: AccountId(1),
        order_id: id,
        price: price.map(Price),
        quantity: qty.map(Quantity),
        ts: Timestamp(3),
    };
    rejected(&mut ex, amend(Some(48_000), None), RejectReason::PriceBand);
    rejected(
        &mut ex,
        amend(None, Some(11)),
        RejectReason::MaxOrderQuantity,
    );
    ok(&mut ex, amend(Some(49_100), Some(10)));
}

#[test]
fn an_amend_meets_the_limits_of_the_client_the_order_came_through() {
    let mut ex = funded();
    set_limits(&mut ex, limits(|l| l.max_order_quantity = Some(10)));
    ok(
        &mut ex,
        Command::SetClientLimits {
            account: AccountId(1),
            client: ClientId::parse("partner").unwrap(),
            instrument: perp(),
            limits: Some(limits(|l| l.max_order_quantity = Some(2))),
            ts: Timestamp(1),
        },
    );
    let via_partner = accepted_id(&ok(
        &mut ex,
        with(limit(1, perp(), "p", Side::Buy, 49_000, 2), via("partner")),
    ));
    let direct = accepted_id(&ok(&mut ex, limit(1, perp(), "d", Side::Buy, 49_000, 2)));
    let amend = |order_id, qty| Command::AmendOrder {
        account: AccountId(1),
        order_id,
        price: None,
        quantity: Some(Quantity(qty)),
        ts: Timestamp(3),
    };
    // The partner's order cannot be amended past the partner's cap…
    rejected(
        &mut ex,
        amend(via_partner, 3),
        RejectReason::MaxOrderQuantity,
    );
    // …the user's own order only meets the user's.
    ok(&mut ex, amend(direct, 8));
}

#[test]
fn invalid_limits_are_refused_and_no_limits_change_nothing() {
    let mut ex = funded();
    rejected(
        &mut ex,
        Command::SetInstrumentLimits {
            instrument: perp(),
            limits: limits(|l| l.max_open_orders = Some(0)),
            ts: Timestamp(1),
        },
        RejectReason::InvalidRiskConfig,
    );
    rejected(
        &mut ex,
        Command::SetInstrumentLimits {
            instrument: perp(),
            limits: limits(|l| l.price_band_bps = Some(10_001)),
            ts: Timestamp(1),
        },
        RejectReason::InvalidRiskConfig,
    );
    // Setting and clearing limits leaves the state hash where it was.
    let before = ex.state_hash();
    set_limits(&mut ex, limits(|l| l.max_position = Some(1)));
    assert_ne!(ex.state_hash(), before);
    set_limits(&mut ex, OrderLimits::default());
    assert_eq!(ex.state_hash(), before);
}

// ----- circuit breaker ------------------------------------------------------------------

fn breaker(ex: &mut Exchange, bps: u32, window: u64, cool_off: u64) {
    ok(
        ex,
        Command::SetCircuitBreaker {
            instrument: perp(),
            breaker: Some(CircuitBreaker {
                max_move_bps: bps,
                window,
                cool_off,
            }),
            ts: Timestamp(1),
        },
    );
}

#[test]
fn a_sweep_beyond_the_range_stops_at_its_edge_and_halts() {
    let mut ex = funded();
    // 5% of the mark 50_000: 47_500..=52_500 for 100 time units.
    breaker(&mut ex, 500, 100, 50);
    ok(&mut ex, limit(2, perp(), "a1", Side::Sell, 52_000, 5));
    ok(&mut ex, limit(2, perp(), "a2", Side::Sell, 53_000, 5));
    let events = ok(
        &mut ex,
        at(limit(1, perp(), "b", Side::Buy, 54_000, 10), 10),
    );
    assert_eq!(traded(&events), vec![(52_000, 5)]);
    let taker = accepted_id(&events);
    assert_eq!(
        canceled(&events),
        vec![(taker, CancelReason::CircuitBreaker)]
    );
    assert!(kinds(&events).contains(&&EventKind::CircuitBreakerTripped {
        instrument: perp(),
        reference: Price(50_000),
        price: Price(53_000),
        halted_until: Timestamp(60),
    }));
    assert_eq!(status(&ex), InstrumentStatus::Halted);
    // The accepted order shows its own limit.
    assert!(kinds(&events).iter().any(|k| matches!(
        k,
        EventKind::OrderAccepted {
            price: Some(Price(54_000)),
            ..
        }
    )));
    rejected(
        &mut ex,
        at(limit(1, perp(), "c", Side::Buy, 50_000, 1), 20),
        RejectReason::InstrumentHalted,
    );
    // Resting orders stay and can be canceled; a Tick before the end does nothing.
    assert!(ok(&mut ex, Command::Tick { ts: Timestamp(59) }).is_empty());
    let events = ok(&mut ex, Command::Tick { ts: Timestamp(60) });
    assert_eq!(
        kinds(&events),
        vec![&EventKind::InstrumentStatusChanged {
            instrument: perp(),
            status: InstrumentStatus::Active
        }]
    );
    // The new window's reference is the last trade, 52_000: 49_400..=54_600.
    let events = ok(&mut ex, at(limit(1, perp(), "d", Side::Buy, 54_000, 5), 61));
    assert_eq!(traded(&events), vec![(53_000, 5)]);
}

#[test]
fn fills_inside_the_range_and_resting_beyond_it_do_not_trip() {
    let mut ex = funded();
    breaker(&mut ex, 500, 100, 50);
    ok(&mut ex, limit(2, perp(), "a1", Side::Sell, 52_000, 10));
    ok(&mut ex, limit(2, perp(), "a2", Side::Sell, 53_000, 5));
    // Fills whole inside the range although its limit is beyond it.
    let events = ok(&mut ex, limit(1, perp(), "b", Side::Buy, 54_000, 10));
    assert_eq!(traded(&events), vec![(52_000, 10)]);
    assert_eq!(status(&ex), InstrumentStatus::Active);
    // Rests beyond the range when nothing it could trade with is there.
    ok(
        &mut ex,
        Command::CancelAll {
            account: AccountId(2),
            instrument: None,
            ts: Timestamp(2),
        },
    );
    let events = ok(&mut ex, limit(1, perp(), "c", Side::Buy, 54_000, 3));
    assert!(kinds(&events).contains(&&EventKind::OrderRested {
        order_id: accepted_id(&events),
        price: Price(54_000),
        quantity: Quantity(3),
    }));
    assert_eq!(status(&ex), InstrumentStatus::Active);
}

#[test]
fn a_first_trade_outside_the_range_trips_before_any_fill() {
    let mut ex = funded();
    // A bid that rested far above the mark before the breaker was set.
    ok(&mut ex, limit(2, perp(), "high", Side::Buy, 55_000, 5));
    breaker(&mut ex, 500, 100, 0);
    let before = ex.position(AccountId(1), &perp()).map_or(0, |p| p.size);
    let events = ok(&mut ex, market_order(1, perp(), "s", Side::Sell, 1));
    assert!(traded(&events).is_empty());
    assert_eq!(
        canceled(&events),
        vec![(accepted_id(&events), CancelReason::CircuitBreaker)]
    );
    assert_eq!(status(&ex), InstrumentStatus::Halted);
    assert_eq!(size(&ex, 1, &perp()), before);
    // Cool-off 0: the next Tick resumes it.
    ok(&mut ex, Command::Tick { ts: Timestamp(2) });
    assert_eq!(status(&ex), InstrumentStatus::Active);
}

#[test]
fn an_operator_halt_of_a_tripped_instrument_is_not_resumed_by_tick() {
    let mut ex = funded();
    ok(&mut ex, limit(2, perp(), "high", Side::Buy, 55_000, 5));
    breaker(&mut ex, 500, 100, 10);
    ok(&mut ex, market_order(1, perp(), "s", Side::Sell, 1));
    ok(
        &mut ex,
        Command::SetInstrumentStatus {
            instrument: perp(),
            change: StatusChange::Halt,
            ts: Timestamp(3),
        },
    );
    ok(
        &mut ex,
        Command::Tick {
            ts: Timestamp(1_000),
        },
    );
    assert_eq!(status(&ex), InstrumentStatus::Halted);
    ok(
        &mut ex,
        Command::SetInstrumentStatus {
            instrument: perp(),
            change: StatusChange::Resume,
            ts: Timestamp(1_001),
        },
    );
    assert_eq!(status(&ex), InstrumentStatus::Active);
}

#[test]
fn the_reference_moves_with_the_window() {
    let mut ex = funded();
    breaker(&mut ex, 500, 100, 10);
    // Walk the price up 4% within the window, then 4% more after it.
    ok(&mut ex, limit(2, perp(), "a1", Side::Sell, 52_000, 1));
    ok(&mut ex, at(limit(1, perp(), "b1", Side::Buy, 52_000, 1), 5));
    ok(&mut ex, limit(2, perp(), "a2", Side::Sell, 54_000, 1));
    // Same window (reference 50_000, up to 52_500): trips.
    let mut probe = ex.clone();
    let events = ok(
        &mut probe,
        at(limit(1, perp(), "b2", Side::Buy, 54_000, 1), 50),
    );
    assert!(traded(&events).is_empty());
    assert_eq!(
        probe.instrument(&perp()).unwrap().status,
        InstrumentStatus::Halted
    );
    // Next window (reference 52_000, up to 54_600): trades.
    let events = ok(
        &mut ex,
        at(limit(1, perp(), "b2", Side::Buy, 54_000, 1), 105),
    );
    assert_eq!(traded(&events), vec![(54_000, 1)]);
    assert_eq!(status(&ex), InstrumentStatus::Active);
}

// ----- kill switches ----------------------------------------------------------------------

#[test]
fn the_exchange_kill_switch_refuses_orders_and_can_cancel_everything() {
    let mut ex = funded();
    let a = accepted_id(&ok(&mut ex, limit(1, perp(), "a", Side::Buy, 49_000, 1)));
    let b = accepted_id(&ok(&mut ex, limit(2, perp(), "b", Side::Sell, 51_000, 1)));
    ok(&mut ex, limit(3, future(), "c", Side::Sell, 51_000, 1));
    ok(
        &mut ex,
        Command::SetKillSwitch {
            active: true,
            cancel_resting: false,
            ts: Timestamp(3),
        },
    );
    rejected(
        &mut ex,
        limit(1, perp(), "x", Side::Buy, 49_000, 1),
        RejectReason::KillSwitch,
    );
    rejected(
        &mut ex,
        Command::AmendOrder {
            account: AccountId(1),
            order_id: a,
            price: Some(Price(49_001)),
            quantity: None,
            ts: Timestamp(3),
        },
        RejectReason::KillSwitch,
    );
    // Cancels work.
    ok(
        &mut ex,
        Command::CancelOrder {
            account: AccountId(1),
            order_id: a,
            ts: Timestamp(3),
        },
    );
    let events = ok(
        &mut ex,
        Command::SetKillSwitch {
            active: true,
            cancel_resting: true,
            ts: Timestamp(4),
        },
    );
    let gone = canceled(&events);
    assert_eq!(gone.len(), 2);
    assert!(gone.contains(&(b, CancelReason::KillSwitch)));
    assert_eq!(ex.open_orders(AccountId(3)).len(), 0);
    ok(
        &mut ex,
        Command::SetKillSwitch {
            active: false,
            cancel_resting: false,
            ts: Timestamp(5),
        },
    );
    rejected(
        &mut ex,
        Command::SetKillSwitch {
            active: false,
            cancel_resting: false,
            ts: Timestamp(5),
        },
        RejectReason::KillSwitchUnchanged,
    );
    ok(&mut ex, limit(1, perp(), "y", Side::Buy, 49_000, 1));
}

#[test]
fn an_account_kill_switch_cancels_and_blocks_until_lifted() {
    let mut ex = funded();
    let a = accepted_id(&ok(&mut ex, limit(1, perp(), "a", Side::Buy, 49_000, 1)));
    let b = accepted_id(&ok(&mut ex, limit(1, future(), "b", Side::Buy, 49_000, 1)));
    ok(&mut ex, limit(2, perp(), "other", Side::Buy, 49_000, 1));
    let events = ok(
        &mut ex,
        Command::SetAccountKillSwitch {
            account: AccountId(1),
            active: true,
            issued_by: Issuer::Admin,
            ts: Timestamp(3),
        },
    );
    assert_eq!(
        events[0].kind,
        EventKind::AccountKillSwitchSet {
            account: AccountId(1),
            active: true,
            issued_by: Issuer::Admin
        }
    );
    assert_eq!(
        canceled(&events),
        vec![
            (a, CancelReason::AccountKillSwitch),
            (b, CancelReason::AccountKillSwitch)
        ]
    );
    assert_eq!(ex.open_orders(AccountId(2)).len(), 1);
    rejected(
        &mut ex,
        limit(1, perp(), "x", Side::Buy, 49_000, 1),
        RejectReason::AccountKillSwitch,
    );
    // The owner cannot lift an admin's switch.
    rejected(
        &mut ex,
        Command::SetAccountKillSwitch {
            account: AccountId(1),
            active: false,
            issued_by: Issuer::Owner,
            ts: Timestamp(4),
        },
        RejectReason::KillSwitchAdminOnly,
    );
    ok(
        &mut ex,
        Command::SetAccountKillSwitch {
            account: AccountId(1),
            active: false,
            issued_by: Issuer::Admin,
            ts: Timestamp(4),
        },
    );
    ok(&mut ex, limit(1, perp(), "y", Side::Buy, 49_000, 1));
    // The owner's own switch the owner can lift.
    ok(
        &mut ex,
        Command::SetAccountKillSwitch {
            account: AccountId(1),
            active: true,
            issued_by: Issuer::Owner,
            ts: Timestamp(5),
        },
    );
    ok(
        &mut ex,
        Command::SetAccountKillSwitch {
            account: AccountId(1),
            active: false,
            issued_by: Issuer::Owner,
            ts: Timestamp(6),
        },
    );
    rejected(
        &mut ex,
        Command::SetAccountKillSwitch {
            account: AccountId(1),
            active: false,
            issued_by: Issuer::Owner,
            ts: Timestamp(6),
        },
        RejectReason::KillSwitchUnchanged,
    );
}

// ----- dead man's switch --------------------------------------------------------------------

#[test]
fn cancel_after_fires_at_the_deadline_unless_renewed() {
    let mut ex = funded();
    let a = accepted_id(&ok(&mut ex, limit(1, perp(), "a", Side::Buy, 49_000, 1)));
    let cancel_after = |timeout, ts| Command::CancelAfter {
        account: AccountId(1),
        timeout,
        ts: Timestamp(ts),
    };
    let events = ok(&mut ex, cancel_after(100, 10));
    assert_eq!(
        events[0].kind,
        EventKind::CancelAfterSet {
            account: AccountId(1),
            deadline: Some(Timestamp(110))
        }
    );
    // Renewed at 50: the deadline moves to 150.
    ok(&mut ex, cancel_after(100, 50));
    assert!(ok(&mut ex, Command::Tick { ts: Timestamp(149) }).is_empty());
    let events = ok(&mut ex, Command::Tick { ts: Timestamp(150) });
    assert_eq!(
        events[0].kind,
        EventKind::DeadManSwitchFired {
            account: AccountId(1),
            deadline: Timestamp(150)
        }
    );
    assert_eq!(canceled(&events), vec![(a, CancelReason::DeadManSwitch)]);
    // Fired once, then disarmed.
    ok(&mut ex, limit(1, perp(), "b", Side::Buy, 49_000, 1));
    assert!(
        ok(
            &mut ex,
            Command::Tick {
                ts: Timestamp(1_000)
            }
        )
        .is_empty()
    );
    // Disabled with 0.
    ok(&mut ex, cancel_after(10, 1_000));
    ok(&mut ex, cancel_after(0, 1_001));
    assert!(
        ok(
            &mut ex,
            Command::Tick {
                ts: Timestamp(2_000)
            }
        )
        .is_empty()
    );
    assert_eq!(ex.open_orders(AccountId(1)).len(), 1);
}

// ----- market-maker protection ---------------------------------------------------------------

pub fn mmp_setup(ex: &mut Exchange, config: MmpConfig) {
    for instrument in [perp(), call()] {
        ok(
            ex,
            Command::SetInstrumentGroup {
                instrument,
                group: Some(btc()),
                ts: Timestamp(1),
            },
        );
    }
    ok(
        ex,
        Command::SetMmpConfig {
            account: AccountId(1),
            group: btc(),
            config: Some(config),
            ts: Timestamp(1),
        },
    );
}

pub fn quantity_mmp(max: u64, freeze_for: u64) -> MmpConfig {
    MmpConfig {
        interval: 100,
        max_quantity: Some(max),
        max_delta_e6: None,
        max_vega_e6: None,
        freeze_for,
    }
}

#[test]
fn mmp_quantity_limit_cancels_the_groups_quotes_and_freezes() {
    let mut ex = funded();
    mmp_setup(&mut ex, quantity_mmp(5, 50));
    let q1 = accepted_id(&ok(
        &mut ex,
        with(limit(1, perp(), "q1", Side::Sell, 50_100, 3), mmp()),
    ));
    let q2 = accepted_id(&ok(
        &mut ex,
        with(limit(1, perp(), "q2", Side::Sell, 50_200, 3), mmp()),
    ));
    let q3 = accepted_id(&ok(
        &mut ex,
        with(limit(1, call(), "q3", Side::Sell, 2_100, 3), mmp()),
    ));
    let plain = accepted_id(&ok(
        &mut ex,
        limit(1, perp(), "plain", Side::Sell, 50_300, 3),
    ));
    // 4 lots traded: under the limit.
    let events = ok(&mut ex, at(market_order(2, perp(), "t1", Side::Buy, 4), 10));
    assert!(
        !kinds(&events)
            .iter()
            .any(|k| matches!(k, EventKind::MmpTriggered { .. }))
    );
    // 1 more: 5 reaches the limit.
    let events = ok(&mut ex, at(market_order(2, perp(), "t2", Side::Buy, 1), 11));
    assert!(kinds(&events).contains(&&EventKind::MmpTriggered {
        account: AccountId(1),
        group: btc(),
        trigger: MmpTrigger::Quantity,
        frozen_until: Some(Timestamp(61)),
    }));
    let gone = canceled(&events);
    assert!(gone.contains(&(q2, CancelReason::Mmp)));
    assert!(gone.contains(&(q3, CancelReason::Mmp)));
    assert!(!gone.iter().any(|(id, _)| *id == plain || *id == q1));
    rejected(
        &mut ex,
        at(
            with(limit(1, perp(), "q4", Side::Sell, 50_100, 1), mmp()),
            20,
        ),
        RejectReason::MmpFrozen,
    );
    assert_eq!(RejectReason::MmpFrozen.code(), "mmp_frozen");
    // Orders that are not quotes still go.
    ok(
        &mut ex,
        at(limit(1, perp(), "plain2", Side::Sell, 50_400, 1), 20),
    );
    // The freeze ends at 61.
    let events = ok(&mut ex, Command::Tick { ts: Timestamp(61) });
    assert_eq!(
        kinds(&events),
        vec![&EventKind::MmpReset {
            account: AccountId(1),
            group: btc()
        }]
    );
    ok(
        &mut ex,
        at(
            with(limit(1, perp(), "q4", Side::Sell, 50_100, 1), mmp()),
            62,
        ),
    );
}

#[test]
fn mmp_counts_per_interval_and_resets_on_command() {
    let mut ex = funded();
    mmp_setup(&mut ex, quantity_mmp(5, 0));
    ok(
        &mut ex,
        with(limit(1, perp(), "q1", Side::Sell, 50_100, 20), mmp()),
    );
    ok(&mut ex, at(market_order(2, perp(), "t1", Side::Buy, 4), 10));
    // A new interval (100 after the first fill at 10): the count restarts.
    let events = ok(
        &mut ex,
        at(market_order(2, perp(), "t2", Side::Buy, 4), 110),
    );
    assert!(
        !kinds(&events)
            .iter()
            .any(|k| matches!(k, EventKind::MmpTriggered { .. }))
    );
    let events = ok(
        &mut ex,
        at(market_order(2, perp(), "t3", Side::Buy, 1), 111),
    );
    assert!(kinds(&events).iter().any(|k| matches!(
        k,
        EventKind::MmpTriggered {
            frozen_until: None,
            ..
        }
    )));
    // Frozen until reset: Ticks do not lift it.
    ok(
        &mut ex,
        Command::Tick {
            ts: Timestamp(10_000),
        },
    );
    rejected(
        &mut ex,
        at(
            with(limit(1, perp(), "q2", Side::Sell, 50_100, 1), mmp()),
            10_001,
        ),
        RejectReason::MmpFrozen,
    );
    ok(
        &mut ex,
        Command::ResetMmp {
            account: AccountId(1),
            group: btc(),
            ts: Timestamp(10_002),
        },
    );
    ok(
        &mut ex,
        at(
            with(limit(1, perp(), "q2", Side::Sell, 50_100, 1), mmp()),
            10_003,
        ),
    );
}

#[test]
fn mmp_delta_uses_one_per_lot_for_perpetuals_and_the_greeks_for_options() {
    let mut ex = funded();
    mmp_setup(
        &mut ex,
        MmpConfig {
            interval: 1_000,
            max_quantity: None,
            max_delta_e6: Some(3_000_000),
            max_vega_e6: Some(1_000_000),
            freeze_for: 0,
        },
    );
    ok(
        &mut ex,
        Command::SetGreeks {
            instrument: call(),
            delta_e6: 500_000,
            vega_e6: 100_000,
            ts: Timestamp(1),
        },
    );
    ok(
        &mut ex,
        with(limit(1, call(), "c", Side::Sell, 2_000, 20), mmp()),
    );
    ok(
        &mut ex,
        with(limit(1, perp(), "p", Side::Buy, 49_900, 20), mmp()),
    );
    // Sold 4 calls: delta −2.0, vega −0.4.
    let events = ok(&mut ex, limit(2, call(), "t1", Side::Buy, 2_000, 4));
    assert!(
        !kinds(&events)
            .iter()
            .any(|k| matches!(k, EventKind::MmpTriggered { .. }))
    );
    // Bought 3 perps: delta +1.0 net — the limit is on the net.
    let events = ok(&mut ex, market_order(2, perp(), "t2", Side::Sell, 3));
    assert!(
        !kinds(&events)
            .iter()
            .any(|k| matches!(k, EventKind::MmpTriggered { .. }))
    );
    // Sold 4 more calls: delta −1.0, vega −0.8 … and 2 more: vega −1.0 fires.
    ok(&mut ex, limit(2, call(), "t3", Side::Buy, 2_000, 4));
    let events = ok(&mut ex, limit(2, call(), "t4", Side::Buy, 2_000, 2));
    assert!(kinds(&events).iter().any(|k| matches!(
        k,
        EventKind::MmpTriggered {
            trigger: MmpTrigger::Vega,
            ..
        }
    )));
    assert_eq!(ex.open_orders(AccountId(1)).len(), 0);
}

#[test]
fn mmp_orders_need_a_group_and_a_config() {
    let mut ex = funded();
    rejected(
        &mut ex,
        with(limit(1, perp(), "q", Side::Sell, 50_100, 1), mmp()),
        RejectReason::MmpNotConfigured,
    );
    mmp_setup(&mut ex, quantity_mmp(5, 0));
    rejected(
        &mut ex,
        with(limit(2, perp(), "q", Side::Sell, 50_100, 1), mmp()),
        RejectReason::MmpNotConfigured,
    );
    rejected(
        &mut ex,
        with(limit(1, future(), "q", Side::Sell, 50_100, 1), mmp()),
        RejectReason::MmpNotConfigured,
    );
    ok(
        &mut ex,
        with(limit(1, perp(), "q", Side::Sell, 50_100, 1), mmp()),
    );
}
