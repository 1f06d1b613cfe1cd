//! Opaque bearer secrets: refresh tokens and MFA challenges.
//!
//! A token is a short kind prefix (`brt_`, `bmc_`) followed by 32 random bytes in
//! base64url (256 bits). Only its SHA-256 (hex) is stored, found by an indexed equality
//! lookup: with 256 random bits a slow or salted hash adds nothing, exactly as for
//! [`crate::admin_key`]. The prefix makes leaked tokens easy to recognise and scan for, and
//! lets [`OpaqueToken::hash`] refuse a token of another kind before any lookup.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "brt_";
/// Prefix of MFA challenges (the second step of a login with two-factor).
pub const MFA_CHALLENGE_PREFIX: &str = "bmc_";
const RANDOM_BYTES: usize = 32;
/// Length of the random part once encoded.
const ENCODED_LEN: usize = 43;

/// A fresh token: hand `secret` to the client once, store `hash`.
pub struct OpaqueToken {
    /// The full token, prefix included.
    pub secret: SecretString,
    /// SHA-256 of the token, lowercase hex: what is stored.
    pub hash: String,
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpaqueToken")
            .field("secret", &"[redacted]")
            .field("hash", &self.hash)
            .finish()
    }
}

fn valid_prefix(prefix: &str) -> bool {
    (2..=16).contains(&prefix.len())
        && prefix.ends_with('_')
        && prefix[..prefix.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl OpaqueToken {
    /// A new random token of the kind named by `prefix` ([`REFRESH_TOKEN_PREFIX`],
    /// [`MFA_CHALLENGE_PREFIX`]; any prefix must be 1 to 15 of `a-z 0-9` then `_`).
    pub fn generate(prefix: &'static str) -> Self {
        debug_assert!(valid_prefix(prefix), "bad token prefix {prefix:?}");
        let mut bytes = Zeroizing::new([0u8; RANDOM_BYTES]);
        rand::rng().fill_bytes(bytes.as_mut());
        let secret = Zeroizing::new(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(*bytes)));
        Self {
            hash: sha256_hex(&secret),
            secret: SecretString::from(secret.as_str()),
        }
    }

    /// The stored form of a presented token of the kind `prefix`, or `None` when it cannot
    /// be one (wrong prefix or length, characters outside base64url), so that no lookup
    /// is made for garbage.
    pub fn hash(prefix: &str, presented: &str) -> Option<String> {
        let well_formed = valid_prefix(prefix)
            && presented.len() == prefix.len() + ENCODED_LEN
            && presented.starts_with(prefix)
            && presented[prefix.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| sha256_hex(presented))
    }
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Constant-time equality of two stored hashes (defence in depth after the lookup).
pub fn hashes_equal(a: &str, b: &str) -> bool {
    crate::admin_key::hashes_equal(a, b)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hash_to_the_stored_form() {
        let a = OpaqueToken::generate(REFRESH_TOKEN_PREFIX);
        let b = OpaqueToken::generate(REFRESH_TOKEN_PREFIX);
        let secret = a.secret.expose_secret();
        assert!(secret.starts_with("brt_"));
        assert_eq!(secret.len(), 4 + 43);
        assert_ne!(secret, b.secret.expose_secret());
        assert_ne!(a.hash, b.hash);
        assert_eq!(a.hash.len(), 64);
        assert!(
            a.hash
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(
            OpaqueToken::hash(REFRESH_TOKEN_PREFIX, secret),
            Some(a.hash.clone())
        );
        assert!(hashes_equal(
            &a.hash,
            &OpaqueToken::hash(REFRESH_TOKEN_PREFIX, secret).unwrap()
        ));
        assert!(!hashes_equal(&a.hash, &b.hash));
    }

    #[test]
    fn random_part_carries_256_bits() {
        let t = OpaqueToken::generate(MFA_CHALLENGE_PREFIX);
        let raw = URL_SAFE_NO_PAD
            .decode(&t.secret.expose_secret()[MFA_CHALLENGE_PREFIX.len()..])
            .unwrap();
        assert_eq!(raw.len() * 8, 256);
        let many: HashSet<String> = (0..1000)
            .map(|_| OpaqueToken::generate(MFA_CHALLENGE_PREFIX).hash)
            .collect();
        assert_eq!(many.len(), 1000);
    }

    #[test]
    fn garbage_and_other_kinds_are_not_looked_up() {
        let refresh = OpaqueToken::generate(REFRESH_TOKEN_PREFIX);
        let refresh = refresh.secret.expose_secret();
        // A refresh token presented as an MFA challenge, and vice versa.
        assert_eq!(OpaqueToken::hash(MFA_CHALLENGE_PREFIX, refresh), None);
        let challenge = OpaqueToken::generate(MFA_CHALLENGE_PREFIX);
        assert_eq!(
            OpaqueToken::hash(REFRESH_TOKEN_PREFIX, challenge.secret.expose_secret()),
            None
        );
        for bad in [
            String::new(),
            "brt_".into(),
            "brt_short".into(),
            format!("{refresh}A"),
            refresh[..refresh.len() - 1].to_owned(),
            format!("brt_{}", "+".repeat(43)),
            format!("brt_{}=", &refresh[4..46]),
            format!("BRT_{}", &refresh[4..]),
            format!("Bearer {refresh}"),
        ] {
            assert_eq!(OpaqueToken::hash(REFRESH_TOKEN_PREFIX, &bad), None, "{bad}");
        }
        // A prefix that generate() would not accept never validates anything.
        assert_eq!(OpaqueToken::hash("", &refresh[4..]), None);
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let t = OpaqueToken::generate(REFRESH_TOKEN_PREFIX);
        assert!(!format!("{t:?}").contains(t.secret.expose_secret()));
    }
}
