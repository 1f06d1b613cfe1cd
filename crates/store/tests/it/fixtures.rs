//! Instruments to store.

use bourse_types::{
    Asset, Decimal, Instrument, InstrumentKind, InstrumentStatus, OptionRight, Symbol,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// An exact decimal from its text; the scale is kept ("1.50" has scale 2).
pub fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

pub fn symbol(s: &str) -> Symbol {
    Symbol::parse(s).unwrap()
}

pub const EXPIRY: OffsetDateTime = datetime!(2026-12-25 08:00 UTC);

pub fn perpetual(sym: &str) -> Instrument {
    Instrument {
        symbol: symbol(sym),
        kind: InstrumentKind::Perpetual,
        base_asset: Asset::parse("BTC").unwrap(),
        quote_asset: Asset::parse("USD").unwrap(),
        settlement_asset: Asset::parse("USDC").unwrap(),
        tick_size: dec("0.5"),
        lot_size: dec("0.001"),
        min_order_size: dec("0.001"),
        max_order_size: dec("1000"),
        contract_multiplier: dec("1"),
        expiry: None,
        strike: None,
        option_right: None,
        status: InstrumentStatus::Active,
    }
    .validate()
    .unwrap()
}

pub fn future(sym: &str, expiry: OffsetDateTime) -> Instrument {
    Instrument {
        kind: InstrumentKind::Future,
        expiry: Some(expiry),
        ..perpetual(sym)
    }
    .validate()
    .unwrap()
}

pub fn option(sym: &str, expiry: OffsetDateTime, strike: &str, right: OptionRight) -> Instrument {
    Instrument {
        kind: InstrumentKind::Option,
        expiry: Some(expiry),
        strike: Some(dec(strike)),
        option_right: Some(right),
        tick_size: dec("5"),
        lot_size: dec("0.01"),
        min_order_size: dec("0.01"),
        max_order_size: dec("500"),
        ..perpetual(sym)
    }
    .validate()
    .unwrap()
}

/// The text of every decimal field, to compare scale as well as value (`Decimal`'s `==`
/// says 1.0 == 1).
pub fn decimal_texts(i: &Instrument) -> Vec<String> {
    [
        Some(i.tick_size),
        Some(i.lot_size),
        Some(i.min_order_size),
        Some(i.max_order_size),
        Some(i.contract_multiplier),
        i.strike,
    ]
    .iter()
    .map(|d| d.map(|d| d.to_string()).unwrap_or_default())
    .collect()
}

/// 21 instruments of every kind and status, with symbols whose byte order differs from
/// a natural-language collation (`BTC-PERP` < `BTC1-PERP` < `BTCA-PERP`), in an
/// insertion order that is not symbol order.
pub fn listing_set() -> Vec<Instrument> {
    let statuses = [
        InstrumentStatus::Active,
        InstrumentStatus::Halted,
        InstrumentStatus::Expired,
    ];
    let mut set = Vec::new();
    for s in [
        "A-PERP",
        "AB-PERP",
        "BTC-PERP",
        "BTC1-PERP",
        "BTCA-PERP",
        "ETH-PERP",
        "Z-PERP",
    ] {
        set.push(perpetual(s));
    }
    for (code, expiry) in [
        ("27MAR26", datetime!(2026-03-27 08:00 UTC)),
        ("26JUN26", datetime!(2026-06-26 08:00 UTC)),
        ("25SEP26", datetime!(2026-09-25 08:00 UTC)),
        ("25DEC26", EXPIRY),
    ] {
        for base in ["BTC", "ETH"] {
            set.push(future(&format!("{base}-{code}"), expiry));
        }
    }
    for strike in ["90000", "100000", "110000"] {
        set.push(option(
            &format!("BTC-25DEC26-{strike}-C"),
            EXPIRY,
            strike,
            OptionRight::Call,
        ));
        set.push(option(
            &format!("BTC-25DEC26-{strike}-P"),
            EXPIRY,
            strike,
            OptionRight::Put,
        ));
    }
    for (n, i) in set.iter_mut().enumerate() {
        i.status = statuses[n % statuses.len()];
    }
    set.rotate_left(7);
    set.reverse();
    set
}
