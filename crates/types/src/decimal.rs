//! Strict decimal parsing for money, prices and sizes on the wire.
//!
//! Only plain decimal notation is accepted: an optional `-`, 1 to 20 integer digits,
//! and optionally `.` with 1 to 18 fraction digits. No exponent, no `+`, no spaces, no
//! `NaN`/`Infinity`, no leading `.`. Nothing is ever rounded: a value with more
//! precision than allowed is refused.

use rust_decimal::Decimal;

/// Most integer digits accepted.
pub const MAX_INT_DIGITS: usize = 20;
/// Most fraction digits accepted.
pub const MAX_FRACTION_DIGITS: usize = 18;

/// Why a string is not an acceptable decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not plain decimal notation.
    #[error("not a plain decimal number (digits, optional '-' and '.', no exponent)")]
    Syntax,
    /// Too many digits.
    #[error(
        "too many digits (at most {MAX_INT_DIGITS} before and {MAX_FRACTION_DIGITS} after the point)"
    )]
    TooPrecise,
}

/// Parses a plain decimal string exactly.
pub fn parse_decimal(s: &str) -> Result<Decimal, DecimalError> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(DecimalError::Syntax);
    }
    if int.len() > MAX_INT_DIGITS || frac.is_some_and(|f| f.len() > MAX_FRACTION_DIGITS) {
        return Err(DecimalError::TooPrecise);
    }
    // 20 + 18 digits fit in Decimal's 96-bit mantissa (about 28 digits) only when the
    // total stays within 28; from_str_exact refuses (never rounds) beyond that.
    Decimal::from_str_exact(s)
        .map(|d| d.normalize())
        .map_err(|_| DecimalError::TooPrecise)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_decimals_exactly() {
        assert_eq!(parse_decimal("0.001").unwrap().to_string(), "0.001");
        assert_eq!(parse_decimal("27350.50").unwrap().to_string(), "27350.5");
        assert_eq!(parse_decimal("-1.5").unwrap().to_string(), "-1.5");
        assert_eq!(parse_decimal("100000").unwrap().to_string(), "100000");
    }

    #[test]
    fn refuses_everything_else() {
        for s in [
            "", "1e5", "+1", " 1", "1 ", ".5", "5.", "NaN", "Infinity", "0x10", "1,5", "--1",
            "1.2.3",
        ] {
            assert_eq!(parse_decimal(s), Err(DecimalError::Syntax), "{s:?}");
        }
        assert_eq!(
            parse_decimal("0.0000000000000000001"),
            Err(DecimalError::TooPrecise)
        );
        assert_eq!(
            parse_decimal(&"9".repeat(21)),
            Err(DecimalError::TooPrecise)
        );
        assert_eq!(
            parse_decimal("99999999999999999999.999999999999999999"),
            Err(DecimalError::TooPrecise)
        );
    }
}
