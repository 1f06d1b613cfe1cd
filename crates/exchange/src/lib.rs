//! The exchange core: one single-writer state machine that owns instruments, order
//! books, accounts, positions and margin. Commands in, past-tense events out.
//!
//! A plain synchronous, deterministic library: no I/O, no async, no clock, no
//! randomness, only `BTreeMap`s and `Vec`s. The same commands always give the same
//! events and the same [`Exchange::state_hash`], so a journal can replay it. It
//! builds on `bourse-matching` for the books.
//!
//! The optional `serde` feature derives `Serialize` and `Deserialize` for every
//! command, event and type (validated newtypes such as [`Symbol`] re-validate when
//! deserialised) and adds `Exchange::snapshot` and `Exchange::restore`: see the
//! `snapshot` module.
//!
//! ```
//! use bourse_exchange::*;
//!
//! let usdc = Asset::parse("USDC").unwrap();
//! let perp = Symbol::parse("BTC-PERP").unwrap();
//! let mut ex = Exchange::new(usdc.clone());
//! let ts = Timestamp(1);
//! ex.apply(&Command::CreateInstrument {
//!     spec: InstrumentSpec {
//!         symbol: perp.clone(),
//!         kind: InstrumentKind::Perpetual,
//!         tick_size_e8: 10_000_000,  // 0.1 USDC
//!         lot_size_e8: 100_000,      // 0.001 BTC
//!         multiplier: 1,
//!         initial_margin_ppm: 100_000,    // 10%
//!         maintenance_margin_ppm: 50_000, // 5%
//!         maker_fee_ppm: 200,
//!         taker_fee_ppm: 500,
//!     },
//!     ts,
//! });
//! ex.apply(&Command::SetMarkPrice { instrument: perp.clone(), price: Price(500_000), ts });
//! ex.apply(&Command::Deposit { account: AccountId(1), asset: usdc.clone(), amount: 10_000_000_000, ts });
//! let events = ex.apply(&Command::PlaceOrder(PlaceOrder {
//!     account: AccountId(1),
//!     instrument: perp.clone(),
//!     client_order_id: ClientOrderId::parse("a-1").unwrap(),
//!     side: Side::Buy,
//!     kind: OrderKind::Limit { price: Price(499_000) },
//!     quantity: Quantity(10),
//!     time_in_force: TimeInForce::Gtc,
//!     post_only: false,
//!     reduce_only: false,
//!     self_trade_prevention: SelfTradePrevention::CancelTaker,
//!     ts,
//! }));
//! assert!(matches!(events[1].kind, EventKind::OrderRested { .. }));
//! assert_eq!(ex.best_bid(&perp), Some(Price(499_000)));
//! ex.check_conservation().unwrap();
//! ```
//!
//! # Accounting model
//!
//! Money is `i128` micro-units (10^-6) of an asset. One asset, the *settlement
//! asset* (e.g. USDC), is the collateral and settles every instrument. An instrument's
//! tick value `v` (micro-units per tick·lot) is exact by construction.
//!
//! - **Linear positions** (perpetuals, futures) keep a size `s` and a cost basis
//!   `K = Σ price × signed lots` of the open part. A reducing trade realises
//!   `±closed·price − K·closed/|s|` tick·lots, times `v`, into cash. Unrealised PnL
//!   is `(s·m − K)·v` at mark `m`.
//! - **Options**: the buyer pays the premium `price × lots × v` to the seller in cash
//!   at trade time. The position's value `s·m·v` counts in equity. Realised PnL of
//!   options is informational (the cash moved with the premiums).
//! - **Fees**: `floor(price × lots × v × fee_ppm / 10^6)` per fill, maker and taker
//!   rates, paid to the [`FEE_ACCOUNT`].
//! - **Funding** (perpetuals): each position pays `s·m·v·rate/10^9` (rounded up when
//!   paying, down when receiving; the dust goes to the fee account).
//! - **Expiry**: futures realise `(s·S − K)·v` at index `S`; options pay
//!   `s · intrinsic(S) · v` from shorts to longs.
//! - **Withdrawals** move funds from the balance to a hold at once; confirming
//!   removes them, releasing returns them.
//!
//! Conservation ([`Exchange::check_conservation`]): for each asset,
//! `Σ cash + Σ held − Σ_linear K·v = deposited − withdrawn`, and `−Σ K·v` is the
//! total unrealised PnL at any common mark, since sizes sum to zero.
//!
//! # Margin
//!
//! Cross margin per account: equity = settlement cash + Σ unrealised PnL and option
//! value; available = equity − initial margin of positions and resting orders. The
//! formulas are in [`margin`]. Every order must leave available ≥ 0 both if it
//! rests whole and if it fills whole at its worst price with the taker fee; by
//! concavity every partial fill is then covered too (see [`margin`]).

#![warn(missing_docs)]

pub mod command;
pub mod event;
mod exchange;
mod hash;
mod liquidation;
pub mod margin;
mod query;
pub mod risk;
mod risk_core;
mod risk_query;
#[cfg(feature = "serde")]
pub mod snapshot;
pub mod types;

pub use bourse_matching::{Depth, DepthLevel};
pub use command::{Command, OrderKind, PlaceOrder};
pub use event::{BalanceReason, CancelReason, Event, EventKind, Liquidity, RejectReason};
pub use exchange::{Exchange, Withdrawal, WithdrawalState};
pub use query::{AccountSummary, InstrumentView, OrderView, PositionView};
pub use risk::{CircuitBreaker, Issuer, MmpConfig, MmpTrigger, OrderLimits, OrderOptions};
pub use risk_query::{AccountRiskView, InstrumentRiskView, MmpView};
#[cfg(feature = "serde")]
pub use snapshot::SnapshotError;
pub use types::*;
