//! Property tests over random command sequences.
//!
//! Checked after every command:
//! - the engine's events equal the naive model's (`model.rs`), and so do the resting
//!   orders (price, leaves, filled, priority);
//! - `OrderBook::audit` passes (links, aggregates, indexes, bitmaps) and the book is
//!   never crossed;
//! - every event is a legal transition of its order's lifecycle, and quantities in
//!   the events agree with each other (a maker's leaves drop by exactly what it
//!   traded; a taker's quantity is its fills plus what rested or was canceled);
//! - the quantity on the book changes by exactly what rested, traded, was amended,
//!   canceled or expired: the makers' fills sum to the taker's fill;
//! - no order is both resting and finished;
//! - resting orders at one price are in arrival (priority) order;
//! - a rejected command emits only its rejection and leaves the state hash unchanged.
//!
//! And at the end of each case: replaying the same commands on a fresh book gives
//! identical events and identical state hashes.

use std::collections::BTreeMap;

use bourse_matching::*;
use proptest::prelude::*;

use crate::model::ModelBook;

const IDS: u64 = 24;

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn price() -> impl Strategy<Value = i64> {
    // Mostly a narrow band, so orders meet; sometimes far away, so the window moves
    // and the overflow map is used; sometimes invalid.
    prop_oneof![
        16 => 95i64..=105,
        2 => 1i64..=3_000,
        1 => 1i64..=1_000_000_000_000,
        1 => Just(0i64),
    ]
}

fn quantity() -> impl Strategy<Value = u64> {
    prop_oneof![20 => 1u64..=12, 1 => Just(0u64)]
}

fn new_order() -> impl Strategy<Value = NewOrder> {
    let order_type = prop_oneof![5 => price().prop_map(|p| OrderType::Limit(Price(p))), 1 => Just(OrderType::Market)];
    let tif = prop_oneof![
        5 => Just(TimeInForce::Gtc),
        1 => Just(TimeInForce::Ioc),
        1 => Just(TimeInForce::Fok),
        2 => (0u64..30).prop_map(|t| TimeInForce::Gtt(Timestamp(t))),
    ];
    let stp = prop_oneof![
        Just(SelfTradePrevention::CancelTaker),
        Just(SelfTradePrevention::CancelMaker),
        Just(SelfTradePrevention::CancelBoth),
    ];
    (
        0..IDS,
        1u64..=3,
        side(),
        order_type,
        quantity(),
        tif,
        prop::bool::weighted(0.15),
        stp,
    )
        .prop_map(
            |(id, account, side, order_type, qty, time_in_force, post_only, stp)| NewOrder {
                id: OrderId(id),
                account: AccountId(account),
                side,
                order_type,
                quantity: Quantity(qty),
                time_in_force,
                post_only,
                self_trade_prevention: stp,
            },
        )
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        8 => new_order().prop_map(Command::Submit),
        2 => (0..IDS).prop_map(|id| Command::Cancel { order_id: OrderId(id) }),
        1 => (1u64..=3, prop::option::of(side())).prop_map(|(a, side)| Command::CancelAll {
            account: AccountId(a),
            side,
        }),
        3 => (0..IDS, prop::option::of(price()), prop::option::of(quantity())).prop_map(
            |(id, price, qty)| Command::Amend {
                order_id: OrderId(id),
                price: price.map(Price),
                quantity: qty.map(Quantity),
            }
        ),
        1 => (0u64..40).prop_map(|t| Command::Expire { now: Timestamp(t) }),
    ]
}

/// A small window, so that random prices move it and spill into the overflow.
fn small_book() -> OrderBook {
    OrderBook::with_config(BookConfig {
        expected_orders: 2,
        initial_window_ticks: 64,
        max_window_ticks: 128,
    })
}

fn resting_quantity(book: &OrderBook) -> u64 {
    let depth = book.depth(usize::MAX);
    depth
        .bids
        .iter()
        .chain(&depth.asks)
        .map(|l| l.quantity.0)
        .sum()
}

/// What the event stream says about each order seen so far.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    status: OrderStatus,
    leaves: u64,
}

