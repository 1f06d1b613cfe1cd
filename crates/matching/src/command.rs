//! What a caller asks a book to do.

use crate::types::{
    AccountId, OrderId, OrderType, Price, Quantity, SelfTradePrevention, Side, TimeInForce,
    Timestamp,
};

/// A new order as submitted. The caller chooses the id; the book rejects an id it
/// already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NewOrder {
    /// The order's id.
    pub id: OrderId,
    /// The account that owns the order.
    pub account: AccountId,
    /// Buy or sell.
    pub side: Side,
    /// Limit (with its price) or market.
    pub order_type: OrderType,
    /// Quantity in lots, `1..=Quantity::MAX`.
    pub quantity: Quantity,
    /// How long the order stays live.
    pub time_in_force: TimeInForce,
    /// Maker only: the order is rejected if any part of it would trade on arrival.
    /// Only for limit orders that can rest (GTC or GTT).
    pub post_only: bool,
    /// What to do if the order would trade with its own account's resting orders.
    pub self_trade_prevention: SelfTradePrevention,
}

impl NewOrder {
    /// A GTC limit order with cancel-taker self-trade prevention.
    pub fn limit(id: OrderId, account: AccountId, side: Side, price: Price, qty: Quantity) -> Self {
        NewOrder {
            id,
            account,
            side,
            order_type: OrderType::Limit(price),
            quantity: qty,
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            self_trade_prevention: SelfTradePrevention::CancelTaker,
        }
    }

    /// A market order (IOC) with cancel-taker self-trade prevention.
    pub fn market(id: OrderId, account: AccountId, side: Side, qty: Quantity) -> Self {
        NewOrder {
            id,
            account,
            side,
            order_type: OrderType::Market,
            quantity: qty,
            time_in_force: TimeInForce::Ioc,
            post_only: false,
            self_trade_prevention: SelfTradePrevention::CancelTaker,
        }
    }

    /// The same order with another time in force.
    pub fn with_time_in_force(mut self, tif: TimeInForce) -> Self {
        self.time_in_force = tif;
        self
    }

    /// The same order, post-only.
    pub fn post_only(mut self) -> Self {
        self.post_only = true;
        self
    }

    /// The same order with another self-trade prevention mode.
    pub fn with_self_trade_prevention(mut self, stp: SelfTradePrevention) -> Self {
        self.self_trade_prevention = stp;
        self
    }
}

/// One command to an order book. Each produces a list of past-tense events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Command {
    /// Submit a new order.
    Submit(NewOrder),
    /// Cancel one resting order.
    Cancel {
        /// The order to cancel.
        order_id: OrderId,
    },
    /// Cancel every resting order of an account, optionally only on one side.
    /// Cancels nothing (and emits nothing) when the account has no matching order.
    CancelAll {
        /// Whose orders.
        account: AccountId,
        /// `Some(side)` cancels only that side.
        side: Option<Side>,
    },
    /// Change the price and/or the open quantity of a resting order. A quantity
    /// decrease at the same price keeps time priority; a price change or a quantity
    /// increase moves the order to the back of the queue at its (new) price. An amend
    /// never trades: a new price that would cross the other side is rejected.
    Amend {
        /// The order to change.
        order_id: OrderId,
        /// New limit price; `None` keeps the current one.
        price: Option<Price>,
        /// New open (unfilled) quantity; `None` keeps the current one.
        quantity: Option<Quantity>,
    },
    /// Expire every good-till-time order whose expiry is at or before `now`, oldest
    /// expiry first (ties by order id).
    Expire {
        /// The caller's current time.
        now: Timestamp,
    },
}
