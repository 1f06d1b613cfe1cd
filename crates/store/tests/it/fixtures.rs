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

/// An instant `secs` seconds after a fixed origin (identity times are whole seconds).
pub fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
}

/// A stand-in for a hash made by bourse-auth: the store treats it as opaque text.
pub fn hash(label: &str) -> String {
    format!("{label:0>64}")
}

/// Inserts an active user with this email, made at `at(0)`.
pub async fn new_user(store: &bourse_store::Store, email: &str) -> bourse_store::UserRecord {
    let user = bourse_store::UserRecord {
        id: uuid::Uuid::now_v7().to_string(),
        email: email.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        status: bourse_store::UserStatus::Active,
        created_at: at(0),
        password_changed_at: at(0),
        mfa_changed_at: None,
    };
    store.insert_user(&user).await.unwrap();
    user
}

/// Inserts an active password-only session of `user_id` made at `created`.
pub async fn new_session(
    store: &bourse_store::Store,
    user_id: &str,
    created: OffsetDateTime,
) -> bourse_store::SessionRecord {
    let session = bourse_store::SessionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.to_owned(),
        created_at: created,
        last_used_at: created,
        revoked_at: None,
        auth_time: created,
        acr: "pwd".to_owned(),
        amr: vec!["pwd".to_owned()],
        client_ip: Some("192.0.2.1".to_owned()),
        user_agent: Some("test".to_owned()),
    };
    store.insert_session(&session).await.unwrap();
    session
}
