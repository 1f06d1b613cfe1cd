//! Key management: the master keyring that encrypts secrets at rest, and the JWT
//! signing keys (stored encrypted under it).

use std::path::Path;
use std::sync::{Arc, RwLock};

use bourse_auth::jwt::{self, AccessClaims, SigningKey, TokenError, VerifiedCache, Verifier};
use bourse_auth::secretbox::{self, Aad, Keyring, MasterKey};
use bourse_store::{SigningKeyRecord, Store};
use secrecy::{ExposeSecret, SecretString};
use time::{Duration, OffsetDateTime};

use crate::{IdentityConfig, IdentityError};

fn signing_aad(kid: &str) -> Aad<'_> {
    Aad {
        table: "signing_keys",
        row_id: kid,
        column: "private_enc",
    }
}

fn new_key_id(prefix: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    // The time-ordered head plus random tail keeps ids sortable and unique.
    format!("{prefix}{}", &id[..20])
}

fn parse_keyring(text: &str) -> Result<Keyring, IdentityError> {
    let mut keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(MasterKey::from_file_contents);
    let current = keys
        .next()
        .ok_or(IdentityError::Internal)?
        .map_err(|_| IdentityError::Internal)?;
    let old = keys
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| IdentityError::Internal)?;
    Keyring::new(current, old).map_err(|_| IdentityError::Internal)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The master keyring: from `inline` (one `id:base64` key per line, current first; e.g.
/// the `BOURSE_MASTER_KEY` environment variable) or from the key file at `path`, which
/// is created with a fresh key (mode 0600) when missing.
pub fn load_or_create_keyring(
    path: &Path,
    inline: Option<&SecretString>,
) -> Result<Keyring, IdentityError> {
    if let Some(text) = inline {
        return parse_keyring(text.expose_secret());
    }
    if path.exists() {
        let text = SecretString::from(std::fs::read_to_string(path).map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "cannot read the master key file");
            IdentityError::Internal
        })?);
        return parse_keyring(text.expose_secret());
    }
    let key = MasterKey::generate(new_key_id("mk")).map_err(|_| IdentityError::Internal)?;
    write_private(path, key.to_file_contents().expose_secret()).map_err(|e| {
        tracing::error!(path = %path.display(), error = %e, "cannot write the master key file");
        IdentityError::Internal
    })?;
    tracing::info!(path = %path.display(), key_id = key.id(), "generated a master key");
    Keyring::new(key, Vec::new()).map_err(|_| IdentityError::Internal)
}

/// What a master-key rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    /// TOTP secrets re-encrypted.
    pub totp_secrets: usize,
    /// Signing keys re-encrypted.
    pub signing_keys: usize,
}

/// Adds a new master key to the key file (old keys stay, for blobs sealed elsewhere in
/// the meantime) and re-encrypts every stored secret under it. Running servers must be
/// restarted to pick up the new key.
pub async fn rotate_master_key(
    path: &Path,
    store: &Store,
) -> Result<(String, Rotated), IdentityError> {
    let old_text = SecretString::from(std::fs::read_to_string(path).map_err(|e| {
        tracing::error!(path = %path.display(), error = %e, "cannot read the master key file");
        IdentityError::Internal
    })?);
    let fresh = MasterKey::generate(new_key_id("mk")).map_err(|_| IdentityError::Internal)?;
    let new_id = fresh.id().to_owned();
    let new_text = SecretString::from(format!(
        "{}{}",
        fresh.to_file_contents().expose_secret(),
        old_text.expose_secret()
    ));
    let keyring = parse_keyring(new_text.expose_secret())?;
    write_private(path, new_text.expose_secret()).map_err(|_| IdentityError::Internal)?;
    let mut done = Rotated {
        totp_secrets: 0,
        signing_keys: 0,
    };
    for (user_id, blob) in store.list_totp_secrets().await? {
        let aad = Aad {
            table: "totp",
            row_id: &user_id,
            column: "secret_enc",
        };
        if secretbox::needs_rotation(&keyring, &blob) {
            let resealed =
                secretbox::reseal(&keyring, &blob, &aad).map_err(|_| IdentityError::Internal)?;
            if store
                .replace_totp_secret_blob(&user_id, &blob, &resealed)
                .await?
            {
                done.totp_secrets += 1;
            }
        }
    }
    for k in store.list_signing_keys().await? {
        if secretbox::needs_rotation(&keyring, &k.private_enc) {
            let resealed = secretbox::reseal(&keyring, &k.private_enc, &signing_aad(&k.kid))
                .map_err(|_| IdentityError::Internal)?;
            if store
                .replace_signing_key_blob(&k.kid, &k.private_enc, &resealed)
                .await?
            {
                done.signing_keys += 1;
            }
        }
    }
    Ok((new_id, done))
}

