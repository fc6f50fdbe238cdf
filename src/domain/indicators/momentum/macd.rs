//! `MovingAverageConvergenceDivergence` (TA-Lib `MACD`).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::average::ExponentialMovingAverage;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::window::RingBuffer;
use std::fmt;

/// MACD line, signal and histogram, with TA-Lib's seeding.
///
/// TA-Lib starts both EMAs on the slow EMA's first row: the fast EMA is seeded with the
/// mean of the `fast` closes ending there, not of the first `fast` closes, so the MACD line
/// is *not* `ema_12 - ema_26` for the first hundred-odd bars. The signal is an EMA of the
/// line seeded with the mean of its first `signal` values; all three outputs start together.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MovingAverageConvergenceDivergence {
    fast_period: usize,
    slow_period: usize,
    signal_period: usize,
    fast: ExponentialMovingAverage,
    slow: ExponentialMovingAverage,
    signal: ExponentialMovingAverage,
    /// The last `fast_period` closes, for the fast seed.
    recent: RingBuffer,
    count: usize,
    value: Option<MacdValue>,
}

/// One MACD output.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MacdValue {
    /// Fast EMA − slow EMA.
    pub macd: f64,
    /// EMA of the line.
    pub signal: f64,
    /// Line − signal.
    pub hist: f64,
}

impl fmt::Display for MovingAverageConvergenceDivergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MovingAverageConvergenceDivergence({},{},{})",
            self.fast_period, self.slow_period, self.signal_period
        )
    }
}

impl Indicator for MovingAverageConvergenceDivergence {
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
        self.fast.reset();
        self.slow.reset();
        self.signal.reset();
        self.recent.clear();
        self.count = 0;
        self.value = None;
    }
}

impl MovingAverageConvergenceDivergence {
    /// MACD(`fast`, `slow`, `signal`); TA-Lib swaps `fast` and `slow` if given reversed.
    ///
    /// # Panics
    /// If any period is less than 2 (TA-Lib's minimum).
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        assert!(
            fast >= 2 && slow >= 2 && signal >= 1,
            "MACD periods must be at least 2"
        );
        let (fast, slow) = if slow < fast {
            (slow, fast)
        } else {
            (fast, slow)
        };
        Self {
            fast_period: fast,
            slow_period: slow,
            signal_period: signal,
            fast: ExponentialMovingAverage::new(fast),
            slow: ExponentialMovingAverage::new(slow),
            signal: ExponentialMovingAverage::new(signal),
            recent: RingBuffer::new(fast),
            count: 0,
            value: None,
        }
    }

    /// Feeds one close.
    #[inline]
    pub fn update_raw(&mut self, x: f64) -> Option<MacdValue> {
        self.count += 1;
        self.recent.push(x);
        let slow = self.slow.update_raw(x)?;
        let fast = if self.count == self.slow_period {
            let seed = self.recent.iter().fold(0.0, |s, c| s + c) / self.fast_period as f64;
            self.fast.seed(seed);
            seed
        } else {
            // unwrap: the fast EMA was seeded on the slow EMA's first row, so it has a value.
            self.fast.update_raw(x).unwrap()
        };
        let line = fast - slow;
        self.value = self.signal.update_raw(line).map(|signal| MacdValue {
            macd: line,
            signal,
            hist: line - signal,
        });
        self.value
    }

    /// The outputs, once `slow + signal - 1` closes were seen.
    pub fn value(&self) -> Option<MacdValue> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_start_on_row_slow_plus_signal_minus_two() {
        let mut m = MovingAverageConvergenceDivergence::new(12, 26, 9);
        for i in 0..33 {
            assert!(m.update_raw(100.0 + f64::from(i)).is_none(), "row {i}");
        }
        assert!(m.update_raw(133.0).is_some(), "row 33");
    }

    #[test]
    fn a_constant_series_has_a_zero_line() {
        let mut m = MovingAverageConvergenceDivergence::new(3, 5, 2);
        let mut last = None;
        for _ in 0..20 {
            last = m.update_raw(7.0);
        }
        assert_eq!(
            last,
            Some(MacdValue {
                macd: 0.0,
                signal: 0.0,
                hist: 0.0
            })
        );
    }
}
