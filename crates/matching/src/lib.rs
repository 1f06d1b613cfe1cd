//! Order books and matching: one [`OrderBook`] per instrument, price-time priority on
//! integer ticks and lots.
//!
//! A plain synchronous, deterministic library: no I/O, no async, no clock, no
//! randomness, no required dependencies. The same commands in always give the same events out
//! and the same [`OrderBook::state_hash`], so a journal can be replayed and checked.
//!
//! The optional `serde` feature derives `Serialize` and
//! `Deserialize` for the commands, events and types, and for [`OrderBook`] itself,
//! so that a book can be snapshotted whole.
//!
//! ```
//! use bourse_matching::*;
//!
//! let mut book = OrderBook::new();
//! let mut events = Vec::new();
//! let alice = AccountId(1);
//! let bob = AccountId(2);
//! book.apply(
//!     &Command::Submit(NewOrder::limit(OrderId(1), alice, Side::Sell, Price(101), Quantity(5))),
//!     &mut events,
//! );
//! events.clear();
//! book.apply(
//!     &Command::Submit(NewOrder::market(OrderId(2), bob, Side::Buy, Quantity(3))),
//!     &mut events,
//! );
//! assert!(matches!(
//!     events[1],
//!     Event::Traded { price: Price(101), quantity: Quantity(3), aggressor: Side::Buy, .. }
//! ));
//! assert_eq!(book.order(OrderId(1)).unwrap().leaves, Quantity(2));
//! ```
//!
//! Map: [`types`] (newtypes), [`command`] (what comes in), [`event`] (what comes out),
//! [`status`] (the order lifecycle's transition table), [`book`] (the engine), and
//! [`ob1m`] (the shared benchmark workload). The data structures and invariants are
//! described in `docs/ARCHITECTURE.md`.

#![warn(missing_docs)]

pub mod book;
pub mod command;
pub mod event;
mod index;
mod ladder;
pub mod ob1m;
mod state_hash;
pub mod status;
pub mod types;

pub use book::{BookConfig, Depth, DepthLevel, MemoryUsage, OrderBook, OrderView};
pub use command::{Command, NewOrder};
pub use event::{CancelReason, Event, RejectReason};
pub use status::{InvalidTransition, OrderStatus, StatusTrigger};
pub use types::{
    AccountId, OrderId, OrderType, Price, Quantity, SelfTradePrevention, Side, TimeInForce,
    Timestamp,
};
