//! Orders: the pre-trade check, reduce-only, freezes, halts, fees and realised PnL.

use bourse_exchange::*;

use crate::fixture::*;

#[test]
fn an_order_whose_initial_margin_exceeds_available_is_rejected_and_changes_nothing() {
    let mut ex = market();
    // 100 USDC. One lot at 50_000 is 500 USDC notional; 10% IM is 50 USDC.
    deposit(&mut ex, 1, 100 * USDC);
    rejected(
        &mut ex,
        limit(1, perp(), "big", Side::Buy, MARK, 2),
        RejectReason::InsufficientMargin,
    );
    let events = ok(&mut ex, limit(1, perp(), "small", Side::Buy, MARK, 1));
    assert!(matches!(events[1].kind, EventKind::OrderRested { .. }));
    let summary = ex.account(AccountId(1)).unwrap();
    assert_eq!(summary.initial_margin, 50 * USDC);
    assert_eq!(summary.available, 50 * USDC);
    // A second bid could fill and pay the taker fee, which 50 USDC do not cover...
    rejected(
        &mut ex,
        limit(1, perp(), "second", Side::Buy, MARK, 1),
        RejectReason::InsufficientMargin,
    );
    // ...but a post-only one only ever rests, and fits exactly.
    let Command::PlaceOrder(mut second) = limit(1, perp(), "second", Side::Buy, MARK, 1) else {
        unreachable!()
    };
    second.post_only = true;
    ok(&mut ex, Command::PlaceOrder(second.clone()));
    assert_eq!(ex.account(AccountId(1)).unwrap().available, 0);
    second.client_order_id = ClientOrderId::parse("third").unwrap();
    rejected(
        &mut ex,
        Command::PlaceOrder(second),
        RejectReason::InsufficientMargin,
    );
    // An opposite order nets against the bids and needs nothing more.
    ok(&mut ex, limit(1, perp(), "ask", Side::Sell, MARK + 100, 1));
}

#[test]
fn the_fill_end_counts_the_taker_fee_and_the_loss_against_the_mark() {
    let mut ex = market();
    deposit(&mut ex, 2, 10_000 * USDC);
    // A seller 1_000 above the mark: buying there loses 10 USDC per lot at once.
    ok(
        &mut ex,
        limit(2, perp(), "ask", Side::Sell, MARK + 1_000, 1),
    );
    // Margin at the mark is 50 USDC, the fill costs 10 USDC of PnL and the taker fee
    // 0.05% × 510 = 0.255 USDC: 60.255 USDC is needed, 60.25 is not enough.
    deposit(&mut ex, 1, 60_250_000);
    rejected(
        &mut ex,
        market_order(1, perp(), "m", Side::Buy, 1),
        RejectReason::InsufficientMargin,
    );
    deposit(&mut ex, 1, 5_000);
    ok(&mut ex, market_order(1, perp(), "m", Side::Buy, 1));
    assert_eq!(size(&ex, 1, &perp()), 1);
    assert!(ex.account(AccountId(1)).unwrap().available >= 0);
}

#[test]
fn orders_need_a_known_unfrozen_account_and_valid_fields() {
    let mut ex = market();
    rejected(
        &mut ex,
        limit(9, perp(), "x", Side::Buy, MARK, 1),
        RejectReason::UnknownAccount,
    );
    rejected(
        &mut ex,
        limit(0, perp(), "x", Side::Buy, MARK, 1),
        RejectReason::FeeAccount,
    );
    deposit(&mut ex, 1, 1_000 * USDC);
    let nope = Symbol::parse("NOPE").unwrap();
    rejected(
        &mut ex,
        limit(1, nope, "x", Side::Buy, MARK, 1),
        RejectReason::UnknownInstrument,
    );
    rejected(
        &mut ex,
        limit(1, perp(), "x", Side::Buy, 0, 1),
        RejectReason::InvalidPrice,
    );
    rejected(
        &mut ex,
        limit(1, perp(), "x", Side::Buy, MARK, 0),
        RejectReason::InvalidQuantity,
    );
    ok(&mut ex, limit(1, perp(), "x", Side::Buy, MARK - 10, 1));
    rejected(
        &mut ex,
        limit(1, perp(), "x", Side::Buy, MARK - 10, 1),
        RejectReason::DuplicateClientOrderId,
    );
    // The largest order there is: its notional fits the bounds (2^48 ticks × 2^32 lots ×
    // 10_000 < 2^100), so it is simply refused for margin, never a panic.
    rejected(
        &mut ex,
        limit(
            1,
            perp(),
            "huge",
            Side::Buy,
            MAX_PRICE.0,
            u64::from(u32::MAX),
        ),
        RejectReason::InsufficientMargin,
    );
    rejected(
        &mut ex,
        limit(1, perp(), "over", Side::Buy, MAX_PRICE.0 + 1, 1),
        RejectReason::InvalidPrice,
    );
    // Book rules come through with their own code.
    let mut post = order(1, perp(), "p", Side::Buy, MARK, 1);
    post.post_only = true;
    post.time_in_force = TimeInForce::Ioc;
    rejected(
        &mut ex,
        Command::PlaceOrder(post),
        RejectReason::Book(bourse_matching::RejectReason::InvalidTimeInForce),
    );
}

