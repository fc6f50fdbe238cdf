//! `ExponentialMovingAverage` (TA-Lib `EMA`).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::talib;
use std::fmt;

/// Exponential moving average with `k = 2 / (period + 1)`, seeded TA-Lib's way.
///
/// The first value (after `period` inputs) is the plain mean of those inputs; then
/// `e = (x - e) * k + e` with one rounding (`mul_add`), as TA-Lib's FMA build computes it.
/// yata's EMA seeds with the first input (TA-Lib's Metastock mode), which differs for
/// hundreds of bars.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExponentialMovingAverage {
    period: usize,
    k: f64,
    count: usize,
    seed_sum: f64,
    value: Option<f64>,
}

impl fmt::Display for ExponentialMovingAverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExponentialMovingAverage({})", self.period)
    }
}

impl Indicator for ExponentialMovingAverage {
    fn update(&mut self, bar: &Ohlcv) {
        self.update_raw(bar.close);
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        self.count > 0
    }

    fn reset(&mut self) {
        self.count = 0;
        self.seed_sum = 0.0;
        self.value = None;
    }
}

impl ExponentialMovingAverage {
    /// An EMA over `period` values.
    ///
    /// # Panics
    /// If `period` is 0.
    pub fn new(period: usize) -> Self {
        assert!(period > 0, "EMA period must be positive");
        Self {
            period,
            k: talib::ema_k(period),
            count: 0,
            seed_sum: 0.0,
            value: None,
        }
    }

    /// Feeds one value.
    #[inline]
    pub fn update_raw(&mut self, x: f64) -> Option<f64> {
        self.count += 1;
        match self.value {
            Some(e) => self.value = Some((x - e).mul_add(self.k, e)),
            None => {
                self.seed_sum += x;
                if self.count == self.period {
                    self.value = Some(self.seed_sum / self.period as f64);
                }
            }
        }
        self.value
    }

    /// Starts the average at `seed` as if `period` values had been seen (MACD seeds its fast
    /// line from a later window than a standalone EMA would).
    pub(crate) fn seed(&mut self, seed: f64) {
        self.count = self.period;
        self.value = Some(seed);
    }

    /// The average, once `period` values were seen.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_the_mean_of_the_first_period_values() {
        let mut ema = ExponentialMovingAverage::new(3);
        assert_eq!(ema.update_raw(1.0), None);
        assert_eq!(ema.update_raw(2.0), None);
        assert_eq!(ema.update_raw(6.0), Some(3.0));
        // k = 0.5: 3 + 0.5 * (5 - 3) = 4
        assert_eq!(ema.update_raw(5.0), Some(4.0));
    }

    #[test]
    fn period_one_follows_the_input() {
        let mut ema = ExponentialMovingAverage::new(1);
        assert_eq!(ema.update_raw(2.0), Some(2.0));
        assert_eq!(ema.update_raw(3.0), Some(3.0));
    }

    #[test]
    fn reset_restores_new() {
        let mut ema = ExponentialMovingAverage::new(2);
        ema.update_raw(1.0);
        ema.update_raw(3.0);
        ema.reset();
        assert!(!ema.has_inputs());
        assert_eq!(ema.update_raw(10.0), None);
        assert_eq!(ema.update_raw(20.0), Some(15.0));
    }
}
