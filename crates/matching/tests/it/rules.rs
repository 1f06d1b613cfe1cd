//! One test (at least) per matching rule.

use bourse_matching::*;

use crate::{Harness, limit, market, trades};

const A: u64 = 1;
const B: u64 = 2;
const C: u64 = 3;

fn rejected(events: &[Event]) -> Option<RejectReason> {
    match events {
        [Event::Rejected { reason, .. }] => Some(*reason),
        _ => None,
    }
}

/// Runs a command that must be rejected and checks that nothing changed.
fn assert_rejected(h: &mut Harness, command: Command, reason: RejectReason) {
    let before = h.book.state_hash();
    let depth_before = h.book.depth(100);
    let events = h.run(command);
    assert_eq!(rejected(&events), Some(reason), "events: {events:?}");
    assert_eq!(
        h.book.state_hash(),
        before,
        "a rejection changed the state hash"
    );
    assert_eq!(
        h.book.depth(100),
        depth_before,
        "a rejection changed the book"
    );
}

#[test]
fn a_limit_order_that_does_not_cross_rests_and_shows_in_the_queries() {
    let mut h = Harness::new();
    let events = h.submit(limit(1, A, Side::Buy, 99, 5));
    assert_eq!(
        events,
        vec![
            Event::Accepted {
                order_id: OrderId(1),
                account: AccountId(A),
                side: Side::Buy,
                price: Some(Price(99)),
                quantity: Quantity(5),
            },
            Event::Rested {
                order_id: OrderId(1),
                side: Side::Buy,
                price: Price(99),
                quantity: Quantity(5),
            },
        ]
    );
    h.rest(2, B, Side::Sell, 101, 7);
    assert_eq!(h.book.best_bid(), Some(Price(99)));
    assert_eq!(h.book.best_ask(), Some(Price(101)));
    let view = h.book.order(OrderId(2)).expect("order 2 rests");
    assert_eq!(view.leaves, Quantity(7));
    assert_eq!(view.filled, Quantity(0));
    assert_eq!(view.account, AccountId(B));
    assert_eq!(view.time_in_force, TimeInForce::Gtc);
    assert_eq!(h.book.len(), 2);
}

#[test]
fn orders_at_one_price_fill_in_arrival_order() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Sell, 100, 5);
    h.rest(2, B, Side::Sell, 100, 5);
    h.rest(3, A, Side::Sell, 100, 5);
    assert_eq!(h.queue(Side::Sell, 100), vec![1, 2, 3]);
    let events = h.submit(market(10, C, Side::Buy, 7));
    assert_eq!(trades(&events), vec![(1, 10, 100, 5), (2, 10, 100, 2)]);
    assert_eq!(h.queue(Side::Sell, 100), vec![2, 3]);
    assert_eq!(h.book.order(OrderId(2)).unwrap().leaves, Quantity(3));
    assert_eq!(h.book.order(OrderId(2)).unwrap().filled, Quantity(2));
}

#[test]
fn a_better_price_fills_before_an_earlier_order() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Buy, 98, 5);
    h.rest(2, A, Side::Buy, 99, 5);
    let events = h.submit(market(10, B, Side::Sell, 6));
    assert_eq!(trades(&events), vec![(2, 10, 99, 5), (1, 10, 98, 1)]);
}

#[test]
fn a_crossing_limit_order_fills_across_levels_at_maker_prices_and_rests_the_rest() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Sell, 101, 5);
    h.rest(2, A, Side::Sell, 102, 5);
    h.rest(3, A, Side::Sell, 102, 5);
    h.rest(4, A, Side::Sell, 103, 5);
    let events = h.submit(limit(10, B, Side::Buy, 102, 17));
    assert_eq!(
        trades(&events),
        vec![(1, 10, 101, 5), (2, 10, 102, 5), (3, 10, 102, 5)]
    );
    // Never worse than the limit: 103 is untouched and the rest bids at 102.
    assert_eq!(
        events.last(),
        Some(&Event::Rested {
            order_id: OrderId(10),
            side: Side::Buy,
            price: Price(102),
            quantity: Quantity(2),
        })
    );
    assert_eq!(h.book.best_bid(), Some(Price(102)));
    assert_eq!(h.book.best_ask(), Some(Price(103)));
    let taker = h.book.order(OrderId(10)).unwrap();
    assert_eq!((taker.leaves, taker.filled), (Quantity(2), Quantity(15)));
}

