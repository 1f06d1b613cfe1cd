//! JWT verification: full EdDSA verification vs the verified-claims cache, measured in
//! the same run. `cargo bench -p bourse-auth --bench jwt`
//!
//! Prints one line: `jwt verify_ns=<n> cached_ns=<n> speedup=<x>`.

use std::hint::black_box;
use std::time::Instant;

use bourse_auth::jwt::{self, AccessClaims, SigningKey, VerifiedCache, Verifier};

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        iss: "https://bourse.example".into(),
        aud: "bourse-api".into(),
        sub: "0190f0a0-0000-7000-8000-000000000001".into(),
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: "0190f0a0-0000-7000-8000-000000000002".into(),
        scope: "read trade wallet".into(),
        sid: "0190f0a0-0000-7000-8000-000000000003".into(),
        auth_time: now,
        acr: "mfa".into(),
        amr: vec!["pwd".into(), "otp".into()],
        client_id: None,
    }
}

/// Best of `rounds` timings of `iters` calls, in ns per call.
fn best_ns(rounds: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let now = 1_800_000_000;
    let key = SigningKey::generate("bench".into()).expect("key");
    let verifier = Verifier::new(
        "https://bourse.example",
        "bourse-api",
        vec![key.verifying_key()],
    );
    let token = jwt::mint(&key, &claims(now)).expect("mint");
    let cache = VerifiedCache::new(10_000);
    assert!(verifier.verify(&token, now).is_ok());
    let full = best_ns(5, 2_000, || {
        black_box(verifier.verify(black_box(&token), now).expect("valid"));
    });
    let cached = best_ns(5, 200_000, || {
        black_box(
            verifier
                .verify_cached(&cache, black_box(&token), now)
                .expect("valid"),
        );
    });
    println!(
        "jwt verify_ns={full:.0} cached_ns={cached:.0} speedup={:.1} token_bytes={}",
        full / cached,
        token.len()
    );
}
