//! Property test over random command streams.
//!
//! Invariants checked after every command:
//!
//! 1. Conservation: per asset, `Σ cash + Σ held − Σ_linear cost·v = deposited −
//!    withdrawn` ([`Exchange::check_conservation`]), and the structural audit holds.
//! 2. An accepted order or withdrawal leaves the account that sent it with available
//!    margin ≥ 0.
//! 3. A rejected command emits exactly one `Rejected` and leaves the state hash as it was.
//!
//! And per stream: replaying the same commands on a fresh exchange gives identical
//! events and the same state hash.

use bourse_exchange::*;
use proptest::prelude::*;

use crate::fixture::*;

const ACCOUNTS: u64 = 4;

fn symbol(i: u8) -> Symbol {
    match i % 4 {
        0 => perp(),
        1 => future(),
        2 => call(),
        _ => otm_call(),
    }
}

fn reference_price(i: u8) -> i64 {
    match i % 4 {
        0 | 1 => MARK,
        2 => 2_000,
        _ => 500,
    }
}

fn side(buy: bool) -> Side {
    if buy { Side::Buy } else { Side::Sell }
}

prop_compose! {
    fn place()(
        account in 1..=ACCOUNTS,
        inst in 0u8..4,
        buy: bool,
        offset in -6i64..=6,
        qty in 1u64..=20,
        kind in 0u8..8,
        reduce_only in proptest::bool::weighted(0.2),
        stp in 0u8..3,
        cid in 0u8..40,
    ) -> Command {
        let price = reference_price(inst) + offset * (reference_price(inst) / 500);
        let mut o = order(account, symbol(inst), &format!("c{cid}"), side(buy), price.max(1), qty);
        match kind {
            0 => { o.kind = OrderKind::Market; o.time_in_force = TimeInForce::Ioc; }
            1 => { o.kind = OrderKind::Market; o.time_in_force = TimeInForce::Fok; }
            2 => o.time_in_force = TimeInForce::Ioc,
            3 => o.time_in_force = TimeInForce::Fok,
            4 => o.post_only = true,
            5 => o.time_in_force = TimeInForce::Gtt(Timestamp(50)),
            _ => {}
        }
        o.reduce_only = reduce_only;
        o.self_trade_prevention = match stp {
            0 => SelfTradePrevention::CancelTaker,
            1 => SelfTradePrevention::CancelMaker,
            _ => SelfTradePrevention::CancelBoth,
        };
        Command::PlaceOrder(o)
    }
}

fn command() -> impl Strategy<Value = Command> {
    let ts = Timestamp(10);
    prop_oneof![
        3 => (1..=ACCOUNTS, 1i128..=2_000).prop_map(move |(a, units)| Command::Deposit {
            account: AccountId(a), asset: usdc(), amount: units * USDC, ts,
        }),
        20 => place(),
        2 => (1..=ACCOUNTS, 1u64..40).prop_map(move |(a, id)| Command::CancelOrder {
            account: AccountId(a), order_id: OrderId(id), ts,
        }),
        1 => (1..=ACCOUNTS, proptest::option::of(0u8..4)).prop_map(move |(a, i)| Command::CancelAll {
            account: AccountId(a), instrument: i.map(symbol), ts,
        }),
        2 => (1..=ACCOUNTS, 1u64..40, proptest::option::of(-20i64..20), proptest::option::of(1u64..20))
            .prop_map(move |(a, id, dp, q)| Command::AmendOrder {
                account: AccountId(a), order_id: OrderId(id),
                price: dp.map(|d| Price(MARK + d * 50)), quantity: q.map(Quantity), ts,
            }),
        3 => (0u8..4, -100i64..=100).prop_map(move |(i, d)| Command::SetMarkPrice {
            instrument: symbol(i), price: Price(reference_price(i) + d * (reference_price(i) / 500)), ts,
        }),
        1 => (0u8..4, -100i64..=100).prop_map(move |(i, d)| Command::SetIndexPrice {
            instrument: symbol(i), price: Price(MARK + d * 100), ts,
        }),
        2 => (-2_000_000i64..=2_000_000).prop_map(move |rate| Command::ApplyFunding {
            instrument: perp(), rate_ppb: rate, ts,
        }),
        1 => (1..=ACCOUNTS, 0u64..6, 1i128..=500).prop_map(move |(a, id, units)| Command::Withdraw {
            withdrawal: WithdrawalId(id), account: AccountId(a), asset: usdc(), amount: units * USDC, ts,
        }),
        1 => (0u64..6, any::<bool>()).prop_map(move |(id, confirm)| if confirm {
            Command::ConfirmWithdrawal { withdrawal: WithdrawalId(id), ts }
        } else {
            Command::ReleaseWithdrawal { withdrawal: WithdrawalId(id), ts }
        }),
        1 => (1..=ACCOUNTS, any::<bool>()).prop_map(move |(a, f)| if f {
            Command::FreezeAccount { account: AccountId(a), ts }
        } else {
            Command::UnfreezeAccount { account: AccountId(a), ts }
        }),
        1 => (0u8..4, any::<bool>()).prop_map(move |(i, halt)| Command::SetInstrumentStatus {
            instrument: symbol(i), change: if halt { StatusChange::Halt } else { StatusChange::Resume }, ts,
        }),
        1 => (0u64..100).prop_map(|t| Command::ExpireOrders { ts: Timestamp(t) }),
    ]
}

