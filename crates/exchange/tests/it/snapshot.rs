//! Snapshots (feature `serde`): an exchange restored from `snapshot()` is the same
//! state machine, damaged snapshots are refused, and every command and event goes
//! through the format unchanged.

use bourse_exchange::*;

use crate::fixture::*;

/// Instruments, deposits, resting orders on several levels of both sides (and a
/// GTT, a reduce-only and a post-only order), trades, a partial fill, mark and
/// index changes, funding, a withdrawal, a frozen account. Returns every command it
/// applied and every event it got.
fn busy_market() -> (Exchange, Vec<Command>, Vec<Event>) {
    let mut ex = market();
    let mut commands = Vec::new();
    let mut events = Vec::new();
    let mut run = |ex: &mut Exchange, cmd: Command| {
        events.extend(ok(ex, cmd.clone()));
        commands.push(cmd);
    };
    for account in 1..=6 {
        run(
            &mut ex,
            Command::Deposit {
                account: AccountId(account),
                asset: usdc(),
                amount: 1_000_000 * USDC,
                ts: Timestamp(1),
            },
        );
    }
    // Bids and asks on several levels of the perpetual and the future.
    for (i, price) in [49_990, 49_980, 49_970, 49_960].into_iter().enumerate() {
        run(
            &mut ex,
            limit(
                1,
                perp(),
                &format!("pb{i}"),
                Side::Buy,
                price,
                10 + i as u64,
            ),
        );
        run(
            &mut ex,
            limit(2, perp(), &format!("pb2{i}"), Side::Buy, price, 3),
        );
        run(
            &mut ex,
            limit(
                3,
                perp(),
                &format!("ps{i}"),
                Side::Sell,
                price + 30,
                7 + i as u64,
            ),
        );
        run(
            &mut ex,
            limit(4, future(), &format!("fb{i}"), Side::Buy, price - 100, 5),
        );
        run(
            &mut ex,
            limit(5, future(), &format!("fs{i}"), Side::Sell, price + 200, 5),
        );
    }
    // Trades: a market order sweeping two bid levels, a crossing limit partially
    // filling a resting ask.
    run(&mut ex, market_order(6, perp(), "m1", Side::Sell, 20));
    run(&mut ex, limit(6, perp(), "x1", Side::Buy, 50_020, 9));
    // An option trade and a resting option quote.
    run(&mut ex, limit(1, call(), "c1", Side::Buy, 2_000, 4));
    run(&mut ex, limit(2, call(), "c2", Side::Sell, 2_000, 2));
    run(&mut ex, limit(2, call(), "c3", Side::Sell, 2_100, 2));
    // A GTT, a post-only, a reduce-only order.
    let mut gtt = order(4, perp(), "gtt", Side::Buy, 49_900, 2);
    gtt.time_in_force = TimeInForce::Gtt(Timestamp(500));
    run(&mut ex, Command::PlaceOrder(gtt));
    let mut post = order(5, perp(), "post", Side::Sell, 50_100, 2);
    post.post_only = true;
    run(&mut ex, Command::PlaceOrder(post));
    let mut reduce = order(6, perp(), "ro", Side::Buy, 49_800, 3);
    reduce.reduce_only = true;
    run(&mut ex, Command::PlaceOrder(reduce));
    // Amend, cancel, prices, funding, a withdrawal, a freeze.
    let id = accepted_id(&ex.apply(&limit(1, perp(), "amend", Side::Buy, 49_950, 4)));
    run(
        &mut ex,
        Command::AmendOrder {
            account: AccountId(1),
            order_id: id,
            price: Some(Price(49_955)),
            quantity: Some(Quantity(6)),
            ts: Timestamp(3),
        },
    );
    run(
        &mut ex,
        Command::SetMarkPrice {
            instrument: perp(),
            price: Price(50_050),
            ts: Timestamp(4),
        },
    );
    run(
        &mut ex,
        Command::SetIndexPrice {
            instrument: future(),
            price: Price(50_010),
            ts: Timestamp(4),
        },
    );
    run(
        &mut ex,
        Command::ApplyFunding {
            instrument: perp(),
            rate_ppb: 123_457,
            ts: Timestamp(5),
        },
    );
    run(
        &mut ex,
        Command::Withdraw {
            withdrawal: WithdrawalId(1),
            account: AccountId(3),
            asset: usdc(),
            amount: 10 * USDC,
            ts: Timestamp(6),
        },
    );
    run(
        &mut ex,
        Command::FreezeAccount {
            account: AccountId(5),
            ts: Timestamp(7),
        },
    );
    (ex, commands, events)
}

