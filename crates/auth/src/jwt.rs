//! Access tokens: JWTs signed with Ed25519 (`alg: EdDSA`), typed `at+jwt` (RFC 9068).
//!
//! Minting uses `jsonwebtoken` over aws-lc-rs. Verification follows RFC 8725: the header
//! is parsed by us and only `alg`, `typ`, `kid` and `crit` are read, so `jku`, `x5u`,
//! `jwk` and `x5c` can never point us at a key; `alg` is pinned to `EdDSA` before any key
//! is chosen (so `none`, HS256 keyed with our public key and RS256 are refused up front);
//! the key is looked up by `kid` among our own keys only; then the signature is checked
//! and only then are the claims parsed. Time is an argument (`now_unix`, seconds), with
//! [`LEEWAY_SECS`] of clock skew allowed on `exp`, `nbf`, `iat` and `auth_time`, and no
//! token may live longer than [`MAX_LIFETIME_SECS`].
//!
//! [`VerifiedCache`] remembers verified claims by SHA-256 of the token until the token's
//! `exp`, so that a repeated token costs one hash and one map lookup.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The `typ` header of every access token (RFC 9068).
pub const TOKEN_TYPE: &str = "at+jwt";
/// Longest accepted lifetime, `exp - iat`, in seconds.
pub const MAX_LIFETIME_SECS: i64 = 600;
/// Clock skew tolerated on `exp`, `nbf`, `iat` and `auth_time`, in seconds.
pub const LEEWAY_SECS: i64 = 30;
/// Longest token looked at; anything longer is refused unparsed.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
const ED25519_PUBLIC_KEY_LEN: usize = 32;
const MAX_KID_LEN: usize = 64;

/// A key could not be made, loaded or parsed. Says nothing about the key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A key id must be 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
    #[error("invalid key id")]
    InvalidKid,
    /// The key bytes or JWK are not an Ed25519 key.
    #[error("not an Ed25519 key")]
    InvalidKey,
    /// The crypto library failed to generate a key.
    #[error("key generation failed")]
    Generation,
}

fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok = !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidKid)
    }
}

/// An Ed25519 signing key with its key id. Store [`SigningKey::pkcs8_der`] encrypted
/// (see [`crate::secretbox`]); `Debug` shows only the key id.
pub struct SigningKey {
    kid: String,
    pkcs8: Zeroizing<Vec<u8>>,
    encoding: EncodingKey,
    public: [u8; ED25519_PUBLIC_KEY_LEN],
}

impl SigningKey {
    /// Generates a new Ed25519 key (aws-lc-rs, OS randomness) under the key id `kid`.
    pub fn generate(kid: String) -> Result<Self, KeyError> {
        check_kid(&kid)?;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generation)?;
        Self::from_pkcs8(kid, doc.as_ref())
    }

    /// Loads a key from its PKCS#8 DER form (v1 or v2), as returned by
    /// [`SigningKey::pkcs8_der`].
    pub fn from_pkcs8(kid: String, der: &[u8]) -> Result<Self, KeyError> {
        check_kid(&kid)?;
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| KeyError::InvalidKey)?;
        let public: [u8; ED25519_PUBLIC_KEY_LEN] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| KeyError::InvalidKey)?;
        Ok(Self {
            kid,
            pkcs8: Zeroizing::new(der.to_vec()),
            encoding: EncodingKey::from_ed_der(der),
            public,
        })
    }

    /// The key id, written into the `kid` header of every token this key signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as PKCS#8 DER, for encrypted storage only.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The matching public key, for a [`Verifier`].
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_parts(self.kid.clone(), self.public)
    }

    /// The public key as a JWK (`kty: OKP`, `crv: Ed25519`, `kid`, `alg: EdDSA`,
    /// `use: sig`), for `/.well-known/jwks.json`.
    pub fn public_jwk(&self) -> Value {
        public_jwk(&self.kid, &self.public)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key with its key id, used to verify tokens.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: String,
    public: [u8; ED25519_PUBLIC_KEY_LEN],
    decoding: DecodingKey,
}

impl VerifyingKey {
    /// A verifying key from a key id and the raw 32-byte Ed25519 public key.
    pub fn new(kid: String, public_key: [u8; 32]) -> Result<Self, KeyError> {
        check_kid(&kid)?;
        Ok(Self::from_parts(kid, public_key))
    }

    fn from_parts(kid: String, public: [u8; ED25519_PUBLIC_KEY_LEN]) -> Self {
        // For EdDSA, jsonwebtoken's "DER" decoding key is the raw public key.
        let decoding = DecodingKey::from_ed_der(&public);
        Self {
            kid,
            public,
            decoding,
        }
    }