#[test]
fn reduce_only_may_shrink_but_never_increase_or_flip() {
    let mut ex = market();
    deposit(&mut ex, 1, 10_000 * USDC);
    deposit(&mut ex, 2, 10_000 * USDC);
    // No position: nothing to reduce.
    let mut ro = order(1, perp(), "ro0", Side::Sell, MARK, 1);
    ro.reduce_only = true;
    rejected(
        &mut ex,
        Command::PlaceOrder(ro),
        RejectReason::ReduceOnlyWouldIncrease,
    );

    open(&mut ex, perp(), 1, 2, MARK, 5, "o");
    assert_eq!(size(&ex, 1, &perp()), 5);
    // Same side as the position: it would increase.
    let mut up = order(1, perp(), "ro-up", Side::Buy, MARK - 100, 1);
    up.reduce_only = true;
    rejected(
        &mut ex,
        Command::PlaceOrder(up),
        RejectReason::ReduceOnlyWouldIncrease,
    );
    // Shrinking is fine.
    let mut three = order(1, perp(), "ro3", Side::Sell, MARK + 100, 3);
    three.reduce_only = true;
    let three_id = accepted_id(&ok(&mut ex, Command::PlaceOrder(three)));
    // Ten more would flip: capped to the 2 lots not yet covered.
    let mut ten = order(1, perp(), "ro10", Side::Sell, MARK + 200, 10);
    ten.reduce_only = true;
    let events = ok(&mut ex, Command::PlaceOrder(ten));
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::OrderAccepted {
            quantity: Quantity(2),
            reduce_only: true,
            ..
        }
    )));
    let ten_id = accepted_id(&events);
    // Everything is covered now.
    let mut more = order(1, perp(), "ro-more", Side::Sell, MARK + 300, 1);
    more.reduce_only = true;
    rejected(
        &mut ex,
        Command::PlaceOrder(more),
        RejectReason::ReduceOnlyWouldIncrease,
    );

    // The position shrinks by 4 through a plain order: the reduce-only orders are
    // capped to the 1 lot left, oldest first kept.
    ok(&mut ex, limit(2, perp(), "bid", Side::Buy, MARK - 50, 4));
    let events = ok(&mut ex, market_order(1, perp(), "sell4", Side::Sell, 4));
    assert_eq!(size(&ex, 1, &perp()), 1);
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::OrderAmended { order_id, quantity: Quantity(1), kept_priority: true, .. } if order_id == three_id
    )));
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::OrderCanceled { order_id, reason: CancelReason::ReduceOnly, .. } if order_id == ten_id
    )));
    assert_eq!(ex.order(three_id).unwrap().leaves, Quantity(1));
    assert!(ex.order(ten_id).is_none());

    // A reduce-only taker larger than the position closes it and stops there.
    ok(
        &mut ex,
        Command::CancelOrder {
            account: AccountId(1),
            order_id: three_id,
            ts: Timestamp(3),
        },
    );
    ok(&mut ex, limit(2, perp(), "bid2", Side::Buy, MARK - 60, 50));
    let Command::PlaceOrder(mut close) = market_order(1, perp(), "close", Side::Sell, 50) else {
        unreachable!()
    };
    close.reduce_only = true;
    ok(&mut ex, Command::PlaceOrder(close));
    assert_eq!(size(&ex, 1, &perp()), 0);
}

