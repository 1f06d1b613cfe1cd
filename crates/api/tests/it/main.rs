//! Property tests of the request parsers: any bytes in, a value or a problem out —
//! never a panic, never a 5xx, and every problem names a field with a stable code.

use bourse_api::routes::admin_instruments::NewInstrument;
use bourse_api::routes::auth::{Credentials, MfaLogin};
use bourse_api::routes::instruments::ListParams;
use proptest::prelude::*;

fn check_problem(e: &bourse_api::ApiError) {
    let status = e.status().as_u16();
    assert!((400..500).contains(&status), "client error, got {status}");
    assert!(!e.code().is_empty());
}

fn json_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Arbitrary bytes.
        proptest::collection::vec(any::<u8>(), 0..256),
        // Mutations of a valid body: structure-aware garbage reaches deeper.
        (any::<usize>(), any::<u8>(), 0usize..3).prop_map(|(at, b, how)| {
            let mut v = br#"{"email":"a@b.co","password":"correct horse battery"}"#.to_vec();
            let i = at % v.len();
            match how {
                0 => v[i] = b,
                1 => v.insert(i, b),
                _ => {
                    v.remove(i);
                }
            }
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn json_bodies_never_panic(bytes in json_like()) {
        for r in [
            bourse_api::json::parse::<Credentials>(&bytes).err(),
            bourse_api::json::parse::<MfaLogin>(&bytes).err(),
            bourse_api::json::parse::<NewInstrument>(&bytes).err(),
        ].into_iter().flatten() {
            check_problem(&r);
        }
    }

    #[test]
    fn query_strings_never_panic(q in "[a-z=&%0-9_+.-]{0,64}|\\PC{0,64}") {
        if let Err(e) = bourse_api::query::parse::<ListParams>(&q) {
            check_problem(&e);
        }
    }
}
