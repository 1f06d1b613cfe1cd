//! OB-1M: this engine against `matchcore` 0.4 on the same pre-built stream, in one run.
//!
//! `cargo bench -p bourse-matching --bench ob_1m` (set `OB1M_REPS` to change the
//! number of repetitions, 9 by default). Phases:
//! 1. throughput: each repetition applies the timed stream to a fresh, prefilled book
//!    of each engine (alternating, so both see the same machine noise), timing it in
//!    ten consecutive chunks. Reported: the median pass, the best pass, and the sum
//!    over chunks of each chunk's best time (the summary line uses this last one:
//!    the machine is shared, and noise only ever adds time);
//! 2. latency: one more pass per engine with the time stamp counter read around each
//!    operation (the figures include the cost of reading it, printed as well);
//! 3. allocations: a pass with the counting allocator switched on;
//! 4. memory per resting order.
//!
//! The last line is the summary the issue asks for.

// The counting allocator has to implement `GlobalAlloc`, an unsafe trait, and the
// latency pass reads the time stamp counter through an `unsafe` intrinsic. Nothing
// else in this file is unsafe, and the library itself stays `deny(unsafe_code)`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bourse_matching::ob1m::{self, Counts, Op};
use bourse_matching::{BookConfig, Command, Event, OrderBook};

/// Counts heap allocations (including reallocations) while `COUNTING` is on.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

