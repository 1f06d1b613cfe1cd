//! Admin API keys: minting (the secret is shown once, only its hash is stored),
//! segregation of duties, expiry and IP allowlists.

use std::net::IpAddr;

use bourse_auth::admin_key::{self, AdminScope, ScopeConflict, UnknownScope};
use bourse_store::{AdminKeyRecord, Store, StoreError};
use ipnet::IpNet;
use secrecy::SecretString;
use time::OffsetDateTime;

/// What a new key should be.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Who or what the key is for (1 to 100 printable characters).
    pub name: String,
    /// Scope names, e.g. `instruments:write`.
    pub scopes: Vec<String>,
    /// When it stops working.
    pub expires_at: Option<OffsetDateTime>,
    /// Client networks allowed to use it (CIDR); empty means any.
    pub allowed_cidrs: Vec<String>,
}

/// Why a key cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum KeyRequestError {
    /// The name is empty, too long or has control characters.
    #[error("name must be 1 to 100 printable characters")]
    Name,
    /// A scope does not exist.
    #[error(transparent)]
    UnknownScope(#[from] UnknownScope),
    /// The scopes break segregation of duties or exceed the granter's.
    #[error(transparent)]
    Conflict(#[from] ScopeConflict),
    /// A CIDR does not parse.
    #[error("`{0}` is not a CIDR network such as 10.0.0.0/8")]
    Cidr(String),
    /// The expiry is in the past.
    #[error("expires_at must be in the future")]
    Expiry,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a key. `granter` holds the scopes of the admin key making this one (`None`
/// for the operator's CLI); a key can never grant a scope it lacks.
pub async fn create(
    store: &Store,
    req: &NewKey,
    granter: Option<&[AdminScope]>,
    now: OffsetDateTime,
) -> Result<(AdminKeyRecord, SecretString), KeyRequestError> {
    let name = req.name.trim();
    if !(1..=100).contains(&name.chars().count()) || name.chars().any(char::is_control) {
        return Err(KeyRequestError::Name);
    }
    let mut scopes = req
        .scopes
        .iter()
        .map(|s| AdminScope::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    scopes.sort();
    scopes.dedup();
    admin_key::check_grant(&scopes, granter)?;
    let mut cidrs = Vec::new();
    for c in &req.allowed_cidrs {
        let net: IpNet = c
            .trim()
            .parse()
            .map_err(|_| KeyRequestError::Cidr(c.chars().take(64).collect()))?;
        cidrs.push(net.trunc().to_string());
    }
    if req.expires_at.is_some_and(|e| e <= now) {
        return Err(KeyRequestError::Expiry);
    }
    let minted = admin_key::mint();
    let record = AdminKeyRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        hint: minted.hint.clone(),
        key_hash: minted.hash.clone(),
        scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        created_at: now,
        revoked_at: None,
        expires_at: req.expires_at,
        allowed_cidrs: cidrs,
        last_used_at: None,
    };
    store.insert_admin_key(&record).await?;
    Ok((record, SecretString::from(minted.secret)))
}

/// Why a presented key is refused (all are 401 except `MissingScope`, 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Unknown, malformed or revoked.
    Invalid,
    /// Past its expiry.
    Expired,
    /// The client address is outside the key's allowlist.
    AddressNotAllowed,
}

/// Checks a stored key against the time and the client address.
pub fn check_use(
    key: &AdminKeyRecord,
    client: Option<IpAddr>,
    now: OffsetDateTime,
) -> Result<(), KeyRefusal> {
    if key.revoked_at.is_some() {
        return Err(KeyRefusal::Invalid);
    }
    if key.expires_at.is_some_and(|e| e <= now) {
        return Err(KeyRefusal::Expired);
    }
    if !key.allowed_cidrs.is_empty() {
        let allowed = client.is_some_and(|ip| {
            key.allowed_cidrs
                .iter()
                .filter_map(|c| c.parse::<IpNet>().ok())
                .any(|net| net.contains(&ip))
        });
        if !allowed {
            return Err(KeyRefusal::AddressNotAllowed);
        }
    }
    Ok(())
}

/// The scopes a stored key holds (unknown names, from a newer version, are ignored).
pub fn scopes_of(key: &AdminKeyRecord) -> Vec<AdminScope> {
    key.scopes
        .iter()
        .filter_map(|s| AdminScope::parse(s).ok())
        .collect()
}
