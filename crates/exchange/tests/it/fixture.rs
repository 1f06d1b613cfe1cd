//! A small market shared by the tests: prices in ticks of 1 USDC, lots of 0.01 BTC,
//! so one tick·lot is worth 0.01 USDC = 10_000 micro-units.

use bourse_exchange::*;

pub const V: Money = 10_000;
pub const USDC: Money = 1_000_000;
pub const MARK: i64 = 50_000;
pub const EXPIRY: Timestamp = Timestamp(1_000);

pub fn usdc() -> Asset {
    Asset::parse("USDC").unwrap()
}

pub fn perp() -> Symbol {
    Symbol::parse("BTC-PERP").unwrap()
}

pub fn future() -> Symbol {
    Symbol::parse("BTC-FUT").unwrap()
}

pub fn call() -> Symbol {
    Symbol::parse("BTC-C-50000").unwrap()
}

pub fn otm_call() -> Symbol {
    Symbol::parse("BTC-C-60000").unwrap()
}

pub fn spec(symbol: Symbol, kind: InstrumentKind, im: u32, mm: u32) -> InstrumentSpec {
    InstrumentSpec {
        symbol,
        kind,
        tick_size_e8: 100_000_000,
        lot_size_e8: 1_000_000,
        multiplier: 1,
        initial_margin_ppm: im,
        maintenance_margin_ppm: mm,
        maker_fee_ppm: 200,
        taker_fee_ppm: 500,
    }
}

fn option_kind(strike: i64) -> InstrumentKind {
    InstrumentKind::Option {
        expiry: EXPIRY,
        strike: Price(strike),
        right: OptionRight::Call,
        min_margin_ppm: 100_000,
    }
}

/// Applies a command that must not be rejected.
pub fn ok(ex: &mut Exchange, cmd: Command) -> Vec<Event> {
    let events = ex.apply(&cmd);
    if let Some(reason) = rejection(&events) {
        panic!("{cmd:?} rejected: {reason}");
    }
    ex.check_conservation().unwrap();
    ex.audit().unwrap();
    events
}

/// Applies a command that must be rejected with `reason`, and checks it changed
/// nothing.
pub fn rejected(ex: &mut Exchange, cmd: Command, reason: RejectReason) {
    let before = ex.state_hash();
    let events = ex.apply(&cmd);
    assert_eq!(rejection(&events), Some(reason), "{cmd:?} gave {events:?}");
    assert_eq!(events.len(), 1);
    assert_eq!(ex.state_hash(), before, "a rejection changed the state");
}

pub fn rejection(events: &[Event]) -> Option<RejectReason> {
    events.iter().find_map(|e| match e.kind {
        EventKind::Rejected { reason, .. } => Some(reason),
        _ => None,
    })
}

/// An exchange with a perpetual, a future and two calls (ATM and 10k OTM), mark and
/// index set at 50_000 (calls: mark 2_000, index 50_000).
pub fn market() -> Exchange {
    let mut ex = Exchange::new(usdc());
    let ts = Timestamp(0);
    for spec in [
        spec(perp(), InstrumentKind::Perpetual, 100_000, 50_000),
        spec(
            future(),
            InstrumentKind::Future { expiry: EXPIRY },
            100_000,
            50_000,
        ),
        spec(call(), option_kind(50_000), 150_000, 75_000),
        spec(otm_call(), option_kind(60_000), 150_000, 75_000),
    ] {
        ok(&mut ex, Command::CreateInstrument { spec, ts });
    }
    for (symbol, mark) in [
        (perp(), MARK),
        (future(), MARK),
        (call(), 2_000),
        (otm_call(), 500),
    ] {
        ok(
            &mut ex,
            Command::SetMarkPrice {
                instrument: symbol,
                price: Price(mark),
                ts,
            },
        );
        ok(
            &mut ex,
            Command::SetIndexPrice {
                instrument: symbol,
                price: Price(MARK),
                ts,
            },
        );
    }
    ex
}

pub fn deposit(ex: &mut Exchange, account: u64, amount: Money) {
    ok(
        ex,
        Command::Deposit {
            account: AccountId(account),
            asset: usdc(),
            amount,
            ts: Timestamp(1),
        },
    );
}

pub fn order(
    account: u64,
    symbol: Symbol,
    cid: &str,
    side: Side,
    price: i64,
    qty: u64,
) -> PlaceOrder {
    PlaceOrder {
        account: AccountId(account),
        instrument: symbol,
        client_order_id: ClientOrderId::parse(cid).unwrap(),
        side,
        kind: OrderKind::Limit {
            price: Price(price),
        },
        quantity: Quantity(qty),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        self_trade_prevention: SelfTradePrevention::CancelTaker,
        ts: Timestamp(2),
    }
}

pub fn limit(account: u64, symbol: Symbol, cid: &str, side: Side, price: i64, qty: u64) -> Command {
    Command::PlaceOrder(order(account, symbol, cid, side, price, qty))
}

pub fn market_order(account: u64, symbol: Symbol, cid: &str, side: Side, qty: u64) -> Command {
    let mut o = order(account, symbol, cid, side, 1, qty);
    o.kind = OrderKind::Market;
    o.time_in_force = TimeInForce::Ioc;
    Command::PlaceOrder(o)
}

/// The id of the order a command's events accepted.
pub fn accepted_id(events: &[Event]) -> OrderId {
    events
        .iter()
        .find_map(|e| match e.kind {
            EventKind::OrderAccepted { order_id, .. } => Some(order_id),
            _ => None,
        })
        .expect("an accepted order")
}

/// Opens `qty` lots between a long and a short account at `price` (long rests a
/// bid, short sells into it).
pub fn open(
    ex: &mut Exchange,
    symbol: Symbol,
    long: u64,
    short: u64,
    price: i64,
    qty: u64,
    tag: &str,
) {
    ok(
        ex,
        limit(long, symbol, &format!("{tag}-b"), Side::Buy, price, qty),
    );
    ok(
        ex,
        limit(short, symbol, &format!("{tag}-s"), Side::Sell, price, qty),
    );
}

pub fn size(ex: &Exchange, account: u64, symbol: &Symbol) -> i128 {
    ex.position(AccountId(account), symbol)
        .map_or(0, |p| p.size)
}

pub fn cash(ex: &Exchange, account: u64) -> Money {
    ex.balance(AccountId(account), &usdc())
}

pub fn fee(price: i64, qty: u64, ppm: i128) -> Money {
    i128::from(price) * i128::from(qty) * V * ppm / 1_000_000
}
