//! `Momentum` (TA-Lib `MOM`), on yata's `Momentum`.

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use std::fmt;
use yata::core::Method;

/// `close - close[-period]`.
///
/// A single subtraction, so yata's `Momentum` is exact; yata pre-fills its window with the
/// first close, so this wrapper withholds values until `period + 1` closes were seen.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Momentum {
    period: usize,
    seen: usize,
    inner: Option<yata::methods::Momentum>,
    value: Option<f64>,
}

impl fmt::Display for Momentum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Momentum({})", self.period)
    }
}

impl Indicator for Momentum {
    fn update(&mut self, bar: &Ohlcv) {
        let x = bar.close;
        // Cast is safe: `new` checked period ≤ 254.
        let period = self.period as u8;
        // unwrap: yata refuses only a zero period (checked in `new`) or a non-finite first
        // value (bars hold finite prices).
        let inner = self
            .inner
            .get_or_insert_with(|| yata::methods::Momentum::new(period, &x).unwrap());
        let diff = inner.next(&x);
        self.seen += 1;
        if self.seen > self.period {
            self.value = Some(diff);
        }
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        self.seen > 0
    }

    fn reset(&mut self) {
        self.seen = 0;
        self.inner = None;
        self.value = None;
    }
}

impl Momentum {
    /// MOM over `period` bars.
    ///
    /// # Panics
    /// If `period` is not within 1..=254 (yata's `u8` periods).
    pub fn new(period: usize) -> Self {
        assert!(
            (1..=254).contains(&period),
            "Momentum period must be 1..=254"
        );
        Self {
            period,
            seen: 0,
            inner: None,
            value: None,
        }
    }

    /// The difference, once `period + 1` closes were seen.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_over_the_period_after_warm_up() {
        let mut m = Momentum::new(2);
        let mut out = Vec::new();
        for c in [1.0, 4.0, 9.0, 16.0] {
            m.update(&Ohlcv::flat(c, 0.0));
            out.push(m.value());
        }
        assert_eq!(out, vec![None, None, Some(8.0), Some(12.0)]);
    }
}
