use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest symbol accepted (`BTC-27DEC26-100000-C` is 20 characters).
pub const MAX_SYMBOL_LEN: usize = 40;

/// An instrument symbol such as `BTC-PERP` or `BTC-27DEC26-100000-C`.
///
/// Upper-case ASCII letters, digits and `-`, 1 to [`MAX_SYMBOL_LEN`] characters, starting
/// with a letter. Anything else (path fragments, script, SQL, control characters) is
/// refused at the edge, so a `Symbol` is always safe to log and to echo.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Symbol(String);

/// Why a string is not a valid [`Symbol`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    /// Empty input.
    #[error("symbol is empty")]
    Empty,
    /// More than [`MAX_SYMBOL_LEN`] characters.
    #[error("symbol is longer than {MAX_SYMBOL_LEN} characters")]
    TooLong,
    /// A character outside `A-Z`, `0-9` and `-`, or not starting with a letter.
    #[error("symbol may only contain A-Z, 0-9 and '-', starting with a letter")]
    InvalidCharacter,
}

impl Symbol {
    /// Parses and checks a symbol.
    pub fn parse(s: &str) -> Result<Self, SymbolError> {
        if s.is_empty() {
            return Err(SymbolError::Empty);
        }
        if s.len() > MAX_SYMBOL_LEN {
            return Err(SymbolError::TooLong);
        }
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase());
        if !first_ok
            || !s
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(SymbolError::InvalidCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    /// The symbol as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Symbol {
    type Err = SymbolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Symbol::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Symbol {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[A-Z][A-Z0-9-]{0,39}$"))
            .max_length(Some(MAX_SYMBOL_LEN))
            .examples(["BTC-PERP"])
            .description(Some("Instrument symbol"))
            .into()
    }
}

impl utoipa::ToSchema for Symbol {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exchange_symbols() {
        for s in [
            "BTC-PERP",
            "ETH-PERP",
            "BTC-27DEC26",
            "BTC-27DEC26-100000-C",
        ] {
            assert_eq!(Symbol::parse(s).map(|x| x.to_string()), Ok(s.to_owned()));
        }
    }

    #[test]
    fn refuses_hostile_input() {
        assert_eq!(Symbol::parse(""), Err(SymbolError::Empty));
        assert_eq!(Symbol::parse(&"A".repeat(41)), Err(SymbolError::TooLong));
        for s in [
            "../etc", "btc-perp", "BTC PERP", "<script>", "1BTC", "BTC';--", "BTC\u{0}",
        ] {
            assert_eq!(
                Symbol::parse(s),
                Err(SymbolError::InvalidCharacter),
                "{s:?}"
            );
        }
    }
}
