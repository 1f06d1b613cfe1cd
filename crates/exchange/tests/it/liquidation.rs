//! Liquidation with an insurance fund (docs/risk.md, "Liquidation"): mark, index,
//! funding and settlement moves that push an account under maintenance margin
//! cancel its orders, close its positions against the book at no worse than the
//! bankruptcy price, hand the rest to the fund and cover negative cash.
//!
//! The fixture's perpetual: one tick·lot is 0.01 USDC, IM 10%, MM 5%, maker fee
//! 0.02%, taker fee 0.05%.

use bourse_exchange::*;

use crate::fixture::*;

/// The liquidated account, its counterparty, a liquidity provider, the fund.
const VICTIM: u64 = 1;
const OTHER: u64 = 2;
const BOOK: u64 = 3;
const FUND: u64 = 9;

fn mark(ex: &mut Exchange, symbol: Symbol, price: i64) -> Vec<Event> {
    ok(
        ex,
        Command::SetMarkPrice {
            instrument: symbol,
            price: Price(price),
            ts: Timestamp(5),
        },
    )
}

fn set_fund(ex: &mut Exchange, account: Option<u64>) -> Vec<Event> {
    ok(
        ex,
        Command::SetInsuranceFund {
            account: account.map(AccountId),
            ts: Timestamp(1),
        },
    )
}

/// The fixture market with a fund of `fund_usdc`, deep-pocketed counterparties,
/// and the victim long (`long`) or short 10 perpetual lots at 50_000 with 600 USDC
/// deposited (cash after the fee: 599 USDC long as maker, 597.5 short as taker).
fn victim(long: bool, fund_usdc: Money) -> Exchange {
    let mut ex = market();
    deposit(&mut ex, VICTIM, 600 * USDC);
    deposit(&mut ex, OTHER, 1_000_000 * USDC);
    deposit(&mut ex, BOOK, 1_000_000 * USDC);
    deposit(&mut ex, FUND, fund_usdc);
    set_fund(&mut ex, Some(FUND));
    if long {
        open(&mut ex, perp(), VICTIM, OTHER, 50_000, 10, "open");
        assert_eq!(cash(&ex, VICTIM), 599 * USDC);
    } else {
        open(&mut ex, perp(), OTHER, VICTIM, 50_000, 10, "open");
        assert_eq!(cash(&ex, VICTIM), 597_500_000);
    }
    ex
}

fn started(events: &[Event]) -> Vec<(AccountId, Money, Money)> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::LiquidationStarted {
                account,
                equity,
                maintenance,
            } => Some((account, equity, maintenance)),
            _ => None,
        })
        .collect()
}

fn finished(events: &[Event]) -> Vec<(AccountId, Money, Money)> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::LiquidationFinished {
                account,
                equity,
                covered,
            } => Some((account, equity, covered)),
            _ => None,
        })
        .collect()
}

fn taken_over(events: &[Event]) -> Vec<(AccountId, AccountId, i128, Price)> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::PositionTakenOver {
                from,
                to,
                size,
                price,
                ..
            } => Some((from, to, size, price)),
            _ => None,
        })
        .collect()
}

fn liquidation_order(events: &[Event]) -> Option<(Side, Option<Price>, Quantity, bool)> {
    events.iter().find_map(|e| match e.kind {
        EventKind::OrderAccepted {
            side,
            price,
            quantity,
            reduce_only,
            ..
        } => Some((side, price, quantity, reduce_only)),
        _ => None,
    })
}

