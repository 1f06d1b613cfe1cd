//! Funding on perpetuals and cash settlement of futures at expiry.

use bourse_exchange::*;

use crate::fixture::*;

fn funding(rate_ppb: i64) -> Command {
    Command::ApplyFunding {
        instrument: perp(),
        rate_ppb,
        ts: Timestamp(5),
    }
}

#[test]
fn positive_funding_makes_longs_pay_shorts_and_sums_to_zero() {
    let mut ex = market();
    for a in 1..=3 {
        deposit(&mut ex, a, 10_000 * USDC);
    }
    open(&mut ex, perp(), 1, 2, MARK, 2, "a");
    open(&mut ex, perp(), 3, 2, MARK, 1, "b");
    let total_before: Money = (0..=3).map(|a| cash(&ex, a)).sum();
    let before: Vec<Money> = (0..=3).map(|a| cash(&ex, a)).collect();
    // 0.01%: 2 lots × 50_000 × 0.01 USDC = 1_000 USDC notional → 0.1 USDC.
    let events = ok(&mut ex, funding(100_000));
    assert_eq!(cash(&ex, 1) - before[1], -100_000);
    assert_eq!(cash(&ex, 3) - before[3], -50_000);
    assert_eq!(cash(&ex, 2) - before[2], 150_000);
    assert_eq!(cash(&ex, 0), before[0]);
    assert_eq!((0..=3).map(|a| cash(&ex, a)).sum::<Money>(), total_before);
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::FundingApplied {
            paid_by_longs: 150_000,
            dust: 0,
            ..
        }
    )));
    // A negative rate reverses the direction.
    ok(&mut ex, funding(-100_000));
    for a in 0..=3 {
        assert_eq!(cash(&ex, a), before[a as usize]);
    }
}

#[test]
fn funding_rounding_dust_goes_to_the_fee_account_never_created() {
    let mut ex = market();
    deposit(&mut ex, 1, 10_000 * USDC);
    deposit(&mut ex, 2, 10_000 * USDC);
    open(&mut ex, perp(), 1, 2, MARK, 1, "a");
    let (c1, c2, fees) = (cash(&ex, 1), cash(&ex, 2), cash(&ex, 0));
    // 1 lot × 50_000 × 10_000 × 3 ppb = 1.5 micro-units: the long pays 2, the short
    // receives 1, the fee account keeps the 1 of dust.
    ok(&mut ex, funding(3));
    assert_eq!(
        (cash(&ex, 1) - c1, cash(&ex, 2) - c2, cash(&ex, 0) - fees),
        (-2, 1, 1)
    );
}

#[test]
fn funding_needs_a_perpetual_with_a_mark_and_a_sane_rate() {
    let mut ex = market();
    rejected(
        &mut ex,
        funding(1_000_000_001),
        RejectReason::InvalidFundingRate,
    );
    rejected(
        &mut ex,
        Command::ApplyFunding {
            instrument: future(),
            rate_ppb: 1,
            ts: Timestamp(5),
        },
        RejectReason::WrongInstrumentKind,
    );
    let fresh = Symbol::parse("ETH-PERP").unwrap();
    ok(
        &mut ex,
        Command::CreateInstrument {
            spec: spec(fresh, InstrumentKind::Perpetual, 100_000, 50_000),
            ts: Timestamp(5),
        },
    );
    rejected(
        &mut ex,
        Command::ApplyFunding {
            instrument: fresh,
            rate_ppb: 1,
            ts: Timestamp(5),
        },
        RejectReason::NoMarkPrice,
    );
}

#[test]
fn a_future_settles_in_cash_at_the_index_at_expiry() {
    let mut ex = market();
    for a in 1..=3 {
        deposit(&mut ex, a, 10_000 * USDC);
    }
    open(&mut ex, future(), 1, 2, MARK, 2, "a");
    let resting = accepted_id(&ok(
        &mut ex,
        limit(3, future(), "r", Side::Buy, MARK - 500, 1),
    ));
    ok(
        &mut ex,
        Command::SetIndexPrice {
            instrument: future(),
            price: Price(MARK + 2_000),
            ts: Timestamp(900),
        },
    );
    let settle = |ts| Command::SettleExpiry {
        instrument: future(),
        ts: Timestamp(ts),
    };
    rejected(&mut ex, settle(999), RejectReason::NotYetExpired);
    rejected(
        &mut ex,
        Command::SettleExpiry {
            instrument: perp(),
            ts: Timestamp(2_000),
        },
        RejectReason::WrongInstrumentKind,
    );
    let (c1, c2) = (cash(&ex, 1), cash(&ex, 2));
    let events = ok(&mut ex, settle(1_000));
    // 2 lots × 2_000 ticks × 0.01 USDC = 40 USDC from the short to the long.
    assert_eq!(cash(&ex, 1) - c1, 40 * USDC);
    assert_eq!(cash(&ex, 2) - c2, -40 * USDC);
    assert_eq!(size(&ex, 1, &future()), 0);
    assert_eq!(size(&ex, 2, &future()), 0);
    assert_eq!(
        ex.position(AccountId(1), &future()).unwrap().realised_pnl,
        40 * USDC
    );
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::OrderCanceled { order_id, reason: CancelReason::InstrumentSettled, .. } if order_id == resting
    )));
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::InstrumentSettled {
            price: Price(52_000),
            ..
        }
    )));
    assert_eq!(
        ex.instrument(&future()).unwrap().status,
        InstrumentStatus::Expired
    );
    assert_eq!(ex.account(AccountId(3)).unwrap().initial_margin, 0);
    rejected(
        &mut ex,
        limit(3, future(), "late", Side::Buy, MARK, 1),
        RejectReason::InstrumentExpired,
    );
    rejected(&mut ex, settle(2_000), RejectReason::InstrumentExpired);
    // With every position closed, cash alone adds up to the deposits.
    let total: Money = ex
        .account_ids()
        .iter()
        .map(|&a| ex.balance(a, &usdc()))
        .sum();
    assert_eq!(total, ex.total_deposited(&usdc()));
}
