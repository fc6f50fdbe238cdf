//! `SimpleMovingAverage` (TA-Lib `SMA`).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::window::RingBuffer;
use std::fmt;

/// Arithmetic mean of the last `period` closes.
///
/// Bit-identical to TA-Lib: one running sum updated in TA-Lib's order
/// (`sum += x; value = sum / n; sum -= oldest`). A fresh sum per window, or yata's
/// `sum += (x - oldest) / n`, differs in the last bit.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SimpleMovingAverage {
    period: usize,
    window: RingBuffer,
    sum: f64,
    value: Option<f64>,
}

impl fmt::Display for SimpleMovingAverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimpleMovingAverage({})", self.period)
    }
}

impl Indicator for SimpleMovingAverage {
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
        self.window.clear();
        self.sum = 0.0;
        self.value = None;
    }
}

impl SimpleMovingAverage {
    /// An SMA over `period` values.
    ///
    /// # Panics
    /// If `period` is 0.
    pub fn new(period: usize) -> Self {
        assert!(period > 0, "SMA period must be positive");
        Self {
            period,
            window: RingBuffer::new(period),
            sum: 0.0,
            value: None,
        }
    }

    /// Feeds one value (not necessarily a close: MACD and Stochastic smooth their own lines).
    #[inline]
    pub fn update_raw(&mut self, x: f64) -> Option<f64> {
        self.sum += x;
        self.window.push(x);
        if self.window.is_full() {
            self.value = Some(self.sum / self.period as f64);
            self.sum -= self.window.oldest();
        }
        self.value
    }

    /// The mean, once `period` values were seen.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_appears_after_period_inputs() {
        let mut sma = SimpleMovingAverage::new(3);
        assert_eq!(sma.update_raw(1.0), None);
        assert_eq!(sma.update_raw(2.0), None);
        assert_eq!(sma.update_raw(3.0), Some(2.0));
        assert_eq!(sma.update_raw(7.0), Some(4.0));
        assert!(sma.initialized());
    }

    #[test]
    fn period_one_is_the_input() {
        let mut sma = SimpleMovingAverage::new(1);
        assert_eq!(sma.update_raw(5.5), Some(5.5));
        assert_eq!(sma.update_raw(1.25), Some(1.25));
    }

    #[test]
    fn reset_twice_restores_new() {
        let mut sma = SimpleMovingAverage::new(2);
        sma.update_raw(1.0);
        sma.update_raw(2.0);
        sma.reset();
        sma.reset();
        assert!(!sma.has_inputs() && !sma.initialized());
        assert_eq!(sma.update_raw(4.0), None);
        assert_eq!(sma.update_raw(6.0), Some(5.0));
    }

    #[test]
    #[should_panic(expected = "period must be positive")]
    fn period_zero_panics() {
        let _ = SimpleMovingAverage::new(0);
    }
}