fn canceled(events: &[Event]) -> Vec<CancelReason> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::OrderCanceled { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

fn equity(ex: &Exchange, account: u64) -> Money {
    ex.account(AccountId(account)).unwrap().equity
}

#[test]
fn a_long_below_maintenance_is_closed_against_the_bids_and_keeps_the_rest() {
    let mut ex = victim(true, 1_000 * USDC);
    ok(&mut ex, limit(VICTIM, perp(), "bid", Side::Buy, 40_000, 1));
    ok(&mut ex, limit(VICTIM, perp(), "ask", Side::Sell, 52_000, 2));
    ok(&mut ex, limit(BOOK, perp(), "bid", Side::Buy, 45_000, 10));
    let fund_before = cash(&ex, FUND);
    // Mark 45_000: equity 599 − 500 = 99 USDC, maintenance 5% of 4_500 = 225.
    let events = mark(&mut ex, perp(), 45_000);
    assert_eq!(
        started(&events),
        vec![(AccountId(VICTIM), 99 * USDC, 225 * USDC)]
    );
    assert_eq!(
        canceled(&events)[..2],
        [CancelReason::Liquidation, CancelReason::Liquidation]
    );
    assert!(ex.open_orders(AccountId(VICTIM)).is_empty());
    // Bankruptcy price: 45_000 − 99 USDC / (10 lots · 0.01) = 44_010.
    assert_eq!(
        liquidation_order(&events),
        Some((Side::Sell, Some(Price(44_010)), Quantity(10), true))
    );
    // All 10 sold to the bid at 45_000: realised −500, taker fee 2.25 USDC.
    assert_eq!(size(&ex, VICTIM, &perp()), 0);
    assert_eq!(size(&ex, BOOK, &perp()), 10);
    assert!(taken_over(&events).is_empty());
    assert_eq!(cash(&ex, VICTIM), 96_750_000);
    assert_eq!(finished(&events), vec![(AccountId(VICTIM), 96_750_000, 0)]);
    assert_eq!(cash(&ex, FUND), fund_before);
    // The order that closed it is the exchange's: it is gone, nothing rests.
    assert!(ex.open_orders(AccountId(BOOK)).is_empty());
}

#[test]
fn what_the_book_cannot_absorb_goes_to_the_fund_at_the_bankruptcy_price() {
    let mut ex = victim(true, 1_000 * USDC);
    // 4 lots bid at exactly the bankruptcy price, the rest below it.
    ok(&mut ex, limit(BOOK, perp(), "b1", Side::Buy, 44_010, 4));
    ok(&mut ex, limit(BOOK, perp(), "b2", Side::Buy, 43_000, 6));
    let events = mark(&mut ex, perp(), 44_500);
    assert_eq!(started(&events).len(), 1);
    assert_eq!(size(&ex, BOOK, &perp()), 4);
    assert_eq!(
        taken_over(&events),
        vec![(AccountId(VICTIM), AccountId(FUND), 6, Price(44_010))]
    );
    let fund = ex.position(AccountId(FUND), &perp()).unwrap();
    assert_eq!((fund.size, fund.cost), (6, 6 * 44_010));
    // Closed at the bankruptcy price, the account is left with minus the taker fee
    // (44_010 · 4 lots · 0.01 · 0.05% = 0.8802 USDC), which the fund covers.
    let fee = fee(44_010, 4, 500);
    assert_eq!(fee, 880_200);
    assert_eq!(finished(&events), vec![(AccountId(VICTIM), 0, fee)]);
    assert_eq!(cash(&ex, VICTIM), 0);
    assert_eq!(equity(&ex, VICTIM), 0);
    assert_eq!(size(&ex, VICTIM, &perp()), 0);
    assert_eq!(cash(&ex, FUND), 1_000 * USDC - fee);
    let covers: Vec<(AccountId, Money)> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::BalanceChanged {
                account,
                delta,
                reason: BalanceReason::InsuranceFund,
                ..
            } => Some((account, delta)),
            _ => None,
        })
        .collect();
    assert_eq!(
        covers,
        vec![(AccountId(FUND), -fee), (AccountId(VICTIM), fee)]
    );
}

#[test]
fn a_gap_through_the_bankruptcy_price_is_the_funds_loss_and_a_thin_fund_reports_a_deficit() {
    for (fund_usdc, deficit) in [(1_000, false), (100, true)] {
        let mut ex = victim(true, fund_usdc * USDC);
        // Mark 40_000: equity 599 − 1_000 = −401 USDC; the book is empty.
        let events = mark(&mut ex, perp(), 40_000);
        assert_eq!(
            started(&events),
            vec![(AccountId(VICTIM), -401 * USDC, 200 * USDC)]
        );
        // Bankruptcy price 40_000 + 401 USDC / 0.1 USDC = 44_010: the same as from
        // the entry price (50_000 − 599 / 0.1), as it must be for one position.
        assert_eq!(
            taken_over(&events),
            vec![(AccountId(VICTIM), AccountId(FUND), 10, Price(44_010))]
        );
        assert_eq!(finished(&events), vec![(AccountId(VICTIM), 0, 0)]);
        assert_eq!(equity(&ex, VICTIM), 0);
        // The fund bought 10 at 44_010 with the mark at 40_000: −401 USDC.
        assert_eq!(equity(&ex, FUND), (fund_usdc - 401) * USDC);
        let deficits: Vec<Money> = events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::InsuranceFundDeficit { equity, .. } => Some(equity),
                _ => None,
            })
            .collect();
        if deficit {
            assert_eq!(deficits, vec![-301 * USDC]);
        } else {
            assert!(deficits.is_empty());
        }
    }
}

