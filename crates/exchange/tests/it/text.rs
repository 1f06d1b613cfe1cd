//! The inline text newtypes order, compare and hash exactly as their text does, so
//! that maps keyed by them iterate (and the state hash walks them) in text order.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use bourse_exchange::{Asset, ClientOrderId, Symbol};
use proptest::prelude::*;

fn hash_of(x: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    x.hash(&mut h);
    h.finish()
}

proptest! {
    #[test]
    fn client_order_ids_order_as_text(a in "[!-~]{1,64}", b in "[!-~]{1,64}") {
        let (x, y) = (ClientOrderId::parse(&a).unwrap(), ClientOrderId::parse(&b).unwrap());
        prop_assert_eq!(x.cmp(&y), a.cmp(&b));
        prop_assert_eq!(x == y, a == b);
        prop_assert_eq!(x.as_str(), a.as_str());
        if a == b {
            prop_assert_eq!(hash_of(&x), hash_of(&y));
        }
    }

    #[test]
    fn prefixes_sort_first(a in "[A-Z0-9]{1,15}", c in "[A-Z0-9]") {
        let longer = format!("{a}{c}");
        let (x, y) = (Asset::parse(&a).unwrap(), Asset::parse(&longer).unwrap());
        prop_assert!(x < y);
        let (s, t) = (Symbol::parse(&a).unwrap(), Symbol::parse(&longer).unwrap());
        prop_assert!(s < t);
    }
}

#[test]
fn limits_are_enforced() {
    assert!(Symbol::parse(&"A".repeat(32)).is_some());
    assert!(Symbol::parse(&"A".repeat(33)).is_none());
    assert!(Asset::parse(&"A".repeat(16)).is_some());
    assert!(Asset::parse(&"A".repeat(17)).is_none());
    assert!(Asset::parse("usdc").is_none());
    assert!(ClientOrderId::parse(&"x".repeat(64)).is_some());
    assert!(ClientOrderId::parse(&"x".repeat(65)).is_none());
    assert!(ClientOrderId::parse("has space").is_none());
    assert!(ClientOrderId::parse("").is_none());
    assert_eq!(
        format!("{:?}", Symbol::parse("BTC-PERP").unwrap()),
        "Symbol(\"BTC-PERP\")"
    );
}
