//! Domain types shared by every bourse crate.
//!
//! Parse, don't validate: a value of these types has already been checked, so deeper
//! code never re-checks it. Money, prices and sizes are [`rust_decimal::Decimal`] on the
//! edge (decimal strings on the wire) and integer ticks and lots inside the engine.
//! This crate does no I/O.

pub mod decimal;
mod instrument;
mod symbol;

pub use instrument::{
    Asset, Instrument, InstrumentError, InstrumentKind, InstrumentStatus, OptionRight,
};
pub use symbol::{Symbol, SymbolError};

pub use rust_decimal::Decimal;
