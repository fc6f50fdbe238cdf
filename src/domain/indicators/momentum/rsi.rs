//! `RelativeStrengthIndex` (TA-Lib `RSI`).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::talib;
use std::fmt;

/// Wilder's RSI on a 0–100 scale, computed in TA-Lib's operation order.
///
/// The first averages are plain means of the first `period` changes; then each average is
/// `(avg * (period - 1) + x) / period`. A flat window (no gains, no losses) gives 0, as
/// TA-Lib does. yata's RSI is on a 0–1 scale and smooths with an EMA by default.
#[derive(Debug, Clone)]
pub struct RelativeStrengthIndex {
    period: usize,
    prev: Option<f64>,
    changes: usize,
    avg_gain: f64,
    avg_loss: f64,
    value: Option<f64>,
}

impl fmt::Display for RelativeStrengthIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelativeStrengthIndex({})", self.period)
    }
}

impl Indicator for RelativeStrengthIndex {
    fn update(&mut self, bar: &Ohlcv) {
        self.update_raw(bar.close);
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        self.prev.is_some()
    }

    fn reset(&mut self) {
        *self = Self::new(self.period);
    }
}

impl RelativeStrengthIndex {
    /// An RSI over `period` changes.
    ///
    /// # Panics
    /// If `period` is less than 2 (TA-Lib's minimum).
    pub fn new(period: usize) -> Self {
        assert!(period >= 2, "RSI period must be at least 2");
        Self {
            period,
            prev: None,
            changes: 0,
            avg_gain: 0.0,
            avg_loss: 0.0,
            value: None,
        }
    }

    /// Feeds one price.
    #[inline]
    pub fn update_raw(&mut self, x: f64) -> Option<f64> {
        let Some(prev) = self.prev.replace(x) else {
            return None;
        };
        let change = x - prev;
        let n = self.period as f64;
        self.changes += 1;
        if self.changes > self.period {
            self.avg_gain *= n - 1.0;
            self.avg_loss *= n - 1.0;
        }
        if change < 0.0 {
            self.avg_loss -= change;
        } else {
            self.avg_gain += change;
        }
        if self.changes >= self.period {
            self.avg_gain /= n;
            self.avg_loss /= n;
            let total = self.avg_gain + self.avg_loss;
            self.value = Some(if talib::is_zero(total) {
                0.0
            } else {
                100.0 * (self.avg_gain / total)
            });
        }
        self.value
    }

    /// The RSI, once `period` changes were seen.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_gains_give_100_and_a_flat_series_gives_0() {
        let mut up = RelativeStrengthIndex::new(3);
        let mut flat = RelativeStrengthIndex::new(3);
        for i in 0..10 {
            up.update_raw(f64::from(i));
            flat.update_raw(5.0);
        }
        assert_eq!(up.value(), Some(100.0));
        assert_eq!(flat.value(), Some(0.0));
    }

    #[test]
    fn first_value_comes_after_period_changes() {
        let mut rsi = RelativeStrengthIndex::new(2);
        assert_eq!(rsi.update_raw(1.0), None);
        assert_eq!(rsi.update_raw(2.0), None);
        // gains 1, losses 0.5 over two changes: 100 * 0.5 / 0.75
        assert_eq!(rsi.update_raw(1.0), Some(100.0 * (0.5 / 1.0)));
    }

    #[test]
    #[should_panic(expected = "at least 2")]
    fn period_one_panics() {
        let _ = RelativeStrengthIndex::new(1);
    }
}
