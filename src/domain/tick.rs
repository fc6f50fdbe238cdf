//! `Tick`: one trade, validated, and `Source`: which feed it came from.

use crate::domain::symbol::Symbol;
use crate::domain::time::Timestamp;
use std::fmt;

/// Longest feed name kept.
const MAX_SOURCE_LEN: usize = 16;

/// The feed a tick came from (`sim`, `yfinance`, `twelvedata`, `replay`, …).
///
/// Inline and `Copy` like [`Symbol`]: ticks never allocate. Longer names are truncated,
/// characters outside `a-z 0-9 _ - .` become `_`, so any producer's label is accepted.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source {
    len: u8,
    bytes: [u8; MAX_SOURCE_LEN],
}

impl Source {
    /// The label for `name`, lower-cased and sanitised (never fails).
    pub fn new(name: &str) -> Self {
        let mut bytes = [0u8; MAX_SOURCE_LEN];
        let mut len = 0;
        for (slot, b) in bytes.iter_mut().zip(name.trim().bytes()) {
            let b = b.to_ascii_lowercase();
            *slot = if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.') {
                b
            } else {
                b'_'
            };
            len += 1;
        }
        if len == 0 {
            return Self::new("unknown");
        }
        Self { len, bytes }
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        // unwrap: only ASCII bytes are stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap()
    }
}

impl serde::Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::new(&raw))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Source({})", self.as_str())
    }
}

/// One trade: what was traded, when (event time at the venue), at what price, how much.
///
/// `size` is the size of this trade, never a cumulative day volume (the reference's
/// defect 8). Construct with [`Tick::new`], which enforces the invariants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick {
    symbol: Symbol,
    ts: Timestamp,
    price: f64,
    size: f64,
    source: Source,
}

/// Largest price a tick may have: far above any traded instrument, and small enough that
/// `price × size` and every bar's sums stay finite (a 1e308 size would make a bar's volume
/// infinite and its VWAP NaN).
pub const MAX_PRICE: f64 = 1e12;
/// Largest size a tick may have (see [`MAX_PRICE`]).
pub const MAX_SIZE: f64 = 1e15;

/// Why a tick is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TickError {
    #[error("price {0} is not a number greater than 0 and at most 1e12")]
    InvalidPrice(f64),
    #[error("trade size {0} is not a number from 0 to 1e15")]
    InvalidSize(f64),
}

impl Tick {
    /// A validated tick.
    ///
    /// # Errors
    /// [`TickError::InvalidPrice`] unless `0 < price ≤` [`MAX_PRICE`];
    /// [`TickError::InvalidSize`] unless `0 ≤ size ≤` [`MAX_SIZE`].
    pub fn new(
        symbol: Symbol,
        ts: Timestamp,
        price: f64,
        size: f64,
        source: Source,
    ) -> Result<Self, TickError> {
        if !(price > 0.0 && price <= MAX_PRICE) {
            return Err(TickError::InvalidPrice(price));
        }
        if !(0.0..=MAX_SIZE).contains(&size) {
            return Err(TickError::InvalidSize(size));
        }
        Ok(Self {
            symbol,
            ts,
            price,
            // -0.0 passes `>= 0.0`; store +0.0 so sums and text output never show "-0".
            size: size + 0.0,
            source,
        })
    }

    /// The instrument traded.
    pub fn symbol(&self) -> Symbol {
        self.symbol
    }

    /// Event time of the trade.
    pub fn ts(&self) -> Timestamp {
        self.ts
    }

    /// Trade price (> 0).
    pub fn price(&self) -> f64 {
        self.price
    }

    /// Trade size (≥ 0; 0 for quotes without a size).
    pub fn size(&self) -> f64 {
        self.size
    }

    /// The feed that reported the trade.
    pub fn source(&self) -> Source {
        self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym() -> Symbol {
        Symbol::parse("AAPL").unwrap()
    }

    #[test]
    fn valid_ticks_are_built() {
        let t = Tick::new(
            sym(),
            Timestamp::from_secs(1),
            229.35,
            100.0,
            Source::new("sim"),
        )
        .unwrap();
        assert_eq!(
            (t.price(), t.size(), t.source().as_str()),
            (229.35, 100.0, "sim")
        );
    }

    #[test]
    fn prices_outside_zero_to_1e12_are_refused() {
        for p in [0.0, -1.0, f64::NAN, f64::INFINITY, 1.0001e12, f64::MAX] {
            let r = Tick::new(sym(), Timestamp::from_secs(1), p, 1.0, Source::new("x"));
            assert!(matches!(r, Err(TickError::InvalidPrice(_))), "{p}");
        }
    }

    #[test]
    fn sizes_outside_zero_to_1e15_are_refused_and_zero_is_allowed() {
        for s in [-1.0, f64::NAN, f64::INFINITY, 1e308, 1.0001e15] {
            let r = Tick::new(sym(), Timestamp::from_secs(1), 1.0, s, Source::new("x"));
            assert!(matches!(r, Err(TickError::InvalidSize(_))), "{s}");
        }
        let zero = Tick::new(sym(), Timestamp::from_secs(1), 1.0, -0.0, Source::new("x")).unwrap();
        assert!(zero.size().is_sign_positive());
    }

    #[test]
    fn source_labels_are_sanitised() {
        assert_eq!(Source::new("YFinance").as_str(), "yfinance");
        assert_eq!(Source::new("a b;c").as_str(), "a_b_c");
        assert_eq!(Source::new("").as_str(), "unknown");
        assert_eq!(
            Source::new("a-very-long-feed-name-indeed").as_str().len(),
            16
        );
    }
}
