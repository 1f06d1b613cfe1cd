//! The identity service of bourse: who may do what.
//!
//! Flows over the pure primitives of `bourse-auth` and the storage of `bourse-store`:
//! registration, login (one step, or two with TOTP), refresh-token rotation with reuse
//! detection, logout and sessions, TOTP enrolment with recovery codes, step-up (RFC 9470),
//! password change, signing-key rotation and access-token verification.
//!
//! Time is always an argument (`now`), never read here, so every flow is testable.
//! Password hashing runs on the blocking pool: Argon2id takes tens of milliseconds.

pub mod admin_keys;
mod error;
pub mod external;
mod keys;
pub mod oidc;
mod revocation;

use std::sync::Arc;

use bourse_auth::jwt::{self, AccessClaims, VerifiedCache};
use bourse_auth::opaque::{self, OpaqueToken};
use bourse_auth::password;
use bourse_auth::recovery;
use bourse_auth::secretbox::{self, Aad, Keyring};
use bourse_auth::totp::{self, TotpError, TotpSecret};
use bourse_store::{
    BackoffPolicy, RotateOutcome, SessionRecord, Store, StoreError, UserRecord, UserStatus,
};
use secrecy::{ExposeSecret, SecretString};
use time::{Duration, OffsetDateTime};

pub use error::IdentityError;
pub use keys::{KeyStore, Rotated, load_or_create_keyring, rotate_master_key};
pub use revocation::RevokedSessions;

/// Scopes of a first-party login: everything a user may do themself.
pub const USER_SCOPES: &str = "read trade wallet";
/// `acr` after a password only.
pub const ACR_PASSWORD: &str = "pwd";
/// `acr` after a second factor.
pub const ACR_MFA: &str = "mfa";

/// Settings of the identity service.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// `iss` of our access tokens (the public base URL).
    pub issuer: String,
    /// `aud` of our access tokens.
    pub audience: String,
    /// Access-token lifetime (at most ten minutes).
    pub access_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_ttl: Duration,
    /// How long the second login step may wait for its code.
    pub mfa_challenge_ttl: Duration,
    /// Wrong codes before two-factor locks.
    pub totp_max_attempts: i64,
    /// How long two-factor stays locked.
    pub totp_lock: Duration,
    /// Backoff after failed logins, per account.
    pub account_backoff: BackoffPolicy,
    /// Backoff after failed logins, per client IP.
    pub ip_backoff: BackoffPolicy,
    /// Name shown in authenticator apps.
    pub totp_issuer: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            issuer: "https://localhost:8443".into(),
            audience: "bourse-api".into(),
            access_ttl: Duration::minutes(10),
            refresh_ttl: Duration::days(30),
            mfa_challenge_ttl: Duration::minutes(5),
            totp_max_attempts: 5,
            totp_lock: Duration::minutes(15),
            account_backoff: BackoffPolicy {
                window: Duration::minutes(15),
                threshold: 5,
                base_lock: Duration::seconds(30),
                max_lock: Duration::minutes(15),
            },
            ip_backoff: BackoffPolicy {
                window: Duration::minutes(15),
                threshold: 20,
                base_lock: Duration::seconds(30),
                max_lock: Duration::minutes(15),
            },
            totp_issuer: "bourse".into(),
        }
    }
}

/// Tokens handed to a client after a login, second step or refresh.
#[derive(Debug)]
pub struct Tokens {
    /// The JWT access token.
    pub access_token: SecretString,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The opaque refresh token (rotated on every use).
    pub refresh_token: SecretString,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The session the tokens belong to.
    pub session_id: String,
}

/// What a correct password leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// No second factor: tokens.
    Tokens(Tokens),
    /// Two-factor is on: send the code with this challenge.
    MfaRequired {
        /// Opaque, single-use challenge.
        challenge: SecretString,
        /// Seconds the challenge stays valid.
        expires_in: i64,
    },
}

/// Where a request comes from, recorded on the session.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// Client IP address.
    pub ip: Option<String>,
    /// `User-Agent`, truncated by the store.
    pub user_agent: Option<String>,
}

/// A new TOTP enrolment, shown once.
#[derive(Debug)]
pub struct Enrolment {
    /// Base32 secret for manual entry.
    pub secret: SecretString,
    /// `otpauth://` URI.
    pub otpauth_uri: SecretString,
    /// QR code of the URI as SVG.
    pub qr_svg: SecretString,
}