impl CountingAllocator {
    #[inline]
    fn note(&self) {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged;
// counting touches only atomics.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note();
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Counts allocations made while `f` runs.
fn count_allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    let result = f();
    COUNTING.store(false, Ordering::SeqCst);
    (result, ALLOCATIONS.load(Ordering::Relaxed))
}

/// The time stamp counter (x86_64), or nanoseconds since start elsewhere.
#[inline(always)]
fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` exists on every x86_64 CPU and has no preconditions.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Nanoseconds per tick, measured against the monotonic clock.
fn ns_per_tick() -> f64 {
    let (t0, c0) = (Instant::now(), ticks());
    while t0.elapsed() < Duration::from_millis(200) {}
    let (t1, c1) = (Instant::now(), ticks());
    (t1 - t0).as_nanos() as f64 / (c1 - c0) as f64
}

/// Latency percentiles in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Percentiles {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

fn percentiles(samples: &mut [u64], ns_per_tick: f64) -> Percentiles {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q) as usize).min(samples.len() - 1);
        samples[i] as f64 * ns_per_tick
    };
    Percentiles {
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        max: at(1.0),
    }
}

/// The timed stream is timed in this many consecutive chunks (see `main`).
const CHUNKS: usize = 10;

/// One timed pass over the stream.
struct Run {
    /// Seconds per chunk, in stream order.
    chunk_seconds: Vec<f64>,
    fills: u64,
    filled: u64,
    resting: u64,
}

impl Run {
    fn seconds(&self) -> f64 {
        self.chunk_seconds.iter().sum()
    }
}

/// Per-chunk minimum over passes, summed: every pass replays the same stream from
/// the same state, so chunk `c` does the same work each time and only noise from
/// the (shared) machine makes it slower. Applied to both engines alike.
fn best_per_chunk(runs: &[Run]) -> f64 {
    (0..runs[0].chunk_seconds.len())
        .map(|c| {
            runs.iter()
                .map(|r| r.chunk_seconds[c])
                .fold(f64::MAX, f64::min)
        })
        .sum()
}

// ---------------------------------------------------------------- this engine ---

struct Ours {
    prefill: Vec<Command>,
    ops: Vec<Command>,
}

impl Ours {
    fn fresh_book(&self, config: BookConfig) -> (OrderBook, Vec<Event>) {
        let mut book = OrderBook::with_config(config);
        let mut events = Vec::with_capacity(1024);
        for command in &self.prefill {
            book.apply(command, &mut events);
            events.clear();
        }
        (book, events)
    }

    /// Applies the timed stream.
    fn run(&self) -> Run {
        let (mut book, mut events) = self.fresh_book(ob1m::book_config());
        let (mut fills, mut filled) = (0u64, 0u64);
        let mut chunk_seconds = Vec::with_capacity(CHUNKS);
        for chunk in self.ops.chunks(self.ops.len().div_ceil(CHUNKS)) {
            let start = Instant::now();
            for command in chunk {
                book.apply(command, &mut events);
                for event in &events {
                    if let Event::Traded { quantity, .. } = event {
                        fills += 1;
                        filled += quantity.0;
                    }
                }
                events.clear();
            }
            chunk_seconds.push(start.elapsed().as_secs_f64());
        }
        let resting = book.len() as u64;
        black_box(&book);
        Run {
            chunk_seconds,
            fills,
            filled,
            resting,
        }
    }

    fn latencies(&self) -> Vec<u64> {
        let (mut book, mut events) = self.fresh_book(ob1m::book_config());
        let mut samples = Vec::with_capacity(self.ops.len());
        for command in &self.ops {
            let t0 = ticks();
            book.apply(command, &mut events);
            let t1 = ticks();
            samples.push(t1 - t0);
            black_box(&events);
            events.clear();
        }
        samples
    }
}

// ------------------------------------------------------------------ matchcore ---

struct Theirs {
    prefill: Vec<matchcore::Command>,
    ops: Vec<matchcore::Command>,
}

/// matchcore numbers orders by the sequence number of the submitting command and
/// wants consecutive sequence numbers, so the stream is translated once, up front:
/// the n-th command gets sequence number n, and an OB-1M id maps to the sequence
/// number of its add.
fn matchcore_stream(workload: &ob1m::Workload) -> Theirs {
    use matchcore as mc;
    let mut id_map: Vec<u64> = Vec::new();
    let mut sequence = 0u64;
    let mut translate = |op: &Op| {
        let meta = mc::CommandMeta {
            sequence_number: mc::SequenceNumber(sequence),
            timestamp: mc::Timestamp(sequence),
        };
        let side = |s| match s {
            bourse_matching::Side::Buy => mc::Side::Buy,
            bourse_matching::Side::Sell => mc::Side::Sell,
        };
        let kind = match *op {
            Op::Add {
                id,
                side: s,
                price,
                quantity,
            } => {
                assert_eq!(id.0 as usize, id_map.len(), "OB-1M ids are sequential");
                id_map.push(sequence);
                mc::CommandKind::Submit(mc::SubmitCmd {
                    order: mc::NewOrder::Limit(mc::LimitOrder::new(
                        mc::Price(price.0 as u64),
                        mc::QuantityPolicy::Standard {
                            quantity: mc::Quantity(quantity.0),
                        },
                        mc::OrderFlags::new(side(s), false, mc::TimeInForce::Gtc),
                    )),
                })
            }
            Op::Cancel { id } => mc::CommandKind::Cancel(mc::CancelCmd {
                order_id: mc::OrderId(id_map[id.0 as usize]),
                order_kind: mc::OrderKind::Limit,
            }),
            Op::Market { side: s, quantity } => mc::CommandKind::Submit(mc::SubmitCmd {
                order: mc::NewOrder::Market(mc::MarketOrder::new(
                    mc::Quantity(quantity.0),
                    side(s),
                    false,
                )),
            }),
        };
        sequence += 1;
        mc::Command { meta, kind }
    };
    let prefill = workload.prefill.iter().map(&mut translate).collect();
    let ops = workload.ops.iter().map(&mut translate).collect();
    Theirs { prefill, ops }
}

impl Theirs {
    fn fresh_book(&self) -> matchcore::OrderBook {
        let mut book = matchcore::OrderBook::new("OB1M");
        for command in &self.prefill {
            let outcome = book.execute(command);
            assert!(matches!(outcome, matchcore::CommandOutcome::Applied(_)));
        }
        book
    }

    fn run(&self) -> Run {
        let mut book = self.fresh_book();
        let (mut fills, mut filled) = (0u64, 0u64);
        let mut chunk_seconds = Vec::with_capacity(CHUNKS);
        for chunk in self.ops.chunks(self.ops.len().div_ceil(CHUNKS)) {
            let start = Instant::now();
            for command in chunk {
                let outcome = book.execute(command);
                match &outcome {
                    matchcore::CommandOutcome::Applied(matchcore::CommandReport::Submit(
                        effects,
                    )) => {
                        if let Some(result) = effects.target_order().match_result() {
                            fills += result.trades().len() as u64;
                            filled += result.executed_quantity().0;
                        }
                    }
                    matchcore::CommandOutcome::Applied(_) => {}
                    matchcore::CommandOutcome::Rejected(failure) => {
                        panic!("matchcore rejected {command:?}: {failure}")
                    }
                }
            }
            chunk_seconds.push(start.elapsed().as_secs_f64());
        }
        let resting = book.limit().orders().len() as u64;
        black_box(&book);
        Run {
            chunk_seconds,
            fills,
            filled,
            resting,
        }
    }

    fn latencies(&self) -> Vec<u64> {
        let mut book = self.fresh_book();
        let mut samples = Vec::with_capacity(self.ops.len());
        for command in &self.ops {
            let t0 = ticks();
            let outcome = book.execute(command);
            let t1 = ticks();
            samples.push(t1 - t0);
            black_box(outcome);
        }
        samples
    }
}

fn op_kind(op: &Op) -> u8 {
    match op {
        Op::Add { .. } => 0,
        Op::Cancel { .. } => 1,
        Op::Market { .. } => 2,
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let reps: usize = std::env::var("OB1M_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9)
        .max(1);
    let built = Instant::now();
    let workload = ob1m::generate(ob1m::OPS, ob1m::PREFILL);
    let ours = Ours {
        prefill: ob1m::commands(&workload.prefill),
        ops: ob1m::commands(&workload.ops),
    };
    let theirs = matchcore_stream(&workload);
    let ops = workload.ops.len() as f64;
    println!(
        "stream: {} timed ops after {} prefill, built in {:.2?} (not timed); reference {}",
        workload.ops.len(),
        workload.prefill.len(),
        built.elapsed(),
        workload.reference
    );

    // 1. Throughput.
    let (mut our_runs, mut their_runs) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let run = ours.run();
        let counts = Counts {
            fills: run.fills,
            filled_qty: run.filled,
            resting: run.resting,
            ..workload.reference
        };
        assert_eq!(counts, workload.reference, "this engine's counts");
        let their = theirs.run();
        assert_eq!(
            (their.fills, their.filled, their.resting),
            (run.fills, run.filled, run.resting),
            "matchcore's counts"
        );
        println!(
            "rep {rep}: bourse {:>6.2} M ops/s ({:>5.1} ns/op)   matchcore {:>6.2} M ops/s ({:>5.1} ns/op)   ratio {:.2}",
            ops / run.seconds() / 1e6,
            run.seconds() * 1e9 / ops,
            ops / their.seconds() / 1e6,
            their.seconds() * 1e9 / ops,
            their.seconds() / run.seconds(),
        );
        our_runs.push(run);
        their_runs.push(their);
    }
    let our_counts = Counts {
        fills: our_runs[0].fills,
        filled_qty: our_runs[0].filled,
        resting: our_runs[0].resting,
        ..workload.reference
    };
    let rates = |runs: &[Run]| runs.iter().map(|r| ops / r.seconds()).collect::<Vec<f64>>();
    let (mut our_rates, mut their_rates) = (rates(&our_runs), rates(&their_runs));
    let best_ours = our_rates.iter().cloned().fold(0.0, f64::max);
    let best_theirs = their_rates.iter().cloned().fold(0.0, f64::max);
    let ours_median = median(&mut our_rates);
    let theirs_median = median(&mut their_rates);
    let ours_chunked = ops / best_per_chunk(&our_runs);
    let theirs_chunked = ops / best_per_chunk(&their_runs);
    let ratio = ours_chunked / theirs_chunked;
    for (name, a, b) in [
        ("median pass", ours_median, theirs_median),
        ("best pass", best_ours, best_theirs),
        ("best per chunk", ours_chunked, theirs_chunked),
    ] {
        println!(
            "throughput, {name:<14} of {reps}: bourse {:.2} M ops/s, matchcore {:.2} M ops/s, ratio {:.2}",
            a / 1e6,
            b / 1e6,
            a / b
        );
    }

    // 2. Latency per operation.
    let scale = ns_per_tick();
    let timer_cost = {
        let mut pairs: Vec<u64> = (0..100_000)
            .map(|_| {
                let t0 = ticks();
                let t1 = ticks();
                t1 - t0
            })
            .collect();
        percentiles(&mut pairs, scale).p50
    };
    let our_samples = ours.latencies();
    let their_samples = theirs.latencies();
    for (name, samples) in [("bourse", &our_samples), ("matchcore", &their_samples)] {
        let mut line = format!("latency {name:<9} by kind:");
        for (kind, wanted) in [("add", 0), ("cancel", 1), ("market", 2)] {
            let mut of_kind: Vec<u64> = workload
                .ops
                .iter()
                .zip(samples.iter())
                .filter(|(op, _)| op_kind(op) == wanted)
                .map(|(_, &s)| s)
                .collect();
            let mean = of_kind.iter().sum::<u64>() as f64 * scale / of_kind.len() as f64;
            let p = percentiles(&mut of_kind, scale);
            line += &format!(
                " {kind} mean {mean:.0} p50 {:.0} p99 {:.0} ns;",
                p.p50, p.p99
            );
        }
        println!("{line}");
    }
    let our_latency = percentiles(&mut our_samples.clone(), scale);
    let their_latency = percentiles(&mut their_samples.clone(), scale);
    for (name, l) in [("bourse", our_latency), ("matchcore", their_latency)] {
        println!(
            "latency {name:<9}: p50 {:.0} ns, p99 {:.0} ns, p99.9 {:.0} ns, max {:.0} ns",
            l.p50, l.p99, l.p999, l.max
        );
    }
    println!("latency includes reading the time stamp counter twice: about {timer_cost:.0} ns");

    // 3. Heap allocations during the timed phase.
    let (sized, sized_allocations) = {
        let (mut book, mut events) = ours.fresh_book(ob1m::book_config());
        let ((), allocations) = count_allocations(|| {
            for command in &ours.ops {
                book.apply(command, &mut events);
                events.clear();
            }
        });
        (book, allocations)
    };
    let (first_half, second_half) = {
        // A book left at the default size grows while the live count climbs to its
        // peak; after that warm-up it allocates nothing either.
        let (mut book, mut events) = ours.fresh_book(BookConfig::default());
        let half = ours.ops.len() / 2;
        let mut counted = |commands: &[Command]| {
            count_allocations(|| {
                for command in commands {
                    book.apply(command, &mut events);
                    events.clear();
                }
            })
            .1
        };
        (counted(&ours.ops[..half]), counted(&ours.ops[half..]))
    };
    let theirs_allocations = {
        let mut book = theirs.fresh_book();
        count_allocations(|| {
            for command in &theirs.ops {
                black_box(book.execute(command));
            }
        })
        .1
    };
    println!(
        "allocations, timed phase: bourse (sized book) {sized_allocations} = {:.3} per op; \
         bourse (default-sized book) {first_half} in the first 500k ops, {second_half} in the last 500k; \
         matchcore {theirs_allocations} = {:.2} per op",
        sized_allocations as f64 / ops,
        theirs_allocations as f64 / ops,
    );

    // 4. Memory per resting order.
    let usage = sized.memory_usage();
    let resting = sized.len().max(1);
    println!(
        "memory: order slot {} B, id index entry {} B (index kept at most half full), \
         level {} B per price tick in the window; this book: {} B heap for {} resting \
         orders = {:.0} B per resting order (arena sized for {} orders); \
         marginal cost of one more order: {} B slot + at most {} B of index",
        usage.order_slot_bytes,
        usage.id_index_entry_bytes,
        usage.price_level_bytes,
        usage.total_bytes,
        resting,
        usage.total_bytes as f64 / resting as f64,
        usage.order_slot_capacity,
        usage.order_slot_bytes,
        2 * usage.id_index_entry_bytes,
    );

    println!(
        "ob1m ops_per_sec={:.0} matchcore_ops_per_sec={:.0} ratio={:.2} p50_ns={:.0} p99_ns={:.0} p999_ns={:.0} fills={} resting={}",
        ours_chunked,
        theirs_chunked,
        ratio,
        our_latency.p50,
        our_latency.p99,
        our_latency.p999,
        our_counts.fills,
        our_counts.resting
    );
}
