//! The order lifecycle as one transition table.
//!
//! The book keeps only live orders, so it has no use for a status field; whoever
//! follows the event stream (the exchange core, the tests) tracks each order with
//! [`OrderStatus::transition`] and gets an error for any event the lifecycle forbids.

use std::fmt;

use crate::event::Event;
use crate::types::{OrderId, Quantity};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OrderStatus {
    /// Accepted and being matched; not on the book yet.
    Accepted,
    /// On the book (possibly partly filled already).
    Resting,
    /// Traded its whole quantity. Final.
    Filled,
    /// Canceled (by its owner, as an unfilled IOC rest, or by self-trade prevention). Final.
    Canceled,
    /// Removed at its good-till-time expiry. Final.
    Expired,
}

/// Something that happened to one order, as far as its status is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StatusTrigger {
    /// It traded and still has quantity left.
    PartiallyFilled,
    /// It traded its last lot.
    Filled,
    /// Its rest was placed on the book.
    Rested,
    /// Its price or quantity changed on the book.
    Amended,
    /// It was canceled.
    Canceled,
    /// It expired.
    Expired,
}

/// An event that the lifecycle does not allow in the order's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InvalidTransition {
    /// The status the order was in.
    pub from: OrderStatus,
    /// What was supposed to happen to it.
    pub trigger: StatusTrigger,
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "order in status {:?} cannot be {:?}",
            self.from, self.trigger
        )
    }
}

impl std::error::Error for InvalidTransition {}

impl OrderStatus {
    /// The one transition table: status × trigger → new status; anything not listed
    /// is an error.
    pub fn transition(self, trigger: StatusTrigger) -> Result<OrderStatus, InvalidTransition> {
        use OrderStatus as S;
        use StatusTrigger as T;
        let next = match (self, trigger) {
            (S::Accepted, T::PartiallyFilled) => S::Accepted,
            (S::Accepted, T::Filled) => S::Filled,
            (S::Accepted, T::Rested) => S::Resting,
            (S::Accepted, T::Canceled) => S::Canceled,
            (S::Resting, T::PartiallyFilled) => S::Resting,
            (S::Resting, T::Filled) => S::Filled,
            (S::Resting, T::Amended) => S::Resting,
            (S::Resting, T::Canceled) => S::Canceled,
            (S::Resting, T::Expired) => S::Expired,
            (from, trigger) => return Err(InvalidTransition { from, trigger }),
        };
        Ok(next)
    }

    /// True for the final statuses: nothing can happen to the order any more.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled | OrderStatus::Canceled | OrderStatus::Expired
        )
    }
}

fn fill_trigger(leaves: Quantity) -> StatusTrigger {
    if leaves == Quantity::ZERO {
        StatusTrigger::Filled
    } else {
        StatusTrigger::PartiallyFilled
    }
}

impl Event {
    /// The status triggers this event carries, for up to two orders (a trade touches
    /// the maker and the taker). `Accepted` starts a lifecycle in
    /// [`OrderStatus::Accepted`] and `Rejected` never changes an order, so both give
    /// none.
    pub fn status_triggers(&self) -> [Option<(OrderId, StatusTrigger)>; 2] {
        match *self {
            Event::Accepted { .. } | Event::Rejected { .. } => [None, None],
            Event::Rested { order_id, .. } => [Some((order_id, StatusTrigger::Rested)), None],
            Event::Traded {
                maker_order_id,
                taker_order_id,
                maker_leaves,
                taker_leaves,
                ..
            } => [
                Some((maker_order_id, fill_trigger(maker_leaves))),
                Some((taker_order_id, fill_trigger(taker_leaves))),
            ],
            Event::Canceled { order_id, .. } => [Some((order_id, StatusTrigger::Canceled)), None],
            Event::Amended { order_id, .. } => [Some((order_id, StatusTrigger::Amended)), None],
            Event::Expired { order_id, .. } => [Some((order_id, StatusTrigger::Expired)), None],
        }
    }
}
