//! Instrument reference data: insert, get, list, seed.

use std::collections::HashSet;

use bourse_store::{InstrumentQuery, MAX_PAGE_SIZE, Store, StoreError};
use bourse_types::{Instrument, InstrumentKind, InstrumentStatus, OptionRight, Symbol};
use time::macros::datetime;
use time::{Duration, UtcOffset, Weekday};

use crate::fixtures::{EXPIRY, dec, decimal_texts, future, listing_set, option, perpetual, symbol};

on_both_backends!(
    round_trip_keeps_every_field_and_decimal_exactly,
    unknown_symbol_is_none,
    duplicate_symbol_is_a_conflict,
    pages_yield_every_matching_row_once_in_symbol_order,
    page_size_is_bounded,
    page_size_is_capped_at_the_maximum,
    cursor_may_name_a_missing_symbol,
    seed_inserts_five_then_nothing,
    seed_leaves_a_non_empty_table_alone,
    concurrent_seeds_insert_once,
    invalid_instrument_is_not_stored,
);

async fn round_trip_keeps_every_field_and_decimal_exactly(store: &Store) {
    store.migrate().await.unwrap();
    let mut big = perpetual("BIG-PERP");
    big.tick_size = dec("0.001");
    big.lot_size = dec("0.000000001");
    big.min_order_size = dec("0.000000001");
    big.max_order_size = dec("123456789.123456789");
    big.contract_multiplier = dec("0.0100");
    big.status = InstrumentStatus::Halted;
    let big = big.validate().unwrap();

    // An expiry with microseconds, given in another offset: the same instant comes back.
    let expiry = datetime!(2027-03-26 10:00:00.123456 +02:00);
    let mut fut = future("ETH-26MAR27", expiry);
    fut.tick_size = dec("0.05");
    fut.max_order_size = dec("1000.000");
    let fut = fut.validate().unwrap();

    let call = option("BTC-25DEC26-100000-C", EXPIRY, "100000", OptionRight::Call);
    let mut put = option("BTC-25DEC26-97500-P", EXPIRY, "97500.50", OptionRight::Put);
    put.status = InstrumentStatus::Expired;

    for i in [&big, &fut, &call, &put] {
        store.insert_instrument(i).await.unwrap();
    }
    for i in [&big, &fut, &call, &put] {
        let got = store
            .get_instrument(&i.symbol)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} not found", i.symbol));
        assert_eq!(&got, i);
        assert_eq!(decimal_texts(&got), decimal_texts(i), "{}", i.symbol);
        if let Some(e) = got.expiry {
            assert_eq!(e.offset(), UtcOffset::UTC);
        }
    }
    let got = store.get_instrument(&big.symbol).await.unwrap().unwrap();
    assert_eq!(got.max_order_size.to_string(), "123456789.123456789");
    assert_eq!(got.lot_size.to_string(), "0.000000001");
    assert_eq!(got.contract_multiplier.to_string(), "0.0100");
    let got = store.get_instrument(&fut.symbol).await.unwrap().unwrap();
    assert_eq!(got.expiry, Some(datetime!(2027-03-26 08:00:00.123456 UTC)));
    assert_eq!(got.max_order_size.to_string(), "1000.000");
    let got = store.get_instrument(&put.symbol).await.unwrap().unwrap();
    assert_eq!(got.strike.unwrap().to_string(), "97500.50");

    // Listing returns the same values as getting.
    let page = store
        .list_instruments(&InstrumentQuery {
            limit: 10,
            ..InstrumentQuery::default()
        })
        .await
        .unwrap();
    let mut expected = vec![big, fut, call, put];
    expected.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    assert_eq!(page.items, expected);
    for (got, want) in page.items.iter().zip(&expected) {
        assert_eq!(decimal_texts(got), decimal_texts(want));
    }
    assert_eq!(page.next, None);
}

async fn unknown_symbol_is_none(store: &Store) {
    store.migrate().await.unwrap();
    assert_eq!(store.get_instrument(&symbol("NOPE")).await.unwrap(), None);
    store
        .insert_instrument(&perpetual("BTC-PERP"))
        .await
        .unwrap();
    assert_eq!(
        store.get_instrument(&symbol("BTC-PER")).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_instrument(&symbol("BTC-PERPX")).await.unwrap(),
        None
    );
}

