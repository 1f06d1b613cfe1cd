//! Replay reproduces every risk decision: one scripted stream triggers every limit,
//! breaker and switch; replaying it into a fresh exchange, and restoring a snapshot
//! taken mid-stream then applying the rest, give identical events and state hashes.

use bourse_exchange::*;

use crate::fixture::*;
use crate::risk::{at, btc, limits, mmp, quantity_mmp, with};

fn ts(t: u64) -> Timestamp {
    Timestamp(t)
}

/// The script, and the rejection codes and event kinds it must produce.
fn script() -> Vec<Command> {
    let deposit = |a| Command::Deposit {
        account: AccountId(a),
        asset: usdc(),
        amount: 10_000_000 * USDC,
        ts: ts(1),
    };
    let mut c = vec![deposit(1), deposit(2), deposit(3), deposit(4)];
    c.push(Command::SetInstrumentLimits {
        instrument: perp(),
        limits: limits(|l| {
            l.price_band_bps = Some(1_000);
            l.max_order_quantity = Some(50);
            l.max_order_notional = Some(20_000 * USDC);
            l.max_open_orders = Some(6);
            l.max_position = Some(40);
        }),
        ts: ts(1),
    });
    c.push(Command::SetAccountLimits {
        account: AccountId(3),
        instrument: perp(),
        limits: Some(limits(|l| l.max_order_quantity = Some(5))),
        ts: ts(1),
    });
    c.push(Command::SetClientLimits {
        account: AccountId(3),
        client: ClientId::parse("partner").unwrap(),
        instrument: perp(),
        limits: Some(limits(|l| l.max_order_quantity = Some(2))),
        ts: ts(1),
    });
    // Every limit once.
    c.push(limit(1, perp(), "band", Side::Buy, 40_000, 1));
    c.push(limit(1, perp(), "qty", Side::Buy, 49_000, 51));
    c.push(limit(1, perp(), "notional", Side::Buy, 54_000, 40));
    for i in 0..7 {
        c.push(limit(
            1,
            perp(),
            &format!("oo{i}"),
            Side::Buy,
            48_000 + i,
            1,
        ));
    }
    c.push(limit(2, perp(), "pos", Side::Buy, 48_000, 41));
    c.push(limit(3, perp(), "acct", Side::Buy, 48_000, 6));
    c.push(Command::PlaceOrderWith {
        order: crate::fixture::order(3, perp(), "partner", Side::Buy, 48_000, 3),
        options: OrderOptions {
            oauth_client: ClientId::parse("partner"),
            mmp: false,
        },
    });
    // MMP on the BTC group.
    for instrument in [perp(), call()] {
        c.push(Command::SetInstrumentGroup {
            instrument,
            group: Some(btc()),
            ts: ts(1),
        });
    }
    c.push(Command::SetMmpConfig {
        account: AccountId(4),
        group: btc(),
        config: Some(quantity_mmp(5, 30)),
        ts: ts(1),
    });
    c.push(Command::SetGreeks {
        instrument: call(),
        delta_e6: 400_000,
        vega_e6: 20_000,
        ts: ts(1),
    });
    c.push(with(limit(4, perp(), "q1", Side::Sell, 50_100, 3), mmp()));
    c.push(with(limit(4, perp(), "q2", Side::Sell, 50_200, 3), mmp()));
    c.push(with(limit(4, call(), "q3", Side::Sell, 2_100, 3), mmp()));
    c.push(at(market_order(2, perp(), "lift", Side::Buy, 5), 10));
    c.push(at(
        with(limit(4, perp(), "q4", Side::Sell, 50_100, 3), mmp()),
        11,
    ));
    c.push(Command::Tick { ts: ts(40) });
    c.push(Command::ResetMmp {
        account: AccountId(4),
        group: btc(),
        ts: ts(41),
    });
    // Circuit breaker: a sweep through the range's edge.
    c.push(Command::SetCircuitBreaker {
        instrument: perp(),
        breaker: Some(CircuitBreaker {
            max_move_bps: 300,
            window: 100,
            cool_off: 20,
        }),
        ts: ts(42),
    });
    c.push(at(limit(4, perp(), "a1", Side::Sell, 51_000, 2), 43));
    c.push(at(limit(4, perp(), "a2", Side::Sell, 52_000, 2), 43));
    c.push(at(limit(2, perp(), "sweep", Side::Buy, 53_000, 4), 44));
    c.push(at(limit(2, perp(), "halted", Side::Buy, 50_000, 1), 45));
    c.push(Command::Tick { ts: ts(64) });
    c.push(Command::Tick { ts: ts(65) });
    // Kill switches.
    c.push(Command::SetAccountKillSwitch {
        account: AccountId(1),
        active: true,
        issued_by: Issuer::Owner,
        ts: ts(66),
    });
    c.push(at(limit(1, perp(), "blocked", Side::Buy, 49_000, 1), 66));
    c.push(Command::SetAccountKillSwitch {
        account: AccountId(1),
        active: false,
        issued_by: Issuer::Owner,
        ts: ts(67),
    });
    c.push(at(limit(1, perp(), "back", Side::Buy, 49_000, 1), 67));
    c.push(Command::CancelAfter {
        account: AccountId(1),
        timeout: 10,
        ts: ts(68),
    });
    c.push(Command::Tick { ts: ts(78) });
    c.push(Command::SetKillSwitch {
        active: true,
        cancel_resting: true,
        ts: ts(79),
    });
    c.push(at(limit(2, perp(), "killed", Side::Buy, 49_000, 1), 80));
    c.push(Command::SetKillSwitch {
        active: false,
        cancel_resting: false,
        ts: ts(81),
    });
    c.push(at(limit(2, perp(), "alive", Side::Buy, 49_000, 1), 82));
    c
}

