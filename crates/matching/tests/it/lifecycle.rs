//! The order lifecycle transition table.

use bourse_matching::*;

use OrderStatus as S;
use StatusTrigger as T;

const ALL_STATUSES: [OrderStatus; 5] =
    [S::Accepted, S::Resting, S::Filled, S::Canceled, S::Expired];
const ALL_TRIGGERS: [StatusTrigger; 6] = [
    T::PartiallyFilled,
    T::Filled,
    T::Rested,
    T::Amended,
    T::Canceled,
    T::Expired,
];

#[test]
fn the_table_allows_exactly_the_lifecycle() {
    let allowed = [
        (S::Accepted, T::PartiallyFilled, S::Accepted),
        (S::Accepted, T::Filled, S::Filled),
        (S::Accepted, T::Rested, S::Resting),
        (S::Accepted, T::Canceled, S::Canceled),
        (S::Resting, T::PartiallyFilled, S::Resting),
        (S::Resting, T::Filled, S::Filled),
        (S::Resting, T::Amended, S::Resting),
        (S::Resting, T::Canceled, S::Canceled),
        (S::Resting, T::Expired, S::Expired),
    ];
    for from in ALL_STATUSES {
        for trigger in ALL_TRIGGERS {
            let expected = allowed
                .iter()
                .find(|(f, t, _)| *f == from && *t == trigger)
                .map(|(_, _, to)| *to);
            match (from.transition(trigger), expected) {
                (Ok(to), Some(expected)) => assert_eq!(to, expected),
                (Err(e), None) => assert_eq!(e, InvalidTransition { from, trigger }),
                (got, expected) => panic!("{from:?} x {trigger:?}: got {got:?}, want {expected:?}"),
            }
        }
    }
}

#[test]
fn finished_statuses_are_final() {
    for status in ALL_STATUSES {
        let can_move = ALL_TRIGGERS.iter().any(|&t| status.transition(t).is_ok());
        assert_eq!(status.is_finished(), !can_move, "{status:?}");
    }
}

#[test]
fn a_trade_triggers_both_orders() {
    let trade = Event::Traded {
        maker_order_id: OrderId(1),
        taker_order_id: OrderId(2),
        maker_account: AccountId(1),
        taker_account: AccountId(2),
        price: Price(10),
        quantity: Quantity(3),
        aggressor: Side::Buy,
        maker_leaves: Quantity(0),
        taker_leaves: Quantity(4),
    };
    assert_eq!(
        trade.status_triggers(),
        [
            Some((OrderId(1), T::Filled)),
            Some((OrderId(2), T::PartiallyFilled)),
        ]
    );
    let rejected = Event::Rejected {
        order_id: OrderId(1),
        reason: RejectReason::UnknownOrder,
    };
    assert_eq!(rejected.status_triggers(), [None, None]);
}