#[test]
fn an_account_just_above_maintenance_is_untouched() {
    let mut ex = victim(true, 1_000 * USDC);
    ok(&mut ex, limit(VICTIM, perp(), "ask", Side::Sell, 52_000, 2));
    ok(&mut ex, limit(BOOK, perp(), "bid", Side::Buy, 46_000, 10));
    // Mark 46_400: equity 599 − 360 = 239 ≥ maintenance 232.
    let events = mark(&mut ex, perp(), 46_400);
    assert!(started(&events).is_empty(), "{events:?}");
    assert_eq!(events.len(), 1);
    assert_eq!(size(&ex, VICTIM, &perp()), 10);
    assert_eq!(ex.open_orders(AccountId(VICTIM)).len(), 1);
    // Mark 46_300: equity 229 < maintenance 231.5.
    let events = mark(&mut ex, perp(), 46_300);
    assert_eq!(
        started(&events),
        vec![(AccountId(VICTIM), 229 * USDC, 231_500_000)]
    );
    assert_eq!(size(&ex, VICTIM, &perp()), 0);
}

#[test]
fn funding_that_pushes_an_account_under_maintenance_liquidates_it() {
    let mut ex = victim(true, 1_000 * USDC);
    ok(&mut ex, limit(BOOK, perp(), "bid", Side::Buy, 46_000, 10));
    assert!(started(&mark(&mut ex, perp(), 46_400)).is_empty());
    // 0.2%: the long pays 10 · 46_400 · 0.01 · 0.002 = 9.28 USDC; equity 229.72 <
    // 232.
    let events = ok(
        &mut ex,
        Command::ApplyFunding {
            instrument: perp(),
            rate_ppb: 2_000_000,
            ts: Timestamp(6),
        },
    );
    assert_eq!(
        started(&events),
        vec![(AccountId(VICTIM), 229_720_000, 232 * USDC)]
    );
    // 46_400 − 229.72 / 0.1 = 44_102.8, toward the mark: 44_103.
    assert_eq!(
        liquidation_order(&events),
        Some((Side::Sell, Some(Price(44_103)), Quantity(10), true))
    );
    assert_eq!(size(&ex, VICTIM, &perp()), 0);
    // 599 − 9.28 funding − 400 realised − 2.3 fee.
    assert_eq!(cash(&ex, VICTIM), 187_420_000);
}

#[test]
fn a_short_is_liquidated_on_a_mark_rise() {
    let mut ex = victim(false, 1_000 * USDC);
    ok(&mut ex, limit(BOOK, perp(), "ask", Side::Sell, 55_500, 10));
    // Mark 55_000: equity 597.5 − 500 = 97.5 < maintenance 275.
    let events = mark(&mut ex, perp(), 55_000);
    assert_eq!(
        started(&events),
        vec![(AccountId(VICTIM), 97_500_000, 275 * USDC)]
    );
    // Bankruptcy 55_000 + 97.5 / 0.1 = 55_975: a buy limited there.
    assert_eq!(
        liquidation_order(&events),
        Some((Side::Buy, Some(Price(55_975)), Quantity(10), true))
    );
    assert_eq!(size(&ex, VICTIM, &perp()), 0);
    // 597.5 − 550 realised − 2.775 fee.
    assert_eq!(cash(&ex, VICTIM), 44_725_000);
    assert!(taken_over(&events).is_empty());
}

