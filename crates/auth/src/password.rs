//! Passwords: the policy for new ones (NIST SP 800-63B) and Argon2id hashing.
//!
//! Policy: at least [`MIN_CHARS`] and at most [`MAX_CHARS`] characters (Unicode scalar
//! values after NFKC normalisation), no composition rules, and a blocklist: the password
//! must not contain the user's own identifiers (email local part, name) and must not be a
//! common password or a trivial variant of one. The blocklist is `zxcvbn`'s: its 30,000
//! most common passwords (from breach corpora) plus English words, names, keyboard walks,
//! repeats, sequences, dates, l33t substitutions and reversals. A password it can guess in
//! fewer than 10^8 tries (its score below 3) is refused; only the first 32 characters are
//! scored, to bound the CPU an unauthenticated request can spend.
//!
//! Hashing: Argon2id v19 with the OWASP parameters m = 19456 KiB, t = 2, p = 1, a 16-byte
//! random salt, stored as a PHC string. Passwords are NFKC-normalised before hashing (NIST
//! asks for it so that the same password typed on two keyboards verifies), so
//! [`hash_password`] and [`verify_password`] must be used as a pair.
//!
//! For an unknown user, call [`verify_against_dummy`]: it does the same Argon2id work as a
//! real verification and gives the same answer (`false`), so timing does not tell whether
//! an account exists.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, Params, PasswordHasher, PasswordVerifier};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// Fewest characters (Unicode scalar values, after NFKC) a new password may have.
pub const MIN_CHARS: usize = 12;
/// Most characters (Unicode scalar values, after NFKC) a new password may have.
pub const MAX_CHARS: usize = 128;
/// Longest input, in bytes, that is normalised or hashed at all; anything longer is refused
/// before any work. Generous: 128 scalar values take at most 512 bytes, and the rest
/// leaves room for decomposed input that NFKC composes back.
const MAX_INPUT_BYTES: usize = 4 * 4 * MAX_CHARS;
/// Context values shorter than this are not searched for inside the password: a two-letter
/// email local part would otherwise refuse a large share of good passwords.
const MIN_CONTEXT_CHARS: usize = 4;
/// zxcvbn scores only this many leading characters. Its l33t matcher is super-linear: a
/// 100-character password full of substitution symbols (`4@8(3|!1|0$5+7`) costs about
/// 0.45 s of CPU in a release build, 32 characters about 40 ms, typical passwords about
/// 1 ms. A password whose first 32 characters are strong is strong; one whose first 32 are
/// weak is refused even if it goes on well, which is a small price.
const SCORED_CHARS: usize = 32;

/// Why a new password was refused. The messages are safe to show to the user and never
/// contain the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PasswordRejection {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("the password must have at least {} characters", MIN_CHARS)]
    TooShort,
    /// More than [`MAX_CHARS`] characters.
    #[error("the password must have at most {} characters", MAX_CHARS)]
    TooLong,
    /// It contains the email address, name or another identifier given as context.
    #[error("the password must not contain your email address or name")]
    ContainsContext,
    /// A common password, or one that is too easy to guess (a word, a keyboard walk, a
    /// repeat, a variant of a common password).
    #[error("the password is too common or too easy to guess")]
    Common,
}

impl PasswordRejection {
    /// Stable machine-readable code for problem responses.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooShort => "password_too_short",
            Self::TooLong => "password_too_long",
            Self::ContainsContext => "password_contains_context",
            Self::Common => "password_common",
        }
    }
}

