//! What happened, in the past tense: the only output of a book.

use std::fmt;

use crate::types::{AccountId, OrderId, Price, Quantity, Side};

/// One thing that happened to the book while it applied a command.
///
/// A command's events come in causal order: `Accepted` first, then its `Traded` (and
/// self-trade `Canceled`) events in price-time order, then how the taker ended
/// (`Rested` or `Canceled`); or a single `Rejected`. An order that traded its whole
/// quantity emits no separate "filled" event: its last `Traded` shows zero leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Event {
    /// A new order passed validation and will be matched.
    Accepted {
        /// The order.
        order_id: OrderId,
        /// Its account.
        account: AccountId,
        /// Its side.
        side: Side,
        /// Its limit price; `None` for a market order.
        price: Option<Price>,
        /// Its quantity.
        quantity: Quantity,
    },
    /// The unfilled part of an order was placed on the book.
    Rested {
        /// The order.
        order_id: OrderId,
        /// Its side.
        side: Side,
        /// The price it rests at.
        price: Price,
        /// The quantity that rests.
        quantity: Quantity,
    },
    /// A taker traded with a resting maker at the maker's price.
    Traded {
        /// The resting order.
        maker_order_id: OrderId,
        /// The arriving order.
        taker_order_id: OrderId,
        /// The resting order's account.
        maker_account: AccountId,
        /// The arriving order's account.
        taker_account: AccountId,
        /// The trade price: always the maker's price.
        price: Price,
        /// The traded quantity.
        quantity: Quantity,
        /// The taker's side.
        aggressor: Side,
        /// What is left of the maker after this trade; zero means it is filled.
        maker_leaves: Quantity,
        /// What is left of the taker after this trade; zero means it is filled.
        taker_leaves: Quantity,
    },
    /// An order (or the unfilled rest of one) was canceled.
    Canceled {
        /// The order.
        order_id: OrderId,
        /// Its account.
        account: AccountId,
        /// The quantity that was canceled.
        quantity: Quantity,
        /// Why.
        reason: CancelReason,
    },
    /// A command was refused. A rejection changes nothing in the book.
    Rejected {
        /// The order the command named.
        order_id: OrderId,
        /// Why.
        reason: RejectReason,
    },
    /// A resting order's price or quantity was changed.
    Amended {
        /// The order.
        order_id: OrderId,
        /// Its price now.
        price: Price,
        /// Its open quantity now.
        quantity: Quantity,
        /// True when it kept its place in the queue (same price, smaller quantity).
        kept_priority: bool,
    },
    /// A good-till-time order reached its expiry and left the book.
    Expired {
        /// The order.
        order_id: OrderId,
        /// Its account.
        account: AccountId,
        /// The quantity that was still open.
        quantity: Quantity,
    },
}

/// Why an order or part of it was canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CancelReason {
    /// The owner asked with [`crate::Command::Cancel`].
    Requested,
    /// The owner asked with [`crate::Command::CancelAll`].
    CancelAll,
    /// The rest of an IOC or market order that found no more liquidity within its limit.
    Unfilled,
    /// Self-trade prevention canceled this order (taker or maker, per the taker's mode).
    SelfTradePrevention,
}

impl CancelReason {
    /// A stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            CancelReason::Requested => "requested",
            CancelReason::CancelAll => "cancel_all",
            CancelReason::Unfilled => "unfilled",
            CancelReason::SelfTradePrevention => "self_trade_prevention",
        }
    }
}

/// Why a command was refused. Each has a stable [`RejectReason::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RejectReason {
    /// The book already holds an order with this id.
    DuplicateOrderId,
    /// Zero, or more than [`Quantity::MAX`]; for an amend, also when the new open
    /// quantity plus what the order has already traded would exceed it.
    InvalidQuantity,
    /// Not positive, or more than [`Price::MAX`].
    InvalidPrice,
    /// The time in force does not fit the order: a market order must be IOC or FOK; a
    /// post-only order must be able to rest (GTC or GTT).
    InvalidTimeInForce,
    /// A post-only order would have taken liquidity on arrival.
    PostOnlyWouldTake,
    /// A fill-or-kill order could not have been filled completely, so nothing traded.
    FillOrKillUnfillable,
    /// The book holds no order with this id (never existed, filled, canceled or expired).
    UnknownOrder,
    /// The amend would change nothing.
    AmendUnchanged,
    /// The amended price would cross the other side; amends never trade.
    AmendWouldCross,
}

impl RejectReason {
    /// A stable machine-readable code, e.g. for an API error body.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::DuplicateOrderId => "duplicate_order_id",
            RejectReason::InvalidQuantity => "invalid_quantity",
            RejectReason::InvalidPrice => "invalid_price",
            RejectReason::InvalidTimeInForce => "invalid_time_in_force",
            RejectReason::PostOnlyWouldTake => "post_only_would_take",
            RejectReason::FillOrKillUnfillable => "fill_or_kill_unfillable",
            RejectReason::UnknownOrder => "unknown_order",
            RejectReason::AmendUnchanged => "amend_unchanged",
            RejectReason::AmendWouldCross => "amend_would_cross",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            RejectReason::DuplicateOrderId => "an order with this id is already on the book",
            RejectReason::InvalidQuantity => "quantity must be between 1 and 2^32-1 lots",
            RejectReason::InvalidPrice => "price must be between 1 and 2^62-1 ticks",
            RejectReason::InvalidTimeInForce => {
                "market orders must be IOC or FOK; post-only orders must be GTC or GTT"
            }
            RejectReason::PostOnlyWouldTake => "post-only order would take liquidity",
            RejectReason::FillOrKillUnfillable => "fill-or-kill order cannot be filled completely",
            RejectReason::UnknownOrder => "no such order on the book",
            RejectReason::AmendUnchanged => "amend changes nothing",
            RejectReason::AmendWouldCross => "amended price would cross the book",
        };
        write!(f, "{} ({})", text, self.code())
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