#[test]
fn a_partial_fill_reports_leaves_of_maker_and_taker() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Buy, 100, 10);
    let events = h.submit(limit(2, B, Side::Sell, 100, 4));
    assert_eq!(
        events[1],
        Event::Traded {
            maker_order_id: OrderId(1),
            taker_order_id: OrderId(2),
            maker_account: AccountId(A),
            taker_account: AccountId(B),
            price: Price(100),
            quantity: Quantity(4),
            aggressor: Side::Sell,
            maker_leaves: Quantity(6),
            taker_leaves: Quantity(0),
        }
    );
    // Filled completely: no Rested, no Canceled.
    assert_eq!(events.len(), 2);
}

#[test]
fn a_market_order_sweeps_levels_and_cancels_what_it_cannot_fill() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Buy, 100, 3);
    h.rest(2, A, Side::Buy, 90, 3);
    let events = h.submit(market(10, B, Side::Sell, 10));
    assert_eq!(trades(&events), vec![(1, 10, 100, 3), (2, 10, 90, 3)]);
    assert_eq!(
        events.last(),
        Some(&Event::Canceled {
            order_id: OrderId(10),
            account: AccountId(B),
            quantity: Quantity(4),
            reason: CancelReason::Unfilled,
        })
    );
    assert!(h.book.is_empty());
    assert!(h.book.order(OrderId(10)).is_none());
}

#[test]
fn a_market_order_on_an_empty_side_is_accepted_then_canceled() {
    let mut h = Harness::new();
    let events = h.submit(market(1, A, Side::Buy, 5));
    assert!(matches!(events[0], Event::Accepted { price: None, .. }));
    assert!(matches!(
        events[1],
        Event::Canceled {
            quantity: Quantity(5),
            reason: CancelReason::Unfilled,
            ..
        }
    ));
}

#[test]
fn an_ioc_limit_fills_within_its_limit_and_never_rests() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Sell, 100, 2);
    h.rest(2, A, Side::Sell, 105, 9);
    let order = limit(10, B, Side::Buy, 101, 5).with_time_in_force(TimeInForce::Ioc);
    let events = h.submit(order);
    assert_eq!(trades(&events), vec![(1, 10, 100, 2)]);
    assert!(matches!(
        events.last(),
        Some(Event::Canceled {
            quantity: Quantity(3),
            reason: CancelReason::Unfilled,
            ..
        })
    ));
    assert_eq!(h.book.best_bid(), None);
    assert_eq!(h.book.order(OrderId(2)).unwrap().leaves, Quantity(9));
}

#[test]
fn a_fok_that_can_fill_fills_completely() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Sell, 100, 2);
    h.rest(2, A, Side::Sell, 101, 3);
    let order = limit(10, B, Side::Buy, 101, 5).with_time_in_force(TimeInForce::Fok);
    let events = h.submit(order);
    assert_eq!(trades(&events), vec![(1, 10, 100, 2), (2, 10, 101, 3)]);
    assert!(h.book.is_empty());
}

#[test]
fn a_fok_that_would_partly_fill_is_rejected_before_any_fill() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Sell, 100, 2);
    h.rest(2, A, Side::Sell, 101, 3);
    h.rest(3, A, Side::Sell, 102, 50);
    // 5 lots are within the limit; 50 more lie beyond it and must not count.
    let order = limit(10, B, Side::Buy, 101, 6).with_time_in_force(TimeInForce::Fok);
    assert_rejected(
        &mut h,
        Command::Submit(order),
        RejectReason::FillOrKillUnfillable,
    );
    let market_fok = market(11, B, Side::Buy, 56).with_time_in_force(TimeInForce::Fok);
    assert_rejected(
        &mut h,
        Command::Submit(market_fok),
        RejectReason::FillOrKillUnfillable,
    );
    assert_eq!(h.book.order(OrderId(1)).unwrap().leaves, Quantity(2));
}

#[test]
fn a_post_only_order_rests_when_it_would_not_take() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Sell, 101, 2);
    let events = h.submit(limit(2, B, Side::Buy, 100, 5).post_only());
    assert!(matches!(events.last(), Some(Event::Rested { .. })));
}

