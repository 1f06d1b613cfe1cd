//! What can go wrong in an identity flow. The API maps each variant to a status and a
//! stable problem code; nothing here carries a secret.

use bourse_auth::jwt::TokenError;
use bourse_auth::password::PasswordRejection;
use bourse_store::StoreError;
use time::OffsetDateTime;

/// An identity flow refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Wrong email or password (the same answer for both).
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// Too many failed logins for this account or address.
    #[error("too many failed logins; try again later")]
    Throttled {
        /// When the lock ends.
        until: OffsetDateTime,
    },
    /// The email is not a plausible address.
    #[error("the email address is not valid")]
    InvalidEmail,
    /// An account with this email exists.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// The new password breaks the password policy.
    #[error("the password is not acceptable: {0}")]
    WeakPassword(PasswordRejection),
    /// The MFA challenge is unknown, used or expired.
    #[error("the login challenge is invalid or has expired; log in again")]
    InvalidChallenge,
    /// The TOTP or recovery code is wrong.
    #[error("the code is wrong")]
    InvalidCode,
    /// The TOTP code was already used.
    #[error("this code was already used; wait for the next one")]
    CodeReplayed,
    /// Too many wrong codes: two-factor is locked.
    #[error("two-factor is locked after too many wrong codes")]
    MfaLocked {
        /// When the lock ends.
        until: OffsetDateTime,
    },
    /// The user has no confirmed second factor.
    #[error("two-factor authentication is not enabled; enrol at POST /v1/auth/2fa/totp first")]
    MfaNotEnrolled,
    /// Two-factor is already on.
    #[error("two-factor authentication is already enabled")]
    MfaAlreadyEnabled,
    /// No enrolment is waiting for confirmation.
    #[error("no two-factor enrolment is pending; start one at POST /v1/auth/2fa/totp")]
    MfaNotPending,
    /// The refresh token is unknown, expired, reused or revoked.
    #[error("the refresh token is invalid")]
    InvalidGrant,
    /// The account is frozen.
    #[error("the account is frozen")]
    AccountFrozen,
    /// The access token's session was revoked.
    #[error("the session was revoked")]
    SessionRevoked,
    /// An external provider's discovery, JWKS or token endpoint cannot be reached.
    #[error("the sign-in provider cannot be reached; try again later")]
    ProviderUnavailable,
    /// The `state` of a provider callback is unknown, used, expired or from another
    /// browser.
    #[error("this sign-in is unknown, already used or expired; start it again")]
    OidcStateInvalid,
    /// The provider answered the login with an error (the person declined, or it
    /// refused the request).
    #[error("the sign-in provider did not sign you in")]
    OidcDenied,
    /// The provider refused the code exchange, or gave no ID token.
    #[error("the sign-in provider did not confirm the sign-in; start it again")]
    ExternalLoginFailed,
    /// The provider's ID token failed verification (signature, issuer, audience,
    /// expiry, nonce, access-token hash).
    #[error("the sign-in provider's ID token is not valid")]
    IdTokenInvalid,
    /// Unlinking this identity would leave the account with no way to sign in.
    #[error(
        "this is the account's only way to sign in; set a password or link another identity first"
    )]
    LastSignInMethod,
    /// The access token failed verification.
    #[error("{}", .0.description())]
    Token(TokenError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else; details were logged.
    #[error("internal error")]
    Internal,
}