/// Checks a new password (registration, change, reset) against the policy in the module
/// documentation.
///
/// `context` holds what the user or the service is known by: the email address (its local
/// part is checked, and the full value), display name, `"bourse"`. Matching ignores case;
/// values shorter than 4 characters are not searched for.
pub fn check_new_password(password: &str, context: &[&str]) -> Result<(), PasswordRejection> {
    if password.len() > MAX_INPUT_BYTES {
        return Err(PasswordRejection::TooLong);
    }
    let normalised = normalise(password);
    let chars = normalised.chars().count();
    if chars < MIN_CHARS {
        return Err(PasswordRejection::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PasswordRejection::TooLong);
    }

    let lower = Zeroizing::new(normalised.to_lowercase());
    // Whole values and email local parts are refused outright; their words (`alice`,
    // `smith` of `alice.smith@…`) only make zxcvbn rate the password lower.
    let mut inputs: Vec<String> = Vec::new();
    for value in context {
        let value: String = value.nfkc().collect::<String>().to_lowercase();
        let local = value.split_once('@').map(|(local, _)| local.to_owned());
        for candidate in std::iter::once(value).chain(local) {
            let candidate = candidate.trim();
            if candidate.chars().count() >= MIN_CONTEXT_CHARS {
                if lower.contains(candidate) {
                    return Err(PasswordRejection::ContainsContext);
                }
                inputs.push(candidate.to_owned());
                inputs.extend(
                    candidate
                        .split(|c: char| !c.is_alphanumeric())
                        .filter(|w| w.chars().count() >= MIN_CONTEXT_CHARS)
                        .map(str::to_owned),
                );
            }
        }
    }

    let scored: Zeroizing<String> = Zeroizing::new(normalised.chars().take(SCORED_CHARS).collect());
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    if zxcvbn::zxcvbn(&scored, &inputs).score() < zxcvbn::Score::Three {
        return Err(PasswordRejection::Common);
    }
    Ok(())
}

/// Hashing failed: only an RNG failure or a broken Argon2 setup can cause it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordHashError(String);

/// Hashes a password with Argon2id (OWASP parameters, random salt) into a PHC string such
/// as `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`. Check the policy first with
/// [`check_new_password`]; this function hashes whatever it is given.
pub fn hash_password(password: &str) -> Result<String, PasswordHashError> {
    if password.len() > MAX_INPUT_BYTES {
        return Err(PasswordHashError("password too long".into()));
    }
    let normalised = normalise(password);
    hasher()
        .hash_password(normalised.as_bytes())
        .map(|phc| phc.to_string())
        .map_err(|e| PasswordHashError(e.to_string()))
}

/// Whether `password` matches the stored PHC string. A malformed or foreign stored hash
/// (not Argon2id, or parameters beyond sane bounds) never matches, after the same work as
/// a real check.
pub fn verify_password(phc: &str, password: &str) -> bool {
    if password.len() > MAX_INPUT_BYTES {
        // Refused before any work whether or not the account exists, so this says
        // nothing about the account.
        return false;
    }
    let Some(stored) = parse_acceptable(phc) else {
        verify_against_dummy(password);
        return false;
    };
    let normalised = normalise(password);
    hasher()
        .verify_password(normalised.as_bytes(), &stored)
        .is_ok()
}

/// Does the work of [`verify_password`] against a fixed dummy hash and returns `false`:
/// call it when the account does not exist so that the answer and its timing are the same
/// as for a wrong password.
pub fn verify_against_dummy(password: &str) -> bool {
    if password.len() > MAX_INPUT_BYTES {
        return false;
    }
    if let Some(dummy) = parse_acceptable(DUMMY_PHC) {
        let normalised = normalise(password);
        // Nobody knows the dummy's password; even a match must not log anyone in.
        let _ = hasher().verify_password(normalised.as_bytes(), &dummy);
    }
    false
}

/// Whether a stored hash should be replaced (after a successful login, while the password
/// is at hand) because it was made with other parameters than the current ones.
pub fn needs_rehash(phc: &str) -> bool {
    let Some(stored) = parse_acceptable(phc) else {
        return true;
    };
    let current = Params::default();
    match Params::try_from(&stored) {
        Ok(p) => {
            stored.version != Some(argon2::Version::V0x13.into())
                || p.m_cost() != current.m_cost()
                || p.t_cost() != current.t_cost()
                || p.p_cost() != current.p_cost()
        }
        Err(_) => true,
    }
}

/// Argon2id, version 0x13, m = 19456 KiB, t = 2, p = 1: `Argon2::default()` in argon2 0.6
/// (a test below pins this).
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