    /// Parses a public JWK as made by [`VerifyingKey::public_jwk`]: `kty: OKP`,
    /// `crv: Ed25519`, a 32-byte `x`, a `kid`; `alg` and `use`, when present, must be
    /// `EdDSA` and `sig`. Private members (`d`) are refused.
    pub fn from_jwk(jwk: &Value) -> Result<Self, KeyError> {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        let well_formed = field("kty") == Some("OKP")
            && field("crv") == Some("Ed25519")
            && jwk.get("d").is_none()
            && jwk.get("alg").is_none_or(|v| v.as_str() == Some("EdDSA"))
            && jwk.get("use").is_none_or(|v| v.as_str() == Some("sig"));
        if !well_formed {
            return Err(KeyError::InvalidKey);
        }
        let kid = field("kid").ok_or(KeyError::InvalidKid)?.to_owned();
        let x = URL_SAFE_NO_PAD
            .decode(field("x").ok_or(KeyError::InvalidKey)?)
            .map_err(|_| KeyError::InvalidKey)?;
        let public: [u8; ED25519_PUBLIC_KEY_LEN] =
            x.as_slice().try_into().map_err(|_| KeyError::InvalidKey)?;
        Self::new(kid, public)
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// The public key as a JWK (see [`SigningKey::public_jwk`]).
    pub fn public_jwk(&self) -> Value {
        public_jwk(&self.kid, &self.public)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn public_jwk(kid: &str, public: &[u8; ED25519_PUBLIC_KEY_LEN]) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(public),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    })
}

/// A JWK Set (`{"keys": [...]}`) of the given public keys, for `/.well-known/jwks.json`.
pub fn jwks(keys: &[VerifyingKey]) -> Value {
    json!({ "keys": keys.iter().map(VerifyingKey::public_jwk).collect::<Vec<_>>() })
}

/// The claims of a bourse access token. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the public URL of this bourse.
    pub iss: String,
    /// Audience: the API the token is for.
    pub aud: String,
    /// Subject: the user id.
    pub sub: String,
    /// Expiry; at most [`MAX_LIFETIME_SECS`] after `iat`.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Unique token id.
    pub jti: String,
    /// Granted scopes, space-separated (`read trade`).
    pub scope: String,
    /// Session id, so that logging out revokes the session's tokens.
    pub sid: String,
    /// When the user last authenticated interactively (password or second factor).
    pub auth_time: i64,
    /// Authentication context class: `pwd`, or `mfa` after a second factor.
    pub acr: String,
    /// Authentication methods used (RFC 8176), e.g. `["pwd", "otp"]`.
    pub amr: Vec<String>,
    /// OAuth client the token was issued to, when not bourse's own front end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl AccessClaims {
    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_ascii_whitespace()
    }

    /// Whether `scope` was granted (exact match of one space-separated entry).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

/// Minting refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// `exp` is not after `iat`, or more than [`MAX_LIFETIME_SECS`] after it: the
    /// verifier would refuse such a token.
    #[error("token lifetime must be between 1 and 600 seconds")]
    InvalidLifetime,
    /// The signing library failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Signs `claims` into a compact JWT with header `{"alg":"EdDSA","typ":"at+jwt","kid":…}`.
pub fn mint(key: &SigningKey, claims: &AccessClaims) -> Result<String, MintError> {
    let lifetime = claims.exp.saturating_sub(claims.iat);
    if !(1..=MAX_LIFETIME_SECS).contains(&lifetime) {
        return Err(MintError::InvalidLifetime);
    }
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(TOKEN_TYPE.to_owned());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding)
        .map_err(|e| MintError::Signing(e.to_string()))
}

/// Why a token was refused. Every variant is RFC 6750 `invalid_token`; the description
/// is short, fixed and never contains the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts, bad JSON, missing or mistyped claims, unknown critical
    /// header, or too long.
    #[error("the access token is malformed")]
    Malformed,
    /// `alg` is not `EdDSA` (`none`, `HS256`, `RS256`, …).
    #[error("the access token's algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// `typ` is missing or not `at+jwt`.
    #[error("the token is not an access token")]
    WrongType,
    /// `kid` is missing or not one of our keys.
    #[error("the access token's signing key is unknown")]
    UnknownKey,
    /// The signature does not verify (forged or tampered token).
    #[error("the access token's signature is invalid")]
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("the access token has expired")]
    Expired,
    /// `nbf`, `iat` or `auth_time` is in the future (beyond the leeway).
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// `exp - iat` is more than [`MAX_LIFETIME_SECS`] or not positive.
    #[error("the access token's lifetime is too long")]
    LifetimeTooLong,
    /// `iss` is not ours.
    #[error("the access token was issued by someone else")]
    WrongIssuer,
    /// `aud` is not this API.
    #[error("the access token is meant for another audience")]
    WrongAudience,
}

