//! Signing in with an external OpenID Connect identity: the login in flight (stored
//! server-side, bound to the browser, single use, ten minutes) and which account a
//! verified `(issuer, subject)` pair belongs to.
//!
//! Linking rules, in order:
//! 1. the pair is linked already → that account;
//! 2. the provider says the email is verified and an account has that email → the pair
//!    is linked to it;
//! 3. otherwise a new account, without a password. Its email is the provider's only
//!    when verified (and, by rule 2, not taken); an unverified or missing email gives
//!    the account the placeholder `<user id>@unverified.invalid` (RFC 2606's `.invalid`:
//!    never delivered, never matched), and the claimed address is kept on the identity
//!    for display. An unverified email therefore never links to, blocks or pre-claims a
//!    real account.
//!
//! A frozen account is refused before anything is written. An external login is one
//! factor (`amr: ["ext"]`, `acr: pwd`): an account with two-factor on gets the same
//! second step as after a password, and sensitive actions still need step-up.

use bourse_auth::opaque::{self, OpaqueToken};
use bourse_auth::secretbox::{self, Aad};
use bourse_store::{
    ExternalIdentityRecord, PendingLoginRecord, StoreError, UnlinkOutcome, UserRecord, UserStatus,
};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::oidc::{ExternalClaims, PENDING_LOGIN_TTL, RelyingParty};
use crate::{ACR_PASSWORD, ClientInfo, Identity, IdentityError, LoginOutcome};

/// Prefix of the `state` sent to a provider.
pub const STATE_PREFIX: &str = "bos_";
/// Prefix of the browser-binding cookie's value.
pub const BROWSER_PREFIX: &str = "bob_";
/// Domain of the placeholder email of an account made without a verified email.
pub const PLACEHOLDER_EMAIL_DOMAIN: &str = "unverified.invalid";
/// `amr` value of a login through an external provider.
pub const AMR_EXTERNAL: &str = "ext";

fn verifier_aad(state_hash: &str) -> Aad<'_> {
    Aad {
        table: "oidc_pending_logins",
        row_id: state_hash,
        column: "verifier_enc",
    }
}

/// Where to send the browser to start a login.
#[derive(Debug)]
pub struct OidcStart {
    /// The provider's authorization URL.
    pub redirect_to: String,
    /// The browser-binding cookie value to set (the one presented, or a new one).
    pub browser: SecretString,
}

/// What a provider's callback carried.
#[derive(Debug, Clone, Copy)]
pub struct OidcCallback<'a> {
    /// `state`.
    pub state: &'a str,
    /// `code`, on success.
    pub code: Option<&'a str>,
    /// `error`, when the provider refused.
    pub error: Option<&'a str>,
}

/// How the account of an external login was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountResolution {
    /// The identity was linked before.
    Existing,
    /// Linked now to the account with the provider's verified email.
    Linked,
    /// A new account was made for it.
    Created,
}

impl AccountResolution {
    /// `existing`, `linked` or `created`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Existing => "existing",
            Self::Linked => "linked",
            Self::Created => "created",
        }
    }
}

/// A completed external login.
#[derive(Debug)]
pub struct ExternalLogin {
    /// Tokens, or the second step when two-factor is on.
    pub outcome: LoginOutcome,
    /// The account.
    pub user_id: String,
    /// How it was found.
    pub account: AccountResolution,
}

fn placeholder_email(user_id: &str) -> String {
    format!("{user_id}@{PLACEHOLDER_EMAIL_DOMAIN}")
}

