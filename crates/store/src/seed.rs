//! The demo instruments seeded into an empty database on first start.
//!
//! Everything here is a pure function of `now`, so a seed is reproducible in tests.

use bourse_types::{
    Asset, Decimal, Instrument, InstrumentKind, InstrumentStatus, OptionRight, Symbol,
};
use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset, Weekday};

use crate::StoreError;

/// The dated contracts expire at least this long after the seed, so that a fresh demo
/// has a month of trading before anything expires.
const MIN_TIME_TO_EXPIRY: Duration = Duration::days(30);

/// Strike of the demo call and put, in USD.
const DEMO_STRIKE: i64 = 100_000;

/// The demo expiry: the last Friday at 08:00 UTC of the first month in which that
/// Friday is at least [`MIN_TIME_TO_EXPIRY`] after `now`. `None` only for a `now` near
/// the end of the representable calendar.
pub(crate) fn demo_expiry(now: OffsetDateTime) -> Option<OffsetDateTime> {
    let earliest = now
        .to_offset(UtcOffset::UTC)
        .checked_add(MIN_TIME_TO_EXPIRY)?;
    let (mut year, mut month) = (earliest.year(), earliest.month());
    // The last Friday of the month of `earliest` is either on or after it, or the one a
    // month later is: two rounds at most.
    for _ in 0..2 {
        let expiry = last_friday(year, month)?
            .with_time(Time::from_hms(8, 0, 0).ok()?)
            .assume_utc();
        if expiry >= earliest {
            return Some(expiry);
        }
        if month == Month::December {
            year = year.checked_add(1)?;
        }
        month = month.next();
    }
    None
}

fn last_friday(year: i32, month: Month) -> Option<Date> {
    let last = Date::from_calendar_date(year, month, month.length(year)).ok()?;
    let back = (last.weekday().number_days_from_monday() + 7
        - Weekday::Friday.number_days_from_monday())
        % 7;
    Date::from_calendar_date(year, month, last.day() - back).ok()
}

/// `BTC-25DEC26`: the exchange's dated-contract code.
fn dated_code(base: &str, expiry: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    let month = MONTHS[usize::from(u8::from(expiry.month())) - 1];
    format!(
        "{base}-{:02}{month}{:02}",
        expiry.day(),
        expiry.year().rem_euclid(100)
    )
}

/// BTC-PERP, ETH-PERP, a BTC future on [`demo_expiry`], and a call and a put on it.
/// Public (doc-hidden) so the fuzz targets can build a catalog without a database.
pub fn demo_instruments(now: OffsetDateTime) -> Result<Vec<Instrument>, StoreError> {
    let expiry = demo_expiry(now).ok_or_else(|| {
        tracing::error!("no demo expiry can be computed from this clock");
        StoreError::Internal
    })?;
    let future = dated_code("BTC", expiry);
    let strike = Decimal::new(DEMO_STRIKE, 0);
    let specs = [
        // symbol, kind, base, tick, lot, max order, expiry, strike and right
        (
            "BTC-PERP".to_owned(),
            InstrumentKind::Perpetual,
            "BTC",
            Decimal::new(5, 1),
            Decimal::new(1, 3),
            Decimal::new(1_000, 0),
            None,
        ),
        (
            "ETH-PERP".to_owned(),
            InstrumentKind::Perpetual,
            "ETH",
            Decimal::new(5, 2),
            Decimal::new(1, 2),
            Decimal::new(10_000, 0),
            None,
        ),
        (
            future.clone(),
            InstrumentKind::Future,
            "BTC",
            Decimal::new(5, 1),
            Decimal::new(1, 3),
            Decimal::new(1_000, 0),
            None,
        ),
        (
            format!("{future}-{DEMO_STRIKE}-C"),
            InstrumentKind::Option,
            "BTC",
            Decimal::new(5, 0),
            Decimal::new(1, 2),
            Decimal::new(500, 0),
            Some(OptionRight::Call),
        ),
        (
            format!("{future}-{DEMO_STRIKE}-P"),
            InstrumentKind::Option,
            "BTC",
            Decimal::new(5, 0),
            Decimal::new(1, 2),
            Decimal::new(500, 0),
            Some(OptionRight::Put),
        ),
    ];
    specs
        .into_iter()
        .map(|(symbol, kind, base, tick, lot, max, right)| {
            let dated = kind != InstrumentKind::Perpetual;
            let instrument = Instrument {
                symbol: Symbol::parse(&symbol).map_err(|_| invalid_demo("symbol"))?,
                kind,
                base_asset: Asset::parse(base).map_err(|_| invalid_demo("base_asset"))?,
                quote_asset: Asset::parse("USD").map_err(|_| invalid_demo("quote_asset"))?,
                settlement_asset: Asset::parse("USDC")
                    .map_err(|_| invalid_demo("settlement_asset"))?,
                tick_size: tick,
                lot_size: lot,
                min_order_size: lot,
                max_order_size: max,
                contract_multiplier: Decimal::ONE,
                expiry: dated.then_some(expiry),
                strike: right.map(|_| strike),
                option_right: right,
                status: InstrumentStatus::Active,
            };
            instrument
                .validate()
                .map_err(|_| invalid_demo("instrument"))
        })
        .collect()
}

