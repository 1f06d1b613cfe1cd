//! `POST /v1/orders` bodies: JSON checks, `NewOrder`, and the conversion into the core's
//! command against the demo catalog (ticks, lots, order type and time-in-force rules).
#![no_main]

use std::sync::LazyLock;

use bourse_api::catalog::Catalog;
use bourse_api::routes::orders::order_command;
use bourse_engine::core::AccountId;
use libfuzzer_sys::fuzz_target;

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let catalog = Catalog::default();
    let now = time::OffsetDateTime::now_utc();
    for inst in bourse_store::demo_instruments(now).expect("demo instruments") {
        catalog.upsert(inst);
    }
    catalog
});

fuzz_target!(|data: &[u8]| {
    match order_command(&CATALOG, AccountId(7), data) {
        Ok(cmd) => {
            // An accepted order is never empty and belongs to the caller.
            assert!(cmd.quantity.0 > 0, "{cmd:?}");
            assert_eq!(cmd.account, AccountId(7));
        }
        // A rejection is always the client's fault (4xx) with a stable code, never a 5xx.
        Err(e) => {
            assert!(e.status().is_client_error(), "{} {}", e.status(), e.code());
            assert!(!e.code().is_empty());
        }
    }
});