impl TokenError {
    /// The RFC 6750 error code for `WWW-Authenticate` and problem responses:
    /// always `invalid_token`.
    pub fn code(self) -> &'static str {
        "invalid_token"
    }

    /// A short human-readable description, safe for `error_description`.
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "the access token is malformed",
            Self::UnsupportedAlgorithm => "the access token's algorithm is not accepted",
            Self::WrongType => "the token is not an access token",
            Self::UnknownKey => "the access token's signing key is unknown",
            Self::BadSignature => "the access token's signature is invalid",
            Self::Expired => "the access token has expired",
            Self::NotYetValid => "the access token is not valid yet",
            Self::LifetimeTooLong => "the access token's lifetime is too long",
            Self::WrongIssuer => "the access token was issued by someone else",
            Self::WrongAudience => "the access token is meant for another audience",
        }
    }

    /// A stable one-word reason for logs and metrics (not for clients).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnsupportedAlgorithm => "algorithm",
            Self::WrongType => "type",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::LifetimeTooLong => "lifetime",
            Self::WrongIssuer => "issuer",
            Self::WrongAudience => "audience",
        }
    }
}

/// The only header members we read. Everything else (`jku`, `x5u`, `jwk`, `x5c`, …) is
/// skipped by serde without being looked at.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

fn is_access_token_type(typ: &str) -> bool {
    // RFC 8725 §3.11 / RFC 9068: `at+jwt`, optionally with the `application/` prefix;
    // media types compare case-insensitively.
    const PREFIX: &str = "application/";
    let bare = match typ.get(..PREFIX.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(PREFIX) => &typ[PREFIX.len()..],
        _ => typ,
    };
    bare.eq_ignore_ascii_case(TOKEN_TYPE)
}

/// Verifies access tokens: ours only (issuer, audience and keys).
#[derive(Debug, Clone)]
pub struct Verifier {
    /// The exact `iss` required.
    pub issuer: String,
    /// The exact `aud` required.
    pub audience: String,
    /// The keys tokens may be signed with: the current signing key and the previous ones
    /// whose tokens may still be alive.
    pub keys: Vec<VerifyingKey>,
}

impl Verifier {
    /// A verifier for tokens issued by `issuer` for `audience`, signed by one of `keys`.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        keys: Vec<VerifyingKey>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            keys,
        }
    }

    /// Verifies `token` at `now_unix` (seconds) and returns its claims. See the module
    /// documentation for the checks and their order.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<AccessClaims, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };

        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| TokenError::Malformed)?;
        let header: JoseHeader =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
        if header.alg != "EdDSA" {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        if !header.typ.as_deref().is_some_and(is_access_token_type) {
            return Err(TokenError::WrongType);
        }
        if header.crit.is_some() {
            // We understand no JWS extensions, so any critical one must be refused
            // (RFC 7515 §4.1.11).
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;

        let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
        match jsonwebtoken::crypto::verify(
            signature_b64,
            signed.as_bytes(),
            &key.decoding,
            Algorithm::EdDSA,
        ) {
            Ok(true) => {}
            Ok(false) => return Err(TokenError::BadSignature),
            Err(_) => return Err(TokenError::Malformed),
        }

        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| TokenError::Malformed)?;
        let claims: AccessClaims =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;

        let lifetime = claims.exp.saturating_sub(claims.iat);
        if !(1..=MAX_LIFETIME_SECS).contains(&lifetime) {
            return Err(TokenError::LifetimeTooLong);
        }
        if now_unix >= claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(TokenError::Expired);
        }
        let latest_past = now_unix.saturating_add(LEEWAY_SECS);
        if claims.nbf > latest_past || claims.iat > latest_past || claims.auth_time > latest_past {
            return Err(TokenError::NotYetValid);
        }
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != self.audience {
            return Err(TokenError::WrongAudience);
        }
        Ok(claims)
    }

    /// [`Verifier::verify`] through `cache`: a token verified before and not yet past its
    /// `exp` costs a SHA-256 and a map lookup. Cached claims are returned only if they
    /// match this verifier's issuer and audience, so one cache may serve several
    /// verifiers.
    pub fn verify_cached(
        &self,
        cache: &VerifiedCache,
        token: &str,
        now_unix: i64,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        if let Some(claims) = cache.get(token, now_unix)
            && claims.iss == self.issuer
            && claims.aud == self.audience
        {
            return Ok(claims);
        }
        let claims = self.verify(token, now_unix)?;
        Ok(cache.insert(token, claims, now_unix))
    }
}

