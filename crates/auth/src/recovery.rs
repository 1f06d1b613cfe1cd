//! Recovery codes: ten single-use codes shown once when two-factor is turned on, for
//! signing in without the authenticator.
//!
//! A code is 16 symbols of Crockford's base32 (`0-9 a-z` without `i l o u`), 80 random
//! bits, shown as `xxxx-xxxx-xxxx-xxxx`. Input is forgiving: case, dashes and spaces are
//! ignored, and `o`, `i`, `l` are read as `0`, `1`, `1`.
//!
//! Storage: `rc1$<salt>$<SHA-256(label ‖ salt ‖ code)>` with a random 128-bit salt per
//! code. A fast hash is enough here, unlike for passwords, because the input is not chosen
//! by a person: with 80 random bits an attacker holding the database needs about 2^79
//! SHA-256 evaluations per code, far beyond reach, and the per-code salt stops one
//! computation from being tried against every stored code at once. Online guessing is
//! bounded by the two-factor lockout. A slow hash would only make each login with a
//! recovery code (up to ten comparisons) expensive.

use std::fmt;

use rand::Rng;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Codes handed out per enrolment.
pub const CODE_COUNT: usize = 10;
/// Symbols per code (5 bits each).
pub const CODE_SYMBOLS: usize = 16;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const GROUP: usize = 4;
const SALT_BYTES: usize = 16;
const HASH_PREFIX: &str = "rc1$";
const DOMAIN: &[u8] = b"bourse.recovery.v1";

/// A fresh set of recovery codes: show `codes` once, store `hashes`.
pub struct RecoveryCodes {
    /// The codes, formatted `xxxx-xxxx-xxxx-xxxx`.
    pub codes: Vec<SecretString>,
    /// The stored forms, one per code, in the same order.
    pub hashes: Vec<String>,
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryCodes")
            .field("codes", &"[redacted]")
            .field("count", &self.codes.len())
            .finish()
    }
}

/// [`CODE_COUNT`] new random codes and their stored forms.
pub fn generate() -> RecoveryCodes {
    let mut codes = Vec::with_capacity(CODE_COUNT);
    let mut hashes = Vec::with_capacity(CODE_COUNT);
    for _ in 0..CODE_COUNT {
        let canonical = random_canonical();
        hashes.push(hash_canonical(&canonical));
        codes.push(display(&canonical));
    }
    RecoveryCodes { codes, hashes }
}

/// [`CODE_COUNT`] new random codes, formatted `xxxx-xxxx-xxxx-xxxx`. Store each through
/// [`hash_code`], or use [`generate`] to get both at once.
pub fn generate_codes() -> Vec<SecretString> {
    (0..CODE_COUNT)
        .map(|_| display(&random_canonical()))
        .collect()
}

/// 16 symbols without dashes.
fn random_canonical() -> Zeroizing<String> {
    // 10 random bytes are exactly 80 bits: 16 symbols of 5 bits, no bias.
    let mut bytes = Zeroizing::new([0u8; CODE_SYMBOLS * 5 / 8]);
    rand::rng().fill_bytes(bytes.as_mut());
    let mut acc = Zeroizing::new(0u128);
    for b in bytes.iter() {
        *acc = (*acc << 8) | u128::from(*b);
    }
    let mut out = Zeroizing::new(String::with_capacity(CODE_SYMBOLS));
    for i in 0..CODE_SYMBOLS {
        let shift = 5 * (CODE_SYMBOLS - 1 - i);
        // The mask keeps the index below 32.
        let index = ((*acc >> shift) & 0x1f) as usize;
        out.push(char::from(ALPHABET[index]));
    }
    out
}

/// `xxxx-xxxx-xxxx-xxxx` from the canonical form.
fn display(canonical: &str) -> SecretString {
    let mut out = String::with_capacity(CODE_SYMBOLS + CODE_SYMBOLS / GROUP);
    for (i, c) in canonical.chars().enumerate() {
        if i > 0 && i % GROUP == 0 {
            out.push('-');
        }
        out.push(c);
    }
    SecretString::from(out)
}

/// The canonical 16-symbol form of a presented code, or `None` if it cannot be one.
fn normalise(presented: &str) -> Option<Zeroizing<String>> {
    if presented.len() > 64 {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(CODE_SYMBOLS));
    for c in presented.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        out.push(c);
    }
    (out.len() == CODE_SYMBOLS).then_some(out)
}

/// The stored form of a code, with a fresh salt; `None` if `code` is not a well-formed
/// recovery code.
pub fn hash_code(code: &str) -> Option<String> {
    normalise(code).map(|canonical| hash_canonical(&canonical))
}

fn hash_canonical(canonical: &str) -> String {
    let mut salt = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    format!(
        "{HASH_PREFIX}{}${}",
        hex::encode(salt),
        hex::encode(digest(&salt, canonical))
    )
}

fn digest(salt: &[u8], canonical: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(salt);
    h.update(canonical.as_bytes());
    h.finalize().into()
}

/// Whether `presented` is the code stored as `stored`, compared in constant time.
pub fn verify(presented: &str, stored: &str) -> bool {
    let Some(canonical) = normalise(presented) else {
        return false;
    };
    matches(&canonical, stored)
}

