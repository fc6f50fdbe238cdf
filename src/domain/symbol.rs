//! `Symbol`: an instrument identifier, validated once at the edge and then copied freely.

use std::fmt;
use std::str::FromStr;

/// Longest symbol accepted (`BRK.B`, `EURUSD=X`, `BTC/USDT:PERP` all fit).
pub const MAX_SYMBOL_LEN: usize = 20;

/// An upper-cased instrument symbol of 1–20 characters from `A-Z 0-9 . - ^ = / :`.
///
/// Stored inline (no heap) so that a tick carrying it is `Copy` and the hot path never
/// allocates for it. Lower-case input is accepted and upper-cased: the reference platform
/// matched symbols case-sensitively, which split `aapl` and `AAPL` into two histories.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol {
    len: u8,
    bytes: [u8; MAX_SYMBOL_LEN],
}

/// Why a string is not a [`Symbol`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("symbol is empty")]
    Empty,
    #[error("symbol {0:?} is longer than {MAX_SYMBOL_LEN} characters")]
    TooLong(String),
    #[error("symbol {symbol:?} contains {found:?}; allowed are A-Z 0-9 . - ^ = / :")]
    InvalidChar { symbol: String, found: char },
}

impl Symbol {
    /// Parses and upper-cases `raw`, trimming surrounding white space.
    ///
    /// # Errors
    /// Returns [`SymbolError`] when the trimmed text is empty, too long, or has a character
    /// outside the allowed set.
    pub fn parse(raw: &str) -> Result<Self, SymbolError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(SymbolError::Empty);
        }
        if trimmed.len() > MAX_SYMBOL_LEN {
            return Err(SymbolError::TooLong(trimmed.to_owned()));
        }
        let mut bytes = [0u8; MAX_SYMBOL_LEN];
        for (slot, ch) in bytes.iter_mut().zip(trimmed.chars()) {
            let up = ch.to_ascii_uppercase();
            if !(up.is_ascii_uppercase() || up.is_ascii_digit() || ".-^=/:".contains(up)) {
                return Err(SymbolError::InvalidChar {
                    symbol: trimmed.to_owned(),
                    found: ch,
                });
            }
            *slot = up as u8;
        }
        Ok(Self {
            // Cast is safe: length was checked against MAX_SYMBOL_LEN (20) above.
            len: trimmed.len() as u8,
            bytes,
        })
    }

    /// The symbol text.
    pub fn as_str(&self) -> &str {
        // unwrap: only ASCII bytes are ever stored, so the slice is valid UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap()
    }
}

impl FromStr for Symbol {
    type Err = SymbolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

impl serde::Serialize for Symbol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Symbol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_case_is_upper_cased_and_trimmed() {
        assert_eq!(Symbol::parse(" aapl ").unwrap().as_str(), "AAPL");
    }

    #[test]
    fn every_allowed_character_is_accepted() {
        for s in [
            "BRK.B",
            "BTC-USD",
            "^GSPC",
            "EURUSD=X",
            "BTC/USDT:PERP",
            "A1",
        ] {
            assert_eq!(Symbol::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn twenty_characters_fit_and_twenty_one_do_not() {
        assert!(Symbol::parse(&"A".repeat(20)).is_ok());
        assert!(matches!(
            Symbol::parse(&"A".repeat(21)),
            Err(SymbolError::TooLong(_))
        ));
    }

    #[test]
    fn empty_and_invalid_symbols_are_refused() {
        assert_eq!(Symbol::parse("  "), Err(SymbolError::Empty));
        assert!(matches!(
            Symbol::parse("AA PL"),
            Err(SymbolError::InvalidChar { found: ' ', .. })
        ));
        assert!(matches!(
            Symbol::parse("AAPL;DROP"),
            Err(SymbolError::InvalidChar { found: ';', .. })
        ));
        assert!(matches!(
            Symbol::parse("ÄPFEL"),
            Err(SymbolError::InvalidChar { .. })
        ));
    }
}
