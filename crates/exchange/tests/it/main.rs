//! Integration tests of the exchange core: one binary, a module per area.

mod fixture;
mod liquidation;
mod options;
mod orders;
mod properties;
mod risk;
mod risk_replay;
mod settlement;
#[cfg(feature = "serde")]
mod snapshot;
mod text;
mod wallet;