fn opt_limit<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    proptest::option::weighted(0.4, s)
}

prop_compose! {
    fn order_limits()(
        band in opt_limit(20u32..=2_000),
        qty in opt_limit(1u64..=20),
        notional in opt_limit(1i128..=20_000),
        open in opt_limit(1u32..=4),
        position in opt_limit(1u64..=30),
    ) -> OrderLimits {
        OrderLimits {
            price_band_bps: band,
            max_order_quantity: qty,
            max_order_notional: notional.map(|n| n * USDC),
            max_open_orders: open,
            max_position: position,
        }
    }
}

fn btc() -> Asset {
    Asset::parse("BTC").unwrap()
}

/// The risk commands (docs/risk.md), mixed into the ordinary stream.
fn risk_command() -> impl Strategy<Value = Command> {
    let ts = Timestamp(10);
    prop_oneof![
        4 => (place(), proptest::option::of(0u8..2), any::<bool>(), 0u64..100).prop_map(|(cmd, client, mmp, t)| {
            let Command::PlaceOrder(mut order) = cmd else { unreachable!() };
            order.ts = Timestamp(t);
            Command::PlaceOrderWith {
                order,
                options: OrderOptions {
                    oauth_client: client.map(|c| ClientId::parse(&format!("app{c}")).unwrap()),
                    mmp,
                },
            }
        }),
        2 => (0u8..4, order_limits()).prop_map(move |(i, limits)| Command::SetInstrumentLimits {
            instrument: symbol(i), limits, ts,
        }),
        1 => (1..=ACCOUNTS, 0u8..4, proptest::option::of(order_limits())).prop_map(move |(a, i, limits)| Command::SetAccountLimits {
            account: AccountId(a), instrument: symbol(i), limits, ts,
        }),
        1 => (1..=ACCOUNTS, 0u8..2, 0u8..4, proptest::option::of(order_limits())).prop_map(move |(a, c, i, limits)| Command::SetClientLimits {
            account: AccountId(a), client: ClientId::parse(&format!("app{c}")).unwrap(), instrument: symbol(i), limits, ts,
        }),
        2 => (0u8..4, proptest::option::weighted(0.8, (10u32..=600, 1u64..50, 0u64..30))).prop_map(move |(i, b)| Command::SetCircuitBreaker {
            instrument: symbol(i),
            breaker: b.map(|(max_move_bps, window, cool_off)| CircuitBreaker { max_move_bps, window, cool_off }),
            ts,
        }),
        3 => (0u64..120).prop_map(|t| Command::Tick { ts: Timestamp(t) }),
        1 => (any::<bool>(), any::<bool>()).prop_map(move |(active, cancel_resting)| Command::SetKillSwitch {
            // On only together with cancel_resting, so that it is off most of the time.
            active: cancel_resting || !active, cancel_resting, ts,
        }),
        1 => (1..=ACCOUNTS, any::<bool>(), any::<bool>()).prop_map(move |(a, active, admin)| Command::SetAccountKillSwitch {
            account: AccountId(a), active, issued_by: if admin { Issuer::Admin } else { Issuer::Owner }, ts,
        }),
        2 => (1..=ACCOUNTS, 0u64..40, 0u64..60).prop_map(|(a, timeout, t)| Command::CancelAfter {
            account: AccountId(a), timeout, ts: Timestamp(t),
        }),
        1 => (0u8..4, any::<bool>()).prop_map(move |(i, on)| Command::SetInstrumentGroup {
            instrument: symbol(i), group: on.then(btc), ts,
        }),
        2 => (1..=ACCOUNTS, proptest::option::weighted(0.8, (1u64..50, opt_limit(1u64..20), opt_limit(1i128..20_000_000), 0u64..40)))
            .prop_map(move |(a, c)| Command::SetMmpConfig {
                account: AccountId(a),
                group: btc(),
                config: c.map(|(interval, max_quantity, max_delta_e6, freeze_for)| MmpConfig {
                    interval,
                    max_quantity: max_quantity.or(Some(10)),
                    max_delta_e6,
                    max_vega_e6: Some(1_000_000),
                    freeze_for,
                }),
                ts,
            }),
        1 => (1..=ACCOUNTS).prop_map(move |a| Command::ResetMmp { account: AccountId(a), group: btc(), ts }),
        1 => (2u8..4, -1_000_000i64..=1_000_000, 0i64..200_000).prop_map(move |(i, delta_e6, vega_e6)| Command::SetGreeks {
            instrument: symbol(i), delta_e6, vega_e6, ts,
        }),
    ]
}