/// Commands to run after the snapshot: they touch the restored books, accounts
/// and positions in every way.
fn continuation() -> Vec<Command> {
    vec![
        market_order(2, perp(), "after-m", Side::Sell, 15),
        limit(3, perp(), "after-x", Side::Buy, 50_040, 8),
        limit(1, perp(), "after-r", Side::Sell, 50_300, 4),
        limit(6, future(), "after-f", Side::Sell, 49_800, 12),
        Command::ExpireOrders { ts: Timestamp(600) },
        Command::CancelAll {
            account: AccountId(4),
            instrument: Some(future()),
            ts: Timestamp(601),
        },
        Command::ApplyFunding {
            instrument: perp(),
            rate_ppb: -55_555,
            ts: Timestamp(602),
        },
        Command::ConfirmWithdrawal {
            withdrawal: WithdrawalId(1),
            ts: Timestamp(603),
        },
        Command::UnfreezeAccount {
            account: AccountId(5),
            ts: Timestamp(604),
        },
        limit(5, perp(), "after-u", Side::Buy, 50_400, 5),
        Command::SetIndexPrice {
            instrument: future(),
            price: Price(50_500),
            ts: Timestamp(EXPIRY.0),
        },
        Command::SettleExpiry {
            instrument: future(),
            ts: Timestamp(EXPIRY.0),
        },
        // Reuses a client order id and an order id space the restored book must know.
        limit(1, perp(), "pb0", Side::Buy, 49_000, 1),
    ]
}

#[test]
fn a_restored_exchange_is_the_same_state_machine() {
    let (mut original, _, _) = busy_market();
    assert!(original.best_bid(&perp()).is_some() && original.best_ask(&perp()).is_some());
    let bytes = original.snapshot();
    assert_eq!(bytes, original.snapshot(), "snapshots are deterministic");
    let mut restored = Exchange::restore(&bytes).unwrap();
    assert_eq!(restored.state_hash(), original.state_hash());
    restored.check_conservation().unwrap();
    restored.audit().unwrap();
    assert_eq!(
        restored.snapshot(),
        bytes,
        "a restored exchange snapshots the same"
    );
    for (i, cmd) in continuation().iter().enumerate() {
        let a = original.apply(cmd);
        let b = restored.apply(cmd);
        assert_eq!(a, b, "command {i} {cmd:?}");
        assert_eq!(
            original.state_hash(),
            restored.state_hash(),
            "after command {i}"
        );
        restored.check_conservation().unwrap();
        restored.audit().unwrap();
    }
    // The continuation did real work, not a series of rejections.
    assert_ne!(
        original.state_hash(),
        Exchange::restore(&bytes).unwrap().state_hash()
    );
}

#[test]
fn an_empty_exchange_round_trips() {
    let ex = Exchange::new(usdc());
    let bytes = ex.snapshot();
    let restored = Exchange::restore(&bytes).unwrap();
    assert_eq!(restored.state_hash(), ex.state_hash());
}

