//! Two-factor codes: TOTP (RFC 6238) with HMAC-SHA-1, 6 digits and 30-second steps, the
//! settings every authenticator app supports. Computed by `totp-rs`.
//!
//! [`verify`] accepts the code of the current step and of the previous one (a code typed
//! just before the step changed), never a future step, and never a step at or before the
//! last one accepted for the user (RFC 6238 §5.2: a code is single-use). The caller stores
//! the returned step as the new `last_used_step` and counts failures for the lockout.
//!
//! The secret is 160 random bits (RFC 4226 §4), zeroized on drop; store
//! [`TotpSecret::as_bytes`] sealed with [`crate::secretbox`]. Everything that embeds the
//! secret (base32 form, `otpauth://` URI, QR code) is returned as a [`SecretString`].

use std::fmt;

use secrecy::SecretString;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

/// Digits per code.
pub const DIGITS: usize = 6;
/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Bytes of a generated secret (160 bits).
pub const SECRET_BYTES: usize = 20;
const MIN_SECRET_BYTES: usize = 16;
const MAX_SECRET_BYTES: usize = 64;
const MAX_ISSUER_CHARS: usize = 64;
const MAX_ACCOUNT_CHARS: usize = 254;

/// Why a code or a secret was refused. Messages never contain the code or secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TotpError {
    /// The input is not exactly six ASCII digits.
    #[error("the code must be 6 digits")]
    Malformed,
    /// The code is not the one for the current or the previous step.
    #[error("the code is wrong or has expired")]
    WrongCode,
    /// The code is right but its step was already used.
    #[error("the code was already used")]
    Replayed,
    /// Secret bytes of the wrong length (16 to 64 bytes are accepted).
    #[error("invalid TOTP secret")]
    InvalidSecret,
    /// Issuer or account name empty, too long (or too long for a QR code once
    /// percent-encoded), or containing `:` or control characters.
    #[error("invalid issuer or account name for an authenticator label")]
    InvalidLabel,
}

impl TotpError {
    /// Stable machine-readable code for problem responses.
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "totp_malformed",
            Self::WrongCode => "totp_invalid",
            Self::Replayed => "totp_replayed",
            Self::InvalidSecret => "totp_secret_invalid",
            Self::InvalidLabel => "totp_label_invalid",
        }
    }
}

/// A shared TOTP secret. `Debug` does not show it.
pub struct TotpSecret {
    bytes: Zeroizing<Vec<u8>>,
}

impl TotpSecret {
    /// A new random 160-bit secret (OS-seeded CSPRNG).
    pub fn generate() -> Self {
        Self {
            bytes: Zeroizing::new(Secret::generate().as_bytes().to_vec()),
        }
    }

    /// A secret from stored bytes (after [`crate::secretbox::open`]); 16 to 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(TotpError::InvalidSecret);
        }
        Ok(Self {
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// The raw secret, to be sealed for storage.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The secret in base32 (RFC 4648, no padding), for typing into an app by hand.
    pub fn base32(&self) -> SecretString {
        SecretString::from(Secret::from(self.bytes.to_vec()).to_base32())
    }

    /// The `otpauth://totp/{issuer}:{account}?secret=…&issuer=…` URI that authenticator
    /// apps import. Neither `issuer` nor `account` may be empty or contain `:`.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<SecretString, TotpError> {
        let labelled = self.totp_labelled(issuer, account)?;
        labelled
            .to_url()
            .map(SecretString::from)
            .map_err(|_| TotpError::InvalidLabel)
    }

    /// The [`TotpSecret::otpauth_uri`] as a QR code, a standalone SVG document (black
    /// modules on white, with the quiet zone) for the enrolment page.
    pub fn qr_svg(&self, issuer: &str, account: &str) -> Result<SecretString, TotpError> {
        use qrcode::render::svg;
        use secrecy::ExposeSecret;

        let uri = self.otpauth_uri(issuer, account)?;
        let code = qrcode::QrCode::with_error_correction_level(
            uri.expose_secret().as_bytes(),
            qrcode::EcLevel::M,
        )
        .map_err(|_| TotpError::InvalidLabel)?;
        let image = code
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build();
        Ok(SecretString::from(image))
    }

    fn totp(&self) -> Totp {
        // `build_noncompliant` skips only the checks `from_bytes` already made (secret
        // length) and the label checks, which do not apply to code computation.
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS as u8)
            .with_step_duration(STEP_SECS)
            .with_skew(0)
            .with_secret(self.bytes.to_vec())
            .build_noncompliant()
    }

    fn totp_labelled(&self, issuer: &str, account: &str) -> Result<Totp, TotpError> {
        let valid = |s: &str, max: usize| {
            !s.is_empty()
                && s.chars().count() <= max
                && !s.contains(':')
                && !s.chars().any(char::is_control)
        };
        if !valid(issuer, MAX_ISSUER_CHARS) || !valid(account, MAX_ACCOUNT_CHARS) {
            return Err(TotpError::InvalidLabel);
        }
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS as u8)
            .with_step_duration(STEP_SECS)
            .with_skew(0)
            .with_secret(self.bytes.to_vec())
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build()
            .map_err(|_| TotpError::InvalidLabel)
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