/// A bounded, thread-safe cache of verified claims keyed by SHA-256 of the token.
///
/// An entry is returned only while `now < exp` (no leeway), so the cache never extends a
/// token's life. It does not know about key removal or session revocation: after removing
/// a compromised key call [`VerifiedCache::clear`], and check the session (`sid`) as for
/// uncached tokens.
#[derive(Debug)]
pub struct VerifiedCache {
    capacity: usize,
    inner: RwLock<CacheInner>,
}

#[derive(Debug)]
struct CacheInner {
    entries: HashMap<[u8; 32], Arc<AccessClaims>>,
    /// No entry expires before this, so a sweep before then would find nothing.
    earliest_exp: i64,
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl VerifiedCache {
    /// Entries held by [`VerifiedCache::default`].
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// An empty cache that holds at most `capacity` tokens (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: RwLock::new(CacheInner {
                entries: HashMap::new(),
                earliest_exp: i64::MAX,
            }),
        }
    }

    /// The claims of `token` if it was inserted and `now_unix < exp`.
    pub fn get(&self, token: &str, now_unix: i64) -> Option<Arc<AccessClaims>> {
        let key = cache_key(token);
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner
            .entries
            .get(&key)
            .filter(|claims| now_unix < claims.exp)
            .cloned()
    }

    /// Remembers the verified `claims` of `token` and returns them shared. Call only with
    /// claims from [`Verifier::verify`] for that very token. Claims already past `exp` at
    /// `now_unix` are returned but not stored. When full, expired entries are swept, and
    /// if none has expired an arbitrary entry makes room.
    pub fn insert(&self, token: &str, claims: AccessClaims, now_unix: i64) -> Arc<AccessClaims> {
        let claims = Arc::new(claims);
        if now_unix >= claims.exp {
            return claims;
        }
        let key = cache_key(token);
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&key) {
            if now_unix >= inner.earliest_exp {
                inner.entries.retain(|_, c| now_unix < c.exp);
                inner.earliest_exp = inner
                    .entries
                    .values()
                    .map(|c| c.exp)
                    .min()
                    .unwrap_or(i64::MAX);
            }
            if inner.entries.len() >= self.capacity
                && let Some(victim) = inner.entries.keys().next().copied()
            {
                inner.entries.remove(&victim);
            }
        }
        inner.earliest_exp = inner.earliest_exp.min(claims.exp);
        inner.entries.insert(key, Arc::clone(&claims));
        claims
    }

    /// Number of entries held (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every entry (for example after a signing key was withdrawn).
    pub fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.entries.clear();
        inner.earliest_exp = i64::MAX;
    }
}