fn run(ex: &mut Exchange, commands: &[Command]) -> Vec<Vec<Event>> {
    commands
        .iter()
        .map(|cmd| {
            let events = ex.apply(cmd);
            ex.check_conservation().unwrap();
            ex.audit().unwrap();
            events
        })
        .collect()
}

#[test]
fn the_script_triggers_every_rule() {
    let mut ex = market();
    let events: Vec<Event> = run(&mut ex, &script()).into_iter().flatten().collect();
    let codes: Vec<&str> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Rejected { reason, .. } => Some(reason.code()),
            _ => None,
        })
        .collect();
    for code in [
        "price_band",
        "max_order_quantity",
        "max_order_notional",
        "max_open_orders",
        "position_limit",
        "mmp_frozen",
        "instrument_halted",
        "account_kill_switch",
        "kill_switch",
    ] {
        assert!(codes.contains(&code), "{code} not in {codes:?}");
    }
    let reasons: Vec<&str> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::OrderCanceled { reason, .. } => Some(reason.code()),
            _ => None,
        })
        .collect();
    for code in [
        "mmp",
        "circuit_breaker",
        "account_kill_switch",
        "dead_man_switch",
        "kill_switch",
    ] {
        assert!(reasons.contains(&code), "{code} not in {reasons:?}");
    }
    let has = |f: fn(&EventKind) -> bool| events.iter().any(|e| f(&e.kind));
    assert!(has(|k| matches!(
        k,
        EventKind::CircuitBreakerTripped { .. }
    )));
    assert!(has(|k| matches!(k, EventKind::MmpTriggered { .. })));
    assert!(has(|k| matches!(k, EventKind::MmpReset { .. })));
    assert!(has(|k| matches!(k, EventKind::DeadManSwitchFired { .. })));
}

#[test]
fn replay_reproduces_every_risk_decision() {
    let commands = script();
    let mut first = market();
    let events = run(&mut first, &commands);
    let mut second = market();
    let replayed = run(&mut second, &commands);
    assert_eq!(events, replayed);
    assert_eq!(first.state_hash(), second.state_hash());
}

#[cfg(feature = "serde")]
#[test]
fn a_mid_stream_snapshot_continues_identically() {
    let commands = script();
    let mut whole = market();
    let events = run(&mut whole, &commands);
    for cut in [commands.len() / 3, commands.len() / 2, commands.len() - 8] {
        let mut ex = market();
        run(&mut ex, &commands[..cut]);
        let bytes = ex.snapshot();
        let mut restored = Exchange::restore(&bytes).unwrap();
        assert_eq!(restored.state_hash(), ex.state_hash());
        assert_eq!(restored.snapshot(), bytes, "snapshot round trip at {cut}");
        let rest = run(&mut restored, &commands[cut..]);
        assert_eq!(rest, events[cut..], "events after a restore at {cut}");
        assert_eq!(restored.state_hash(), whole.state_hash());
    }
}