/// Checks one command's events against the lifecycle and against each other, and
/// returns the net change of resting quantity they describe.
fn follow_events(
    command: &Command,
    events: &[Event],
    tracked: &mut BTreeMap<u64, Tracked>,
) -> Result<i128, TestCaseError> {
    let mut delta: i128 = 0;
    let mut taker_filled = 0u64;
    let mut makers_filled = 0u64;
    for event in events {
        match *event {
            Event::Accepted {
                order_id, quantity, ..
            } => {
                let live = tracked
                    .get(&order_id.0)
                    .is_some_and(|t| !t.status.is_finished());
                prop_assert!(!live, "accepted a live id {}", order_id.0);
                tracked.insert(
                    order_id.0,
                    Tracked {
                        status: OrderStatus::Accepted,
                        leaves: quantity.0,
                    },
                );
            }
            Event::Traded {
                maker_order_id,
                taker_order_id,
                price,
                quantity,
                aggressor,
                maker_leaves,
                taker_leaves,
                ..
            } => {
                let Command::Submit(order) = command else {
                    return Err(TestCaseError::fail("a trade outside a submit"));
                };
                prop_assert_eq!(order.id, taker_order_id);
                prop_assert_eq!(order.side, aggressor);
                if let OrderType::Limit(limit) = order.order_type {
                    match aggressor {
                        Side::Buy => prop_assert!(price <= limit, "bought above the limit"),
                        Side::Sell => prop_assert!(price >= limit, "sold below the limit"),
                    }
                }
                let maker = tracked[&maker_order_id.0];
                let taker = tracked[&taker_order_id.0];
                prop_assert!(quantity.0 > 0);
                prop_assert_eq!(maker.leaves - quantity.0, maker_leaves.0);
                prop_assert_eq!(taker.leaves - quantity.0, taker_leaves.0);
                taker_filled += quantity.0;
                makers_filled += quantity.0;
                delta -= i128::from(quantity.0);
            }
            Event::Rested { quantity, .. } => delta += i128::from(quantity.0),
            Event::Canceled {
                order_id, quantity, ..
            }
            | Event::Expired {
                order_id, quantity, ..
            } => {
                let t = tracked[&order_id.0];
                prop_assert_eq!(t.leaves, quantity.0);
                if t.status == OrderStatus::Resting {
                    delta -= i128::from(quantity.0);
                }
            }
            Event::Amended {
                order_id, quantity, ..
            } => {
                let t = tracked[&order_id.0];
                delta += i128::from(quantity.0) - i128::from(t.leaves);
            }
            Event::Rejected { .. } => {}
        }
        for (order_id, trigger) in event.status_triggers().into_iter().flatten() {
            let t = tracked
                .get_mut(&order_id.0)
                .ok_or_else(|| TestCaseError::fail("event for an unseen order"))?;
            t.status = t
                .status
                .transition(trigger)
                .map_err(|e| TestCaseError::fail(format!("{e} on {event:?}")))?;
            t.leaves = match *event {
                Event::Traded {
                    maker_order_id,
                    maker_leaves,
                    taker_leaves,
                    ..
                } => {
                    if maker_order_id == order_id {
                        maker_leaves.0
                    } else {
                        taker_leaves.0
                    }
                }
                Event::Amended { quantity, .. } => quantity.0,
                Event::Canceled { .. } | Event::Expired { .. } => 0,
                _ => t.leaves,
            };
        }
    }
    prop_assert_eq!(taker_filled, makers_filled);
    if let Command::Submit(order) = command
        && let Some(Event::Accepted { .. }) = events.first()
    {
        // The taker's quantity is fully accounted for: fills, then rest or cancel.
        let t = tracked[&order.id.0];
        let end = match t.status {
            OrderStatus::Resting => book_end_leaves(events),
            _ => 0,
        };
        let canceled: u64 = events
            .iter()
            .filter_map(|e| match *e {
                Event::Canceled {
                    order_id, quantity, ..
                } if order_id == order.id => Some(quantity.0),
                _ => None,
            })
            .sum();
        prop_assert_eq!(order.quantity.0, taker_filled + end + canceled);
        prop_assert!(t.status != OrderStatus::Accepted, "taker left in flight");
    }
    Ok(delta)
}

fn book_end_leaves(events: &[Event]) -> u64 {
    match events.last() {
        Some(Event::Rested { quantity, .. }) => quantity.0,
        _ => 0,
    }
}