fn cache_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://bourse.test";
    const AUD: &str = "bourse-api";
    const NOW: i64 = 1_900_000_000;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: ISS.into(),
            aud: AUD.into(),
            sub: "0190f0c2-7a44-7cc0-9b7e-6f1f4c0a2b11".into(),
            exp: NOW + 300,
            iat: NOW,
            nbf: NOW,
            jti: "jti-1".into(),
            scope: "read trade".into(),
            sid: "sid-1".into(),
            auth_time: NOW - 10,
            acr: "mfa".into(),
            amr: vec!["pwd".into(), "otp".into()],
            client_id: None,
        }
    }

    fn key(kid: &str) -> SigningKey {
        SigningKey::generate(kid.into()).unwrap()
    }

    fn verifier(keys: &[&SigningKey]) -> Verifier {
        Verifier::new(ISS, AUD, keys.iter().map(|k| k.verifying_key()).collect())
    }

    fn b64(v: &impl Serialize) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    /// A token with any header and payload, signed with Ed25519 by `key`.
    fn forge_signed(key: &SigningKey, header: Value, payload: &impl Serialize) -> String {
        let pair = Ed25519KeyPair::from_pkcs8(key.pkcs8_der()).unwrap();
        let signed = format!("{}.{}", b64(&header), b64(payload));
        let sig = pair.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// A token with any header and payload, MACed with HS256 under `secret`.
    fn forge_hs256(secret: &[u8], header: Value, payload: &impl Serialize) -> String {
        use aws_lc_rs::hmac;
        let signed = format!("{}.{}", b64(&header), b64(payload));
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, secret),
            signed.as_bytes(),
        );
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    fn our_header(k: &SigningKey) -> Value {
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": k.kid()})
    }

    #[test]
    fn minted_token_verifies_and_has_the_required_header() {
        let k = key("k1");
        let token = mint(&k, &claims()).unwrap();
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["kid"], "k1");
        let got = verifier(&[&k]).verify(&token, NOW).unwrap();
        assert_eq!(got, claims());
        assert!(got.has_scope("trade"));
        assert!(!got.has_scope("withdraw"));
        assert!(!got.has_scope("rea"));
    }

    #[test]
    fn client_id_round_trips_and_is_omitted_when_absent() {
        let k = key("k1");
        let token = mint(&k, &claims()).unwrap();
        let payload = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        assert!(!String::from_utf8(payload).unwrap().contains("client_id"));
        let mut c = claims();
        c.client_id = Some("partner-1".into());
        let token = mint(&k, &c).unwrap();
        assert_eq!(
            verifier(&[&k])
                .verify(&token, NOW)
                .unwrap()
                .client_id
                .as_deref(),
            Some("partner-1")
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let k = key("k1");
        let header = json!({"alg": "none", "typ": "at+jwt", "kid": "k1"});
        let unsigned = format!("{}.{}.", b64(&header), b64(&claims()));
        assert_eq!(
            verifier(&[&k]).verify(&unsigned, NOW),
            Err(TokenError::UnsupportedAlgorithm)
        );
        let header = json!({"alg": "None", "typ": "at+jwt", "kid": "k1"});
        let unsigned = format!("{}.{}.", b64(&header), b64(&claims()));
        assert_eq!(
            verifier(&[&k]).verify(&unsigned, NOW),
            Err(TokenError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn hs256_keyed_with_our_public_key_is_refused() {
        let k = key("k1");
        let v = verifier(&[&k]);
        let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"});
        // The raw public key, its base64url form and the JWK text: every way an attacker
        // might guess we would feed the public key into an HMAC.
        let jwk_text = k.public_jwk().to_string();
        let x = URL_SAFE_NO_PAD.encode(k.verifying_key().public_key());
        for secret in [
            &k.verifying_key().public_key()[..],
            x.as_bytes(),
            jwk_text.as_bytes(),
        ] {
            let token = forge_hs256(secret, header.clone(), &claims());
            assert_eq!(v.verify(&token, NOW), Err(TokenError::UnsupportedAlgorithm));
        }
    }

    #[test]
    fn rs256_and_other_algorithms_are_refused() {
        let k = key("k1");
        let v = verifier(&[&k]);
        for alg in ["RS256", "ES256", "PS256", "HS512", "Ed25519", "eddsa"] {
            let header = json!({"alg": alg, "typ": "at+jwt", "kid": "k1"});
            let token = format!("{}.{}.c2ln", b64(&header), b64(&claims()));
            assert_eq!(
                v.verify(&token, NOW),
                Err(TokenError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
        // A typical third-party ID token (RS256, typ JWT, foreign kid) never gets far.
        let google = json!({"alg": "RS256", "kid": "6f7254101f56e41cf35c9926de84a2d552b4c6f1", "typ": "JWT"});
        let token = format!("{}.{}.c2ln", b64(&google), b64(&claims()));
        assert!(v.verify(&token, NOW).is_err());
    }

    #[test]
    fn unknown_or_missing_kid_is_refused() {
        let ours = key("k1");
        let theirs = key("k2");
        let token = mint(&theirs, &claims()).unwrap();
        assert_eq!(
            verifier(&[&ours]).verify(&token, NOW),
            Err(TokenError::UnknownKey)
        );
        let token = forge_signed(&ours, json!({"alg": "EdDSA", "typ": "at+jwt"}), &claims());
        assert_eq!(
            verifier(&[&ours]).verify(&token, NOW),
            Err(TokenError::UnknownKey)
        );
        // Signed by another key under our kid: the signature fails.
        let token = forge_signed(&key("k1"), our_header(&ours), &claims());
        assert_eq!(
            verifier(&[&ours]).verify(&token, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn key_url_and_embedded_key_headers_are_ignored() {
        let ours = key("k1");
        let attacker = key("k1");
        let v = verifier(&[&ours]);
        let extra = json!({
            "alg": "EdDSA", "typ": "at+jwt", "kid": "k1",
            "jku": "https://attacker.example/jwks.json",
            "x5u": "https://attacker.example/cert.pem",
            "x5c": ["MIIBfake"],
            "jwk": attacker.public_jwk(),
        });
        // Our own signature with those headers: still fine, nothing was fetched.
        let token = forge_signed(&ours, extra.clone(), &claims());
        assert_eq!(v.verify(&token, NOW), Ok(claims()));
        // The attacker's signature, with their key embedded or linked: refused.
        let token = forge_signed(&attacker, extra, &claims());
        assert_eq!(v.verify(&token, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn typ_must_be_at_jwt() {
        let k = key("k1");
        let v = verifier(&[&k]);
        for typ in [
            json!("JWT"),
            json!("jwt"),
            json!("at+jwt2"),
            json!(""),
            json!(null),
        ] {
            let token = forge_signed(
                &k,
                json!({"alg": "EdDSA", "typ": typ, "kid": "k1"}),
                &claims(),
            );
            assert_eq!(v.verify(&token, NOW), Err(TokenError::WrongType), "{typ}");
        }
        let token = forge_signed(&k, json!({"alg": "EdDSA", "kid": "k1"}), &claims());
        assert_eq!(v.verify(&token, NOW), Err(TokenError::WrongType));
        for typ in ["AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
            let token = forge_signed(
                &k,
                json!({"alg": "EdDSA", "typ": typ, "kid": "k1"}),
                &claims(),
            );
            assert_eq!(v.verify(&token, NOW), Ok(claims()), "{typ}");
        }
    }

    #[test]
    fn duplicate_header_members_are_refused() {
        // A parser that kept the last `alg` would see EdDSA, one that kept the first `none`.
        let k = key("k1");
        let header = r#"{"alg":"none","typ":"at+jwt","kid":"k1","alg":"EdDSA"}"#;
        let signed = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), b64(&claims()));
        let pair = Ed25519KeyPair::from_pkcs8(k.pkcs8_der()).unwrap();
        let sig = URL_SAFE_NO_PAD.encode(pair.sign(signed.as_bytes()).as_ref());
        assert_eq!(
            verifier(&[&k]).verify(&format!("{signed}.{sig}"), NOW),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn critical_headers_are_refused() {
        let k = key("k1");
        let header =
            json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1", "crit": ["b64"], "b64": false});
        let token = forge_signed(&k, header, &claims());
        assert_eq!(
            verifier(&[&k]).verify(&token, NOW),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn expiry_is_checked_with_bounded_leeway() {
        let k = key("k1");
        let v = verifier(&[&k]);
        let c = claims();
        let token = mint(&k, &c).unwrap();
        assert!(v.verify(&token, c.exp - 1).is_ok());
        assert!(v.verify(&token, c.exp + LEEWAY_SECS - 1).is_ok());
        assert_eq!(
            v.verify(&token, c.exp + LEEWAY_SECS),
            Err(TokenError::Expired)
        );
        assert_eq!(v.verify(&token, c.exp + 3600), Err(TokenError::Expired));
    }

    #[test]
    fn not_yet_valid_tokens_are_refused() {
        let k = key("k1");
        let v = verifier(&[&k]);
        let mut c = claims();
        c.nbf = NOW + LEEWAY_SECS + 1;
        let token = mint(&k, &c).unwrap();
        assert_eq!(v.verify(&token, NOW), Err(TokenError::NotYetValid));
        assert!(v.verify(&token, NOW + 1).is_ok());

        let mut c = claims();
        c.iat = NOW + 120;
        c.exp = NOW + 300;
        let token = mint(&k, &c).unwrap();
        assert_eq!(v.verify(&token, NOW), Err(TokenError::NotYetValid));

        let mut c = claims();
        c.auth_time = NOW + 120;
        let token = mint(&k, &c).unwrap();
        assert_eq!(v.verify(&token, NOW), Err(TokenError::NotYetValid));

        let mut c = claims();
        c.nbf = NOW + LEEWAY_SECS;
        let token = mint(&k, &c).unwrap();
        assert!(v.verify(&token, NOW).is_ok(), "within the leeway");
    }

    #[test]
    fn issuer_and_audience_must_match_exactly() {
        let k = key("k1");
        let v = verifier(&[&k]);
        for iss in [
            "https://bourse.test/",
            "https://evil.test",
            "HTTPS://BOURSE.TEST",
        ] {
            let mut c = claims();
            c.iss = iss.into();
            let token = mint(&k, &c).unwrap();
            assert_eq!(v.verify(&token, NOW), Err(TokenError::WrongIssuer), "{iss}");
        }
        for aud in ["bourse-admin", "bourse-api ", ""] {
            let mut c = claims();
            c.aud = aud.into();
            let token = mint(&k, &c).unwrap();
            assert_eq!(
                v.verify(&token, NOW),
                Err(TokenError::WrongAudience),
                "{aud:?}"
            );
        }
        // An audience array (even one containing ours) is not the exact string we mint.
        let mut c = serde_json::to_value(claims()).unwrap();
        c["aud"] = json!([AUD, "other"]);
        let token = forge_signed(&k, our_header(&k), &c);
        assert_eq!(v.verify(&token, NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn tampered_payload_fails_the_signature() {
        let k = key("k1");
        let token = mint(&k, &claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut c = claims();
        c.scope = "read trade withdraw".into();
        let tampered = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
        assert_eq!(
            verifier(&[&k]).verify(&tampered, NOW),
            Err(TokenError::BadSignature)
        );
        // A tampered header (typ changed) also breaks the signature.
        let header = b64(&json!({"alg": "EdDSA", "typ": "application/at+jwt", "kid": "k1"}));
        let tampered = format!("{header}.{}.{}", parts[1], parts[2]);
        assert_eq!(
            verifier(&[&k]).verify(&tampered, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn truncated_and_malformed_tokens_are_refused() {
        let k = key("k1");
        let v = verifier(&[&k]);
        let token = mint(&k, &claims()).unwrap();
        let (signed, sig) = token.rsplit_once('.').unwrap();
        // Cut inside the signature: either not base64 any more or a wrong signature.
        for cut in 1..8 {
            assert!(matches!(
                v.verify(&token[..token.len() - cut], NOW),
                Err(TokenError::BadSignature | TokenError::Malformed)
            ));
        }
        assert_eq!(
            v.verify(&format!("{signed}."), NOW),
            Err(TokenError::BadSignature)
        );
        assert_eq!(v.verify(signed, NOW), Err(TokenError::Malformed));
        assert_eq!(
            v.verify(&format!("{token}.{sig}"), NOW),
            Err(TokenError::Malformed)
        );
        for bad in [
            "",
            ".",
            "..",
            "a.b.c",
            "Bearer x",
            &"a".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert_eq!(v.verify(bad, NOW), Err(TokenError::Malformed), "{bad}");
        }
        // Signature with a bad base64 character.
        assert_eq!(
            v.verify(&format!("{signed}.{}!", &sig[1..]), NOW),
            Err(TokenError::Malformed)
        );
        // Correctly signed but a claim missing or mistyped.
        let mut c = serde_json::to_value(claims()).unwrap();
        c.as_object_mut().unwrap().remove("sid");
        assert_eq!(
            v.verify(&forge_signed(&k, our_header(&k), &c), NOW),
            Err(TokenError::Malformed)
        );
        let mut c = serde_json::to_value(claims()).unwrap();
        c["exp"] = json!("1900000300");
        assert_eq!(
            v.verify(&forge_signed(&k, our_header(&k), &c), NOW),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn lifetime_over_ten_minutes_is_refused() {
        let k = key("k1");
        let v = verifier(&[&k]);
        let mut c = claims();
        c.exp = c.iat + MAX_LIFETIME_SECS + 1;
        assert_eq!(mint(&k, &c), Err(MintError::InvalidLifetime));
        let token = forge_signed(&k, our_header(&k), &c);
        assert_eq!(v.verify(&token, NOW), Err(TokenError::LifetimeTooLong));
        c.exp = c.iat + MAX_LIFETIME_SECS;
        assert!(v.verify(&mint(&k, &c).unwrap(), NOW).is_ok());
        c.exp = c.iat;
        assert_eq!(mint(&k, &c), Err(MintError::InvalidLifetime));
        assert_eq!(
            v.verify(&forge_signed(&k, our_header(&k), &c), NOW),
            Err(TokenError::LifetimeTooLong)
        );
    }

    #[test]
    fn rotation_keeps_old_keys_for_verification() {
        let old = key("2026-01");
        let new = key("2026-02");
        let old_token = mint(&old, &claims()).unwrap();
        let new_token = mint(&new, &claims()).unwrap();
        let both = verifier(&[&new, &old]);
        assert!(both.verify(&old_token, NOW).is_ok());
        assert!(both.verify(&new_token, NOW).is_ok());
        let only_new = verifier(&[&new]);
        assert_eq!(
            only_new.verify(&old_token, NOW),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn pkcs8_round_trips_and_garbage_is_refused() {
        let k = key("k1");
        let again = SigningKey::from_pkcs8("k1".into(), k.pkcs8_der()).unwrap();
        assert_eq!(
            again.verifying_key().public_key(),
            k.verifying_key().public_key()
        );
        let token = mint(&again, &claims()).unwrap();
        assert!(verifier(&[&k]).verify(&token, NOW).is_ok());
        assert_eq!(
            SigningKey::from_pkcs8("k1".into(), b"not a key").unwrap_err(),
            KeyError::InvalidKey
        );
        assert!(!format!("{k:?}").contains(&URL_SAFE_NO_PAD.encode(k.pkcs8_der())));
        for kid in ["", "has space", "a/b", &"x".repeat(65)] {
            assert_eq!(
                SigningKey::generate(kid.into()).unwrap_err(),
                KeyError::InvalidKid
            );
        }
    }

    #[test]
    fn public_jwk_is_an_okp_ed25519_key_and_round_trips() {
        let k = key("k1");
        let jwk = k.public_jwk();
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], "k1");
        assert!(jwk.get("d").is_none());
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        assert_eq!(x.as_slice(), k.verifying_key().public_key());
        let parsed = VerifyingKey::from_jwk(&jwk).unwrap();
        let token = mint(&k, &claims()).unwrap();
        assert!(
            Verifier::new(ISS, AUD, vec![parsed])
                .verify(&token, NOW)
                .is_ok()
        );
        let set = jwks(&[k.verifying_key()]);
        assert_eq!(set["keys"][0], jwk);
        let mut rsa = jwk.clone();
        rsa["kty"] = json!("RSA");
        assert_eq!(
            VerifyingKey::from_jwk(&rsa).unwrap_err(),
            KeyError::InvalidKey
        );
        let mut private = jwk.clone();
        private["d"] = json!("AAAA");
        assert_eq!(
            VerifyingKey::from_jwk(&private).unwrap_err(),
            KeyError::InvalidKey
        );
    }

    #[test]
    fn every_error_is_invalid_token_with_a_fixed_description() {
        let all = [
            TokenError::Malformed,
            TokenError::UnsupportedAlgorithm,
            TokenError::WrongType,
            TokenError::UnknownKey,
            TokenError::BadSignature,
            TokenError::Expired,
            TokenError::NotYetValid,
            TokenError::LifetimeTooLong,
            TokenError::WrongIssuer,
            TokenError::WrongAudience,
        ];
        let mut reasons = std::collections::HashSet::new();
        for e in all {
            assert_eq!(e.code(), "invalid_token");
            assert_eq!(e.to_string(), e.description());
            assert!(reasons.insert(e.reason()), "{e:?}");
        }
    }

    #[test]
    fn cache_returns_verified_claims_until_exp_and_never_after() {
        let k = key("k1");
        let v = verifier(&[&k]);
        let cache = VerifiedCache::default();
        let c = claims();
        let token = mint(&k, &c).unwrap();
        assert!(cache.get(&token, NOW).is_none());
        let first = v.verify_cached(&cache, &token, NOW).unwrap();
        assert_eq!(*first, c);
        assert_eq!(cache.len(), 1);
        let hit = cache.get(&token, NOW + 10).unwrap();
        assert!(Arc::ptr_eq(&first, &hit));
        assert!(cache.get(&token, c.exp - 1).is_some());
        assert!(cache.get(&token, c.exp).is_none());
        assert!(cache.get(&token, c.exp + 1000).is_none());
        // Through the verifier past exp + leeway: refused, not served from the cache.
        assert_eq!(
            v.verify_cached(&cache, &token, c.exp + LEEWAY_SECS),
            Err(TokenError::Expired)
        );
        // Inside the leeway the token still verifies but is not cached any more.
        let fresh = VerifiedCache::default();
        assert!(v.verify_cached(&fresh, &token, c.exp + 1).is_ok());
        assert!(fresh.is_empty());
        // Another token is another entry.
        let mut other = claims();
        other.jti = "jti-2".into();
        assert!(cache.get(&mint(&k, &other).unwrap(), NOW).is_none());
    }

    #[test]
    fn cache_does_not_leak_claims_across_audiences() {
        let k = key("k1");
        let public = verifier(&[&k]);
        let admin = Verifier::new(ISS, "bourse-admin", vec![k.verifying_key()]);
        let cache = VerifiedCache::default();
        let token = mint(&k, &claims()).unwrap();
        assert!(public.verify_cached(&cache, &token, NOW).is_ok());
        assert_eq!(
            admin.verify_cached(&cache, &token, NOW),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn cache_is_bounded_and_sweeps_expired_entries() {
        let cache = VerifiedCache::new(8);
        for i in 0..20 {
            let mut c = claims();
            c.exp = NOW + 10 + i;
            cache.insert(&format!("token-{i}"), c, NOW);
            assert!(cache.len() <= 8);
        }
        assert_eq!(cache.len(), 8);
        // The newest insert always survives.
        assert!(cache.get("token-19", NOW).is_some());
        // Once all have expired, the next insert sweeps them.
        let later = NOW + 1000;
        let mut c = claims();
        c.iat = later;
        c.exp = later + 300;
        cache.insert("late", c, later);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("late", later).is_some());
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn cache_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<VerifiedCache>();
        assert_send_sync::<Verifier>();
        assert_send_sync::<SigningKey>();

        let k = key("k1");
        let v = Arc::new(verifier(&[&k]));
        let cache = Arc::new(VerifiedCache::new(64));
        let tokens: Vec<String> = (0..8)
            .map(|i| {
                let mut c = claims();
                c.jti = format!("jti-{i}");
                mint(&k, &c).unwrap()
            })
            .collect();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (v, cache, tokens) = (Arc::clone(&v), Arc::clone(&cache), &tokens);
                s.spawn(move || {
                    for round in 0..5 {
                        for (i, t) in tokens.iter().enumerate() {
                            let c = v.verify_cached(&cache, t, NOW + round).unwrap();
                            assert_eq!(c.jti, format!("jti-{i}"));
                        }
                    }
                });
            }
        });
        assert_eq!(cache.len(), tokens.len());
    }
}