#[test]
fn short_options_are_liquidated_the_same_way() {
    let mut ex = market();
    deposit(&mut ex, VICTIM, 1_000 * USDC);
    deposit(&mut ex, OTHER, 1_000_000 * USDC);
    deposit(&mut ex, BOOK, 1_000_000 * USDC);
    deposit(&mut ex, FUND, 1_000 * USDC);
    set_fund(&mut ex, Some(FUND));
    // Short 10 calls at 2_000: premium +200, taker fee 0.1.
    open(&mut ex, call(), OTHER, VICTIM, 2_000, 10, "open");
    assert_eq!(cash(&ex, VICTIM), 1_199_900_000);
    ok(&mut ex, limit(BOOK, call(), "ask", Side::Sell, 4_300, 5));
    // Index 52_000: maintenance 10 · 0.01 · (7.5% · 52_000 + 2_000) = 590 ≤ 999.9.
    let events = ok(
        &mut ex,
        Command::SetIndexPrice {
            instrument: call(),
            price: Price(52_000),
            ts: Timestamp(5),
        },
    );
    assert!(started(&events).is_empty());
    // Mark 4_200: equity 1_199.9 − 420 = 779.9 < maintenance 0.1 · (3_900 + 4_200).
    let events = mark(&mut ex, call(), 4_200);
    assert_eq!(
        started(&events),
        vec![(AccountId(VICTIM), 779_900_000, 810 * USDC)]
    );
    // Bankruptcy 4_200 + 779.9 / 0.1 = 11_999: 5 bought back at 4_300 from the
    // book, 5 taken over by the fund, which is paid the premium 11_999 · 5 · 0.01.
    assert_eq!(
        liquidation_order(&events),
        Some((Side::Buy, Some(Price(11_999)), Quantity(10), true))
    );
    assert_eq!(
        taken_over(&events),
        vec![(AccountId(VICTIM), AccountId(FUND), -5, Price(11_999))]
    );
    assert_eq!(size(&ex, VICTIM, &call()), 0);
    assert_eq!(size(&ex, FUND, &call()), -5);
    assert_eq!(cash(&ex, FUND), 1_000 * USDC + 599_950_000);
    // 1_199.9 − 215 − 0.1075 fee − 599.95.
    assert_eq!(cash(&ex, VICTIM), 384_842_500);
    // The option settles at expiry without trouble.
    ok(
        &mut ex,
        Command::SettleExpiry {
            instrument: call(),
            ts: EXPIRY,
        },
    );
}

#[test]
fn cross_margin_shares_the_equity_by_maintenance_margin() {
    let mut ex = market();
    deposit(&mut ex, VICTIM, 1_200 * USDC);
    deposit(&mut ex, OTHER, 1_000_000 * USDC);
    deposit(&mut ex, FUND, 1_000 * USDC);
    set_fund(&mut ex, Some(FUND));
    // Long 10 perps and long 10 futures at 50_000 (maker fees 1 USDC each).
    open(&mut ex, perp(), VICTIM, OTHER, 50_000, 10, "p");
    open(&mut ex, future(), VICTIM, OTHER, 50_000, 10, "f");
    assert_eq!(cash(&ex, VICTIM), 1_198 * USDC);
    mark(&mut ex, future(), 46_000);
    assert!(size(&ex, VICTIM, &perp()) != 0, "not yet");
    // Perp 45_000, future 46_000: equity 1_198 − 500 − 400 = 298 < 225 + 230.
    let events = mark(&mut ex, perp(), 45_000);
    assert_eq!(
        started(&events),
        vec![(AccountId(VICTIM), 298 * USDC, 455 * USDC)]
    );
    // Shares 298 · 225/455 = 147.36… and the rest 150.63… (the largest share):
    // perp 45_000 − 1_473 = 43_527, future 46_000 − 1_506 = 44_494.
    let prices: Vec<(Symbol, Price)> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::PositionTakenOver {
                instrument, price, ..
            } => Some((instrument, price)),
            _ => None,
        })
        .collect();
    assert_eq!(
        prices,
        vec![(perp(), Price(43_527)), (future(), Price(44_494))]
    );
    // Both at their bankruptcy prices: equity lands on 0 up to the rounding
    // toward the marks (less than one tick·lot per position).
    let left = cash(&ex, VICTIM);
    assert!((0..2 * 10 * V).contains(&left), "{left}");
    assert_eq!(equity(&ex, VICTIM), left);
}

#[test]
fn the_exchange_closes_despite_the_accounts_switches_but_not_through_a_halt() {
    let mut ex = victim(true, 1_000 * USDC);
    ok(&mut ex, limit(BOOK, perp(), "bid", Side::Buy, 45_000, 10));
    ok(
        &mut ex,
        Command::SetAccountKillSwitch {
            account: AccountId(VICTIM),
            active: true,
            issued_by: Issuer::Admin,
            ts: Timestamp(3),
        },
    );
    ok(
        &mut ex,
        Command::FreezeAccount {
            account: AccountId(VICTIM),
            ts: Timestamp(3),
        },
    );
    ok(
        &mut ex,
        Command::SetInstrumentLimits {
            instrument: perp(),
            limits: OrderLimits {
                max_order_quantity: Some(1),
                ..OrderLimits::default()
            },
            ts: Timestamp(3),
        },
    );
    let mut halted = ex.clone();
    mark(&mut ex, perp(), 45_000);
    assert_eq!(size(&ex, VICTIM, &perp()), 0);
    assert_eq!(size(&ex, BOOK, &perp()), 10);
    // Halted: no order, the fund takes it all.
    ok(
        &mut halted,
        Command::SetInstrumentStatus {
            instrument: perp(),
            change: StatusChange::Halt,
            ts: Timestamp(4),
        },
    );
    let events = mark(&mut halted, perp(), 45_000);
    assert!(liquidation_order(&events).is_none());
    assert_eq!(
        taken_over(&events),
        vec![(AccountId(VICTIM), AccountId(FUND), 10, Price(44_010))]
    );
    assert_eq!(size(&halted, BOOK, &perp()), 0);
}