fn matches(canonical: &str, stored: &str) -> bool {
    let Some((salt, expected)) = stored
        .strip_prefix(HASH_PREFIX)
        .and_then(|rest| rest.split_once('$'))
    else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (hex::decode(salt), hex::decode(expected)) else {
        return false;
    };
    if salt.len() != SALT_BYTES || expected.len() != 32 {
        return false;
    }
    bool::from(digest(&salt, canonical).ct_eq(&expected))
}

/// The index of the stored code that `presented` matches, checking every entry (no early
/// exit) so that timing does not tell which one matched. The caller marks it used.
pub fn find_match<S: AsRef<str>>(presented: &str, stored: &[S]) -> Option<usize> {
    let canonical = normalise(presented)?;
    let mut found = None;
    for (i, s) in stored.iter().enumerate() {
        if matches(&canonical, s.as_ref()) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn ten_distinct_codes_in_the_unambiguous_alphabet() {
        let codes = generate_codes();
        assert_eq!(codes.len(), CODE_COUNT);
        let unique: HashSet<&str> = codes.iter().map(|c| c.expose_secret()).collect();
        assert_eq!(unique.len(), CODE_COUNT);
        for code in &codes {
            let code = code.expose_secret();
            assert_eq!(code.len(), 19, "{code}");
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 4);
            assert!(groups.iter().all(|g| g.len() == 4));
            assert!(
                code.chars()
                    .filter(|c| *c != '-')
                    .all(|c| ALPHABET.contains(&(c as u8)) && !"ilou".contains(c)),
                "{code}"
            );
        }
    }

    #[test]
    fn codes_carry_80_bits() {
        // 32 symbols × 16 positions: log2(32^16) = 80. Over many codes every symbol
        // shows up in every position, so no position is stuck.
        assert_eq!(ALPHABET.len(), 32);
        assert_eq!(CODE_SYMBOLS * 5, 80);
        let mut seen = vec![HashSet::new(); CODE_SYMBOLS];
        for _ in 0..200 {
            for code in generate_codes() {
                let canonical = normalise(code.expose_secret()).unwrap();
                for (i, c) in canonical.chars().enumerate() {
                    seen[i].insert(c);
                }
            }
        }
        assert!(seen.iter().all(|s| s.len() == 32));
    }

    #[test]
    fn stored_hashes_verify_and_are_salted() {
        let set = generate();
        assert_eq!(set.hashes.len(), CODE_COUNT);
        for (code, hash) in set.codes.iter().zip(&set.hashes) {
            assert!(hash.starts_with("rc1$"));
            assert!(!hash.contains(code.expose_secret()));
            assert!(verify(code.expose_secret(), hash));
        }
        assert!(!verify(set.codes[0].expose_secret(), &set.hashes[1]));
        // The same code hashes differently each time.
        let code = set.codes[0].expose_secret();
        assert_ne!(hash_code(code).unwrap(), hash_code(code).unwrap());
        assert!(verify(code, &hash_code(code).unwrap()));
    }

    #[test]
    fn input_is_normalised() {
        let hash = hash_code("ab0c-1def-2ghj-3kmn").unwrap();
        for typed in [
            "ab0c-1def-2ghj-3kmn",
            "AB0C-1DEF-2GHJ-3KMN",
            "ab0c1def2ghj3kmn",
            " ab0c 1def 2ghj 3kmn ",
            "abOc-Idef-2ghj-3kmn",
            "abOc-ldef-2ghj-3kmn",
        ] {
            assert!(verify(typed, &hash), "{typed}");
        }
        for wrong in [
            "ab0c-1def-2ghj-3kmp",
            "ab0c-1def-2ghj-3km",
            "ab0c-1def-2ghj-3kmnn",
            "ab0c-1def-2ghj-3kmu",
            "ab0c_1def_2ghj_3kmn",
            "",
        ] {
            assert!(!verify(wrong, &hash), "{wrong}");
        }
        assert_eq!(hash_code("not a code"), None);
    }

    #[test]
    fn malformed_stored_values_never_match() {
        let code = "ab0c-1def-2ghj-3kmn";
        let good = hash_code(code).unwrap();
        let (salt, digest) = good.strip_prefix("rc1$").unwrap().split_once('$').unwrap();
        for stored in [
            String::new(),
            format!("rc2${salt}${digest}"),
            format!("rc1${digest}"),
            format!("rc1${}${digest}", &salt[2..]),
            format!("rc1${salt}${}", &digest[2..]),
            format!("rc1$zz{}${digest}", &salt[2..]),
        ] {
            assert!(!verify(code, &stored), "{stored}");
        }
    }

    #[test]
    fn find_match_returns_the_index_of_the_used_code() {
        let set = generate();
        for (i, code) in set.codes.iter().enumerate() {
            assert_eq!(find_match(code.expose_secret(), &set.hashes), Some(i));
        }
        assert_eq!(find_match("ab0c-1def-2ghj-3kmn", &set.hashes), None);
        assert_eq!(find_match("garbage", &set.hashes), None);
        // Once the caller removes a used code, it no longer matches.
        let mut remaining = set.hashes.clone();
        remaining.remove(3);
        assert_eq!(find_match(set.codes[3].expose_secret(), &remaining), None);
    }

    #[test]
    fn debug_does_not_show_codes() {
        let set = generate();
        let shown = format!("{set:?}");
        assert!(set.codes.iter().all(|c| !shown.contains(c.expose_secret())));
    }
}
