//! The cost of the risk checks: the OB-1M order flow (`bourse_matching::ob1m`: 60%
//! passive adds, 30% cancels, 10% market orders) through the exchange core, once with
//! no risk configuration and once with everything on, in the same run.
//!
//! "On" means: instrument limits on every field (band, order quantity, notional,
//! open orders, position) plus an account override for both accounts and an
//! (account, OAuth client) override that every order names; a circuit breaker; the
//! maker's adds flagged as MMP quotes with an MMP config; a dead man's switch armed
//! for both accounts. Everything is generous, so nothing is rejected, canceled or
//! tripped and both runs do the same matching — the difference is the checks.
//!
//! `cargo bench -p bourse-exchange --bench risk` (`RISK_BENCH_OPS`, default
//! 1 000 000 timed operations after a 10 000-order prefill; `RISK_BENCH_REPS`,
//! default 5). Each repetition runs both variants on fresh exchanges, alternating;
//! the summary uses each variant's best repetition (the machine is shared; noise only
//! adds time). A plain `main` (harness = false), like the other benches of the
//! workspace: criterion is not in the lock file, and one long timed pass per variant
//! is what the figure needs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bourse_exchange::*;
use bourse_matching::ob1m::{self, Op};

fn env(name: &str, default: usize) -> usize {
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

const MAKER: AccountId = AccountId(1);
const TAKER: AccountId = AccountId(2);

fn client() -> ClientId {
    ClientId::parse("bench-app").unwrap()
}

/// A fresh exchange with the perpetual (mark at OB-1M's mid) and two funded accounts;
/// with `risk`, every check configured (generously).
fn setup(risk: bool) -> Exchange {
    let ts = Timestamp(1);
    let mut ex = Exchange::new(usdc());
    let mut cmds = vec![
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
            price: Price(ob1m::MID),
            ts,
        },
    ];
    for account in [MAKER, TAKER] {
        cmds.push(Command::Deposit {
            account,
            asset: usdc(),
            amount: 1 << 99,
            ts,
        });
    }
    if risk {
        let generous = OrderLimits {
            price_band_bps: Some(5_000),
            max_order_quantity: Some(1_000_000),
            max_order_notional: Some(1 << 90),
            max_open_orders: Some(u32::MAX),
            max_position: Some(u64::MAX / 4),
        };
        cmds.push(Command::SetInstrumentLimits {
            instrument: perp(),
            limits: generous,
            ts,
        });
        for account in [MAKER, TAKER] {
            cmds.push(Command::SetAccountLimits {
                account,
                instrument: perp(),
                limits: Some(generous),
                ts,
            });
            cmds.push(Command::SetClientLimits {
                account,
                client: client(),
                instrument: perp(),
                limits: Some(generous),
                ts,
            });
            cmds.push(Command::CancelAfter {
                account,
                timeout: u64::MAX / 2,
                ts,
            });
        }
        cmds.push(Command::SetCircuitBreaker {
            instrument: perp(),
            breaker: Some(CircuitBreaker {
                max_move_bps: 5_000,
                window: 1_000_000,
                cool_off: 1,
            }),
            ts,
        });
        cmds.push(Command::SetInstrumentGroup {
            instrument: perp(),
            group: Some(Asset::parse("BTC").unwrap()),
            ts,
        });
        cmds.push(Command::SetMmpConfig {
            account: MAKER,
            group: Asset::parse("BTC").unwrap(),
            config: Some(MmpConfig {
                interval: 1_000,
                max_quantity: Some(u64::MAX / 4),
                max_delta_e6: Some(1 << 90),
                max_vega_e6: None,
                freeze_for: 0,
            }),
            ts,
        });
    }
    for cmd in &cmds {
        let events = ex.apply(cmd);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e.kind, EventKind::Rejected { .. })),
            "{cmd:?}: {events:?}"
        );
    }
    ex
}