#[test]
fn truncated_snapshots_are_refused() {
    let (ex, _, _) = busy_market();
    let bytes = ex.snapshot();
    let step = (bytes.len() / 400).max(1);
    for len in (0..64)
        .chain((64..bytes.len()).step_by(step))
        .chain(bytes.len() - 8..bytes.len())
    {
        assert!(Exchange::restore(&bytes[..len]).is_err(), "length {len}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        Exchange::restore(&longer).unwrap_err(),
        SnapshotError::TrailingBytes
    );
}

#[test]
fn changed_snapshots_are_refused() {
    let (ex, _, _) = busy_market();
    let bytes = ex.snapshot();
    // Every header and checksum byte, and a spread of payload bytes (each restore
    // reads the whole snapshot, so every byte would be quadratic).
    let step = (bytes.len() / 400).max(1);
    let positions = (0..64)
        .chain((64..bytes.len()).step_by(step))
        .chain(bytes.len() - 8..bytes.len());
    for at in positions {
        for bit in [0, 3, 7] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1 << bit;
            assert!(Exchange::restore(&damaged).is_err(), "byte {at} bit {bit}");
        }
    }
    assert_eq!(
        Exchange::restore(b"not a snapshot at all, not at all").unwrap_err(),
        SnapshotError::BadMagic
    );
}

/// FNV-1a 64, to forge a valid checksum over a changed payload.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[test]
fn an_invalid_symbol_is_refused_even_with_a_valid_checksum() {
    let (ex, _, _) = busy_market();
    let mut bytes = ex.snapshot();
    let at = bytes
        .windows(8)
        .position(|w| w == b"BTC-PERP")
        .expect("the symbol is in the snapshot");
    bytes[at + 3] = b' ';
    let end = bytes.len() - 8;
    let sum = fnv1a(&bytes[..end]);
    bytes[end..].copy_from_slice(&sum.to_le_bytes());
    assert!(
        matches!(Exchange::restore(&bytes), Err(SnapshotError::Decode(_))),
        "a symbol that does not parse must not deserialise"
    );
}

#[test]
fn validated_newtypes_revalidate_when_deserialised() {
    let bad = postcard::to_stdvec("BTC PERP").unwrap();
    assert!(postcard::from_bytes::<Symbol>(&bad).is_err());
    assert!(postcard::from_bytes::<Asset>(&postcard::to_stdvec("usdc").unwrap()).is_err());
    assert!(postcard::from_bytes::<ClientOrderId>(&postcard::to_stdvec("").unwrap()).is_err());
    let good = postcard::to_stdvec(&perp()).unwrap();
    assert_eq!(postcard::from_bytes::<Symbol>(&good).unwrap(), perp());
    assert_eq!(good, postcard::to_stdvec("BTC-PERP").unwrap());
}

/// Which variant a command is; exhaustive, so a new variant fails to compile here
/// until the round-trip test covers it.
fn variant(cmd: &Command) -> usize {
    match cmd {
        Command::CreateInstrument { .. } => 0,
        Command::SetInstrumentStatus { .. } => 1,
        Command::Deposit { .. } => 2,
        Command::Withdraw { .. } => 3,
        Command::ConfirmWithdrawal { .. } => 4,
        Command::ReleaseWithdrawal { .. } => 5,
        Command::PlaceOrder(_) => 6,
        Command::CancelOrder { .. } => 7,
        Command::CancelAll { .. } => 8,
        Command::AmendOrder { .. } => 9,
        Command::ExpireOrders { .. } => 10,
        Command::SetMarkPrice { .. } => 11,
        Command::SetIndexPrice { .. } => 12,
        Command::ApplyFunding { .. } => 13,
        Command::SettleExpiry { .. } => 14,
        Command::FreezeAccount { .. } => 15,
        Command::UnfreezeAccount { .. } => 16,
        Command::SetInstrumentLimits { .. } => 17,
        Command::SetAccountLimits { .. } => 18,
        Command::SetClientLimits { .. } => 19,
        Command::PlaceOrderWith { .. } => 20,
        Command::SetCircuitBreaker { .. } => 21,
        Command::Tick { .. } => 22,
        Command::SetKillSwitch { .. } => 23,
        Command::SetAccountKillSwitch { .. } => 24,
        Command::CancelAfter { .. } => 25,
        Command::SetInstrumentGroup { .. } => 26,
        Command::SetMmpConfig { .. } => 27,
        Command::ResetMmp { .. } => 28,
        Command::SetGreeks { .. } => 29,
        Command::SetInsuranceFund { .. } => 30,
    }
}
const VARIANTS: usize = 31;

