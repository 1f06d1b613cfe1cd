//! The engine against a real journal directory and a real store (SQLite, and
//! PostgreSQL when it is reachable): durability across restarts, snapshots, torn
//! tails, read models and read-your-writes.

use std::time::Duration;

use bourse_engine::core::*;
use bourse_engine::{Engine, EngineConfig, EngineError, Meta, replay_fresh};
use bourse_store::testing::TestDatabase;
use bourse_store::{OrderQuery, Store};

fn usdc() -> Asset {
    Asset::parse("USDC").unwrap()
}

fn perp() -> Symbol {
    Symbol::parse("BTC-PERP").unwrap()
}

async fn store(db: &TestDatabase) -> Store {
    let store = Store::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn config(dir: &std::path::Path) -> EngineConfig {
    EngineConfig::new(dir, usdc())
}

async fn ok(engine: &Engine, command: Command) -> bourse_engine::Outcome {
    let out = engine
        .submit(command.clone(), Meta::default())
        .await
        .unwrap();
    assert!(
        out.rejection().is_none(),
        "{command:?}: {:?}",
        out.rejection()
    );
    assert!(out.seq.is_some());
    out
}

/// A perpetual with a mark price, and `accounts` accounts with 1 000 000 USDC each.
async fn market(engine: &Engine, accounts: u64) {
    let ts = Timestamp(1);
    ok(
        engine,
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
    )
    .await;
    ok(
        engine,
        Command::SetMarkPrice {
            instrument: perp(),
            price: Price(50_000),
            ts,
        },
    )
    .await;
    for a in 1..=accounts {
        ok(
            engine,
            Command::Deposit {
                account: AccountId(a),
                asset: usdc(),
                amount: 1_000_000 * 1_000_000,
                ts,
            },
        )
        .await;
    }
}

fn order(account: u64, n: u64, side: Side, price: i64, qty: u64) -> Command {
    Command::PlaceOrder(PlaceOrder {
        account: AccountId(account),
        instrument: perp(),
        client_order_id: ClientOrderId::parse(&format!("c-{account}-{n}")).unwrap(),
        side,
        kind: OrderKind::Limit {
            price: Price(price),
        },
        quantity: Quantity(qty),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        self_trade_prevention: SelfTradePrevention::CancelTaker,
        ts: Timestamp(1_000 + n),
    })
}

/// Some trading: resting orders on both sides, crossing orders, cancels.
async fn trade(engine: &Engine, rounds: u64) {
    for n in 0..rounds {
        let out = ok(engine, order(1, n, Side::Buy, 49_990 + (n % 5) as i64, 3)).await;
        ok(engine, order(2, n, Side::Sell, 49_990, 2)).await;
        if n % 3 == 0
            && let Some(id) = out.events.iter().find_map(|e| match e.kind {
                EventKind::OrderRested { order_id, .. } => Some(order_id),
                _ => None,
            })
        {
            let _ = engine
                .submit(
                    Command::CancelOrder {
                        account: AccountId(1),
                        order_id: id,
                        ts: Timestamp(2_000 + n),
                    },
                    Meta::default(),
                )
                .await
                .unwrap();
        }
    }
}

async fn each_backend(test: impl AsyncFn(TestDatabase)) {
    test(TestDatabase::sqlite()).await;
    if let Some(db) = TestDatabase::postgres().await {
        test(db).await;
    }
}

#[tokio::test]
async fn state_survives_a_restart_and_equals_a_fresh_replay() {
    each_backend(async |db| {
        let dir = tempfile::tempdir().unwrap();
        let (engine, report) = Engine::start(config(dir.path()), store(&db).await)
            .await
            .unwrap();
        assert_eq!(report.replayed, 0);
        market(&engine, 2).await;
        trade(&engine, 30).await;
        let (seq, hash) = engine.state_hash().unwrap();
        assert!(seq > 60);
        engine.shutdown().await;

        let (engine, report) = Engine::start(config(dir.path()), store(&db).await)
            .await
            .unwrap();
        assert_eq!(report.replayed, seq);
        assert_eq!(report.state_hash, hash);
        assert_eq!(engine.state_hash().unwrap(), (seq, hash));
        engine.shutdown().await;
        let (fresh_seq, records, fresh_hash) = replay_fresh(dir.path(), usdc()).unwrap();
        assert_eq!((fresh_seq, records, fresh_hash), (seq, seq, hash));
        db.cleanup().await;
    })
    .await;
}

#[tokio::test]
async fn a_rejected_command_is_answered_but_not_journaled() {
    let db = TestDatabase::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::start(config(dir.path()), store(&db).await)
        .await
        .unwrap();
    market(&engine, 1).await;
    let before = engine.state_hash().unwrap();
    // Far beyond what the deposit can margin.
    let out = engine
        .submit(
            order(1, 1, Side::Buy, 50_000, 4_000_000_000),
            Meta::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.rejection(), Some(RejectReason::InsufficientMargin));
    assert_eq!(out.seq, None);
    assert_eq!(engine.state_hash().unwrap(), before);
    engine.shutdown().await;
}

#[tokio::test]
async fn start_replays_from_the_latest_snapshot() {
    let db = TestDatabase::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.snapshot_every = 16;
    let (engine, _) = Engine::start(cfg.clone(), store(&db).await).await.unwrap();
    market(&engine, 2).await;
    trade(&engine, 40).await;
    // Give the writer an idle moment to write a snapshot the read models have reached.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (seq, hash) = engine.state_hash().unwrap();
    engine.shutdown().await;
    let snapshots = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("snapshot-")
        })
        .count();
    assert!((1..=2).contains(&snapshots), "{snapshots} snapshots kept");

    let (engine, report) = Engine::start(cfg, store(&db).await).await.unwrap();
    let snap = report.snapshot_seq.expect("a snapshot was used");
    assert_eq!(report.replayed, seq - snap);
    assert!(report.replayed < seq);
    assert_eq!(report.state_hash, hash);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_the_acknowledged_state_kept() {
    let db = TestDatabase::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::start(config(dir.path()), store(&db).await)
        .await
        .unwrap();
    market(&engine, 2).await;
    trade(&engine, 5).await;
    let (seq, hash) = engine.state_hash().unwrap();
    engine.shutdown().await;
    // A write that was cut off by a crash: half a frame of garbage at the end.
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("segment-")
        })
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    std::io::Write::write_all(&mut f, &[0x40, 0, 0, 0, 9, 9, 9]).unwrap();
    drop(f);
    let (engine, report) = Engine::start(config(dir.path()), store(&db).await)
        .await
        .unwrap();
    assert_eq!(report.truncated_bytes, 7);
    assert_eq!(engine.state_hash().unwrap(), (seq, hash));
    engine.shutdown().await;
}

