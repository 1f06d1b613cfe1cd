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
    /// List users.
    UsersRead,
    /// Freeze and unfreeze users.
    UsersWrite,
    /// Credit deposits (money).
    DepositsWrite,
    /// Approve withdrawals (money).
    WithdrawalsApprove,
    /// Manage admin API keys.
    KeysAdmin,
    /// Read the audit trail.
    AuditRead,
    /// Read risk settings and risk alerts.
    RiskRead,
    /// Change risk settings (limits, breakers, kill switches), resolve alerts and lift
    /// their actions.
    RiskWrite,
}

impl AdminScope {
    /// Every scope, for listings and validation.
    pub const ALL: [AdminScope; 10] = [
        AdminScope::InstrumentsRead,
        AdminScope::InstrumentsWrite,
        AdminScope::UsersRead,
        AdminScope::UsersWrite,
        AdminScope::DepositsWrite,
        AdminScope::WithdrawalsApprove,
        AdminScope::KeysAdmin,
        AdminScope::AuditRead,
        AdminScope::RiskRead,
        AdminScope::RiskWrite,
    ];

    /// Wire and storage form, e.g. `instruments:write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InstrumentsRead => "instruments:read",
            Self::InstrumentsWrite => "instruments:write",
            Self::UsersRead => "users:read",
            Self::UsersWrite => "users:write",
            Self::DepositsWrite => "deposits:write",
            Self::WithdrawalsApprove => "withdrawals:approve",
            Self::KeysAdmin => "keys:admin",
            Self::AuditRead => "audit:read",
            Self::RiskRead => "risk:read",
            Self::RiskWrite => "risk:write",
        }
    }

    /// Scopes that move money.
    pub fn moves_money(self) -> bool {
        matches!(self, Self::DepositsWrite | Self::WithdrawalsApprove)
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

/// Why a set of scopes may not be granted together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeConflict {
    /// Segregation of duties: whoever manages keys must not also move money.
    #[error("`keys:admin` cannot be combined with money scopes ({0})")]
    KeysWithMoney(&'static str),
    /// A key may only grant scopes it holds itself.
    #[error("the granting key lacks `{0}`")]
    NotHeld(&'static str),
    /// No scope at all.
    #[error("at least one scope is required")]
    Empty,
}

/// Checks segregation of duties for a new key's scopes and, when a key grants them
/// (rather than the operator's CLI), that the granter holds every one.
pub fn check_grant(
    scopes: &[AdminScope],
    granter: Option<&[AdminScope]>,
) -> Result<(), ScopeConflict> {
    if scopes.is_empty() {
        return Err(ScopeConflict::Empty);
    }
    if scopes.contains(&AdminScope::KeysAdmin)
        && let Some(money) = scopes.iter().find(|s| s.moves_money())
    {
        return Err(ScopeConflict::KeysWithMoney(money.as_str()));
    }
    if let Some(held) = granter
        && let Some(missing) = scopes.iter().find(|s| !held.contains(s))
    {
        return Err(ScopeConflict::NotHeld(missing.as_str()));
    }
    Ok(())
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
    fn segregation_of_duties() {
        use AdminScope::*;
        assert_eq!(
            check_grant(&[KeysAdmin, DepositsWrite], None),
            Err(ScopeConflict::KeysWithMoney("deposits:write"))
        );
        assert_eq!(check_grant(&[KeysAdmin, UsersRead], None), Ok(()));
        assert_eq!(
            check_grant(&[UsersWrite], Some(&[KeysAdmin, UsersRead])),
            Err(ScopeConflict::NotHeld("users:write"))
        );
        assert_eq!(check_grant(&[], None), Err(ScopeConflict::Empty));
        assert_eq!(check_grant(&[WithdrawalsApprove], None), Ok(()));
    }

    #[test]
    fn scopes_round_trip() {
        for s in AdminScope::ALL {
            assert_eq!(AdminScope::parse(s.as_str()), Ok(s));
        }
        assert!(AdminScope::parse("root").is_err());
    }
}