/// Cannot happen for the constants above (the unit tests build every demo instrument),
/// but the store reports rather than panics.
fn invalid_demo(what: &'static str) -> StoreError {
    tracing::error!(what, "demo instrument definition is not valid");
    StoreError::Internal
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn expiry_is_the_last_friday_of_the_month_a_month_out() {
        // 30 days later is 20 December; the last Friday of December 2026 is the 25th.
        assert_eq!(
            demo_expiry(datetime!(2026-11-20 12:00 UTC)),
            Some(datetime!(2026-12-25 08:00 UTC))
        );
        // 30 days later is 28 December, after the 25th: roll to January 2027 (the 31st
        // is a Sunday, so the last Friday is the 29th).
        assert_eq!(
            demo_expiry(datetime!(2026-11-28 00:00 UTC)),
            Some(datetime!(2027-01-29 08:00 UTC))
        );
        // Exactly 30 days before the expiry instant still gets that expiry.
        assert_eq!(
            demo_expiry(datetime!(2026-11-25 08:00 UTC)),
            Some(datetime!(2026-12-25 08:00 UTC))
        );
        // One second later does not.
        assert_eq!(
            demo_expiry(datetime!(2026-11-25 08:00:01 UTC)),
            Some(datetime!(2027-01-29 08:00 UTC))
        );
        // A non-UTC clock is read as the same instant.
        assert_eq!(
            demo_expiry(datetime!(2026-11-20 23:00 -05:00)),
            Some(datetime!(2026-12-25 08:00 UTC))
        );
    }

    #[test]
    fn expiry_is_always_a_friday_at_least_30_and_at_most_67_days_out() {
        let mut now = datetime!(2025-01-01 00:00 UTC);
        while now < datetime!(2029-01-01 00:00 UTC) {
            let expiry = demo_expiry(now).unwrap();
            assert_eq!(expiry.weekday(), Weekday::Friday, "{now}");
            assert_eq!((expiry.hour(), expiry.minute()), (8, 0), "{now}");
            assert!(expiry - now >= MIN_TIME_TO_EXPIRY, "{now}");
            assert!(expiry - now <= Duration::days(67), "{now}");
            assert!(
                expiry.day() + 7 > expiry.month().length(expiry.year()),
                "{now}"
            );
            now += Duration::hours(7);
        }
    }

    #[test]
    fn demo_set_is_valid_and_named_after_the_expiry() {
        let set = demo_instruments(datetime!(2026-11-20 12:00 UTC)).unwrap();
        let symbols: Vec<_> = set.iter().map(|i| i.symbol.as_str()).collect();
        assert_eq!(
            symbols,
            [
                "BTC-PERP",
                "ETH-PERP",
                "BTC-25DEC26",
                "BTC-25DEC26-100000-C",
                "BTC-25DEC26-100000-P"
            ]
        );
        let kinds: Vec<_> = set.iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            [
                InstrumentKind::Perpetual,
                InstrumentKind::Perpetual,
                InstrumentKind::Future,
                InstrumentKind::Option,
                InstrumentKind::Option
            ]
        );
        for i in &set {
            assert_eq!(i.quote_asset.as_str(), "USD");
            assert_eq!(i.settlement_asset.as_str(), "USDC");
        }
        assert_eq!(set[3].option_right, Some(OptionRight::Call));
        assert_eq!(set[4].option_right, Some(OptionRight::Put));
        assert_eq!(set[4].strike, Some(Decimal::new(100_000, 0)));
        assert_eq!(
            set,
            demo_instruments(datetime!(2026-11-20 12:00 UTC)).unwrap()
        );
    }

    #[test]
    fn dated_codes_use_two_digit_days_and_years() {
        assert_eq!(
            dated_code("BTC", datetime!(2030-03-29 08:00 UTC)),
            "BTC-29MAR30"
        );
        assert_eq!(
            dated_code("ETH", datetime!(2100-01-01 08:00 UTC)),
            "ETH-01JAN00"
        );
    }
}