#[test]
fn a_post_only_order_that_would_take_is_rejected_and_says_so() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Sell, 101, 2);
    let order = limit(2, B, Side::Buy, 101, 5).post_only();
    assert_rejected(
        &mut h,
        Command::Submit(order),
        RejectReason::PostOnlyWouldTake,
    );
    let reason = RejectReason::PostOnlyWouldTake;
    assert_eq!(reason.code(), "post_only_would_take");
    assert!(
        reason
            .to_string()
            .contains("post-only order would take liquidity")
    );
}

#[test]
fn time_in_force_must_fit_the_order_type() {
    let mut h = Harness::new();
    let market_gtc = market(1, A, Side::Buy, 1).with_time_in_force(TimeInForce::Gtc);
    assert_rejected(
        &mut h,
        Command::Submit(market_gtc),
        RejectReason::InvalidTimeInForce,
    );
    let market_gtt = market(1, A, Side::Buy, 1).with_time_in_force(TimeInForce::Gtt(Timestamp(5)));
    assert_rejected(
        &mut h,
        Command::Submit(market_gtt),
        RejectReason::InvalidTimeInForce,
    );
    for tif in [TimeInForce::Ioc, TimeInForce::Fok] {
        let order = limit(1, A, Side::Buy, 100, 1)
            .with_time_in_force(tif)
            .post_only();
        assert_rejected(
            &mut h,
            Command::Submit(order),
            RejectReason::InvalidTimeInForce,
        );
    }
    let post_only_market = market(1, A, Side::Buy, 1).post_only();
    assert_rejected(
        &mut h,
        Command::Submit(post_only_market),
        RejectReason::InvalidTimeInForce,
    );
}

#[test]
fn quantities_and_prices_out_of_range_are_rejected() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Buy, 100, 1);
    for qty in [0, Quantity::MAX.0 + 1] {
        assert_rejected(
            &mut h,
            Command::Submit(limit(2, A, Side::Buy, 100, qty)),
            RejectReason::InvalidQuantity,
        );
    }
    for price in [0, -5, Price::MAX.0 + 1, i64::MIN] {
        assert_rejected(
            &mut h,
            Command::Submit(limit(2, A, Side::Buy, price, 1)),
            RejectReason::InvalidPrice,
        );
    }
    // The extremes themselves are fine.
    h.rest(3, A, Side::Sell, Price::MAX.0, Quantity::MAX.0);
    h.rest(4, A, Side::Buy, 1, 1);
    assert_eq!(h.book.best_ask(), Some(Price::MAX));
}

#[test]
fn a_duplicate_of_a_resting_order_id_is_rejected() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Buy, 100, 1);
    assert_rejected(
        &mut h,
        Command::Submit(limit(1, B, Side::Sell, 200, 1)),
        RejectReason::DuplicateOrderId,
    );
    // Even an order that would never rest (a market order) may not reuse a live id.
    assert_rejected(
        &mut h,
        Command::Submit(market(1, B, Side::Sell, 1)),
        RejectReason::DuplicateOrderId,
    );
    // Once the order is gone, the book no longer knows the id (uniqueness over all
    // time is the caller's job: the exchange assigns ids from a sequence).
    h.run(Command::Cancel {
        order_id: OrderId(1),
    });
    h.rest(1, B, Side::Buy, 100, 1);
}

#[test]
fn duplicates_are_caught_below_and_at_the_largest_id() {
    let mut h = Harness::new();
    h.rest(u64::MAX, A, Side::Buy, 100, 1);
    h.rest(7, A, Side::Buy, 100, 1);
    for id in [u64::MAX, 7] {
        assert_rejected(
            &mut h,
            Command::Submit(limit(id, B, Side::Buy, 90, 1)),
            RejectReason::DuplicateOrderId,
        );
    }
    h.rest(8, A, Side::Buy, 100, 1);
}

