//! Query strings: `ApiQuery` (length bound, duplicate and unknown parameters refused)
//! into every query type a route takes; the first byte picks the type.
#![no_main]

use bourse_api::ApiError;
use bourse_api::query::parse;
use bourse_api::routes::{account, admin_identity, admin_trading, instruments, market, orders, wallet};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

fn check<T: DeserializeOwned>(q: &str) {
    let r: Result<T, ApiError> = parse(q);
    if let Err(e) = r {
        assert!(e.status().is_client_error(), "{} {}", e.status(), e.code());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    // The extractor sees the URI's query, which is always valid UTF-8 text.
    let Ok(q) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 10 {
        0 => check::<orders::ListParams>(q),
        1 => check::<orders::CancelAllParams>(q),
        2 => check::<instruments::ListParams>(q),
        3 => check::<market::BookParams>(q),
        4 => check::<market::TradeParams>(q),
        5 => check::<account::FillParams>(q),
        6 => check::<account::LedgerParams>(q),
        7 => check::<wallet::PageParams>(q),
        8 => check::<admin_identity::UserListParams>(q),
        _ => check::<admin_trading::WithdrawalListParams>(q),
    }
});