#[test]
fn a_frozen_account_loses_its_orders_and_cannot_trade_or_withdraw() {
    let mut ex = market();
    deposit(&mut ex, 1, 1_000 * USDC);
    let id = accepted_id(&ok(&mut ex, limit(1, perp(), "a", Side::Buy, MARK - 10, 1)));
    let events = ok(
        &mut ex,
        Command::FreezeAccount {
            account: AccountId(1),
            ts: Timestamp(3),
        },
    );
    assert!(matches!(events[0].kind, EventKind::AccountFrozen { .. }));
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::OrderCanceled { order_id, reason: CancelReason::AccountFrozen, .. } if order_id == id
    )));
    assert!(ex.open_orders(AccountId(1)).is_empty());
    assert_eq!(ex.best_bid(&perp()), None);
    rejected(
        &mut ex,
        limit(1, perp(), "b", Side::Buy, MARK - 10, 1),
        RejectReason::AccountFrozen,
    );
    let withdraw = Command::Withdraw {
        withdrawal: WithdrawalId(1),
        account: AccountId(1),
        asset: usdc(),
        amount: USDC,
        ts: Timestamp(3),
    };
    rejected(&mut ex, withdraw.clone(), RejectReason::AccountFrozen);
    rejected(
        &mut ex,
        Command::FreezeAccount {
            account: AccountId(1),
            ts: Timestamp(3),
        },
        RejectReason::FreezeUnchanged,
    );
    ok(
        &mut ex,
        Command::UnfreezeAccount {
            account: AccountId(1),
            ts: Timestamp(4),
        },
    );
    ok(&mut ex, limit(1, perp(), "b", Side::Buy, MARK - 10, 1));
    ok(&mut ex, withdraw);
}

#[test]
fn a_halted_instrument_rejects_orders_but_lets_them_be_canceled() {
    let mut ex = market();
    deposit(&mut ex, 1, 1_000 * USDC);
    let id = accepted_id(&ok(&mut ex, limit(1, perp(), "a", Side::Buy, MARK - 10, 1)));
    let halt = Command::SetInstrumentStatus {
        instrument: perp(),
        change: StatusChange::Halt,
        ts: Timestamp(3),
    };
    ok(&mut ex, halt.clone());
    assert_eq!(
        ex.instrument(&perp()).unwrap().status,
        InstrumentStatus::Halted
    );
    rejected(&mut ex, halt, RejectReason::InvalidStatusTransition);
    rejected(
        &mut ex,
        limit(1, perp(), "b", Side::Buy, MARK - 10, 1),
        RejectReason::InstrumentHalted,
    );
    rejected(
        &mut ex,
        Command::AmendOrder {
            account: AccountId(1),
            order_id: id,
            price: Some(Price(MARK - 20)),
            quantity: None,
            ts: Timestamp(3),
        },
        RejectReason::InstrumentHalted,
    );
    ok(
        &mut ex,
        Command::CancelOrder {
            account: AccountId(1),
            order_id: id,
            ts: Timestamp(3),
        },
    );
    ok(
        &mut ex,
        Command::SetInstrumentStatus {
            instrument: perp(),
            change: StatusChange::Resume,
            ts: Timestamp(4),
        },
    );
    ok(&mut ex, limit(1, perp(), "b", Side::Buy, MARK - 10, 1));
}

#[test]
fn fees_go_to_the_fee_account_at_maker_and_taker_rates() {
    let mut ex = market();
    deposit(&mut ex, 1, 1_000 * USDC);
    deposit(&mut ex, 2, 1_000 * USDC);
    open(&mut ex, perp(), 1, 2, MARK, 1, "f");
    let maker_fee = fee(MARK, 1, 200);
    let taker_fee = fee(MARK, 1, 500);
    assert_eq!(maker_fee, 100_000); // 0.02% of 500 USDC
    assert_eq!(taker_fee, 250_000); // 0.05% of 500 USDC
    assert_eq!(cash(&ex, 1), 1_000 * USDC - maker_fee);
    assert_eq!(cash(&ex, 2), 1_000 * USDC - taker_fee);
    assert_eq!(ex.balance(FEE_ACCOUNT, &usdc()), maker_fee + taker_fee);
}