#[test]
fn an_amend_cannot_take_filled_plus_open_quantity_past_the_maximum() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Sell, 100, 10);
    h.submit(market(2, B, Side::Buy, 4));
    let max = Quantity::MAX.0;
    assert_rejected(
        &mut h,
        Command::Amend {
            order_id: OrderId(1),
            price: None,
            quantity: Some(Quantity(max - 3)),
        },
        RejectReason::InvalidQuantity,
    );
    let events = h.run(Command::Amend {
        order_id: OrderId(1),
        price: None,
        quantity: Some(Quantity(max - 4)),
    });
    assert!(matches!(events[..], [Event::Amended { .. }]));
    let view = h.book.order(OrderId(1)).unwrap();
    assert_eq!((view.leaves.0, view.filled.0), (max - 4, 4));
}

#[test]
fn self_trade_cancel_taker_keeps_earlier_fills_and_the_maker() {
    let mut h = Harness::new();
    h.rest(1, B, Side::Sell, 100, 3);
    h.rest(2, A, Side::Sell, 101, 5);
    h.rest(3, B, Side::Sell, 102, 5);
    // Cancel-taker is the default mode.
    let events = h.submit(limit(10, A, Side::Buy, 102, 10));
    assert_eq!(trades(&events), vec![(1, 10, 100, 3)]);
    assert_eq!(
        events.last(),
        Some(&Event::Canceled {
            order_id: OrderId(10),
            account: AccountId(A),
            quantity: Quantity(7),
            reason: CancelReason::SelfTradePrevention,
        })
    );
    assert_eq!(h.book.order(OrderId(2)).unwrap().leaves, Quantity(5));
    assert_eq!(h.book.order(OrderId(3)).unwrap().leaves, Quantity(5));
    assert!(h.book.order(OrderId(10)).is_none());
}

#[test]
fn self_trade_cancel_maker_removes_own_orders_and_keeps_matching() {
    let mut h = Harness::new();
    h.rest(1, B, Side::Sell, 100, 3);
    h.rest(2, A, Side::Sell, 101, 5);
    h.rest(3, B, Side::Sell, 101, 5);
    let order = limit(10, A, Side::Buy, 101, 10)
        .with_self_trade_prevention(SelfTradePrevention::CancelMaker);
    let events = h.submit(order);
    assert_eq!(trades(&events), vec![(1, 10, 100, 3), (3, 10, 101, 5)]);
    assert!(events.contains(&Event::Canceled {
        order_id: OrderId(2),
        account: AccountId(A),
        quantity: Quantity(5),
        reason: CancelReason::SelfTradePrevention,
    }));
    // The maker's cancel comes before the trade that followed it.
    let cancel_at = events
        .iter()
        .position(|e| {
            matches!(
                e,
                Event::Canceled {
                    order_id: OrderId(2),
                    ..
                }
            )
        })
        .unwrap();
    let trade_at = events
        .iter()
        .position(|e| {
            matches!(
                e,
                Event::Traded {
                    maker_order_id: OrderId(3),
                    ..
                }
            )
        })
        .unwrap();
    assert!(cancel_at < trade_at);
    assert_eq!(
        events.last(),
        Some(&Event::Rested {
            order_id: OrderId(10),
            side: Side::Buy,
            price: Price(101),
            quantity: Quantity(2),
        })
    );
    assert!(h.book.order(OrderId(2)).is_none());
}