/// The identity service. Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cfg: IdentityConfig,
    keyring: Arc<Keyring>,
    keys: KeyStore,
    cache: VerifiedCache,
    revoked: RevokedSessions,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("issuer", &self.inner.cfg.issuer)
            .finish()
    }
}

fn totp_aad(user_id: &str) -> Aad<'_> {
    Aad {
        table: "totp",
        row_id: user_id,
        column: "secret_enc",
    }
}

/// Normalises an email address: trimmed and lower-cased; refused unless it has one `@`
/// with a plausible local part and domain, printable ASCII, at most 254 characters.
pub fn normalise_email(email: &str) -> Result<String, IdentityError> {
    let e = email.trim().to_ascii_lowercase();
    let ok = (3..=254).contains(&e.len())
        && e.bytes().all(|b| b.is_ascii_graphic())
        && match e.split_once('@') {
            Some((local, domain)) => {
                (1..=64).contains(&local.len())
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if ok {
        Ok(e)
    } else {
        Err(IdentityError::InvalidEmail)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, IdentityError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| IdentityError::Internal)
}

impl Identity {
    /// Builds the service: loads (or makes, on first start) the signing keys.
    pub async fn new(
        store: Store,
        cfg: IdentityConfig,
        keyring: Arc<Keyring>,
        now: OffsetDateTime,
    ) -> Result<Self, IdentityError> {
        let keys = KeyStore::load(&store, &keyring, &cfg, now).await?;
        let revoked = RevokedSessions::default();
        revoked.refresh(&store, now, cfg.access_ttl).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                cfg,
                keyring,
                keys,
                cache: VerifiedCache::new(100_000),
                revoked,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &IdentityConfig {
        &self.inner.cfg
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Reloads signing keys and the revoked-session deny list (other nodes may have
    /// rotated keys or revoked sessions). Called periodically by the server.
    pub async fn refresh(&self, now: OffsetDateTime) -> Result<(), IdentityError> {
        let i = &self.inner;
        i.keys.reload(&i.store, &i.keyring, &i.cfg, now).await?;
        i.revoked.refresh(&i.store, now, i.cfg.access_ttl).await
    }

    /// The public keys, as a JWK Set.
    pub fn jwks(&self) -> serde_json::Value {
        self.inner.keys.jwks()
    }

    /// Adds a new signing key and makes it current; old keys keep verifying until the
    /// tokens they signed have expired.
    pub async fn rotate_signing_key(&self, now: OffsetDateTime) -> Result<String, IdentityError> {
        let i = &self.inner;
        i.keys.rotate(&i.store, &i.keyring, &i.cfg, now).await
    }

    /// Verifies an access token: signature, claims, and that its session is not revoked.
    pub fn verify_access_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Arc<AccessClaims>, IdentityError> {
        let i = &self.inner;
        let claims = i
            .keys
            .verify_cached(&i.cache, token, now.unix_timestamp())
            .map_err(IdentityError::Token)?;
        if i.revoked.contains(&claims.sid) {
            return Err(IdentityError::SessionRevoked);
        }
        Ok(claims)
    }

    /// Verifies without the cache (for the benchmark comparing both).
    pub fn verify_access_token_uncached(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<AccessClaims, IdentityError> {
        self.inner
            .keys
            .verify(token, now.unix_timestamp())
            .map_err(IdentityError::Token)
    }

    /// Creates an account.
    pub async fn register(
        &self,
        email: &str,
        password: SecretString,
        now: OffsetDateTime,
    ) -> Result<UserRecord, IdentityError> {
        let email = normalise_email(email)?;
        // Reserved for accounts made without a verified email (see `external`).
        if email.ends_with(&format!("@{}", external::PLACEHOLDER_EMAIL_DOMAIN)) {
            return Err(IdentityError::InvalidEmail);
        }
        let local = email.split('@').next().unwrap_or_default().to_owned();
        password::check_new_password(password.expose_secret(), &[&local, &email])
            .map_err(IdentityError::WeakPassword)?;
        let hash = blocking(move || password::hash_password(password.expose_secret()))
            .await?
            .map_err(|_| IdentityError::Internal)?;
        let user = UserRecord {
            id: uuid::Uuid::now_v7().to_string(),
            email,
            password_hash: hash,
            status: UserStatus::Active,
            created_at: now,
            password_changed_at: now,
            mfa_changed_at: None,
        };
        match self.inner.store.insert_user(&user).await {
            Ok(()) => Ok(user),
            Err(StoreError::Conflict) => Err(IdentityError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn throttled_until(
        &self,
        keys: &[String],
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>, IdentityError> {
        let mut until = None;
        for k in keys {
            let t = self.inner.store.login_throttle(k, now).await?;
            until = until.max(t.locked_until);
        }
        Ok(until)
    }

    async fn record_failure(&self, email: &str, client: &ClientInfo, now: OffsetDateTime) {
        let s = &self.inner.store;
        let cfg = &self.inner.cfg;
        // Failing to record a failure must not turn a wrong password into a 500.
        if let Err(e) = s
            .record_login_failure(&format!("acct:{email}"), now, &cfg.account_backoff)
            .await
        {
            tracing::warn!(error = %e, "could not record a login failure");
        }
        if let Some(ip) = &client.ip
            && let Err(e) = s
                .record_login_failure(&format!("ip:{ip}"), now, &cfg.ip_backoff)
                .await
        {
            tracing::warn!(error = %e, "could not record a login failure");
        }
    }

    /// First login step: email and password. Unknown accounts do the same work (a
    /// dummy Argon2id verification) and get the same answer as wrong passwords.
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        client: &ClientInfo,
        now: OffsetDateTime,
    ) -> Result<LoginOutcome, IdentityError> {
        // A malformed email cannot match an account; answer as for a wrong password.
        let email = normalise_email(email).unwrap_or_else(|_| email.trim().to_ascii_lowercase());
        let mut keys = vec![format!("acct:{email}")];
        if let Some(ip) = &client.ip {
            keys.push(format!("ip:{ip}"));
        }
        if let Some(until) = self.throttled_until(&keys, now).await? {
            return Err(IdentityError::Throttled { until });
        }
        let user = self.inner.store.find_user_by_email(&email).await?;
        let ok = match &user {
            Some(u) => {
                let phc = u.password_hash.clone();
                blocking(move || password::verify_password(&phc, password.expose_secret())).await?
            }
            None => {
                blocking(move || password::verify_against_dummy(password.expose_secret())).await?;
                false
            }
        };
        let user = match (ok, user) {
            (true, Some(u)) => u,
            _ => {
                self.record_failure(&email, client, now).await;
                return Err(IdentityError::InvalidCredentials);
            }
        };
        if user.status == UserStatus::Frozen {
            return Err(IdentityError::AccountFrozen);
        }
        self.inner
            .store
            .clear_login_failures(&format!("acct:{email}"))
            .await?;
        let totp = self.inner.store.get_totp(&user.id).await?;
        if totp.is_some_and(|t| t.confirmed_at.is_some()) {
            let challenge = OpaqueToken::generate(opaque::MFA_CHALLENGE_PREFIX);
            let ttl = self.inner.cfg.mfa_challenge_ttl;
            self.inner
                .store
                .insert_mfa_challenge(&challenge.hash, &user.id, now + ttl)
                .await?;
            return Ok(LoginOutcome::MfaRequired {
                challenge: challenge.secret,
                expires_in: ttl.whole_seconds(),
            });
        }
        let tokens = self
            .open_session(&user.id, ACR_PASSWORD, &["pwd"], client, now)
            .await?;
        Ok(LoginOutcome::Tokens(tokens))
    }

    /// Second login step: the challenge and a TOTP or recovery code.
    pub async fn login_mfa(
        &self,
        challenge: &str,
        code: &str,
        client: &ClientInfo,
        now: OffsetDateTime,
    ) -> Result<Tokens, IdentityError> {
        let s = &self.inner.store;
        let hash = OpaqueToken::hash(opaque::MFA_CHALLENGE_PREFIX, challenge)
            .ok_or(IdentityError::InvalidChallenge)?;
        let c = s
            .get_mfa_challenge(&hash, now)
            .await?
            .ok_or(IdentityError::InvalidChallenge)?;
        if c.attempts >= self.inner.cfg.totp_max_attempts {
            s.consume_mfa_challenge(&hash, now).await?;
            return Err(IdentityError::InvalidChallenge);
        }
        let method = match self.check_second_factor(&c.user_id, code, now).await {
            Ok(m) => m,
            Err(e) => {
                s.bump_mfa_challenge_attempts(&hash).await?;
                return Err(e);
            }
        };
        if !s.consume_mfa_challenge(&hash, now).await? {
            return Err(IdentityError::InvalidChallenge);
        }
        let user = s
            .get_user(&c.user_id)
            .await?
            .ok_or(IdentityError::InvalidChallenge)?;
        if user.status == UserStatus::Frozen {
            return Err(IdentityError::AccountFrozen);
        }
        // The first factor was a password or an external provider (`external`).
        let first = match c.first_factor.as_str() {
            external::AMR_EXTERNAL => external::AMR_EXTERNAL,
            _ => "pwd",
        };
        self.open_session(&user.id, ACR_MFA, &[first, method], client, now)
            .await
    }

    /// The user a live second-factor challenge belongs to, for the audit record of a
    /// failed attempt; `None` for an unknown, used or expired challenge.
    pub async fn mfa_challenge_user(&self, challenge: &str, now: OffsetDateTime) -> Option<String> {
        let hash = OpaqueToken::hash(opaque::MFA_CHALLENGE_PREFIX, challenge)?;
        let c = self
            .inner
            .store
            .get_mfa_challenge(&hash, now)
            .await
            .ok()??;
        Some(c.user_id)
    }

    /// Checks a TOTP code or a recovery code and returns the RFC 8176 method: `otp` for
    /// both (a recovery code is a one-time password too; RFC 8176 has no finer value).
    /// Every failure counts towards the two-factor lock.
    async fn check_second_factor(
        &self,
        user_id: &str,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<&'static str, IdentityError> {
        let s = &self.inner.store;
        let cfg = &self.inner.cfg;
        let rec = s
            .get_totp(user_id)
            .await?
            .filter(|t| t.confirmed_at.is_some())
            .ok_or(IdentityError::MfaNotEnrolled)?;
        if let Some(until) = rec.locked_until.filter(|u| *u > now) {
            return Err(IdentityError::MfaLocked { until });
        }
        let code = code.trim();
        let looks_like_totp = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
        let accepted = if looks_like_totp {
            let plain = secretbox::open(&self.inner.keyring, &rec.secret_enc, &totp_aad(user_id))
                .map_err(|_| IdentityError::Internal)?;
            let secret = TotpSecret::from_bytes(&plain).map_err(|_| IdentityError::Internal)?;
            let last = rec.last_used_step.and_then(|s| u64::try_from(s).ok());
            match totp::verify(&secret, code, now.unix_timestamp(), last) {
                Ok(step) => {
                    let step = i64::try_from(step).map_err(|_| IdentityError::Internal)?;
                    if s.record_totp_success(user_id, step).await? {
                        Ok("otp")
                    } else {
                        Err(IdentityError::CodeReplayed)
                    }
                }
                Err(TotpError::Replayed) => Err(IdentityError::CodeReplayed),
                Err(_) => Err(IdentityError::InvalidCode),
            }
        } else {
            let stored = s.unused_recovery_code_hashes(user_id).await?;
            match recovery::find_match(code, &stored) {
                Some(ix) if s.use_recovery_code(user_id, &stored[ix], now).await? => Ok("otp"),
                _ => Err(IdentityError::InvalidCode),
            }
        };
        if accepted.is_err() {
            let failure = s
                .record_totp_failure(user_id, now, cfg.totp_max_attempts, cfg.totp_lock)
                .await?;
            if let Some(until) = failure.and_then(|f| f.locked_until).filter(|u| *u > now) {
                return Err(IdentityError::MfaLocked { until });
            }
        }
        accepted
    }

    async fn open_session(
        &self,
        user_id: &str,
        acr: &str,
        amr: &[&str],
        client: &ClientInfo,
        now: OffsetDateTime,
    ) -> Result<Tokens, IdentityError> {
        let session = SessionRecord {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_owned(),
            created_at: now,
            last_used_at: now,
            revoked_at: None,
            auth_time: now,
            acr: acr.to_owned(),
            amr: amr.iter().map(|s| (*s).to_owned()).collect(),
            client_ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        };
        self.inner.store.insert_session(&session).await?;
        let refresh = OpaqueToken::generate(opaque::REFRESH_TOKEN_PREFIX);
        self.inner
            .store
            .insert_refresh_token(
                &refresh.hash,
                &session.id,
                now,
                now + self.inner.cfg.refresh_ttl,
            )
            .await?;
        self.tokens_for(&session, refresh.secret, now)
    }

    fn tokens_for(
        &self,
        session: &SessionRecord,
        refresh_token: SecretString,
        now: OffsetDateTime,
    ) -> Result<Tokens, IdentityError> {
        let cfg = &self.inner.cfg;
        let ttl = cfg
            .access_ttl
            .min(Duration::seconds(jwt::MAX_LIFETIME_SECS));
        let iat = now.unix_timestamp();
        let claims = AccessClaims {
            iss: cfg.issuer.clone(),
            aud: cfg.audience.clone(),
            sub: session.user_id.clone(),
            exp: iat + ttl.whole_seconds(),
            iat,
            nbf: iat,
            jti: uuid::Uuid::now_v7().to_string(),
            scope: USER_SCOPES.to_owned(),
            sid: session.id.clone(),
            auth_time: session.auth_time.unix_timestamp(),
            acr: session.acr.clone(),
            amr: session.amr.clone(),
            client_id: None,
        };
        let access = self.inner.keys.mint(&claims)?;
        Ok(Tokens {
            access_token: SecretString::from(access),
            expires_in: ttl.whole_seconds(),
            refresh_token,
            scope: claims.scope,
            session_id: session.id.clone(),
        })
    }

    /// Rotates a refresh token. A token presented a second time revokes its session.
    pub async fn refresh_tokens(
        &self,
        presented: &str,
        now: OffsetDateTime,
    ) -> Result<Tokens, IdentityError> {
        let s = &self.inner.store;
        let hash = OpaqueToken::hash(opaque::REFRESH_TOKEN_PREFIX, presented)
            .ok_or(IdentityError::InvalidGrant)?;
        let fresh = OpaqueToken::generate(opaque::REFRESH_TOKEN_PREFIX);
        match s
            .rotate_refresh_token(&hash, &fresh.hash, now, now + self.inner.cfg.refresh_ttl)
            .await?
        {
            RotateOutcome::Unknown | RotateOutcome::Invalid => Err(IdentityError::InvalidGrant),
            RotateOutcome::Reused {
                session_id,
                user_id,
            } => {
                tracing::warn!(%user_id, %session_id, "refresh token reused: session revoked");
                self.inner.revoked.insert(&session_id, now);
                Err(IdentityError::InvalidGrant)
            }
            RotateOutcome::Rotated { session_id, .. } => {
                let session = s
                    .get_session(&session_id)
                    .await?
                    .ok_or(IdentityError::InvalidGrant)?;
                let user = s
                    .get_user(&session.user_id)
                    .await?
                    .ok_or(IdentityError::InvalidGrant)?;
                if user.status == UserStatus::Frozen {
                    return Err(IdentityError::AccountFrozen);
                }
                self.tokens_for(&session, fresh.secret, now)
            }
        }
    }

    /// Revokes one of the user's sessions (their own or another). False if not theirs.
    pub async fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, IdentityError> {
        let done = self
            .inner
            .store
            .revoke_session(user_id, session_id, now)
            .await?;
        if done {
            self.inner.revoked.insert(session_id, now);
        }
        Ok(done)
    }

    /// The user's sessions, active first.
    pub async fn sessions(&self, user_id: &str) -> Result<Vec<SessionRecord>, IdentityError> {
        Ok(self.inner.store.list_sessions(user_id, 100).await?)
    }

    /// Starts (or restarts) TOTP enrolment.
    pub async fn enrol_totp(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<Enrolment, IdentityError> {
        let s = &self.inner.store;
        let user = s.get_user(user_id).await?.ok_or(IdentityError::Internal)?;
        let secret = TotpSecret::generate();
        let blob = secretbox::seal(&self.inner.keyring, secret.as_bytes(), &totp_aad(user_id))
            .map_err(|_| IdentityError::Internal)?;
        match s.put_pending_totp(user_id, &blob, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(IdentityError::MfaAlreadyEnabled),
            Err(e) => return Err(e.into()),
        }
        let issuer = &self.inner.cfg.totp_issuer;
        Ok(Enrolment {
            secret: secret.base32(),
            otpauth_uri: secret
                .otpauth_uri(issuer, &user.email)
                .map_err(|_| IdentityError::Internal)?,
            qr_svg: secret
                .qr_svg(issuer, &user.email)
                .map_err(|_| IdentityError::Internal)?,
        })
    }

    /// Confirms a pending enrolment with a code; returns the ten recovery codes.
    pub async fn confirm_totp(
        &self,
        user_id: &str,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<SecretString>, IdentityError> {
        let s = &self.inner.store;
        let rec = s
            .get_totp(user_id)
            .await?
            .ok_or(IdentityError::MfaNotPending)?;
        if rec.confirmed_at.is_some() {
            return Err(IdentityError::MfaAlreadyEnabled);
        }
        let plain = secretbox::open(&self.inner.keyring, &rec.secret_enc, &totp_aad(user_id))
            .map_err(|_| IdentityError::Internal)?;
        let secret = TotpSecret::from_bytes(&plain).map_err(|_| IdentityError::Internal)?;
        let step = match totp::verify(&secret, code.trim(), now.unix_timestamp(), None) {
            Ok(step) => i64::try_from(step).map_err(|_| IdentityError::Internal)?,
            Err(_) => return Err(IdentityError::InvalidCode),
        };
        let codes = recovery::generate();
        if !s.confirm_totp(user_id, step, now, &codes.hashes).await? {
            return Err(IdentityError::MfaNotPending);
        }
        Ok(codes.codes)
    }

    /// Turns two-factor off (a sensitive action: the caller has checked step-up).
    pub async fn disable_totp(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, IdentityError> {
        Ok(self.inner.store.delete_totp(user_id, now).await?)
    }

    /// Whether the user has confirmed two-factor.
    pub async fn has_mfa(&self, user_id: &str) -> Result<bool, IdentityError> {
        Ok(self
            .inner
            .store
            .get_totp(user_id)
            .await?
            .is_some_and(|t| t.confirmed_at.is_some()))
    }

    /// Step-up: a fresh second factor in an existing session; returns a new access
    /// token with `acr=mfa` and the session's refresh token unchanged (none is issued).
    pub async fn step_up(
        &self,
        claims: &AccessClaims,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<(SecretString, i64), IdentityError> {
        let method = self.check_second_factor(&claims.sub, code, now).await?;
        let first = if claims.amr.iter().any(|m| m == external::AMR_EXTERNAL) {
            external::AMR_EXTERNAL
        } else {
            "pwd"
        };
        let amr = vec![first.to_owned(), method.to_owned()];
        let s = &self.inner.store;
        if !s
            .update_session_auth(&claims.sid, now, ACR_MFA, &amr)
            .await?
        {
            return Err(IdentityError::SessionRevoked);
        }
        let session = s
            .get_session(&claims.sid)
            .await?
            .ok_or(IdentityError::SessionRevoked)?;
        let t = self.tokens_for(&session, SecretString::from(String::new()), now)?;
        Ok((t.access_token, t.expires_in))
    }

    /// Freezes or unfreezes an account (admin). Freezing revokes every session at once.
    pub async fn set_frozen(
        &self,
        user_id: &str,
        frozen: bool,
        now: OffsetDateTime,
    ) -> Result<bool, IdentityError> {
        let s = &self.inner.store;
        let status = if frozen {
            UserStatus::Frozen
        } else {
            UserStatus::Active
        };
        if !s.set_user_status(user_id, status).await? {
            return Ok(false);
        }
        if frozen {
            for sess in s.list_sessions(user_id, 1000).await? {
                if sess.revoked_at.is_none() {
                    self.inner.revoked.insert(&sess.id, now);
                }
            }
            s.revoke_all_sessions(user_id, None, now).await?;
        }
        Ok(true)
    }

    /// Changes the password (sensitive: the caller has checked step-up). Every other
    /// session is revoked.
    pub async fn change_password(
        &self,
        claims: &AccessClaims,
        current: SecretString,
        new: SecretString,
        now: OffsetDateTime,
    ) -> Result<u64, IdentityError> {
        let s = &self.inner.store;
        let user = s
            .get_user(&claims.sub)
            .await?
            .ok_or(IdentityError::Internal)?;
        let phc = user.password_hash.clone();
        if !blocking(move || password::verify_password(&phc, current.expose_secret())).await? {
            return Err(IdentityError::InvalidCredentials);
        }
        let local = user.email.split('@').next().unwrap_or_default().to_owned();
        password::check_new_password(new.expose_secret(), &[&local, &user.email])
            .map_err(IdentityError::WeakPassword)?;
        let hash = blocking(move || password::hash_password(new.expose_secret()))
            .await?
            .map_err(|_| IdentityError::Internal)?;
        s.set_password(&user.id, &hash, now).await?;
        let revoked = s
            .revoke_all_sessions(&user.id, Some(&claims.sid), now)
            .await?;
        self.refresh(now).await?;
        Ok(revoked)
    }
}