/// A hash made by [`hash_password`] of a random password that was thrown away. Its
/// parameters are the current ones (a test pins this), so checking it costs the same as
/// checking a real hash.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$ObJYDP2P1w2I9HFrubc0VQ$vER+/a6UgdrWlHBD00TNR8hxQMaUm0A3/wEngzP1MCE";

/// Parses a stored PHC string if it is Argon2id with parameters we are willing to run (a
/// corrupted row asking for gigabytes of memory must not take the server down).
fn parse_acceptable(phc: &str) -> Option<PasswordHash> {
    let stored = PasswordHash::new(phc).ok()?;
    if stored.algorithm.as_str() != "argon2id" || stored.salt.is_none() || stored.hash.is_none() {
        return None;
    }
    let params = Params::try_from(&stored).ok()?;
    let sane = params.m_cost() <= 262_144 && params.t_cost() <= 16 && params.p_cost() <= 8;
    sane.then_some(stored)
}

fn normalise(password: &str) -> Zeroizing<String> {
    Zeroizing::new(password.nfkc().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters_after_nfkc() {
        assert_eq!(
            check_new_password("short-pw", &[]),
            Err(PasswordRejection::TooShort)
        );
        // 11 characters but 22 bytes: still too short.
        assert_eq!(
            check_new_password("ééééééééééé", &[]),
            Err(PasswordRejection::TooShort)
        );
        // 12 two-byte characters of a random-looking mix: long enough and accepted.
        assert_eq!(check_new_password("ŧĳøßŋđħĸłµæœ", &[]), Ok(()));
        // U+FB01 (ﬁ) becomes "fi" under NFKC: 6 ligatures are 12 characters, long enough
        // (and then refused as a repeat, not as too short).
        assert_eq!(
            check_new_password(&"\u{FB01}".repeat(6), &[]),
            Err(PasswordRejection::Common)
        );
        assert_eq!(
            check_new_password(&"x".repeat(129), &[]),
            Err(PasswordRejection::TooLong)
        );
        assert_eq!(
            check_new_password(&"x".repeat(100_000), &[]),
            Err(PasswordRejection::TooLong)
        );
    }

    #[test]
    fn no_composition_rules() {
        // Lowercase only, no digits or symbols: fine when not guessable.
        assert_eq!(
            check_new_password("correct horse battery staple", &[]),
            Ok(())
        );
        assert_eq!(check_new_password("vq7 jr lwm zkp tnx", &[]), Ok(()));
        let longest: String = "vq7 jr lwm zkp tnx "
            .chars()
            .cycle()
            .take(MAX_CHARS)
            .collect();
        assert_eq!(check_new_password(&longest, &[]), Ok(()));
    }

    #[test]
    fn common_passwords_and_trivial_variants_are_refused() {
        for pw in [
            // Entries of the common-password list that meet the length rule.
            "1qaz2wsx3edc",
            "qwerty123456",
            "123456789abc",
            "iloveyou1234",
            "passwordpassword",
            // Variants: case, l33t, appended digits, keyboard walks, repeats, sequences.
            "P@ssw0rd1234",
            "Password2024!",
            "qwertyuiopasdf",
            "aaaaaaaaaaaaaaaa",
            "abcdefghijklmn",
            "123456789012",
        ] {
            assert_eq!(
                check_new_password(pw, &[]),
                Err(PasswordRejection::Common),
                "{pw}"
            );
        }
    }

    #[test]
    fn long_passwords_are_scored_on_their_first_32_characters() {
        // Worst case for zxcvbn's l33t matcher; must stay cheap (bounded by the prefix).
        let l33t: String = "4@8(3|!1|0$5+7%2{[<69"
            .chars()
            .cycle()
            .take(MAX_CHARS)
            .collect();
        let _ = check_new_password(&l33t, &[]);
        // A weak start is refused whatever follows.
        let weak_start = format!("{}{}", "a".repeat(SCORED_CHARS), "vq7 jr lwm zkp tnx");
        assert_eq!(
            check_new_password(&weak_start, &[]),
            Err(PasswordRejection::Common)
        );
        assert_eq!(
            check_new_password(&"password".repeat(16), &[]),
            Err(PasswordRejection::Common)
        );
    }

    #[test]
    fn words_of_the_context_lower_the_score() {
        // The local part's words are not refused outright, but with them zxcvbn sees this
        // password as the user's own first and last name.
        let ctx = ["zorblax.quintero@example.com"];
        assert_eq!(check_new_password("zorblaxquintero", &[]), Ok(()));
        assert_eq!(
            check_new_password("zorblaxquintero", &ctx),
            Err(PasswordRejection::Common)
        );
    }

    #[test]
    fn context_is_refused_inside_the_password() {
        let ctx = ["Alice.Smith@example.com", "bourse"];
        assert_eq!(
            check_new_password("my alice.smith secret!", &ctx),
            Err(PasswordRejection::ContainsContext)
        );
        assert_eq!(
            check_new_password("Alice.Smith@Example.com", &ctx),
            Err(PasswordRejection::ContainsContext)
        );
        assert_eq!(
            check_new_password("zq bourse vrtk plmw", &ctx),
            Err(PasswordRejection::ContainsContext)
        );
        // Short context values are not searched for.
        assert_eq!(
            check_new_password("al vq7 jr lwm zkp", &["al@example.com"]),
            Ok(())
        );
        assert_eq!(
            check_new_password("vq7 jr lwm zkp tnx", &ctx),
            Ok(()),
            "unrelated password"
        );
    }

    #[test]
    fn rejections_have_stable_codes_and_do_not_echo_the_password() {
        let pw = "1qaz2wsx3edc";
        let rejection = check_new_password(pw, &[]).unwrap_err();
        assert_eq!(rejection.code(), "password_common");
        assert!(!rejection.to_string().contains(pw));
        assert_eq!(PasswordRejection::TooShort.code(), "password_too_short");
        assert_eq!(PasswordRejection::TooLong.code(), "password_too_long");
        assert_eq!(
            PasswordRejection::ContainsContext.code(),
            "password_contains_context"
        );
    }

    #[test]
    fn hashes_with_owasp_argon2id_and_verifies() {
        let phc = hash_password("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, "correct horse battery staple"));
        assert!(!verify_password(&phc, "correct horse battery stapl"));
        assert!(!needs_rehash(&phc));
        // Same password, fresh salt.
        let again = hash_password("correct horse battery staple").unwrap();
        assert_ne!(phc, again);
    }

    #[test]
    fn normalisation_makes_equivalent_inputs_verify() {
        // "é" precomposed (U+00E9) and decomposed (e + U+0301) are the same password.
        let phc = hash_password("caf\u{e9} au lait du matin").unwrap();
        assert!(verify_password(&phc, "cafe\u{301} au lait du matin"));
    }

    #[test]
    fn dummy_hash_has_current_parameters_and_never_matches() {
        assert!(DUMMY_PHC.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(parse_acceptable(DUMMY_PHC).is_some());
        assert!(!needs_rehash(DUMMY_PHC));
        assert!(!verify_against_dummy("correct horse battery staple"));
        assert!(!verify_against_dummy(""));
    }

    #[test]
    fn malformed_or_foreign_hashes_never_match() {
        for phc in [
            "",
            "not a hash",
            "$argon2i$v=19$m=19456,t=2,p=1$pk2RhokDFt5TvvTnUehIUw$e3s8idjPUnJTwT42kEmwH2uvt9+PaMJc2zMoJjnNfnM",
            // Asks for 4 GiB of memory: refused without running.
            "$argon2id$v=19$m=4194304,t=2,p=1$pk2RhokDFt5TvvTnUehIUw$e3s8idjPUnJTwT42kEmwH2uvt9+PaMJc2zMoJjnNfnM",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        ] {
            assert!(!verify_password(phc, "whatever password"), "{phc}");
            assert!(needs_rehash(phc), "{phc}");
        }
        // Older (weaker) parameters still verify but ask to be rehashed.
        let weak = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            Params::new(8192, 1, 1, None).unwrap(),
        )
        .hash_password(b"correct horse battery staple")
        .unwrap()
        .to_string();
        assert!(verify_password(&weak, "correct horse battery staple"));
        assert!(needs_rehash(&weak));
    }
}
