//! Options: premium at trade time, Deribit-style short margin, cash settlement.

use bourse_exchange::*;

use crate::fixture::*;

#[test]
fn the_buyer_pays_the_premium_to_the_seller_at_trade_time() {
    let mut ex = market();
    deposit(&mut ex, 1, 1_000 * USDC);
    deposit(&mut ex, 2, 100 * USDC);
    ok(&mut ex, limit(1, call(), "sell", Side::Sell, 2_000, 1));
    ok(&mut ex, limit(2, call(), "buy", Side::Buy, 2_000, 1));
    // Premium: 2_000 ticks × 1 lot × 0.01 USDC = 20 USDC.
    assert_eq!(cash(&ex, 2), 100 * USDC - 20 * USDC - fee(2_000, 1, 500));
    assert_eq!(cash(&ex, 1), 1_000 * USDC + 20 * USDC - fee(2_000, 1, 200));
    assert_eq!(size(&ex, 2, &call()), 1);
    assert_eq!(size(&ex, 1, &call()), -1);
    // A long option needs no margin; its value at the mark counts in equity.
    let buyer = ex.account(AccountId(2)).unwrap();
    assert_eq!(buyer.initial_margin, 0);
    assert_eq!(buyer.unrealised, 20 * USDC);
}

#[test]
fn short_option_margin_follows_the_deribit_formula() {
    let mut ex = market();
    deposit(&mut ex, 2, 1_000 * USDC);
    ok(&mut ex, limit(2, call(), "bid", Side::Buy, 2_000, 1));
    ok(&mut ex, limit(2, otm_call(), "bid-otm", Side::Buy, 500, 1));
    // At the money (S = K = 50_000, mark 2_000):
    //   max(15% × 50_000 − 0, 10% × 50_000) + 2_000 = 9_500 ticks = 95 USDC.
    // The seller also receives 20 USDC premium minus a 0.01 USDC taker fee, and owes
    // the option's 20 USDC value, so 95.01 USDC is the least that works.
    deposit(&mut ex, 1, 95 * USDC);
    rejected(
        &mut ex,
        limit(1, call(), "sell", Side::Sell, 2_000, 1),
        RejectReason::InsufficientMargin,
    );
    deposit(&mut ex, 1, fee(2_000, 1, 500));
    ok(&mut ex, limit(1, call(), "sell", Side::Sell, 2_000, 1));
    let seller = ex.account(AccountId(1)).unwrap();
    assert_eq!(seller.initial_margin, 95 * USDC);
    // Maintenance: 7.5% × 50_000 + 2_000 = 5_750 ticks = 57.5 USDC.
    assert_eq!(seller.maintenance_margin, 57_500_000);

    // 10_000 out of the money (K = 60_000, mark 500):
    //   max(15% × 50_000 − 10_000, 10% × 50_000) + 500 = 5_500 ticks = 55 USDC.
    deposit(&mut ex, 3, 1_000 * USDC);
    ok(&mut ex, limit(3, otm_call(), "sell", Side::Sell, 500, 1));
    assert_eq!(ex.account(AccountId(3)).unwrap().initial_margin, 55 * USDC);
}

#[test]
fn a_buyer_needs_the_premium_up_front_but_no_margin() {
    let mut ex = market();
    deposit(&mut ex, 1, 1_000 * USDC);
    ok(&mut ex, limit(1, call(), "sell", Side::Sell, 2_000, 1));
    // The option's own value may not pay for it: 19.99 USDC is not enough.
    deposit(&mut ex, 2, 20 * USDC - 10_000);
    rejected(
        &mut ex,
        market_order(2, call(), "buy", Side::Buy, 1),
        RejectReason::InsufficientMargin,
    );
    deposit(&mut ex, 2, 10_000 + fee(2_000, 1, 500));
    ok(&mut ex, market_order(2, call(), "buy", Side::Buy, 1));
    assert_eq!(cash(&ex, 2), 0);
    assert_eq!(ex.account(AccountId(2)).unwrap().available, 20 * USDC);
}

#[test]
fn options_settle_at_intrinsic_value_from_shorts_to_longs() {
    let mut ex = market();
    for a in 1..=2 {
        deposit(&mut ex, a, 1_000 * USDC);
    }
    ok(&mut ex, limit(1, call(), "sell", Side::Sell, 2_000, 2));
    ok(&mut ex, limit(2, call(), "buy", Side::Buy, 2_000, 2));
    ok(&mut ex, limit(1, otm_call(), "sell", Side::Sell, 500, 1));
    ok(&mut ex, limit(2, otm_call(), "buy", Side::Buy, 500, 1));
    for symbol in [call(), otm_call()] {
        ok(
            &mut ex,
            Command::SetIndexPrice {
                instrument: symbol,
                price: Price(53_000),
                ts: Timestamp(999),
            },
        );
    }
    let (c1, c2) = (cash(&ex, 1), cash(&ex, 2));
    ok(
        &mut ex,
        Command::SettleExpiry {
            instrument: call(),
            ts: EXPIRY,
        },
    );
    ok(
        &mut ex,
        Command::SettleExpiry {
            instrument: otm_call(),
            ts: EXPIRY,
        },
    );
    // In the money by 3_000: 2 lots × 3_000 × 0.01 USDC = 60 USDC. The 60_000 call
    // expires worthless.
    assert_eq!(cash(&ex, 2) - c2, 60 * USDC);
    assert_eq!(cash(&ex, 1) - c1, -60 * USDC);
    let long = ex.position(AccountId(2), &call()).unwrap();
    // Realised: 60 USDC payoff − 40 USDC premium.
    assert_eq!((long.size, long.realised_pnl), (0, 20 * USDC));
    assert_eq!(
        ex.position(AccountId(2), &otm_call()).unwrap().realised_pnl,
        -5 * USDC
    );
    assert_eq!(ex.account(AccountId(1)).unwrap().initial_margin, 0);
    let total: Money = ex
        .account_ids()
        .iter()
        .map(|&a| ex.balance(a, &usdc()))
        .sum();
    assert_eq!(total, ex.total_deposited(&usdc()));
}
