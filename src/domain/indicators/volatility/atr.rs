//! `AverageTrueRange` (TA-Lib `ATR`).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::talib;
use std::fmt;

/// Wilder's average true range, in TA-Lib's operation order.
///
/// The first bar has no true range (no previous close). The seed is the plain mean of the
/// first `period` true ranges; then `atr = fma(w, atr, tr * (1 - w))` with
/// `w = (period - 1) / period`, TA-Lib 0.8's form (Wilder's `(atr * 13 + tr) / 14` differs
/// in the last bits). yata has no ATR.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AverageTrueRange {
    period: usize,
    prev_close: Option<f64>,
    ranges: usize,
    atr: f64,
    value: Option<f64>,
}

impl fmt::Display for AverageTrueRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AverageTrueRange({})", self.period)
    }
}

impl Indicator for AverageTrueRange {
    fn update(&mut self, bar: &Ohlcv) {
        let Some(prev) = self.prev_close.replace(bar.close) else {
            return;
        };
        let tr = talib::true_range(bar.high, bar.low, prev);
        let n = self.period as f64;
        self.ranges += 1;
        if self.ranges < self.period {
            self.atr += tr;
            return;
        }
        if self.ranges == self.period {
            self.atr = (self.atr + tr) / n;
        } else {
            let w = (n - 1.0) / n;
            self.atr = w.mul_add(self.atr, tr * (1.0 - w));
        }
        self.value = Some(self.atr);
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        self.prev_close.is_some()
    }

    fn reset(&mut self) {
        *self = Self::new(self.period);
    }
}

impl AverageTrueRange {
    /// ATR over `period` true ranges.
    ///
    /// # Panics
    /// If `period` is 0.
    pub fn new(period: usize) -> Self {
        assert!(period > 0, "ATR period must be positive");
        Self {
            period,
            prev_close: None,
            ranges: 0,
            atr: 0.0,
            value: None,
        }
    }

    /// The ATR, once `period + 1` bars were seen.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_count_through_the_previous_close() {
        let mut atr = AverageTrueRange::new(1);
        atr.update(&Ohlcv {
            open: 10.0,
            high: 10.5,
            low: 9.5,
            close: 10.0,
            volume: 0.0,
        });
        assert_eq!(atr.value(), None, "row 0 has no true range");
        atr.update(&Ohlcv {
            open: 12.0,
            high: 12.5,
            low: 11.8,
            close: 12.0,
            volume: 0.0,
        });
        assert_eq!(atr.value(), Some(2.5));
    }
}