#[test]
fn self_trade_cancel_both_cancels_maker_and_taker() {
    let mut h = Harness::new();
    h.rest(1, B, Side::Sell, 100, 3);
    h.rest(2, A, Side::Sell, 101, 5);
    h.rest(3, B, Side::Sell, 101, 5);
    let order = limit(10, A, Side::Buy, 101, 10)
        .with_self_trade_prevention(SelfTradePrevention::CancelBoth);
    let events = h.submit(order);
    assert_eq!(trades(&events), vec![(1, 10, 100, 3)]);
    let cancels: Vec<_> = events
        .iter()
        .filter_map(|e| match *e {
            Event::Canceled {
                order_id,
                quantity,
                reason,
                ..
            } => Some((order_id.0, quantity.0, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        cancels,
        vec![
            (2, 5, CancelReason::SelfTradePrevention),
            (10, 7, CancelReason::SelfTradePrevention),
        ]
    );
    assert!(h.book.order(OrderId(2)).is_none());
    assert_eq!(h.book.order(OrderId(3)).unwrap().leaves, Quantity(5));
}

#[test]
fn self_trade_prevention_only_concerns_the_same_account() {
    let mut h = Harness::new();
    h.rest(1, B, Side::Buy, 100, 5);
    let events = h.submit(limit(2, A, Side::Sell, 100, 5));
    assert_eq!(trades(&events), vec![(1, 2, 100, 5)]);
}

#[test]
fn fok_counts_only_what_self_trade_prevention_lets_it_fill() {
    let mut h = Harness::new();
    h.rest(1, B, Side::Sell, 100, 3);
    h.rest(2, A, Side::Sell, 100, 5);
    h.rest(3, B, Side::Sell, 101, 5);
    // Cancel-taker: the own order at 100 would stop it after 3 lots.
    let fok = limit(10, A, Side::Buy, 101, 8).with_time_in_force(TimeInForce::Fok);
    assert_rejected(
        &mut h,
        Command::Submit(fok),
        RejectReason::FillOrKillUnfillable,
    );
    // Cancel-maker: it skips its own 5 lots and needs 9 of the 8 others.
    let fok = fok
        .with_self_trade_prevention(SelfTradePrevention::CancelMaker)
        .with_time_in_force(TimeInForce::Fok);
    let too_big = NewOrder {
        quantity: Quantity(9),
        ..fok
    };
    assert_rejected(
        &mut h,
        Command::Submit(too_big),
        RejectReason::FillOrKillUnfillable,
    );
    let events = h.submit(fok);
    assert_eq!(trades(&events), vec![(1, 10, 100, 3), (3, 10, 101, 5)]);
    assert!(h.book.order(OrderId(2)).is_none(), "own maker was canceled");
}

#[test]
fn cancel_removes_the_order_and_unknown_ids_are_rejected() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Buy, 100, 4);
    h.rest(2, A, Side::Buy, 100, 4);
    let events = h.run(Command::Cancel {
        order_id: OrderId(1),
    });
    assert_eq!(
        events,
        vec![Event::Canceled {
            order_id: OrderId(1),
            account: AccountId(A),
            quantity: Quantity(4),
            reason: CancelReason::Requested,
        }]
    );
    assert_eq!(h.queue(Side::Buy, 100), vec![2]);
    for id in [1, 99] {
        assert_rejected(
            &mut h,
            Command::Cancel {
                order_id: OrderId(id),
            },
            RejectReason::UnknownOrder,
        );
    }
    h.run(Command::Cancel {
        order_id: OrderId(2),
    });
    assert_eq!(h.book.best_bid(), None);
    assert_eq!(h.book.level_count(Side::Buy), 0);
}

#[test]
fn cancel_all_cancels_an_accounts_orders_in_priority_order() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Buy, 99, 1);
    h.rest(2, B, Side::Buy, 99, 1);
    h.rest(3, A, Side::Sell, 105, 2);
    h.rest(4, A, Side::Buy, 98, 3);
    let events = h.run(Command::CancelAll {
        account: AccountId(A),
        side: None,
    });
    let canceled: Vec<_> = events
        .iter()
        .map(|e| match *e {
            Event::Canceled {
                order_id, reason, ..
            } => (order_id.0, reason),
            ref other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        canceled,
        vec![
            (1, CancelReason::CancelAll),
            (3, CancelReason::CancelAll),
            (4, CancelReason::CancelAll),
        ]
    );
    assert_eq!(h.book.open_orders(AccountId(A)).count(), 0);
    assert_eq!(h.book.len(), 1);
    // Nothing left to cancel: no events, nothing changes.
    let before = h.book.state_hash();
    assert!(
        h.run(Command::CancelAll {
            account: AccountId(A),
            side: None,
        })
        .is_empty()
    );
    assert_eq!(h.book.state_hash(), before);
}

#[test]
fn cancel_all_by_side_leaves_the_other_side() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Buy, 99, 1);
    h.rest(2, A, Side::Sell, 105, 2);
    h.rest(3, A, Side::Buy, 98, 3);
    h.rest(4, B, Side::Buy, 98, 3);
    let events = h.run(Command::CancelAll {
        account: AccountId(A),
        side: Some(Side::Buy),
    });
    assert_eq!(events.len(), 2);
    let open: Vec<_> = h.book.open_orders(AccountId(A)).map(|o| o.id.0).collect();
    assert_eq!(open, vec![2]);
    assert_eq!(h.queue(Side::Buy, 98), vec![4]);
}

