//! OB-1M conformance: the Rust generator reproduces the normative Python reference
//! (`shared/bench/ob1m_reference.py`) and the engine reaches its counts.

use bourse_matching::ob1m::{self, Counts, Op};
use bourse_matching::*;

/// The stream in the reference's `--dump` format, one op a line.
fn dump(ops: &[Op]) -> String {
    let side = |s: Side| if s == Side::Buy { 'B' } else { 'S' };
    let mut out = String::new();
    for op in ops {
        let line = match *op {
            Op::Add {
                id,
                side: s,
                price,
                quantity,
            } => format!("A {} {} {} {}\n", id.0, side(s), price.0, quantity.0),
            Op::Cancel { id } => format!("C {}\n", id.0),
            Op::Market { side: s, quantity } => format!("M {} {}\n", side(s), quantity.0),
        };
        out.push_str(&line);
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

#[test]
fn splitmix64_matches_the_reference_sequence() {
    // First outputs of SplitMix64 from seed 0x5EED, computed with the reference's
    // `SplitMix64` class in Python.
    let mut rng = ob1m::SplitMix64::new(ob1m::SEED);
    let got: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
    assert_eq!(
        got,
        vec![
            0x09f1_fd9d_03f0_a9b4,
            0x5532_7416_1bbf_8475,
            0x5d5b_ca46_96b3_43b3
        ]
    );
}

#[test]
fn the_100k_stream_is_the_reference_stream_and_gives_its_counts() {
    let workload = ob1m::generate(100_000, ob1m::PREFILL);
    // `python3 shared/bench/ob1m_reference.py --ops 100000 --dump FILE` writes
    // 1,476,692 bytes whose FNV-1a 64 is this value: the same stream, op for op.
    let text = dump(&workload.ops);
    assert_eq!(text.len(), 1_476_692);
    assert_eq!(fnv1a(text.as_bytes()), 0x3f53_4a8d_cbf9_e0b8);
    // `python3 shared/bench/ob1m_reference.py --ops 100000` prints:
    // adds=60197 cancels=29945 markets=9858 fills=39155 filled_qty=1483704 resting=10762
    let expected = Counts {
        adds: 60_197,
        cancels: 29_945,
        markets: 9_858,
        fills: 39_155,
        filled_qty: 1_483_704,
        resting: 10_762,
    };
    assert_eq!(workload.reference, expected, "generator's own model");
    let mut book = OrderBook::with_config(ob1m::book_config());
    assert_eq!(ob1m::run(&mut book, &workload), expected, "engine");
    book.audit().unwrap();
}

#[test]
fn the_full_ob1m_run_gives_the_published_counts() {
    let workload = ob1m::generate(ob1m::OPS, ob1m::PREFILL);
    // From shared/bench/ob-1m.md, "Expected result (any correct price-time engine)".
    let expected = Counts {
        adds: 599_838,
        cancels: 300_683,
        markets: 99_479,
        fills: 393_825,
        filled_qty: 14_954_169,
        resting: 12_813,
    };
    assert_eq!(workload.reference, expected, "generator's own model");
    let mut book = OrderBook::with_config(ob1m::book_config());
    assert_eq!(ob1m::run(&mut book, &workload), expected, "engine");
    assert_eq!(book.len(), 12_813);
    book.audit().unwrap();
}