/// Liquidations (docs/risk.md, "Liquidation"): a long closed against the book, a
/// short partly taken over by the fund with its cash covered, a liquidation by
/// funding, a short option, then a gap that leaves the fund in deficit.
fn liquidation_script() -> Vec<Command> {
    let deposit = |a, units: Money| Command::Deposit {
        account: AccountId(a),
        asset: usdc(),
        amount: units * USDC,
        ts: ts(1),
    };
    let mark = |instrument, price, t| Command::SetMarkPrice {
        instrument,
        price: Price(price),
        ts: ts(t),
    };
    let mut c = vec![
        deposit(1, 600),
        deposit(2, 600),
        deposit(3, 1_000),
        deposit(4, 10_000_000),
        deposit(5, 10_000_000),
        deposit(9, 1_000),
        Command::SetInsuranceFund {
            account: Some(AccountId(9)),
            ts: ts(1),
        },
    ];
    // 1 long 10 perps, 2 short 10 perps, 3 short 10 calls; 4 and 5 the other side.
    c.push(limit(1, perp(), "1b", Side::Buy, 50_000, 10));
    c.push(limit(4, perp(), "4s", Side::Sell, 50_000, 10));
    c.push(limit(5, perp(), "5b", Side::Buy, 50_000, 10));
    c.push(limit(2, perp(), "2s", Side::Sell, 50_000, 10));
    c.push(limit(4, call(), "4cb", Side::Buy, 2_000, 10));
    c.push(limit(3, call(), "3cs", Side::Sell, 2_000, 10));
    c.push(limit(1, perp(), "1ask", Side::Sell, 53_000, 2));
    // Bids for 1's liquidation; asks that absorb part of 2's.
    c.push(limit(4, perp(), "4b", Side::Buy, 45_000, 10));
    c.push(mark(perp(), 45_000, 3));
    // At 2's bankruptcy price (50_000 + 597.5 / 0.1): the taker fee leaves it
    // negative, and the fund covers it.
    c.push(limit(5, perp(), "5a", Side::Sell, 55_975, 4));
    c.push(mark(perp(), 50_000, 4));
    c.push(mark(perp(), 55_000, 5));
    // The option: index up, then the mark.
    c.push(limit(5, call(), "5ca", Side::Sell, 4_300, 5));
    c.push(Command::SetIndexPrice {
        instrument: call(),
        price: Price(52_000),
        ts: ts(6),
    });
    c.push(mark(call(), 4_200, 7));
    // Funding on the fund's perp position, then a gap the thin fund cannot cover.
    c.push(Command::ApplyFunding {
        instrument: perp(),
        rate_ppb: 5_000_000,
        ts: ts(8),
    });
    c.push(deposit(6, 1_700));
    c.push(limit(6, perp(), "6b", Side::Buy, 55_000, 30));
    c.push(limit(4, perp(), "4s2", Side::Sell, 55_000, 30));
    c.push(mark(perp(), 40_000, 9));
    c.push(Command::SetInsuranceFund {
        account: None,
        ts: ts(10),
    });
    c.push(mark(perp(), 30_000, 11));
    c
}

#[test]
fn the_liquidation_script_liquidates() {
    let mut ex = market();
    let events: Vec<Event> = run(&mut ex, &liquidation_script())
        .into_iter()
        .flatten()
        .collect();
    let count = |f: fn(&EventKind) -> bool| events.iter().filter(|e| f(&e.kind)).count();
    assert!(count(|k| matches!(k, EventKind::LiquidationStarted { .. })) >= 4);
    assert!(count(|k| matches!(k, EventKind::PositionTakenOver { .. })) >= 2);
    assert!(count(|k| matches!(k, EventKind::InsuranceFundDeficit { .. })) >= 1);
    assert!(
        count(|k| matches!(
            k,
            EventKind::LiquidationFinished { covered, .. } if *covered > 0
        )) >= 1
    );
    assert!(
        count(|k| matches!(
            k,
            EventKind::OrderCanceled {
                reason: CancelReason::Liquidation,
                ..
            }
        )) >= 1
    );
}

#[test]
fn replay_reproduces_every_liquidation() {
    let commands = liquidation_script();
    let mut first = market();
    let events = run(&mut first, &commands);
    let mut second = market();
    assert_eq!(run(&mut second, &commands), events);
    assert_eq!(first.state_hash(), second.state_hash());
}

#[cfg(feature = "serde")]
#[test]
fn a_snapshot_between_liquidations_continues_identically() {
    let commands = liquidation_script();
    let mut whole = market();
    let events = run(&mut whole, &commands);
    for cut in 1..commands.len() {
        let mut ex = market();
        run(&mut ex, &commands[..cut]);
        let bytes = ex.snapshot();
        let mut restored = Exchange::restore(&bytes).unwrap();
        assert_eq!(restored.snapshot(), bytes, "snapshot round trip at {cut}");
        let rest = run(&mut restored, &commands[cut..]);
        assert_eq!(rest, events[cut..], "events after a restore at {cut}");
        assert_eq!(restored.state_hash(), whole.state_hash());
    }
}
