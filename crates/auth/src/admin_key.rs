//! Admin API keys: internal-only credentials for the admin listener.
//!
//! A key is `bak_` followed by 32 random bytes in base64url (256 bits). Only its
//! SHA-256 is stored: with that much entropy a slow hash adds nothing, and a fast,
//! unsalted hash lets the store find a key by an indexed equality lookup. The first
//! characters after the prefix are kept as a non-secret `hint` for listings.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Prefix of every admin key, so that leaked keys are easy to recognise and scan for.
pub const PREFIX: &str = "bak_";
const RANDOM_BYTES: usize = 32;
/// Encoded length of a key.
pub const KEY_LEN: usize = PREFIX.len() + 43;

/// What an admin key may do. Least privilege: each admin route names exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdminScope {
    /// Read reference data through the admin API.
    InstrumentsRead,
    /// Create instruments and change their status.
    InstrumentsWrite,
}

impl AdminScope {
    /// Every scope, for listings and validation.
    pub const ALL: [AdminScope; 2] = [AdminScope::InstrumentsRead, AdminScope::InstrumentsWrite];

    /// Wire and storage form, e.g. `instruments:write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InstrumentsRead => "instruments:read",
            Self::InstrumentsWrite => "instruments:write",
        }
    }

    /// Parses [`AdminScope::as_str`].
    pub fn parse(s: &str) -> Result<Self, UnknownScope> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownScope(s.chars().take(64).collect()))
    }
}

impl fmt::Display for AdminScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown admin scope `{0}`")]
pub struct UnknownScope(pub String);

/// A freshly minted key. The secret is shown once and never stored.
pub struct NewAdminKey {
    /// The full key to hand to the operator.
    pub secret: String,
    /// SHA-256 of the key, hex; this is what is stored.
    pub hash: String,
    /// Non-secret hint (prefix and first 6 characters) for listings.
    pub hint: String,
}

impl fmt::Debug for NewAdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAdminKey")
            .field("secret", &"[redacted]")
            .field("hint", &self.hint)
            .finish()
    }
}

/// Makes a new random key.
pub fn mint() -> NewAdminKey {
    let mut bytes = [0u8; RANDOM_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewAdminKey {
        hash: hash(&secret),
        hint: secret[..PREFIX.len() + 6].to_owned(),
        secret,
    }
}

/// The stored form of a presented key; `None` when it cannot be a key of ours (so no
/// lookup is made for garbage).
pub fn hash_presented(presented: &str) -> Option<String> {
    let well_formed = presented.len() == KEY_LEN
        && presented.starts_with(PREFIX)
        && presented[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| hash(presented))
}

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time equality of two stored hashes (defence in depth after the lookup).
pub fn hashes_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_are_unique_and_verifiable() {
        let a = mint();
        let b = mint();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), KEY_LEN);
        assert_eq!(hash_presented(&a.secret).as_deref(), Some(a.hash.as_str()));
        assert!(hashes_equal(&a.hash, &hash_presented(&a.secret).unwrap()));
        assert!(!hashes_equal(&a.hash, &b.hash));
        assert!(!format!("{a:?}").contains(&a.secret));
    }

    #[test]
    fn garbage_is_not_looked_up() {
        for s in [
            "",
            "bak_",
            "bak_short",
            "Bearer x",
            &format!("xyz_{}", "a".repeat(43)),
        ] {
            assert_eq!(hash_presented(s), None, "{s}");
        }
    }

    #[test]
    fn scopes_round_trip() {
        for s in AdminScope::ALL {
            assert_eq!(AdminScope::parse(s.as_str()), Ok(s));
        }
        assert!(AdminScope::parse("root").is_err());
    }
}