/// The insurance fund's account in the liquidation streams (deposited at the start).
const FUND: u64 = ACCOUNTS + 1;

/// Liquidation (docs/risk.md): naming or removing the fund (sometimes a trading
/// account), and mark, index and funding moves large enough to liquidate.
fn liquidation_command() -> impl Strategy<Value = Command> {
    let ts = Timestamp(10);
    prop_oneof![
        1 => proptest::option::weighted(0.9, 1..=FUND).prop_map(move |a| Command::SetInsuranceFund {
            account: a.map(AccountId), ts,
        }),
        1 => (1i128..=500).prop_map(move |units| Command::Deposit {
            account: AccountId(FUND), asset: usdc(), amount: units * USDC, ts,
        }),
        6 => (0u8..4, -400i64..=400).prop_map(move |(i, d)| Command::SetMarkPrice {
            instrument: symbol(i),
            price: Price((reference_price(i) + d * (reference_price(i) / 500)).max(1)),
            ts,
        }),
        2 => (2u8..4, -200i64..=200).prop_map(move |(i, d)| Command::SetIndexPrice {
            instrument: symbol(i), price: Price(MARK + d * 200), ts,
        }),
        2 => (-50_000_000i64..=50_000_000).prop_map(move |rate| Command::ApplyFunding {
            instrument: perp(), rate_ppb: rate, ts,
        }),
    ]
}

fn sender(cmd: &Command) -> Option<AccountId> {
    match cmd {
        Command::PlaceOrder(o) | Command::PlaceOrderWith { order: o, .. } => Some(o.account),
        Command::Withdraw { account, .. } => Some(*account),
        _ => None,
    }
}

fn run(commands: &[Command]) -> Result<(Vec<Vec<Event>>, u64), TestCaseError> {
    let mut ex = market();
    let mut all = Vec::new();
    for a in 1..=ACCOUNTS {
        deposit(&mut ex, a, 2_000 * USDC);
    }
    deposit(&mut ex, FUND, 1_000 * USDC);
    for cmd in commands {
        let before = ex.state_hash();
        let events = ex.apply(cmd);
        if let Err(e) = ex.check_conservation() {
            return Err(TestCaseError::fail(format!("after {cmd:?}: {e}")));
        }
        if let Err(e) = ex.audit() {
            return Err(TestCaseError::fail(format!("after {cmd:?}: {e}")));
        }
        let rejected = events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Rejected { .. }));
        if rejected {
            prop_assert_eq!(events.len(), 1, "a rejection came with other events");
            prop_assert_eq!(
                ex.state_hash(),
                before,
                "rejected {:?} changed the state",
                cmd
            );
        } else if let Some(account) = sender(cmd) {
            let available = ex.account(account).map_or(0, |s| s.available);
            prop_assert!(
                available >= 0,
                "{:?} left available {} < 0: {:?}",
                cmd,
                available,
                events
            );
        }
        // A liquidated account ends flat, with equity ≥ 0.
        for e in &events {
            if let EventKind::LiquidationFinished {
                account, equity, ..
            } = e.kind
            {
                prop_assert!(equity >= 0, "{:?} left {} after {:?}", account, equity, cmd);
                prop_assert!(ex.positions(account).iter().all(|p| p.size == 0));
                prop_assert_eq!(ex.account(account).map(|s| s.equity), Some(equity));
            }
        }
        all.push(events);
    }
    Ok((all, ex.state_hash()))
}