async fn duplicate_symbol_is_a_conflict(store: &Store) {
    store.migrate().await.unwrap();
    let first = perpetual("BTC-PERP");
    store.insert_instrument(&first).await.unwrap();
    assert!(matches!(
        store.insert_instrument(&first).await,
        Err(StoreError::Conflict)
    ));
    // A different definition under the same symbol is refused too, and changes nothing.
    let other = future("BTC-PERP", EXPIRY);
    assert!(matches!(
        store.insert_instrument(&other).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.get_instrument(&first.symbol).await.unwrap(),
        Some(first)
    );
}

/// Pages through `q` (whose `after` is ignored) and checks the page contract.
async fn collect_pages(store: &Store, q: &InstrumentQuery) -> Vec<Instrument> {
    let mut all = Vec::new();
    let mut after: Option<Symbol> = None;
    for _ in 0..100 {
        let page = store
            .list_instruments(&InstrumentQuery {
                after: after.clone(),
                ..q.clone()
            })
            .await
            .unwrap();
        let limit = q.limit as usize;
        assert!(page.items.len() <= limit, "{q:?}");
        match page.next {
            Some(next) => {
                assert_eq!(page.items.len(), limit, "a page before the last is full");
                assert_eq!(Some(&next), page.items.last().map(|i| &i.symbol));
                all.extend(page.items);
                after = Some(next);
            }
            None => {
                all.extend(page.items);
                return all;
            }
        }
    }
    panic!("pagination did not end: {q:?}");
}

async fn pages_yield_every_matching_row_once_in_symbol_order(store: &Store) {
    store.migrate().await.unwrap();
    let set = listing_set();
    for i in &set {
        store.insert_instrument(i).await.unwrap();
    }
    let kinds = [
        None,
        Some(InstrumentKind::Perpetual),
        Some(InstrumentKind::Future),
        Some(InstrumentKind::Option),
    ];
    let statuses = [
        None,
        Some(InstrumentStatus::Active),
        Some(InstrumentStatus::Halted),
        Some(InstrumentStatus::Expired),
    ];
    let mut seen_sizes = HashSet::new();
    for kind in kinds {
        for status in statuses {
            let mut expected: Vec<Instrument> = set
                .iter()
                .filter(|i| kind.is_none_or(|k| i.kind == k))
                .filter(|i| status.is_none_or(|s| i.status == s))
                .cloned()
                .collect();
            // Rust's order on symbols is byte order.
            expected.sort_by(|a, b| a.symbol.cmp(&b.symbol));
            seen_sizes.insert(expected.len());
            for limit in [1, 2, 3, 7, 21, 1000] {
                let q = InstrumentQuery {
                    kind,
                    status,
                    after: None,
                    limit,
                };
                assert_eq!(collect_pages(store, &q).await, expected, "{q:?}");
            }
        }
    }
    // The filters above really selected subsets of different sizes.
    assert!(seen_sizes.len() >= 4, "{seen_sizes:?}");
    // The byte-order trap is in the data: '-' sorts before digits and letters.
    let all = collect_pages(
        store,
        &InstrumentQuery {
            kind: Some(InstrumentKind::Perpetual),
            limit: 100,
            ..InstrumentQuery::default()
        },
    )
    .await;
    let symbols: Vec<_> = all.iter().map(|i| i.symbol.as_str()).collect();
    assert_eq!(
        symbols,
        [
            "A-PERP",
            "AB-PERP",
            "BTC-PERP",
            "BTC1-PERP",
            "BTCA-PERP",
            "ETH-PERP",
            "Z-PERP"
        ]
    );
}

async fn page_size_is_bounded(store: &Store) {
    store.migrate().await.unwrap();
    for i in listing_set() {
        store.insert_instrument(&i).await.unwrap();
    }
    // 0 is read as 1 rather than as "no limit".
    let page = store
        .list_instruments(&InstrumentQuery::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.next.as_ref(), Some(&page.items[0].symbol));
    // A large limit returns all 21 rows (the cap is tested below).
    let page = store
        .list_instruments(&InstrumentQuery {
            limit: u32::MAX,
            ..InstrumentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 21);
    assert_eq!(page.next, None);
    // Exactly as many rows as the limit: one full page and no next.
    let page = store
        .list_instruments(&InstrumentQuery {
            limit: 21,
            ..InstrumentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 21);
    assert_eq!(page.next, None);
}

async fn page_size_is_capped_at_the_maximum(store: &Store) {
    store.migrate().await.unwrap();
    let count = MAX_PAGE_SIZE as usize + 1;
    // Eight writers at once to keep this quick; order of insertion does not matter.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in (w..count).step_by(8) {
                    store
                        .insert_instrument(&perpetual(&format!("P{n:05}-PERP")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let page = store
        .list_instruments(&InstrumentQuery {
            limit: MAX_PAGE_SIZE + 500,
            ..InstrumentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), MAX_PAGE_SIZE as usize);
    assert_eq!(page.next, Some(symbol("P00999-PERP")));
    let rest = store
        .list_instruments(&InstrumentQuery {
            after: page.next,
            limit: MAX_PAGE_SIZE,
            ..InstrumentQuery::default()
        })
        .await
        .unwrap();
    let rest: Vec<_> = rest.items.iter().map(|i| i.symbol.as_str()).collect();
    assert_eq!(rest, ["P01000-PERP"]);
}

async fn cursor_may_name_a_missing_symbol(store: &Store) {
    store.migrate().await.unwrap();
    for s in ["A-PERP", "BTC-PERP", "ETH-PERP"] {
        store.insert_instrument(&perpetual(s)).await.unwrap();
    }
    let page = store
        .list_instruments(&InstrumentQuery {
            after: Some(symbol("B")),
            limit: 10,
            ..InstrumentQuery::default()
        })
        .await
        .unwrap();
    let symbols: Vec<_> = page.items.iter().map(|i| i.symbol.as_str()).collect();
    assert_eq!(symbols, ["BTC-PERP", "ETH-PERP"]);
    let page = store
        .list_instruments(&InstrumentQuery {
            after: Some(symbol("ZZZ")),
            limit: 10,
            ..InstrumentQuery::default()
        })
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.next, None);
}

async fn seed_inserts_five_then_nothing(store: &Store) {
    store.migrate().await.unwrap();
    let now = datetime!(2026-11-20 12:00 UTC);
    assert_eq!(store.seed_demo_instruments(now).await.unwrap(), 5);
    assert_eq!(store.seed_demo_instruments(now).await.unwrap(), 0);
    // A later clock would name other dated contracts; the table is not empty, so nothing.
    assert_eq!(
        store
            .seed_demo_instruments(now + Duration::days(90))
            .await
            .unwrap(),
        0
    );

    let page = store
        .list_instruments(&InstrumentQuery {
            limit: 100,
            ..InstrumentQuery::default()
        })
        .await
        .unwrap();
    let symbols: Vec<_> = page.items.iter().map(|i| i.symbol.as_str()).collect();
    assert_eq!(
        symbols,
        [
            "BTC-25DEC26",
            "BTC-25DEC26-100000-C",
            "BTC-25DEC26-100000-P",
            "BTC-PERP",
            "ETH-PERP",
        ]
    );
    for i in &page.items {
        assert_eq!(i.status, InstrumentStatus::Active);
        assert_eq!(i.quote_asset.as_str(), "USD");
        assert_eq!(i.settlement_asset.as_str(), "USDC");
        match i.kind {
            InstrumentKind::Perpetual => assert_eq!(i.expiry, None),
            InstrumentKind::Future | InstrumentKind::Option => {
                let expiry = i.expiry.unwrap();
                assert_eq!(expiry, datetime!(2026-12-25 08:00 UTC));
                assert_eq!(expiry.weekday(), Weekday::Friday);
                assert!(expiry - now >= Duration::days(30));
            }
        }
    }
    let options: Vec<_> = page
        .items
        .iter()
        .filter(|i| i.kind == InstrumentKind::Option)
        .map(|i| (i.option_right, i.strike.map(|s| s.to_string())))
        .collect();
    assert_eq!(
        options,
        [
            (Some(OptionRight::Call), Some("100000".to_owned())),
            (Some(OptionRight::Put), Some("100000".to_owned())),
        ]
    );
    let eth = store
        .get_instrument(&symbol("ETH-PERP"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(eth.base_asset.as_str(), "ETH");
}

async fn seed_leaves_a_non_empty_table_alone(store: &Store) {
    store.migrate().await.unwrap();
    store
        .insert_instrument(&perpetual("SOL-PERP"))
        .await
        .unwrap();
    assert_eq!(
        store
            .seed_demo_instruments(datetime!(2026-11-20 12:00 UTC))
            .await
            .unwrap(),
        0
    );
    let page = store
        .list_instruments(&InstrumentQuery {
            limit: 100,
            ..InstrumentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items, [perpetual("SOL-PERP")]);
}

async fn concurrent_seeds_insert_once(store: &Store) {
    store.migrate().await.unwrap();
    let now = datetime!(2026-11-28 00:00 UTC);
    let seeds: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.seed_demo_instruments(now).await })
        })
        .collect();
    let mut total = 0;
    for seed in seeds {
        total += seed.await.unwrap().unwrap();
    }
    assert_eq!(total, 5);
    let page = store
        .list_instruments(&InstrumentQuery {
            limit: 100,
            ..InstrumentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 5);
    // 30 days after 28 November is past the last Friday of December: January's.
    assert!(
        page.items
            .iter()
            .any(|i| i.symbol.as_str() == "BTC-29JAN27")
    );
}

async fn invalid_instrument_is_not_stored(store: &Store) {
    store.migrate().await.unwrap();
    // Fields are public, so a validated instrument can be spoiled afterwards.
    let mut spoiled = perpetual("BTC-PERP");
    spoiled.min_order_size = dec("2000");
    assert!(matches!(
        store.insert_instrument(&spoiled).await,
        Err(StoreError::Internal)
    ));
    assert_eq!(store.get_instrument(&spoiled.symbol).await.unwrap(), None);
}
