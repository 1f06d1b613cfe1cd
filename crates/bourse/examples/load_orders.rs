//! Open-loop load for `POST /v1/orders`: sends orders at a fixed rate (not "as fast as
//! answers come back"), so that latency is measured from the moment each request was
//! due and a slow server cannot hide its queueing (no coordinated omission).
//!
//! `load_orders BASE_URL CERT_PEM TOKEN_A TOKEN_B RATE SECONDS`: two accounts take
//! turns, A selling and B buying 0.001 BTC-PERP at 50 000, so every pair trades. Prints
//! one line: offered and achieved rate, p50/p99/p99.9 latency, statuses.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        eprintln!("usage: load_orders BASE_URL CERT_PEM TOKEN_A TOKEN_B RATE SECONDS");
        std::process::exit(2);
    }
    let base = args[1].clone();
    let cert = std::fs::read(&args[2]).expect("certificate");
    let tokens = [args[3].clone(), args[4].clone()];
    let rate: u64 = args[5].parse().expect("rate");
    let secs: u64 = args[6].parse().expect("seconds");
    bourse::tls::install_crypto_provider();
    let client = bourse_testkit::client_for(&cert, Some(false));
    let bodies = [
        r#"{"symbol":"BTC-PERP","side":"sell","type":"limit","price":"50000","quantity":"0.001"}"#,
        r#"{"symbol":"BTC-PERP","side":"buy","type":"limit","price":"50000","quantity":"0.001"}"#,
    ];
    let url = format!("{base}/v1/orders");
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::with_capacity(
        (rate * secs) as usize,
    )));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let total = rate * secs;
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = start + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let i = (n % 2) as usize;
        let (client, url, token, body) =
            (client.clone(), url.clone(), tokens[i].clone(), bodies[i]);
        let (latencies, ok, failed) = (latencies.clone(), ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(&url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let took = due.elapsed();
            match r {
                Ok(r) if r.status() == 201 => {
                    let _ = r.bytes().await;
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies.lock().await.push(took);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut lat = latencies.lock().await.clone();
    lat.sort();
    let q = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|d| d.as_micros())
            .unwrap_or(0)
    };
    println!(
        "orders offered_rps={rate} achieved_rps={:.0} ok={} failed={} p50_us={} p99_us={} p999_us={} secs={secs}",
        ok.load(Ordering::Relaxed) as f64 / elapsed,
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        q(0.50),
        q(0.99),
        q(0.999),
    );
}