#[test]
fn a_circuit_breaker_clips_the_liquidation_order_without_tripping() {
    let mut ex = victim(true, 1_000 * USDC);
    ok(
        &mut ex,
        Command::SetCircuitBreaker {
            instrument: perp(),
            breaker: Some(CircuitBreaker {
                max_move_bps: 200,
                window: 1_000,
                cool_off: 10,
            }),
            ts: Timestamp(3),
        },
    );
    // The mark (50_000) is the reference: range 49_000..=51_000.
    ok(&mut ex, limit(BOOK, perp(), "b1", Side::Buy, 49_000, 3));
    ok(&mut ex, limit(BOOK, perp(), "b2", Side::Buy, 45_000, 7));
    let events = mark(&mut ex, perp(), 45_000);
    assert_eq!(
        liquidation_order(&events),
        Some((Side::Sell, Some(Price(49_000)), Quantity(10), true))
    );
    assert_eq!(size(&ex, BOOK, &perp()), 3);
    assert_eq!(
        taken_over(&events),
        vec![(AccountId(VICTIM), AccountId(FUND), 7, Price(44_010))]
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.kind, EventKind::CircuitBreakerTripped { .. }))
    );
    assert_eq!(
        ex.instrument(&perp()).unwrap().status,
        InstrumentStatus::Active
    );
}

#[test]
fn without_a_fund_nothing_is_liquidated_and_the_hash_is_unchanged() {
    let mut ex = victim(true, 1_000 * USDC);
    let mut never = market();
    deposit(&mut never, VICTIM, 600 * USDC);
    deposit(&mut never, OTHER, 1_000_000 * USDC);
    deposit(&mut never, BOOK, 1_000_000 * USDC);
    deposit(&mut never, FUND, 1_000 * USDC);
    open(&mut never, perp(), VICTIM, OTHER, 50_000, 10, "open");
    assert_ne!(ex.state_hash(), never.state_hash());
    set_fund(&mut ex, None);
    assert_eq!(ex.state_hash(), never.state_hash());
    let events = mark(&mut ex, perp(), 40_000);
    assert_eq!(events.len(), 1);
    assert_eq!(size(&ex, VICTIM, &perp()), 10);
    assert_eq!(equity(&ex, VICTIM), -401 * USDC);
}

#[test]
fn the_fund_must_be_an_existing_account_other_than_the_fee_account() {
    let mut ex = market();
    rejected(
        &mut ex,
        Command::SetInsuranceFund {
            account: Some(FEE_ACCOUNT),
            ts: Timestamp(1),
        },
        RejectReason::FeeAccount,
    );
    rejected(
        &mut ex,
        Command::SetInsuranceFund {
            account: Some(AccountId(FUND)),
            ts: Timestamp(1),
        },
        RejectReason::UnknownAccount,
    );
    deposit(&mut ex, FUND, USDC);
    let events = set_fund(&mut ex, Some(FUND));
    assert_eq!(
        events[0].kind,
        EventKind::InsuranceFundSet {
            account: Some(AccountId(FUND))
        }
    );
}

#[test]
fn the_fund_itself_is_never_liquidated() {
    let mut ex = victim(true, 1_000 * USDC);
    mark(&mut ex, perp(), 40_000);
    assert_eq!(size(&ex, FUND, &perp()), 10);
    // The fund is now long 10 at 44_010 with 1_000 USDC: far under maintenance at
    // 30_000 (equity −401 − 1_000 + 1_000), and left alone.
    let events = mark(&mut ex, perp(), 30_000);
    assert!(started(&events).is_empty());
    assert_eq!(size(&ex, FUND, &perp()), 10);
}
