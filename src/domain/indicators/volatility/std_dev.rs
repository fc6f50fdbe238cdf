//! `StandardDeviation` (TA-Lib `STDDEV` with one deviation).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::window::RingBuffer;
use std::fmt;

/// Population standard deviation (÷ N) of the last `period` values.
///
/// Recomputed over the window on every update (2 × `period` flops; 20 for STDDEV 20) rather
/// than slid: a sliding `E[x²] - E[x]²` misses TA-Lib 0.8 by up to 3e-7 relative, and any
/// sliding form drifts and cannot give an exact 0 for a flat window, which TA-Lib does. The
/// values are shifted by the window's oldest value first, so a flat window is exactly 0 at
/// any price level.
#[derive(Debug, Clone)]
pub struct StandardDeviation {
    period: usize,
    window: RingBuffer,
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
        self.window.len() > 0
    }

    fn reset(&mut self) {
        self.window.clear();
        self.value = None;
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
            value: None,
        }
    }

    /// Feeds one value.
    #[inline]
    pub fn update_raw(&mut self, x: f64) -> Option<f64> {
        self.window.push(x);
        if self.window.is_full() {
            self.value = Some(population_std(&self.window));
        }
        self.value
    }

    /// σ, once `period` values were seen.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Shifted two-pass population standard deviation of a full window.
#[inline]
fn population_std(window: &RingBuffer) -> f64 {
    let n = window.len() as f64;
    let shift = window.oldest();
    let mean = window.iter().fold(0.0, |s, x| s + (x - shift)) / n;
    let sq = window.iter().fold(0.0, |s, x| {
        let d = (x - shift) - mean;
        s + d * d
    });
    (sq / n).sqrt()
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
