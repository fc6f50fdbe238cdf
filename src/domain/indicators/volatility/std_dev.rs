//! `StandardDeviation` (TA-Lib `STDDEV` with one deviation).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::window::RingBuffer;
use std::fmt;

/// A forced re-centre every `RECENTRE_EVERY × period` updates bounds drift (TA-Lib 0.8).
const RECENTRE_EVERY: usize = 32;

/// Population standard deviation (÷ N) of the last `period` values, bit-identical to
/// TA-Lib 0.8's `STDDEV` (and the bands of `BBANDS`).
///
/// TA-Lib 0.8 slides sums of deviations from a shift `K` and re-centres `K` on the window's
/// mean whenever cancellation threatens (the variance falls below 1e-6 of the mean square,
/// or the value leaving dwarfs the rest) and every `32 × period` updates regardless. So an
/// update is O(1), with an O(period) re-centre now and then, and a flat window gives exactly
/// 0 at any price level. (Older TA-Lib's `E[x²] - E[x]²` misses by up to 3e-7 relative; a
/// plain two-pass misses flat windows and large prices by up to 1e-5; yata divides by n−1.)
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StandardDeviation {
    period: usize,
    window: RingBuffer,
    /// The shift the sums are taken from.
    shift: f64,
    /// Σ (x − shift) over the window (minus the value about to leave, between updates).
    sum: f64,
    /// Σ (x − shift)² likewise.
    sum_sq: f64,
    /// Updates left before a forced re-centre.
    countdown: usize,
    value: Option<f64>,
}

impl fmt::Display for StandardDeviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StandardDeviation({})", self.period)
    }
}

impl Indicator for StandardDeviation {
    fn update(&mut self, bar: &Ohlcv) {
        self.update_raw(bar.close);
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        !self.window.is_empty()
    }

    fn reset(&mut self) {
        *self = Self::new(self.period);
    }
}

impl StandardDeviation {
    /// σ over `period` values.
    ///
    /// # Panics
    /// If `period` is 0.
    pub fn new(period: usize) -> Self {
        assert!(period > 0, "standard deviation period must be positive");
        Self {
            period,
            window: RingBuffer::new(period),
            shift: 0.0,
            sum: 0.0,
            sum_sq: 0.0,
            countdown: RECENTRE_EVERY * period,
            value: None,
        }
    }

    /// Feeds one value.
    #[inline]
    pub fn update_raw(&mut self, x: f64) -> Option<f64> {
        if self.window.is_empty() {
            self.shift = x;
        }
        self.window.push(x);
        let d = x - self.shift;
        self.sum += d;
        self.sum_sq += d * d;
        if !self.window.is_full() {
            return None;
        }
        let inv = 1.0 / self.period as f64;
        let mean = inv * self.sum;
        let mut var = inv * self.sum_sq - mean * mean;
        // Take out the value that leaves with the next update.
        let t = self.window.oldest() - self.shift;
        let t2 = t * t;
        self.sum_sq -= t2;
        let at_risk = (inv * self.sum_sq) * 1e-6 > var || t2 > self.sum_sq * 1e6 || {
            self.countdown -= 1;
            self.countdown == 0
        };
        if at_risk {
            var = self.recentre(inv);
        } else {
            self.sum -= t;
        }
        let sd = var.sqrt();
        self.value = Some(sd);
        Some(sd)
    }

    /// Re-takes the sums from the window's own mean; returns the window's variance.
    #[cold]
    fn recentre(&mut self, inv: f64) -> f64 {
        self.shift = self.window.iter().fold(0.0, |s, x| s + x) * inv;
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for x in self.window.iter() {
            let d = x - self.shift;
            sum += d;
            sum_sq += d * d;
        }
        let mean = inv * sum;
        let mean_sq = inv * sum_sq;
        let mut var = mean_sq - mean * mean;
        if var < mean_sq * 1e-12 {
            var = 0.0;
        }
        let t = self.window.oldest() - self.shift;
        self.sum = sum - t;
        self.sum_sq = sum_sq - t * t;
        self.countdown = RECENTRE_EVERY * self.period;
        var
    }

    /// σ, once `period` values were seen.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_not_sample() {
        let mut sd = StandardDeviation::new(2);
        sd.update_raw(1.0);
        assert_eq!(sd.update_raw(3.0), Some(1.0));
    }

    #[test]
    fn long_series_stay_exact_through_forced_recentres() {
        let mut sd = StandardDeviation::new(2);
        for i in 0..1000 {
            sd.update_raw(if i % 2 == 0 { 1e8 } else { 1e8 + 2.0 });
        }
        assert_eq!(sd.value(), Some(1.0));
    }

    #[test]
    fn a_flat_window_is_exactly_zero_at_any_price() {
        for price in [0.1, 1234567.89, 9.87654321e8, 3.3e-7] {
            let mut sd = StandardDeviation::new(20);
            for _ in 0..25 {
                sd.update_raw(price);
            }
            assert_eq!(sd.value(), Some(0.0), "{price}");
        }
    }
}