fn every_command() -> Vec<Command> {
    let ts = Timestamp(u64::MAX);
    let mut commands = vec![
        Command::CreateInstrument {
            spec: spec(perp(), InstrumentKind::Perpetual, u32::MAX, 0),
            ts,
        },
        Command::CreateInstrument {
            spec: spec(future(), InstrumentKind::Future { expiry: ts }, 1, 2),
            ts,
        },
        Command::CreateInstrument {
            spec: spec(
                call(),
                InstrumentKind::Option {
                    expiry: EXPIRY,
                    strike: Price(i64::MIN),
                    right: OptionRight::Put,
                    min_margin_ppm: 7,
                },
                1,
                2,
            ),
            ts,
        },
        Command::SetInstrumentStatus {
            instrument: perp(),
            change: StatusChange::Halt,
            ts,
        },
        Command::SetInstrumentStatus {
            instrument: perp(),
            change: StatusChange::Resume,
            ts,
        },
        Command::SetInstrumentStatus {
            instrument: perp(),
            change: StatusChange::Expire,
            ts,
        },
        Command::Deposit {
            account: AccountId(u64::MAX),
            asset: usdc(),
            amount: i128::MAX,
            ts,
        },
        Command::Withdraw {
            withdrawal: WithdrawalId(9),
            account: AccountId(1),
            asset: Asset::parse("BTC").unwrap(),
            amount: i128::MIN,
            ts,
        },
        Command::ConfirmWithdrawal {
            withdrawal: WithdrawalId(9),
            ts,
        },
        Command::ReleaseWithdrawal {
            withdrawal: WithdrawalId(0),
            ts,
        },
        Command::CancelOrder {
            account: AccountId(1),
            order_id: OrderId(u64::MAX),
            ts,
        },
        Command::CancelAll {
            account: AccountId(1),
            instrument: None,
            ts,
        },
        Command::CancelAll {
            account: AccountId(1),
            instrument: Some(call()),
            ts,
        },
        Command::AmendOrder {
            account: AccountId(1),
            order_id: OrderId(3),
            price: Some(Price(-1)),
            quantity: None,
            ts,
        },
        Command::AmendOrder {
            account: AccountId(1),
            order_id: OrderId(3),
            price: None,
            quantity: Some(Quantity(u64::MAX)),
            ts,
        },
        Command::ExpireOrders { ts },
        Command::SetMarkPrice {
            instrument: perp(),
            price: Price(i64::MAX),
            ts,
        },
        Command::SetIndexPrice {
            instrument: perp(),
            price: Price(1),
            ts,
        },
        Command::ApplyFunding {
            instrument: perp(),
            rate_ppb: i64::MIN,
            ts,
        },
        Command::SettleExpiry {
            instrument: future(),
            ts,
        },
        Command::FreezeAccount {
            account: AccountId(0),
            ts,
        },
        Command::UnfreezeAccount {
            account: AccountId(0),
            ts,
        },
    ];
    for (tif, stp) in [
        (TimeInForce::Gtc, SelfTradePrevention::CancelTaker),
        (TimeInForce::Ioc, SelfTradePrevention::CancelMaker),
        (TimeInForce::Fok, SelfTradePrevention::CancelBoth),
        (
            TimeInForce::Gtt(Timestamp(42)),
            SelfTradePrevention::CancelTaker,
        ),
    ] {
        let mut o = order(7, perp(), "~!cid-with_ascii.punct", Side::Sell, 123, 456);
        o.time_in_force = tif;
        o.self_trade_prevention = stp;
        o.post_only = true;
        commands.push(Command::PlaceOrder(o.clone()));
        o.kind = OrderKind::Market;
        o.side = Side::Buy;
        o.reduce_only = true;
        commands.push(Command::PlaceOrder(o.clone()));
        commands.push(Command::PlaceOrderWith {
            order: o,
            options: OrderOptions {
                oauth_client: ClientId::parse("partner-app.1"),
                mmp: true,
            },
        });
    }
    let limits = OrderLimits {
        price_band_bps: Some(u32::MAX),
        max_order_quantity: Some(u64::MAX),
        max_order_notional: Some(i128::MIN),
        max_open_orders: Some(0),
        max_position: None,
    };
    let btc = Asset::parse("BTC").unwrap();
    commands.extend([
        Command::SetInstrumentLimits {
            instrument: perp(),
            limits,
            ts,
        },
        Command::SetAccountLimits {
            account: AccountId(1),
            instrument: perp(),
            limits: None,
            ts,
        },
        Command::SetClientLimits {
            account: AccountId(1),
            client: ClientId::parse("c").unwrap(),
            instrument: call(),
            limits: Some(OrderLimits::default()),
            ts,
        },
        Command::SetCircuitBreaker {
            instrument: perp(),
            breaker: Some(CircuitBreaker {
                max_move_bps: 500,
                window: u64::MAX,
                cool_off: 0,
            }),
            ts,
        },
        Command::SetCircuitBreaker {
            instrument: perp(),
            breaker: None,
            ts,
        },
        Command::Tick { ts },
        Command::SetKillSwitch {
            active: true,
            cancel_resting: false,
            ts,
        },
        Command::SetAccountKillSwitch {
            account: AccountId(2),
            active: false,
            issued_by: Issuer::Owner,
            ts,
        },
        Command::SetAccountKillSwitch {
            account: AccountId(2),
            active: true,
            issued_by: Issuer::Admin,
            ts,
        },
        Command::CancelAfter {
            account: AccountId(3),
            timeout: 0,
            ts,
        },
        Command::SetInstrumentGroup {
            instrument: call(),
            group: Some(btc),
            ts,
        },
        Command::SetMmpConfig {
            account: AccountId(3),
            group: btc,
            config: Some(MmpConfig {
                interval: 1,
                max_quantity: None,
                max_delta_e6: Some(i128::MAX),
                max_vega_e6: Some(-1),
                freeze_for: u64::MAX,
            }),
            ts,
        },
        Command::SetMmpConfig {
            account: AccountId(3),
            group: btc,
            config: None,
            ts,
        },
        Command::ResetMmp {
            account: AccountId(3),
            group: btc,
            ts,
        },
        Command::SetGreeks {
            instrument: call(),
            delta_e6: i64::MIN,
            vega_e6: i64::MAX,
            ts,
        },
        Command::SetInsuranceFund {
            account: Some(AccountId(u64::MAX)),
            ts,
        },
        Command::SetInsuranceFund { account: None, ts },
    ]);
    commands
}

#[test]
fn every_command_round_trips() {
    let commands = every_command();
    let mut seen = [false; VARIANTS];
    for cmd in &commands {
        seen[variant(cmd)] = true;
        let bytes = postcard::to_stdvec(cmd).unwrap();
        let back: Command = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(&back, cmd);
        // A journal entry cut short never decodes into a command.
        for len in 0..bytes.len() {
            assert!(postcard::from_bytes::<Command>(&bytes[..len]).is_err());
        }
    }
    assert!(seen.iter().all(|&s| s), "variants covered: {seen:?}");
}

#[test]
fn every_event_of_a_busy_market_round_trips() {
    let (_, commands, events) = busy_market();
    assert!(!events.is_empty());
    for event in &events {
        let back: Event = postcard::from_bytes(&postcard::to_stdvec(event).unwrap()).unwrap();
        assert_eq!(&back, event);
    }
    for cmd in &commands {
        let back: Command = postcard::from_bytes(&postcard::to_stdvec(cmd).unwrap()).unwrap();
        assert_eq!(&back, cmd);
    }
}