impl Identity {
    /// Starts a login at `rp`: stores the pending login (state hash, browser binding,
    /// sealed PKCE verifier, nonce, `return_to`) and returns the provider URL. A
    /// well-formed `browser` value is kept (several logins may run in one browser);
    /// otherwise a new one is made.
    pub async fn oidc_start(
        &self,
        rp: &RelyingParty,
        return_to: Option<String>,
        browser: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<OidcStart, IdentityError> {
        let (browser, browser_hash) =
            match browser.and_then(|b| OpaqueToken::hash(BROWSER_PREFIX, b).map(|h| (b, h))) {
                Some((b, h)) => (SecretString::from(b.to_owned()), h),
                None => {
                    let t = OpaqueToken::generate(BROWSER_PREFIX);
                    (t.secret, t.hash)
                }
            };
        let state = OpaqueToken::generate(STATE_PREFIX);
        let auth = rp.authorize(state.secret, now).await?;
        let verifier_enc = secretbox::seal(
            &self.inner.keyring,
            auth.pkce_verifier.expose_secret().as_bytes(),
            &verifier_aad(&state.hash),
        )
        .map_err(|_| IdentityError::Internal)?;
        self.inner
            .store
            .insert_pending_login(&PendingLoginRecord {
                state_hash: state.hash,
                browser_hash,
                provider: rp.settings().name.clone(),
                nonce: auth.nonce,
                verifier_enc,
                return_to,
                created_at: now,
                expires_at: now + PENDING_LOGIN_TTL,
            })
            .await?;
        Ok(OidcStart {
            redirect_to: auth.url,
            browser,
        })
    }

    /// Completes the provider side of a login: takes the pending login (it must exist,
    /// belong to `rp`, come from this browser and be unexpired; it is used up either
    /// way), refuses a provider error, exchanges the code and verifies the ID token.
    /// Returns the verified claims and the login's `return_to`.
    pub async fn oidc_finish(
        &self,
        rp: &RelyingParty,
        cb: OidcCallback<'_>,
        browser: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(ExternalClaims, Option<String>), IdentityError> {
        let state_hash =
            OpaqueToken::hash(STATE_PREFIX, cb.state).ok_or(IdentityError::OidcStateInvalid)?;
        let browser_hash = browser
            .and_then(|b| OpaqueToken::hash(BROWSER_PREFIX, b))
            .ok_or(IdentityError::OidcStateInvalid)?;
        let pending = self
            .inner
            .store
            .take_pending_login(&state_hash, &browser_hash, now)
            .await?
            .ok_or(IdentityError::OidcStateInvalid)?;
        if pending.provider != rp.settings().name {
            return Err(IdentityError::OidcStateInvalid);
        }
        if let Some(error) = cb.error {
            tracing::info!(provider = %pending.provider, error = %error.chars().take(64).collect::<String>(), "the provider answered the login with an error");
            return Err(IdentityError::OidcDenied);
        }
        let code = cb.code.ok_or(IdentityError::ExternalLoginFailed)?;
        let plain = secretbox::open(
            &self.inner.keyring,
            &pending.verifier_enc,
            &verifier_aad(&state_hash),
        )
        .map_err(|_| IdentityError::Internal)?;
        let verifier = SecretString::from(
            String::from_utf8(plain.to_vec()).map_err(|_| IdentityError::Internal)?,
        );
        let claims = rp.exchange(code, &verifier, &pending.nonce, now).await?;
        Ok((claims, pending.return_to))
    }

    /// Finds or makes the account of verified external `claims` (rules in the module
    /// header) and signs it in: tokens, or the second step when two-factor is on.
    pub async fn sign_in_external(
        &self,
        claims: &ExternalClaims,
        client: &ClientInfo,
        now: OffsetDateTime,
    ) -> Result<ExternalLogin, IdentityError> {
        let (user, account) = self.resolve_external(claims, now).await?;
        let s = &self.inner.store;
        let totp = s.get_totp(&user.id).await?;
        let outcome = if totp.is_some_and(|t| t.confirmed_at.is_some()) {
            let challenge = OpaqueToken::generate(opaque::MFA_CHALLENGE_PREFIX);
            let ttl = self.inner.cfg.mfa_challenge_ttl;
            s.insert_mfa_challenge_after(&challenge.hash, &user.id, AMR_EXTERNAL, now + ttl)
                .await?;
            LoginOutcome::MfaRequired {
                challenge: challenge.secret,
                expires_in: ttl.whole_seconds(),
            }
        } else {
            LoginOutcome::Tokens(
                self.open_session(&user.id, ACR_PASSWORD, &[AMR_EXTERNAL], client, now)
                    .await?,
            )
        };
        Ok(ExternalLogin {
            outcome,
            user_id: user.id,
            account,
        })
    }

    async fn resolve_external(
        &self,
        claims: &ExternalClaims,
        now: OffsetDateTime,
    ) -> Result<(UserRecord, AccountResolution), IdentityError> {
        let s = &self.inner.store;
        // A concurrent callback for the same person (or a registration with the same
        // email) can win a race with us once; the second pass then sees its result.
        for _ in 0..2 {
            if let Some(link) = s
                .find_external_identity(&claims.issuer, &claims.subject)
                .await?
            {
                let user = s
                    .get_user(&link.user_id)
                    .await?
                    .ok_or(IdentityError::Internal)?;
                if user.status == UserStatus::Frozen {
                    return Err(IdentityError::AccountFrozen);
                }
                s.touch_external_identity(
                    &link.id,
                    now,
                    claims.email.as_deref(),
                    claims.email_verified,
                )
                .await?;
                return Ok((user, AccountResolution::Existing));
            }
            let identity = |user_id: &str| ExternalIdentityRecord {
                id: uuid::Uuid::now_v7().to_string(),
                user_id: user_id.to_owned(),
                provider: claims.provider.clone(),
                issuer: claims.issuer.clone(),
                subject: claims.subject.clone(),
                email: claims.email.clone(),
                email_verified: claims.email_verified,
                linked_at: now,
                last_login_at: now,
            };
            let verified_email = claims.email.as_deref().filter(|_| claims.email_verified);
            if let Some(email) = verified_email
                && let Some(user) = s.find_user_by_email(email).await?
            {
                if user.status == UserStatus::Frozen {
                    return Err(IdentityError::AccountFrozen);
                }
                match s.insert_external_identity(&identity(&user.id)).await {
                    Ok(()) => return Ok((user, AccountResolution::Linked)),
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let id = uuid::Uuid::now_v7().to_string();
            let user = UserRecord {
                email: verified_email
                    .map(str::to_owned)
                    .unwrap_or_else(|| placeholder_email(&id)),
                id,
                // No password: none verifies against the empty hash.
                password_hash: String::new(),
                status: UserStatus::Active,
                created_at: now,
                password_changed_at: now,
                mfa_changed_at: None,
            };
            match s
                .insert_user_with_external_identity(&user, &identity(&user.id))
                .await
            {
                Ok(()) => return Ok((user, AccountResolution::Created)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(IdentityError::Store(StoreError::Conflict))
    }

    /// The user's linked external identities.
    pub async fn external_identities(
        &self,
        user_id: &str,
    ) -> Result<Vec<ExternalIdentityRecord>, IdentityError> {
        Ok(self.inner.store.list_external_identities(user_id).await?)
    }

    /// Unlinks one of the user's identities (a sensitive action: the caller checked
    /// step-up). False when the user has no such identity; `LastSignInMethod` when the
    /// account has no password and no other identity.
    pub async fn unlink_external_identity(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<bool, IdentityError> {
        match self
            .inner
            .store
            .unlink_external_identity(user_id, id)
            .await?
        {
            UnlinkOutcome::Unlinked => Ok(true),
            UnlinkOutcome::NotFound => Ok(false),
            UnlinkOutcome::LastSignInMethod => Err(IdentityError::LastSignInMethod),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_emails_are_never_deliverable_and_never_refused_by_the_normaliser() {
        let e = placeholder_email("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        assert!(e.ends_with("@unverified.invalid"));
        // Stored as given: it must already be in normal form.
        assert_eq!(crate::normalise_email(&e).unwrap(), e);
    }
}