#[test]
fn closing_a_position_realises_its_pnl_into_cash() {
    let mut ex = market();
    deposit(&mut ex, 1, 1_000 * USDC);
    deposit(&mut ex, 2, 1_000 * USDC);
    deposit(&mut ex, 3, 1_000 * USDC);
    open(&mut ex, perp(), 1, 2, MARK, 2, "open");
    let p = ex.position(AccountId(1), &perp()).unwrap();
    assert_eq!(
        (p.size, p.average_entry, p.realised_pnl),
        (2, Some(Price(MARK)), 0)
    );
    // The mark rises 1_000: 2 lots × 1_000 ticks × 0.01 USDC = 20 USDC unrealised.
    ok(
        &mut ex,
        Command::SetMarkPrice {
            instrument: perp(),
            price: Price(MARK + 1_000),
            ts: Timestamp(3),
        },
    );
    assert_eq!(
        ex.position(AccountId(1), &perp()).unwrap().unrealised,
        20 * USDC
    );
    assert_eq!(
        ex.position(AccountId(2), &perp()).unwrap().unrealised,
        -20 * USDC
    );
    let before = cash(&ex, 1);
    // Account 3 buys both lots from account 1 at the new price: 1 realises 20 USDC.
    ok(&mut ex, limit(3, perp(), "bid", Side::Buy, MARK + 1_000, 2));
    ok(
        &mut ex,
        limit(1, perp(), "close", Side::Sell, MARK + 1_000, 2),
    );
    let p = ex.position(AccountId(1), &perp()).unwrap();
    assert_eq!((p.size, p.cost, p.realised_pnl), (0, 0, 20 * USDC));
    assert_eq!(cash(&ex, 1), before + 20 * USDC - fee(MARK + 1_000, 2, 500));
    // Account 2 still holds the matching loss, unrealised.
    assert_eq!(
        ex.position(AccountId(2), &perp()).unwrap().unrealised,
        -20 * USDC
    );
}

#[test]
fn a_partial_close_realises_its_share_and_a_flip_reopens_at_the_trade_price() {
    let mut ex = market();
    for a in 1..=3 {
        deposit(&mut ex, a, 5_000 * USDC);
    }
    open(&mut ex, perp(), 1, 2, MARK, 3, "a");
    open(&mut ex, perp(), 1, 2, MARK + 300, 1, "b"); // long 4, cost 200_300
    let p = ex.position(AccountId(1), &perp()).unwrap();
    assert_eq!(
        (p.size, p.cost, p.average_entry),
        (4, 200_300, Some(Price(50_075)))
    );
    // Sell 6 at 50_100: closes 4 (realising 4×50_100 − 200_300 = 100 ticks = 1 USDC),
    // then opens 2 short at 50_100.
    ok(&mut ex, limit(3, perp(), "bid", Side::Buy, 50_100, 6));
    ok(&mut ex, limit(1, perp(), "flip", Side::Sell, 50_100, 6));
    let p = ex.position(AccountId(1), &perp()).unwrap();
    assert_eq!((p.size, p.cost, p.realised_pnl), (-2, -100_200, 100 * V));
}

#[test]
fn amending_up_is_margin_checked_and_amending_down_is_free() {
    let mut ex = market();
    deposit(&mut ex, 1, 100 * USDC);
    let id = accepted_id(&ok(
        &mut ex,
        limit(1, perp(), "a", Side::Buy, MARK - 100, 1),
    ));
    let amend = |q: u64| Command::AmendOrder {
        account: AccountId(1),
        order_id: id,
        price: None,
        quantity: Some(Quantity(q)),
        ts: Timestamp(3),
    };
    rejected(&mut ex, amend(3), RejectReason::InsufficientMargin);
    ok(&mut ex, amend(2));
    assert_eq!(ex.order(id).unwrap().leaves, Quantity(2));
    // Someone else's order does not exist for them.
    deposit(&mut ex, 2, 100 * USDC);
    rejected(
        &mut ex,
        Command::AmendOrder {
            account: AccountId(2),
            order_id: id,
            price: None,
            quantity: Some(Quantity(1)),
            ts: Timestamp(3),
        },
        RejectReason::UnknownOrder,
    );
    ok(&mut ex, amend(1));
    assert_eq!(
        ex.account(AccountId(1)).unwrap().initial_margin,
        (MARK - 100) as i128 * V / 10
    );
}