struct KeyState {
    signing: SigningKey,
    verifier: Verifier,
}

/// The current signing key and every key that may still verify live tokens.
pub struct KeyStore {
    state: RwLock<Arc<KeyState>>,
}

impl KeyStore {
    fn current(&self) -> Arc<KeyState> {
        match self.state.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    async fn build(
        store: &Store,
        keyring: &Keyring,
        cfg: &IdentityConfig,
        now: OffsetDateTime,
    ) -> Result<KeyState, IdentityError> {
        let mut records = store.list_signing_keys().await?;
        if !records.iter().any(|k| k.retired_at.is_none()) {
            let record = Self::create(store, keyring, now).await?;
            records.insert(0, record);
        }
        let mut signing = None;
        let mut verifying = Vec::new();
        // Newest first: the first unretired key signs.
        for r in &records {
            if r.expires_at.is_some_and(|e| e <= now) {
                continue;
            }
            let der =
                secretbox::open(keyring, &r.private_enc, &signing_aad(&r.kid)).map_err(|e| {
                    tracing::error!(kid = %r.kid, error = %e, "cannot decrypt a signing key");
                    IdentityError::Internal
                })?;
            let key =
                SigningKey::from_pkcs8(r.kid.clone(), &der).map_err(|_| IdentityError::Internal)?;
            verifying.push(key.verifying_key());
            if signing.is_none() && r.retired_at.is_none() {
                signing = Some(key);
            }
        }
        let signing = signing.ok_or(IdentityError::Internal)?;
        Ok(KeyState {
            signing,
            verifier: Verifier::new(cfg.issuer.clone(), cfg.audience.clone(), verifying),
        })
    }

    async fn create(
        store: &Store,
        keyring: &Keyring,
        now: OffsetDateTime,
    ) -> Result<SigningKeyRecord, IdentityError> {
        let key = SigningKey::generate(new_key_id("k")).map_err(|_| IdentityError::Internal)?;
        let private_enc = secretbox::seal(keyring, key.pkcs8_der(), &signing_aad(key.kid()))
            .map_err(|_| IdentityError::Internal)?;
        let record = SigningKeyRecord {
            kid: key.kid().to_owned(),
            private_enc,
            public_jwk: key.public_jwk().to_string(),
            created_at: now,
            retired_at: None,
            expires_at: None,
        };
        store.insert_signing_key(&record).await?;
        tracing::info!(kid = %record.kid, "generated a signing key");
        Ok(record)
    }

    /// Loads the keys, making the first one when there is none.
    pub(crate) async fn load(
        store: &Store,
        keyring: &Keyring,
        cfg: &IdentityConfig,
        now: OffsetDateTime,
    ) -> Result<Self, IdentityError> {
        let state = Self::build(store, keyring, cfg, now).await?;
        Ok(Self {
            state: RwLock::new(Arc::new(state)),
        })
    }

    /// Reloads from the store (another node may have rotated).
    pub(crate) async fn reload(
        &self,
        store: &Store,
        keyring: &Keyring,
        cfg: &IdentityConfig,
        now: OffsetDateTime,
    ) -> Result<(), IdentityError> {
        let fresh = Arc::new(Self::build(store, keyring, cfg, now).await?);
        match self.state.write() {
            Ok(mut g) => *g = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
        Ok(())
    }

    /// Makes a new current key; the others stop signing now and stop verifying once
    /// every token they signed has expired.
    pub(crate) async fn rotate(
        &self,
        store: &Store,
        keyring: &Keyring,
        cfg: &IdentityConfig,
        now: OffsetDateTime,
    ) -> Result<String, IdentityError> {
        let record = Self::create(store, keyring, now).await?;
        let verify_until = now + cfg.access_ttl + Duration::seconds(jwt::LEEWAY_SECS);
        store
            .retire_signing_keys_except(&record.kid, now, verify_until)
            .await?;
        self.reload(store, keyring, cfg, now).await?;
        Ok(record.kid)
    }

    /// Signs claims with the current key.
    pub(crate) fn mint(&self, claims: &AccessClaims) -> Result<String, IdentityError> {
        jwt::mint(&self.current().signing, claims).map_err(|_| IdentityError::Internal)
    }

    /// Verifies through the cache.
    pub(crate) fn verify_cached(
        &self,
        cache: &VerifiedCache,
        token: &str,
        now_unix: i64,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        self.current()
            .verifier
            .verify_cached(cache, token, now_unix)
    }

    /// Verifies without the cache.
    pub(crate) fn verify(&self, token: &str, now_unix: i64) -> Result<AccessClaims, TokenError> {
        self.current().verifier.verify(token, now_unix)
    }

    /// The public keys as a JWK Set.
    pub(crate) fn jwks(&self) -> serde_json::Value {
        jwt::jwks(&self.current().verifier.keys)
    }
}
