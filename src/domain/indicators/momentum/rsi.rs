//! `RelativeStrengthIndex` (TA-Lib `RSI`).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use std::fmt;

/// Wilder's RSI on a 0–100 scale, computed in TA-Lib's operation order.
///
/// The first averages are the sums of the first `period` gains and losses times `1/period`;
/// then `avg = (avg * (period - 1) + x) * (1/period)`, with `1/period` rounded once, as
/// TA-Lib 0.8 does (dividing by `period` instead differs in the last bits). The RSI is
/// `(avg_gain / (avg_gain + avg_loss)) * 100`, and 0 when both averages are exactly 0 (a flat
/// window). yata's RSI is on a 0–1 scale and smooths with an EMA by default.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
        let prev = self.prev.replace(x)?;
        let change = x - prev;
        let gain = if change > 0.0 { change } else { 0.0 };
        let loss = gain - change;
        let inv = 1.0 / self.period as f64;
        let n_minus_1 = (self.period - 1) as f64;
        self.changes += 1;
        if self.changes < self.period {
            // Seed: plain sums until `period` changes are in.
            self.avg_gain += gain;
            self.avg_loss += loss;
            return None;
        }
        if self.changes == self.period {
            self.avg_gain = (self.avg_gain + gain) * inv;
            self.avg_loss = (self.avg_loss + loss) * inv;
        } else {
            self.avg_gain = (self.avg_gain * n_minus_1 + gain) * inv;
            self.avg_loss = (loss + self.avg_loss * n_minus_1) * inv;
        }
        let total = self.avg_loss + self.avg_gain;
        self.value = Some(if total > 0.0 {
            (self.avg_gain / total) * 100.0
        } else {
            0.0
        });
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
        // gains 1, losses 1 over two changes: averages 0.5 and 0.5
        assert_eq!(rsi.update_raw(1.0), Some(50.0));
    }

    #[test]
    #[should_panic(expected = "at least 2")]
    fn period_one_panics() {
        let _ = RelativeStrengthIndex::new(1);
    }
}