/// Checks `code` at `now_unix` (seconds). Returns the accepted step (`unix / 30`), which
/// the caller must store as the user's new `last_used_step`.
///
/// Accepts the current and the previous step only; refuses a step `<= last_used_step`
/// (replay) and anything but six ASCII digits. Both candidate codes are always computed
/// and compared in constant time.
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    now_unix: i64,
    last_used_step: Option<u64>,
) -> Result<u64, TotpError> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Malformed);
    }
    // A clock before 1970 has no valid code.
    let now = u64::try_from(now_unix).map_err(|_| TotpError::WrongCode)?;
    let current = now / STEP_SECS;
    let totp = secret.totp();
    let mut matched = None;
    // Previous first, so that a (one in a million) match of both picks the current step.
    for step in [current.checked_sub(1), Some(current)]
        .into_iter()
        .flatten()
    {
        let expected = Zeroizing::new(totp.generate(step * STEP_SECS).to_string());
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            matched = Some(step);
        }
    }
    match matched {
        None => Err(TotpError::WrongCode),
        Some(step) if last_used_step.is_some_and(|last| step <= last) => Err(TotpError::Replayed),
        Some(step) => Ok(step),
    }
}

/// The code for the step containing `unix` (seconds; before 1970 counts as 0). For tests
/// and test clients.
pub fn code_at(secret: &TotpSecret, unix: i64) -> String {
    secret
        .totp()
        .generate(u64::try_from(unix).unwrap_or(0))
        .to_string()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    /// RFC 6238 Appendix B, SHA-1 key.
    const RFC_SECRET: &[u8] = b"12345678901234567890";
    /// RFC 6238 Appendix B, SHA-1 column: (time, 8-digit TOTP).
    const RFC_VECTORS: [(u64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    fn rfc() -> TotpSecret {
        TotpSecret::from_bytes(RFC_SECRET).unwrap()
    }

    #[test]
    fn rfc_6238_vectors_with_8_digits() {
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(8)
            .with_step_duration(30)
            .with_secret(RFC_SECRET.to_vec())
            .build()
            .unwrap();
        for (time, expected) in RFC_VECTORS {
            assert_eq!(totp.generate(time).to_string(), expected, "t={time}");
        }
    }

    #[test]
    fn six_digit_codes_are_the_rfc_vectors_truncated() {
        // Dynamic truncation yields a 31-bit number; 6 digits is it mod 10^6, i.e. the
        // last six of the 8-digit value.
        let secret = rfc();
        for (time, expected8) in RFC_VECTORS {
            let unix = i64::try_from(time).unwrap();
            assert_eq!(code_at(&secret, unix), &expected8[2..], "t={time}");
            let step = verify(&secret, &expected8[2..], unix, None).unwrap();
            assert_eq!(step, time / 30);
        }
    }

    #[test]
    fn accepts_current_and_previous_step_only() {
        let secret = rfc();
        let now = 1_111_111_111;
        let step = 1_111_111_111 / 30;
        let current = code_at(&secret, now);
        let previous = code_at(&secret, now - 30);
        let older = code_at(&secret, now - 60);
        let next = code_at(&secret, now + 30);
        assert_eq!(verify(&secret, &current, now, None), Ok(step));
        assert_eq!(verify(&secret, &previous, now, None), Ok(step - 1));
        assert_eq!(
            verify(&secret, &older, now, None),
            Err(TotpError::WrongCode)
        );
        assert_eq!(verify(&secret, &next, now, None), Err(TotpError::WrongCode));
        let wrong = format!("{:06}", (current.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert_eq!(
            verify(&secret, &wrong, now, None),
            Err(TotpError::WrongCode)
        );
    }

    #[test]
    fn a_used_step_is_refused_again() {
        let secret = rfc();
        let now = 1_234_567_890;
        let code = code_at(&secret, now);
        let step = verify(&secret, &code, now, None).unwrap();
        assert_eq!(
            verify(&secret, &code, now, Some(step)),
            Err(TotpError::Replayed)
        );
        assert_eq!(
            verify(&secret, &code, now + 30, Some(step)),
            Err(TotpError::Replayed)
        );
        // The previous step's code after the current one was used: also refused.
        let previous = code_at(&secret, now - 30);
        assert_eq!(
            verify(&secret, &previous, now, Some(step)),
            Err(TotpError::Replayed)
        );
        // The next step's code, once it is current, is fine.
        let next = code_at(&secret, now + 30);
        assert_eq!(verify(&secret, &next, now + 30, Some(step)), Ok(step + 1));
    }

    #[test]
    fn only_six_ascii_digits_are_accepted() {
        let secret = rfc();
        let now = 59;
        let code = code_at(&secret, now);
        for bad in [
            "",
            "12345",
            "1234567",
            "94287082",
            " 287082",
            "287082 ",
            "28708a",
            "+28708",
            "２８７０８２",
            &format!("{}\n", &code[..5]),
        ] {
            assert_eq!(
                verify(&secret, bad, now, None),
                Err(TotpError::Malformed),
                "{bad:?}"
            );
        }
        assert!(verify(&secret, &code, now, None).is_ok());
    }

    #[test]
    fn step_zero_has_no_previous_step_and_negative_time_has_no_code() {
        let secret = rfc();
        let code = code_at(&secret, 5);
        assert_eq!(verify(&secret, &code, 5, None), Ok(0));
        assert_eq!(verify(&secret, &code, -5, None), Err(TotpError::WrongCode));
    }

    #[test]
    fn secrets_are_random_160_bits_and_round_trip() {
        let a = TotpSecret::generate();
        let b = TotpSecret::generate();
        assert_eq!(a.as_bytes().len(), SECRET_BYTES);
        assert_ne!(a.as_bytes(), b.as_bytes());
        let again = TotpSecret::from_bytes(a.as_bytes()).unwrap();
        assert_eq!(code_at(&a, 1_700_000_000), code_at(&again, 1_700_000_000));
        assert_eq!(
            TotpSecret::from_bytes(&[0; 15]).unwrap_err(),
            TotpError::InvalidSecret
        );
        assert_eq!(
            TotpSecret::from_bytes(&[0; 65]).unwrap_err(),
            TotpError::InvalidSecret
        );
        assert_eq!(format!("{a:?}"), "TotpSecret([redacted])");
    }

    #[test]
    fn otpauth_uri_and_base32() {
        let secret = rfc();
        assert_eq!(
            secret.base32().expose_secret(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        let uri = secret.otpauth_uri("bourse", "alice@example.com").unwrap();
        assert_eq!(
            uri.expose_secret(),
            "otpauth://totp/bourse:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=bourse"
        );
        for (issuer, account) in [
            ("bourse", ""),
            ("", "alice@example.com"),
            ("bou:rse", "alice@example.com"),
            ("bourse", "alice:x@example.com"),
            ("bourse", "alice\n@example.com"),
        ] {
            assert_eq!(
                secret.otpauth_uri(issuer, account).unwrap_err(),
                TotpError::InvalidLabel,
                "{issuer:?} {account:?}"
            );
        }
        let long = "a".repeat(MAX_ACCOUNT_CHARS + 1);
        assert_eq!(
            secret.otpauth_uri("bourse", &long).unwrap_err(),
            TotpError::InvalidLabel
        );
    }

    #[test]
    fn qr_code_is_an_svg_document() {
        let secret = rfc();
        let svg = secret.qr_svg("bourse", "alice@example.com").unwrap();
        let svg = svg.expose_secret();
        assert!(svg.starts_with("<?xml"), "{svg}");
        assert!(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("<path fill=\"#000\" d=\"M"));
        assert!(svg.trim_end().ends_with("</svg>"));
        // A different secret gives a different picture.
        let other = TotpSecret::generate()
            .qr_svg("bourse", "alice@example.com")
            .unwrap();
        assert_ne!(svg, other.expose_secret());
        // The longest email address fits in a QR code.
        let account = format!("{}@example.com", "a".repeat(240));
        assert!(TotpSecret::generate().qr_svg("bourse", &account).is_ok());
        // Labels whose percent-encoded URI overflows a QR code fail cleanly.
        let account = "é".repeat(MAX_ACCOUNT_CHARS);
        let issuer = "ü".repeat(MAX_ISSUER_CHARS);
        assert_eq!(
            TotpSecret::generate()
                .qr_svg(&issuer, &account)
                .unwrap_err(),
            TotpError::InvalidLabel
        );
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(TotpError::Malformed.code(), "totp_malformed");
        assert_eq!(TotpError::WrongCode.code(), "totp_invalid");
        assert_eq!(TotpError::Replayed.code(), "totp_replayed");
    }
}
