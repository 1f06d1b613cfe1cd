//! OB-1M: the shared order-book workload (`shared/bench/ob-1m.md`), generated exactly
//! as the normative Python reference (`shared/bench/ob1m_reference.py`) does.
//!
//! The conformance test and the benchmark both use this module, so the engine is
//! measured on the very stream it is checked on. The generator needs to know which
//! orders are still live (cancels pick a random live order, and fills remove orders),
//! so it runs its own small model book, written independently of [`OrderBook`]; the
//! counts that model reaches are [`Workload::reference`], and an engine that applies
//! the stream must reach the same ones.

use std::collections::VecDeque;
use std::fmt;

use crate::book::{BookConfig, OrderBook};
use crate::command::{Command, NewOrder};
use crate::event::Event;
use crate::types::{AccountId, OrderId, Price, Quantity, Side};

/// The generator's seed.
pub const SEED: u64 = 0x5EED;
/// The fixed mid price, in ticks; passive orders rest 1 to 50 ticks away from it.
pub const MID: i64 = 100_000;
/// Timed operations in the full workload.
pub const OPS: usize = 1_000_000;
/// Resting orders placed before timing starts.
pub const PREFILL: usize = 10_000;
/// The account of every resting (added) order.
pub const MAKER_ACCOUNT: AccountId = AccountId(1);
/// The account of every market order; distinct from the makers', so self-trade
/// prevention never fires on this workload.
pub const TAKER_ACCOUNT: AccountId = AccountId(2);
/// Market orders need ids too (the workload gives none); they are numbered from
/// here, far above the adds' sequence numbers.
pub const MARKET_ID_BASE: u64 = 1 << 62;

/// The counts the definition asks an engine to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Counts {
    /// Timed add operations.
    pub adds: u64,
    /// Timed cancel operations.
    pub cancels: u64,
    /// Timed market operations.
    pub markets: u64,
    /// (taker, maker) matches; a partial fill of a maker counts once.
    pub fills: u64,
    /// Lots traded.
    pub filled_qty: u64,
    /// Orders resting at the end.
    pub resting: u64,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "adds={} cancels={} markets={} fills={} filled_qty={} resting={}",
            self.adds, self.cancels, self.markets, self.fills, self.filled_qty, self.resting
        )
    }
}

/// SplitMix64, the workload's random number generator (one `next_u64` per draw).
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One operation of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Add a resting limit order (it never crosses).
    Add {
        /// Sequence number from 0, shared by prefill and timed adds.
        id: OrderId,
        /// Its side.
        side: Side,
        /// `MID - off` for bids, `MID + off` for asks, `off` in 1..=50.
        price: Price,
        /// 1..=100 lots.
        quantity: Quantity,
    },
    /// Cancel a live order.
    Cancel {
        /// The order.
        id: OrderId,
    },
    /// A market (IOC) order; what cannot fill is dropped.
    Market {
        /// Its side.
        side: Side,
        /// 1..=300 lots.
        quantity: Quantity,
    },
}

/// A generated stream and the counts the generator's own model book reached on it.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The untimed prefill: adds only.
    pub prefill: Vec<Op>,
    /// The timed operations.
    pub ops: Vec<Op>,
    /// What a correct engine must count after applying `prefill` then `ops`.
    pub reference: Counts,
}

fn side_of(draw: u64) -> Side {
    if draw == 0 { Side::Buy } else { Side::Sell }
}

fn passive_price(side: Side, rng: &mut SplitMix64) -> i64 {
    let off = 1 + (rng.next_u64() % 50) as i64;
    match side {
        Side::Buy => MID - off,
        Side::Sell => MID + off,
    }
}

/// The generator's model: just enough of a price-time book to know which orders are
/// live. Levels are FIFO queues per tick offset; a cancel only zeroes the order's
/// quantity and the queue drops it when it reaches the front.
struct Model {
    /// `[side][off - 1]`: ids in arrival order.
    levels: [Vec<VecDeque<u64>>; 2],
    /// Open quantity by id; zero once filled or canceled.
    leaves: Vec<u64>,
    /// Live ids, for uniform choice (append; swap-remove).
    live: Vec<u64>,
    /// Index in `live` by id.
    position: Vec<usize>,
    fills: u64,
    filled_qty: u64,
}

impl Model {
    fn new() -> Self {
        Model {
            levels: [vec![VecDeque::new(); 50], vec![VecDeque::new(); 50]],
            leaves: Vec::new(),
            live: Vec::new(),
            position: Vec::new(),
            fills: 0,
            filled_qty: 0,
        }
    }

    fn add(&mut self, id: u64, side: Side, price: i64, qty: u64) {
        let off = (price - MID).unsigned_abs() as usize;
        self.levels[side.index()][off - 1].push_back(id);
        debug_assert_eq!(self.leaves.len() as u64, id);
        self.leaves.push(qty);
        self.position.push(self.live.len());
        self.live.push(id);
    }

    fn forget(&mut self, id: u64) {
        let i = self.position[id as usize];
        let last = self.live.pop().expect("a live order is in the live list");
        if last != id {
            self.live[i] = last;
            self.position[last as usize] = i;
        }
    }

    fn cancel(&mut self, id: u64) {
        self.leaves[id as usize] = 0;
        self.forget(id);
    }