/// The exchange commands of OB-1M ops: adds are GTC limits of the maker, markets IOC
/// market orders of the taker, cancels name the exchange's id of the add (ids are
/// sequential over accepted orders, markets included).
fn commands(ops: &[Op], risk: bool, ids: &mut Vec<OrderId>, next: &mut u64) -> Vec<Command> {
    let mut out = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let ts = Timestamp(10 + i as u64);
        let (account, side, kind, quantity, tif, mmp) = match *op {
            Op::Add {
                id,
                side,
                price,
                quantity,
            } => {
                debug_assert_eq!(id.0 as usize, ids.len());
                ids.push(OrderId(*next));
                (
                    MAKER,
                    side,
                    OrderKind::Limit { price },
                    quantity,
                    TimeInForce::Gtc,
                    true,
                )
            }
            Op::Cancel { id } => {
                out.push(Command::CancelOrder {
                    account: MAKER,
                    order_id: ids[id.0 as usize],
                    ts,
                });
                continue;
            }
            Op::Market { side, quantity } => (
                TAKER,
                side,
                OrderKind::Market,
                quantity,
                TimeInForce::Ioc,
                false,
            ),
        };
        let order = PlaceOrder {
            account,
            instrument: perp(),
            client_order_id: ClientOrderId::parse(&format!("o{next}")).unwrap(),
            side,
            kind,
            quantity,
            time_in_force: tif,
            post_only: false,
            reduce_only: false,
            self_trade_prevention: SelfTradePrevention::CancelTaker,
            ts,
        };
        *next += 1;
        out.push(if risk {
            Command::PlaceOrderWith {
                order,
                options: OrderOptions {
                    oauth_client: (env("RISK_BENCH_CLIENT", 1) == 1).then(client),
                    mmp: mmp && env("RISK_BENCH_MMP", 1) == 1,
                },
            }
        } else {
            Command::PlaceOrder(order)
        });
    }
    out
}

struct Variant {
    prefill: Vec<Command>,
    timed: Vec<Command>,
    risk: bool,
}

impl Variant {
    fn new(workload: &ob1m::Workload, risk: bool) -> Variant {
        let mut ids = Vec::new();
        let mut next = 1;
        let prefill = commands(&workload.prefill, risk, &mut ids, &mut next);
        let timed = commands(&workload.ops, risk, &mut ids, &mut next);
        Variant {
            prefill,
            timed,
            risk,
        }
    }

    /// One pass: (time of the timed part, trades, rejections).
    fn run(&self) -> (Duration, u64, u64) {
        let mut ex = setup(self.risk);
        let mut events = Vec::new();
        for cmd in &self.prefill {
            ex.apply_into(cmd, &mut events);
        }
        events.clear();
        let mut trades = 0u64;
        let mut rejected = 0u64;
        let start = Instant::now();
        for chunk in self.timed.chunks(4096) {
            for cmd in chunk {
                ex.apply_into(black_box(cmd), &mut events);
            }
            for e in &events {
                match e.kind {
                    EventKind::OrderTraded { .. } => trades += 1,
                    EventKind::Rejected { .. } => rejected += 1,
                    _ => {}
                }
            }
            events.clear();
        }
        let elapsed = start.elapsed();
        black_box(ex.state_hash());
        (elapsed, trades, rejected)
    }
}

fn main() {
    let ops = env("RISK_BENCH_OPS", ob1m::OPS);
    let reps = env("RISK_BENCH_REPS", 5).max(1);
    let workload = ob1m::generate(ops, ob1m::PREFILL);
    let off = Variant::new(&workload, false);
    let on = Variant::new(&workload, true);
    let mut times = [Vec::new(), Vec::new()];
    let mut outcome = [(0, 0), (0, 0)];
    for _ in 0..reps {
        for (i, v) in [&off, &on].into_iter().enumerate() {
            let (t, trades, rejected) = v.run();
            times[i].push(t);
            outcome[i] = (trades, rejected);
        }
    }
    assert_eq!(
        outcome[0], outcome[1],
        "both variants must do the same work"
    );
    assert_eq!(outcome[1].1, 0, "the generous limits rejected something");
    let mut best = [Duration::ZERO; 2];
    for (i, name) in ["checks off", "checks on"].into_iter().enumerate() {
        times[i].sort();
        best[i] = times[i][0];
        let median = times[i][times[i].len() / 2];
        println!(
            "{name:>10}: best {:>8.1} ms ({:>5.0} ns/op, {:.2} M ops/s), median {:>8.1} ms",
            best[i].as_secs_f64() * 1e3,
            best[i].as_secs_f64() * 1e9 / ops as f64,
            ops as f64 / best[i].as_secs_f64() / 1e6,
            median.as_secs_f64() * 1e3,
        );
    }
    println!(
        "risk checks: {ops} OB-1M ops ({} trades, 0 rejected), on/off = {:.3} (best of {reps})",
        outcome[0].0,
        best[1].as_secs_f64() / best[0].as_secs_f64()
    );
}
