//! Detection throughput on a realistic mixed stream:
//! `cargo bench -p bourse-surveillance --bench detect`.
//!
//! The stream (1.2M observations by default, `DETECT_OBS=n` changes it) is generated
//! before anything is timed: the benign workload of the tests (hundreds of accounts
//! trading four instruments around random-walking mids, market makers requoting,
//! humans browsing in bursts, API bots, logins, withdrawals) with scripted abuse mixed
//! in every 50 000 observations (a self-trading pair, a burst of wrong second-factor
//! codes, a withdrawal right after a password change), so alert paths are timed too.
//!
//! Prints `detect observations=<n> alerts=<n> best_obs_per_sec=<x> ns_per_obs=<x>`
//! from its own timing (best of 5 full passes, each on a fresh detector) and the alerts
//! by rule with the final state sizes, then lets criterion time the same pass
//! (throughput in elements/s).

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bourse_surveillance::{
    AccountId, CredentialKind, Observation, OrderId, Side, Surveillance, SurveillanceConfig, UserId,
};
use criterion::{BatchSize, Criterion, Throughput};

fn stream(n: usize) -> Vec<Observation<'static>> {
    let base = support::benign_stream(42, n);
    let mut out = Vec::with_capacity(base.len() + base.len() / 1000);
    let mut k = 0u64;
    for (i, o) in base.into_iter().enumerate() {
        let ts = o.ts_ns();
        out.push(o);
        if i % 50_000 == 49_999
            && let Some(ts) = ts
        {
            k += 1;
            let user = UserId(0x1000_0000 + u128::from(k % 500));
            for j in 0..5u64 {
                out.push(Observation::SecondFactorFailed {
                    ts_ns: ts + j,
                    user,
                });
            }
            out.push(Observation::CredentialChanged {
                ts_ns: ts + 5,
                user,
                kind: CredentialKind::Password,
            });
            out.push(Observation::WithdrawalRequested {
                ts_ns: ts + 6,
                user,
                amount: 1_000,
            });
            let acct = AccountId(10_000 + k % 500);
            for j in 0..3u64 {
                out.push(Observation::Trade {
                    ts_ns: ts + 7 + j,
                    instrument: bourse_surveillance::InstrumentId(0),
                    price_ticks: 20_000,
                    qty_lots: 1,
                    maker_account: acct,
                    taker_account: acct,
                    aggressor_side: Side::Buy,
                    maker_order_id: OrderId(u64::MAX - 2 * (k * 3 + j)),
                    taker_order_id: OrderId(u64::MAX - 2 * (k * 3 + j) - 1),
                });
            }
        }
    }
    out
}

fn pass(stream: &[Observation<'_>]) -> usize {
    let mut s = Surveillance::new(SurveillanceConfig::default());
    let mut alerts = Vec::new();
    for o in stream {
        s.observe_into(black_box(o), &mut alerts);
    }
    black_box(&s);
    alerts.len()
}

fn main() {
    let n: usize = std::env::var("DETECT_OBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_200_000);
    let observations = stream(n);
    let len = observations.len();

    // `cargo test --benches` passes `--test`: one quick pass, no timing.
    if std::env::args().any(|a| a == "--test") {
        let _ = pass(&observations[..len.min(20_000)]);
        return;
    }

    let mut best = Duration::MAX;
    let mut alerts = 0;
    for _ in 0..5 {
        let t = Instant::now();
        alerts = pass(&observations);
        best = best.min(t.elapsed());
    }
    let secs = best.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let per_sec = len as f64 / secs;
    #[allow(clippy::cast_precision_loss)]
    let ns = secs * 1e9 / len as f64;
    println!(
        "detect observations={len} alerts={alerts} best_obs_per_sec={per_sec:.0} ns_per_obs={ns:.1}"
    );
    let mut s = Surveillance::new(SurveillanceConfig::default());
    let mut by_rule = std::collections::BTreeMap::new();
    for o in &observations {
        for a in s.observe(o) {
            *by_rule.entry(a.rule.as_str()).or_insert(0u32) += 1;
        }
    }
    println!("detect alerts_by_rule={by_rule:?} state={:?}", s.stats());

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    let mut group = c.benchmark_group("surveillance");
    group.throughput(Throughput::Elements(len as u64));
    group.bench_function("observe_mixed_stream", |b| {
        b.iter_batched(
            || Surveillance::new(SurveillanceConfig::default()),
            |mut s| {
                let mut alerts = Vec::new();
                for o in &observations {
                    s.observe_into(black_box(o), &mut alerts);
                }
                (s, alerts)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    c.final_summary();
}