#[test]
fn amend_down_keeps_priority() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Sell, 100, 10);
    h.rest(2, B, Side::Sell, 100, 10);
    let events = h.run(Command::Amend {
        order_id: OrderId(1),
        price: None,
        quantity: Some(Quantity(4)),
    });
    assert_eq!(
        events,
        vec![Event::Amended {
            order_id: OrderId(1),
            price: Price(100),
            quantity: Quantity(4),
            kept_priority: true,
        }]
    );
    assert_eq!(h.queue(Side::Sell, 100), vec![1, 2]);
    let depth = h.book.depth(1);
    assert_eq!(depth.asks[0].quantity, Quantity(14));
    let events = h.submit(market(10, C, Side::Buy, 5));
    assert_eq!(trades(&events), vec![(1, 10, 100, 4), (2, 10, 100, 1)]);
}

#[test]
fn amend_up_loses_priority() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Sell, 100, 10);
    h.rest(2, B, Side::Sell, 100, 10);
    let priority_before = h.book.order(OrderId(1)).unwrap().priority;
    let events = h.run(Command::Amend {
        order_id: OrderId(1),
        price: None,
        quantity: Some(Quantity(11)),
    });
    assert!(matches!(
        events[..],
        [Event::Amended {
            kept_priority: false,
            ..
        }]
    ));
    assert_eq!(h.queue(Side::Sell, 100), vec![2, 1]);
    assert!(h.book.order(OrderId(1)).unwrap().priority > priority_before);
    let events = h.submit(market(10, C, Side::Buy, 12));
    assert_eq!(trades(&events), vec![(2, 10, 100, 10), (1, 10, 100, 2)]);
}

#[test]
fn amend_of_price_moves_the_order_to_the_back_of_the_new_level() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Buy, 99, 5);
    h.rest(2, B, Side::Buy, 98, 5);
    h.rest(3, C, Side::Buy, 99, 5);
    // Down a tick, with a smaller quantity: still loses priority (price changed).
    let events = h.run(Command::Amend {
        order_id: OrderId(1),
        price: Some(Price(98)),
        quantity: Some(Quantity(3)),
    });
    assert!(matches!(
        events[..],
        [Event::Amended {
            price: Price(98),
            quantity: Quantity(3),
            kept_priority: false,
            ..
        }]
    ));
    assert_eq!(h.queue(Side::Buy, 99), vec![3]);
    assert_eq!(h.queue(Side::Buy, 98), vec![2, 1]);
    // A's open orders follow priority too.
    h.rest(4, A, Side::Buy, 97, 1);
    let open: Vec<_> = h.book.open_orders(AccountId(A)).map(|o| o.id.0).collect();
    assert_eq!(open, vec![1, 4]);
}

#[test]
fn amends_that_change_nothing_cross_or_name_no_order_are_rejected() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Buy, 99, 5);
    h.rest(2, B, Side::Sell, 101, 5);
    let amend = |price: Option<i64>, qty: Option<u64>| Command::Amend {
        order_id: OrderId(1),
        price: price.map(Price),
        quantity: qty.map(Quantity),
    };
    assert_rejected(&mut h, amend(None, None), RejectReason::AmendUnchanged);
    assert_rejected(
        &mut h,
        amend(Some(99), Some(5)),
        RejectReason::AmendUnchanged,
    );
    assert_rejected(
        &mut h,
        amend(Some(101), None),
        RejectReason::AmendWouldCross,
    );
    assert_rejected(&mut h, amend(None, Some(0)), RejectReason::InvalidQuantity);
    assert_rejected(&mut h, amend(Some(0), None), RejectReason::InvalidPrice);
    assert_rejected(
        &mut h,
        Command::Amend {
            order_id: OrderId(7),
            price: Some(Price(90)),
            quantity: None,
        },
        RejectReason::UnknownOrder,
    );
}