/// The liquidation streams do liquidate: over a fixed sample, accounts are
/// liquidated, positions go to the fund and the fund covers negative cash.
#[test]
fn the_liquidation_streams_exercise_every_step() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = proptest::collection::vec(
        prop_oneof![4 => command(), 3 => liquidation_command()],
        100..150,
    );
    let (mut started, mut taken_over, mut covered) = (0, 0, 0);
    for _ in 0..32 {
        let mut commands = strategy.new_tree(&mut runner).unwrap().current();
        commands.insert(
            0,
            Command::SetInsuranceFund {
                account: Some(AccountId(FUND)),
                ts: Timestamp(0),
            },
        );
        let (events, _) = run(&commands).unwrap();
        for e in events.iter().flatten() {
            match e.kind {
                EventKind::LiquidationStarted { .. } => started += 1,
                EventKind::PositionTakenOver { .. } => taken_over += 1,
                EventKind::LiquidationFinished { covered: c, .. } if c > 0 => covered += 1,
                _ => {}
            }
        }
    }
    assert!(
        started > 0 && taken_over > 0 && covered > 0,
        "{started} {taken_over} {covered}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_command_streams_keep_the_books_balanced(
        mut commands in proptest::collection::vec(command(), 1..120),
        settle in proptest::bool::weighted(0.7),
    ) {
        // Settlement ends an instrument's life, so it comes at the end of a stream:
        // the future and both options, then a few more commands on what is left.
        if settle {
            for i in 1u8..4 {
                commands.push(Command::SettleExpiry { instrument: symbol(i), ts: EXPIRY });
            }
            commands.push(Command::ApplyFunding { instrument: perp(), rate_ppb: 50_000, ts: EXPIRY });
        }
        let (events, hash) = run(&commands)?;
        let (replayed, replayed_hash) = run(&commands)?;
        prop_assert_eq!(hash, replayed_hash);
        prop_assert!(events == replayed, "replay produced different events");
    }

    #[test]
    fn random_streams_with_liquidations_keep_the_books_balanced(
        mut commands in proptest::collection::vec(
            prop_oneof![4 => command(), 1 => risk_command(), 3 => liquidation_command()],
            1..150,
        ),
        settle in proptest::bool::weighted(0.5),
    ) {
        commands.insert(0, Command::SetInsuranceFund { account: Some(AccountId(FUND)), ts: Timestamp(0) });
        if settle {
            for i in 1u8..4 {
                commands.push(Command::SettleExpiry { instrument: symbol(i), ts: EXPIRY });
            }
            commands.push(Command::SetMarkPrice { instrument: perp(), price: Price(MARK / 4), ts: EXPIRY });
        }
        let (events, hash) = run(&commands)?;
        let (replayed, replayed_hash) = run(&commands)?;
        prop_assert_eq!(hash, replayed_hash);
        prop_assert!(events == replayed, "replay produced different events");
    }

    #[test]
    fn random_streams_with_risk_commands_keep_the_books_balanced(
        commands in proptest::collection::vec(prop_oneof![3 => command(), 2 => risk_command()], 1..150),
    ) {
        let (events, hash) = run(&commands)?;
        let (replayed, replayed_hash) = run(&commands)?;
        prop_assert_eq!(hash, replayed_hash);
        prop_assert!(events == replayed, "replay produced different events");
    }
}