#[tokio::test]
async fn read_models_follow_and_a_caller_reads_its_own_writes() {
    each_backend(async |db| {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&db).await;
        let (engine, _) = Engine::start(config(dir.path()), store.clone())
            .await
            .unwrap();
        market(&engine, 2).await;
        let placed = ok(&engine, order(1, 1, Side::Buy, 49_000, 5)).await;
        let id = placed
            .events
            .iter()
            .find_map(|e| match e.kind {
                EventKind::OrderAccepted { order_id, .. } => Some(order_id),
                _ => None,
            })
            .unwrap();
        engine
            .wait_for_account(AccountId(1), Duration::from_secs(5))
            .await
            .unwrap();
        let row = store
            .get_order(1, id.0 as i64)
            .await
            .unwrap()
            .expect("projected");
        assert_eq!(row.status, "new");
        assert_eq!(row.leaves_lots, 5);
        // Another account cannot see it.
        assert!(store.get_order(2, id.0 as i64).await.unwrap().is_none());
        // A taker fills 2 of it: fills on both sides, ledger entries for fees.
        ok(
            &engine,
            Command::PlaceOrder(match order(2, 1, Side::Sell, 49_000, 2) {
                Command::PlaceOrder(mut o) => {
                    o.time_in_force = TimeInForce::Ioc;
                    o
                }
                _ => unreachable!(),
            }),
        )
        .await;
        engine
            .wait_for_account(AccountId(2), Duration::from_secs(5))
            .await
            .unwrap();
        let row = store.get_order(1, id.0 as i64).await.unwrap().unwrap();
        assert_eq!(
            (row.status.as_str(), row.filled_lots, row.leaves_lots),
            ("partially_filled", 2, 3)
        );
        let fills = store
            .list_fills(&bourse_store::FillQuery {
                account_id: 1,
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(fills.len(), 1);
        assert_eq!(fills[0].liquidity, "maker");
        // maker fee 200 ppm of 2 lots × 49 000 ticks × 10 000 micro-units
        assert_eq!(
            fills[0].fee_micros,
            (2i64 * 49_000 * 10_000 * 200 / 1_000_000).to_string()
        );
        let orders = store
            .list_orders(&OrderQuery {
                account_id: 2,
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0].status, "filled");
        engine.shutdown().await;
        db.cleanup().await;
    })
    .await;
}

#[tokio::test]
async fn a_database_behind_the_journal_is_rebuilt_on_start() {
    let db = TestDatabase::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::start(config(dir.path()), store(&db).await)
        .await
        .unwrap();
    market(&engine, 2).await;
    trade(&engine, 10).await;
    engine.shutdown().await;
    // A fresh, empty database with the same journal: everything is projected again.
    let db2 = TestDatabase::sqlite();
    let store2 = store(&db2).await;
    let (engine, report) = Engine::start(config(dir.path()), store2.clone())
        .await
        .unwrap();
    assert_eq!(report.projected, report.replayed);
    let (seq, _) = engine.state_hash().unwrap();
    assert_eq!(store2.projection_checkpoint().await.unwrap(), seq);
    let orders = store2
        .list_orders(&OrderQuery {
            account_id: 1,
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(orders.len(), 10);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_refuses_at_once_and_nothing_is_lost() {
    let db = TestDatabase::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.queue_capacity = 2;
    cfg.max_batch = 1;
    let (engine, _) = Engine::start(cfg, store(&db).await).await.unwrap();
    market(&engine, 1).await;
    let mut tasks = Vec::new();
    for n in 0..400u64 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .submit(order(1, 100 + n, Side::Buy, 40_000, 1), Meta::default())
                .await
        }));
    }
    let mut accepted = 0u64;
    let mut busy = 0u64;
    for t in tasks {
        match t.await.unwrap() {
            Ok(out) if out.seq.is_some() => accepted += 1,
            Ok(out) => panic!("rejected: {:?}", out.rejection()),
            Err(EngineError::Busy) => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(accepted + busy, 400);
    assert!(
        busy > 0,
        "a two-slot queue under 400 concurrent submissions refused none"
    );
    let open = engine
        .read(|ex| ex.open_orders(AccountId(1)).len())
        .unwrap() as u64;
    assert_eq!(
        open, accepted,
        "every acknowledged order rests, no refused one does"
    );
    assert_eq!(engine.stats().rejected_busy, busy);
    engine.shutdown().await;
}