#[test]
fn good_till_time_orders_expire_when_told_the_time() {
    let mut h = Harness::new();
    let gtt =
        |id, at| limit(id, A, Side::Buy, 99, 5).with_time_in_force(TimeInForce::Gtt(Timestamp(at)));
    h.submit(gtt(1, 20));
    h.submit(gtt(2, 10));
    h.submit(gtt(3, 10));
    h.rest(4, A, Side::Buy, 99, 5);
    assert_eq!(
        h.book.order(OrderId(1)).unwrap().time_in_force,
        TimeInForce::Gtt(Timestamp(20))
    );
    assert!(h.run(Command::Expire { now: Timestamp(9) }).is_empty());
    // Earliest expiry first; equal expiries by id.
    let events = h.run(Command::Expire { now: Timestamp(15) });
    assert_eq!(
        events,
        vec![
            Event::Expired {
                order_id: OrderId(2),
                account: AccountId(A),
                quantity: Quantity(5),
            },
            Event::Expired {
                order_id: OrderId(3),
                account: AccountId(A),
                quantity: Quantity(5),
            },
        ]
    );
    // Until expired, a due GTT order still trades (the caller owns the clock).
    let events = h.submit(market(10, B, Side::Sell, 2));
    assert_eq!(trades(&events), vec![(1, 10, 99, 2)]);
    // Expiry is "at or before now"; the amended order keeps its expiry.
    h.run(Command::Amend {
        order_id: OrderId(1),
        price: Some(Price(98)),
        quantity: None,
    });
    let events = h.run(Command::Expire { now: Timestamp(20) });
    assert_eq!(
        events,
        vec![Event::Expired {
            order_id: OrderId(1),
            account: AccountId(A),
            quantity: Quantity(3),
        }]
    );
    assert_eq!(h.queue(Side::Buy, 99), vec![4]);
    assert_rejected(
        &mut h,
        Command::Cancel {
            order_id: OrderId(1),
        },
        RejectReason::UnknownOrder,
    );
}

#[test]
fn a_filled_or_canceled_gtt_order_does_not_expire_later() {
    let mut h = Harness::new();
    let gtt =
        |id| limit(id, A, Side::Sell, 101, 5).with_time_in_force(TimeInForce::Gtt(Timestamp(10)));
    h.submit(gtt(1));
    h.submit(gtt(2));
    h.submit(market(10, B, Side::Buy, 5));
    h.run(Command::Cancel {
        order_id: OrderId(2),
    });
    assert!(h.run(Command::Expire { now: Timestamp(10) }).is_empty());
}

#[test]
fn depth_aggregates_levels_best_first() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Buy, 99, 1);
    h.rest(2, B, Side::Buy, 99, 2);
    h.rest(3, A, Side::Buy, 97, 4);
    h.rest(4, A, Side::Buy, 95, 8);
    h.rest(5, A, Side::Sell, 101, 3);
    let depth = h.book.depth(2);
    let level = |price, qty, orders| DepthLevel {
        price: Price(price),
        quantity: Quantity(qty),
        orders,
    };
    assert_eq!(depth.bids, vec![level(99, 3, 2), level(97, 4, 1)]);
    assert_eq!(depth.asks, vec![level(101, 3, 1)]);
    assert!(h.book.depth(0).bids.is_empty());
    assert_eq!(h.book.level_count(Side::Buy), 3);
}

#[test]
fn open_orders_and_order_lookup() {
    let mut h = Harness::new();
    h.rest(1, A, Side::Buy, 99, 1);
    h.rest(2, B, Side::Buy, 99, 2);
    h.rest(3, A, Side::Sell, 103, 4);
    let open: Vec<_> = h.book.open_orders(AccountId(A)).collect();
    assert_eq!(open.len(), 2);
    assert_eq!((open[0].id, open[0].side), (OrderId(1), Side::Buy));
    assert_eq!((open[1].id, open[1].price), (OrderId(3), Price(103)));
    assert_eq!(h.book.open_orders(AccountId(42)).count(), 0);
    assert!(h.book.order(OrderId(42)).is_none());
}