    fn market(&mut self, side: Side, mut qty: u64) {
        // Both sides' best level is offset 1 from the mid, the next offset 2, ...
        let book = side.opposite().index();
        for off in 0..50 {
            while qty > 0 {
                let Some(&id) = self.levels[book][off].front() else {
                    break;
                };
                let leaves = &mut self.leaves[id as usize];
                if *leaves == 0 {
                    self.levels[book][off].pop_front();
                    continue;
                }
                let take = qty.min(*leaves);
                qty -= take;
                *leaves -= take;
                self.fills += 1;
                self.filled_qty += take;
                if *leaves == 0 {
                    self.levels[book][off].pop_front();
                    self.forget(id);
                }
            }
            if qty == 0 {
                break;
            }
        }
    }
}

/// Generates the stream: `prefill` resting orders, then `ops` timed operations.
/// `generate(OPS, PREFILL)` is OB-1M.
pub fn generate(ops: usize, prefill: usize) -> Workload {
    let mut rng = SplitMix64::new(SEED);
    let mut model = Model::new();
    let mut next_id = 0u64;
    let mut prefill_ops = Vec::with_capacity(prefill);
    for i in 0..prefill {
        let side = side_of(i as u64 % 2);
        let price = passive_price(side, &mut rng);
        let qty = 1 + rng.next_u64() % 100;
        model.add(next_id, side, price, qty);
        prefill_ops.push(Op::Add {
            id: OrderId(next_id),
            side,
            price: Price(price),
            quantity: Quantity(qty),
        });
        next_id += 1;
    }
    let mut timed = Vec::with_capacity(ops);
    let mut counts = Counts::default();
    for _ in 0..ops {
        let kind = rng.next_u64() % 100;
        if kind < 60 || model.live.is_empty() {
            let side = side_of(rng.next_u64() % 2);
            let price = passive_price(side, &mut rng);
            let qty = 1 + rng.next_u64() % 100;
            model.add(next_id, side, price, qty);
            timed.push(Op::Add {
                id: OrderId(next_id),
                side,
                price: Price(price),
                quantity: Quantity(qty),
            });
            next_id += 1;
            counts.adds += 1;
        } else if kind < 90 {
            let id = model.live[(rng.next_u64() % model.live.len() as u64) as usize];
            model.cancel(id);
            timed.push(Op::Cancel { id: OrderId(id) });
            counts.cancels += 1;
        } else {
            let side = side_of(rng.next_u64() % 2);
            let qty = 1 + rng.next_u64() % 300;
            model.market(side, qty);
            timed.push(Op::Market {
                side,
                quantity: Quantity(qty),
            });
            counts.markets += 1;
        }
    }
    counts.fills = model.fills;
    counts.filled_qty = model.filled_qty;
    counts.resting = model.live.len() as u64;
    Workload {
        prefill: prefill_ops,
        ops: timed,
        reference: counts,
    }
}

/// The engine commands for `ops`: adds are GTC limit orders of [`MAKER_ACCOUNT`],
/// markets are IOC market orders of [`TAKER_ACCOUNT`] with ids from
/// [`MARKET_ID_BASE`] (the n-th market in `ops` gets `MARKET_ID_BASE + n`).
pub fn commands(ops: &[Op]) -> Vec<Command> {
    let mut markets = 0u64;
    ops.iter()
        .map(|op| match *op {
            Op::Add {
                id,
                side,
                price,
                quantity,
            } => Command::Submit(NewOrder::limit(id, MAKER_ACCOUNT, side, price, quantity)),
            Op::Cancel { id } => Command::Cancel { order_id: id },
            Op::Market { side, quantity } => {
                let id = OrderId(MARKET_ID_BASE + markets);
                markets += 1;
                Command::Submit(NewOrder::market(id, TAKER_ACCOUNT, side, quantity))
            }
        })
        .collect()
}

/// A book sized so that OB-1M never grows it: the live count peaks near 13,000.
pub fn book_config() -> BookConfig {
    BookConfig {
        expected_orders: 1 << 15,
        ..BookConfig::default()
    }
}

/// Applies `workload` to `book` (prefill, then the timed operations) and counts what
/// the engine's events report. Panics if the engine rejects any command: every
/// OB-1M command is valid.
pub fn run(book: &mut OrderBook, workload: &Workload) -> Counts {
    let mut events = Vec::with_capacity(1024);
    for command in commands(&workload.prefill) {
        book.apply(&command, &mut events);
        events.clear();
    }
    let mut counts = Counts::default();
    for (op, command) in workload.ops.iter().zip(commands(&workload.ops)) {
        match op {
            Op::Add { .. } => counts.adds += 1,
            Op::Cancel { .. } => counts.cancels += 1,
            Op::Market { .. } => counts.markets += 1,
        }
        book.apply(&command, &mut events);
        for event in &events {
            match event {
                Event::Traded { quantity, .. } => {
                    counts.fills += 1;
                    counts.filled_qty += quantity.0;
                }
                Event::Rejected { reason, .. } => {
                    panic!("OB-1M command {command:?} rejected: {reason}")
                }
                _ => {}
            }
        }
        events.clear();
    }
    counts.resting = book.len() as u64;
    counts
}