fn check_sequence(commands: &[Command]) -> Result<(), TestCaseError> {
    let mut book = small_book();
    let mut model = ModelBook::default();
    let mut tracked: BTreeMap<u64, Tracked> = BTreeMap::new();
    let mut events = Vec::new();
    let mut history = Vec::new();
    for command in commands {
        let hash_before = book.state_hash();
        let quantity_before = resting_quantity(&book);
        events.clear();
        book.apply(command, &mut events);
        let hash_after = book.state_hash();

        let expected = model.apply(command);
        prop_assert_eq!(
            &events,
            &expected,
            "engine and model differ on {:?}",
            command
        );
        if let Err(problem) = book.audit() {
            return Err(TestCaseError::fail(format!(
                "audit after {command:?}: {problem}"
            )));
        }
        if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
            prop_assert!(bid < ask, "crossed book");
        }

        if events.iter().any(|e| matches!(e, Event::Rejected { .. })) {
            prop_assert_eq!(events.len(), 1, "a rejection came with other events");
            prop_assert_eq!(
                hash_before,
                hash_after,
                "a rejection changed the state hash"
            );
        }

        let delta = follow_events(command, &events, &mut tracked)?;
        let quantity_after = resting_quantity(&book);
        prop_assert_eq!(
            i128::from(quantity_after) - i128::from(quantity_before),
            delta,
            "resting quantity moved by other than the events say"
        );

        // No order is both resting and finished; the book agrees with the events.
        for (&id, t) in &tracked {
            let view = book.order(OrderId(id));
            match t.status {
                OrderStatus::Resting => {
                    let view = view.ok_or_else(|| TestCaseError::fail("resting order missing"))?;
                    prop_assert_eq!(view.leaves.0, t.leaves);
                }
                status => {
                    prop_assert!(status.is_finished(), "order {} left {:?}", id, status);
                    prop_assert!(view.is_none(), "finished order {} still rests", id);
                }
            }
        }
        let resting = tracked
            .values()
            .filter(|t| t.status == OrderStatus::Resting)
            .count();
        prop_assert_eq!(book.len(), resting);

        // The same resting orders as the model, and queues in arrival order.
        prop_assert_eq!(book.len(), model.orders.len());
        for m in &model.orders {
            let view = book.order(OrderId(m.id)).expect("model order rests");
            prop_assert_eq!(
                (view.price.0, view.leaves.0, view.filled.0, view.priority),
                (m.price, m.leaves, m.filled, m.priority)
            );
        }
        let depth = book.depth(usize::MAX);
        for (side, levels) in [(Side::Buy, &depth.bids), (Side::Sell, &depth.asks)] {
            for level in levels {
                let queue: Vec<_> = book.orders_at(side, level.price).collect();
                let mut arrival: Vec<_> = model
                    .orders
                    .iter()
                    .filter(|o| o.side == side && o.price == level.price.0)
                    .map(|o| (o.priority, o.id))
                    .collect();
                arrival.sort();
                let ids: Vec<u64> = queue.iter().map(|o| o.id.0).collect();
                let arrival_ids: Vec<u64> = arrival.iter().map(|a| a.1).collect();
                prop_assert_eq!(ids, arrival_ids, "queue at {:?} {:?}", side, level.price);
                prop_assert!(queue.windows(2).all(|w| w[0].priority < w[1].priority));
            }
        }
        history.push((events.clone(), hash_after));
    }

    // Replay on a fresh book (default configuration, so a different window layout):
    // identical events and hashes.
    let mut replay = OrderBook::new();
    for (command, (recorded, hash)) in commands.iter().zip(&history) {
        events.clear();
        replay.apply(command, &mut events);
        prop_assert_eq!(&events, recorded);
        prop_assert_eq!(replay.state_hash(), *hash);
    }
    Ok(())
}

proptest! {
    // Moderate counts: the whole suite runs in a debug build on 2 cores in CI.
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_commands_keep_every_invariant(commands in prop::collection::vec(command(), 1..80)) {
        check_sequence(&commands)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn long_random_sequences_keep_every_invariant(commands in prop::collection::vec(command(), 300..400)) {
        check_sequence(&commands)?;
    }
}
