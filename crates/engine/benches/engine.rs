//! Engine figures, one line each (plain `main`: the interesting costs are fsync-bound
//! batches and one long replay, where criterion's many short samples would only
//! multiply the fsyncs):
//!
//! - `durable`: orders submitted by many concurrent tasks through the real engine
//!   (two-lane queue, writer thread, core, journal group commit, projector into SQLite)
//!   until each is acknowledged, i.e. durable. Commands/s and records per fsync.
//! - `replay`: the journal those runs wrote plus a synthetic 1 M-command stream,
//!   replayed from scratch through decode + `Exchange::apply` (what start-up does after
//!   the snapshot). Commands/s.
//!
//! `cargo bench -p bourse-engine --bench engine` (`ENGINE_BENCH_ORDERS`,
//! `ENGINE_BENCH_INFLIGHT`, `ENGINE_BENCH_REPLAY` change the sizes).

use std::time::{Duration, Instant};

use bourse_engine::core::*;
use bourse_engine::{Engine, EngineConfig, Meta, Record, encode, replay_exchange};
use bourse_journal::Journal;
use bourse_store::Store;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn usdc() -> Asset {
    Asset::parse("USDC").unwrap()
}

fn perp() -> Symbol {
    Symbol::parse("BTC-PERP").unwrap()
}

const ACCOUNTS: u64 = 64;

fn setup_commands() -> Vec<Command> {
    let ts = Timestamp(1);
    let mut out = vec![
        Command::CreateInstrument {
            spec: InstrumentSpec {
                symbol: perp(),
                kind: InstrumentKind::Perpetual,
                tick_size_e8: 100_000_000,
                lot_size_e8: 1_000_000,
                multiplier: 1,
                initial_margin_ppm: 100_000,
                maintenance_margin_ppm: 50_000,
                maker_fee_ppm: 200,
                taker_fee_ppm: 500,
            },
            ts,
        },
        Command::SetMarkPrice {
            instrument: perp(),
            price: Price(50_000),
            ts,
        },
    ];
    for a in 1..=ACCOUNTS {
        out.push(Command::Deposit {
            account: AccountId(a),
            asset: usdc(),
            amount: 1_000_000_000 * 1_000_000,
            ts,
        });
    }
    out
}

/// A deterministic stream: limit orders within ±20 ticks of 50 000 (about a third
/// cross), and a cancel of an earlier order every fourth command.
fn stream(n: u64) -> Vec<Command> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let r = next();
        let account = AccountId(1 + r % ACCOUNTS);
        if i % 4 == 3 {
            out.push(Command::CancelOrder {
                account,
                order_id: OrderId(1 + (r >> 8) % (i + 1)),
                ts: Timestamp(10 + i),
            });
            continue;
        }
        let side = if (r >> 20) & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let offset = ((r >> 24) % 41) as i64 - 20;
        out.push(Command::PlaceOrder(PlaceOrder {
            account,
            instrument: perp(),
            client_order_id: ClientOrderId::parse(&format!("b{i}")).unwrap(),
            side,
            kind: OrderKind::Limit {
                price: Price(50_000 + offset),
            },
            quantity: Quantity(1 + (r >> 32) % 10),
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            reduce_only: false,
            self_trade_prevention: SelfTradePrevention::CancelTaker,
            ts: Timestamp(10 + i),
        }));
    }
    out
}

async fn durable(orders: u64, inflight: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("b.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (engine, _) = Engine::start(EngineConfig::new(dir.path().join("j"), usdc()), store)
        .await
        .unwrap();
    for c in setup_commands() {
        engine.submit(c, Meta::default()).await.unwrap();
    }
    let commands = stream(orders);
    let per_task = commands.len().div_ceil(inflight as usize);
    let started = Instant::now();
    let before = engine.stats();
    let mut tasks = Vec::new();
    for chunk in commands.chunks(per_task) {
        let engine = engine.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(chunk.len());
            for c in chunk {
                let t = Instant::now();
                engine.submit(c, Meta::default()).await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    let after = engine.stats();
    lat.sort();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_micros();
    let commits = after.commits - before.commits;
    let journaled = after.journaled - before.journaled;
    println!(
        "engine durable commands={} inflight={} cmds_per_sec={:.0} journaled={} per_fsync={:.1} p50_us={} p99_us={}",
        lat.len(),
        inflight,
        lat.len() as f64 / secs,
        journaled,
        journaled as f64 / commits.max(1) as f64,
        q(0.50),
        q(0.99),
    );
    engine.shutdown().await;
}

fn replay(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        let mut ex = Exchange::new(usdc());
        for command in setup_commands().into_iter().chain(stream(n)) {
            // Only what the engine would journal: commands the core accepted.
            let events = ex.apply(&command);
            if matches!(
                events.as_slice(),
                [Event {
                    kind: EventKind::Rejected { .. },
                    ..
                }]
            ) {
                continue;
            }
            journal
                .append(&encode(&Record {
                    command,
                    meta: Meta::default(),
                }))
                .unwrap();
        }
        journal.commit().unwrap();
    }
    // Timed: what start-up does before it serves (open and verify the journal,
    // decode, apply). The state hash start-up logs afterwards is timed apart.
    let mut best = f64::MAX;
    let mut best_hash = f64::MAX;
    let mut records = 0;
    let mut hashes = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (_, n, exchange) = replay_exchange(dir.path(), usdc()).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        records = n;
        let t = Instant::now();
        hashes.push(exchange.state_hash());
        best_hash = best_hash.min(t.elapsed().as_secs_f64());
    }
    hashes.dedup();
    assert_eq!(hashes.len(), 1, "every replay must end in the same state");
    println!(
        "engine replay records={records} best_secs={best:.3} cmds_per_sec={:.0} state_hash_ms={:.1}",
        records as f64 / best,
        best_hash * 1e3
    );
}

fn main() {
    let orders = env("ENGINE_BENCH_ORDERS", 200_000);
    let inflight = env("ENGINE_BENCH_INFLIGHT", 1024);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(durable(orders, 64));
    rt.block_on(durable(orders, inflight));
    replay(env("ENGINE_BENCH_REPLAY", 1_000_000));
}