#[test]
fn prices_far_apart_still_match_in_price_order() {
    // A narrow window forces the far-away levels into the overflow map and makes the
    // window move as prices wander.
    let config = BookConfig {
        expected_orders: 4,
        initial_window_ticks: 64,
        max_window_ticks: 128,
    };
    let mut h = Harness::with_config(config);
    let asks = [
        1_000,
        5_000,
        1_000_000_000_000,
        1_050,
        900,
        1_000_000,
        2_000,
        1_100,
    ];
    let bids = [1, 3, 500, 40, 800, 7, 600, 2];
    for i in 0..asks.len() {
        h.rest(i as u64, A, Side::Sell, asks[i], 1);
        h.rest(100 + i as u64, A, Side::Buy, bids[i], 1);
    }
    assert_eq!(h.book.best_ask(), Some(Price(900)));
    assert_eq!(h.book.best_bid(), Some(Price(800)));
    let mut sorted = asks;
    sorted.sort();
    let events = h.submit(market(999, B, Side::Buy, 8));
    let fill_prices: Vec<i64> = trades(&events).iter().map(|t| t.2).collect();
    assert_eq!(fill_prices, sorted.to_vec());
    assert!(h.book.best_ask().is_none());
    let mut sorted = bids;
    sorted.sort_by(|a, b| b.cmp(a));
    let events = h.submit(market(998, B, Side::Sell, 8));
    let fill_prices: Vec<i64> = trades(&events).iter().map(|t| t.2).collect();
    assert_eq!(fill_prices, sorted.to_vec());
}

#[test]
fn a_window_that_moves_keeps_every_level() {
    let config = BookConfig {
        expected_orders: 4,
        initial_window_ticks: 64,
        max_window_ticks: 256,
    };
    let mut h = Harness::with_config(config);
    // Walk the bids up and down across several window widths.
    let mut id = 0;
    for price in (1_000..1_400)
        .step_by(7)
        .chain((600..1_000).rev().step_by(13))
    {
        h.rest(id, A, Side::Buy, price, 1 + id % 3);
        id += 1;
    }
    let mut expected: Vec<(i64, u64)> = (0..id)
        .map(|i| {
            let o = h.book.order(OrderId(i)).unwrap();
            (o.price.0, o.leaves.0)
        })
        .collect();
    expected.sort_by_key(|e| std::cmp::Reverse(e.0));
    let depth = h.book.depth(1_000);
    let got: Vec<(i64, u64)> = depth
        .bids
        .iter()
        .map(|l| (l.price.0, l.quantity.0))
        .collect();
    assert_eq!(got, expected);
    let events = h.submit(market(9_999, B, Side::Sell, 1_000));
    let fill_prices: Vec<i64> = trades(&events).iter().map(|t| t.2).collect();
    let expected_prices: Vec<i64> = expected.iter().map(|e| e.0).collect();
    assert_eq!(fill_prices, expected_prices);
}

#[test]
fn the_state_hash_is_a_fixed_function_of_the_book() {
    let build = || {
        let mut h = Harness::new();
        h.rest(1, A, Side::Buy, 99, 5);
        h.rest(2, B, Side::Sell, 101, 7);
        h.submit(limit(3, C, Side::Sell, 99, 2).with_time_in_force(TimeInForce::Ioc));
        h.submit(
            limit(4, C, Side::Sell, 105, 2).with_time_in_force(TimeInForce::Gtt(Timestamp(50))),
        );
        h
    };
    let h = build();
    assert_eq!(h.book.state_hash(), build().book.state_hash());
    // Pinned so that a change to the hash (or to what the book holds after these
    // commands) is noticed: journals store these values. Computed outside Rust, by
    // FNV-1a 64 over the documented traversal as little-endian u64s:
    // next priority 3; bids: side 0, 1 level, 99 (1 order: id 1, account 1, leaves 3,
    // filled 2, priority 0, not GTT, 0); asks: side 1, 2 levels, 101 (1 order: 2, 2,
    // 7, 0, 1, 0, 0), 105 (1 order: 4, 3, 2, 0, 2, GTT, expiry 50).
    assert_eq!(h.book.state_hash(), 0xcca2_af02_29e8_3fd9);
    let mut other = build();
    other.run(Command::Cancel {
        order_id: OrderId(4),
    });
    assert_ne!(other.book.state_hash(), h.book.state_hash());
}

#[test]
fn memory_usage_reports_the_order_slot() {
    let book = OrderBook::new();
    let usage = book.memory_usage();
    assert!(usage.order_slot_bytes > 0 && usage.order_slot_bytes <= 96);
    assert!(usage.total_bytes >= usage.arena_bytes + usage.index_bytes);
}
