//! `Stochastic` (TA-Lib `STOCH` with SMA smoothing).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::average::SimpleMovingAverage;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::momentum::range::HighLowRange;
use crate::domain::indicators::talib;
use std::fmt;

/// Slow stochastic oscillator: `%K = SMA(fastK, slow_k)`, `%D = SMA(%K, slow_d)`.
///
/// `fastK = ((close - LL) / (HH - LL)) * 100` over the last `fast_k` highs and lows, and 0
/// when the range is within 1e-14 of the prices' size (TA-Lib 0.8's scaled zero test). Both outputs start together, when %D is defined.
/// yata's Stochastic is on a 0–1 scale and smooths with EMAs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stochastic {
    fast_k_period: usize,
    range: HighLowRange,
    slow_k: SimpleMovingAverage,
    slow_d: SimpleMovingAverage,
    value: Option<StochasticValue>,
}

/// One Stochastic output.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StochasticValue {
    /// Slow %K.
    pub k: f64,
    /// Slow %D.
    pub d: f64,
}

impl fmt::Display for Stochastic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stochastic({})", self.fast_k_period)
    }
}

impl Indicator for Stochastic {
    fn update(&mut self, bar: &Ohlcv) {
        let Some((hh, ll)) = self.range.update(bar.high, bar.low) else {
            return;
        };
        let range = hh - ll;
        let fast_k = if talib::is_zero_scaled(range, hh.abs() + ll.abs()) {
            0.0
        } else {
            ((bar.close - ll) / range) * 100.0
        };
        let Some(k) = self.slow_k.update_raw(fast_k) else {
            return;
        };
        self.value = self.slow_d.update_raw(k).map(|d| StochasticValue { k, d });
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        self.range.has_inputs()
    }

    fn reset(&mut self) {
        self.range.reset();
        self.slow_k.reset();
        self.slow_d.reset();
        self.value = None;
    }
}

impl Stochastic {
    /// STOCH(`fast_k`, `slow_k` SMA, `slow_d` SMA).
    ///
    /// # Panics
    /// If any period is 0.
    pub fn new(fast_k: usize, slow_k: usize, slow_d: usize) -> Self {
        assert!(
            fast_k > 0 && slow_k > 0 && slow_d > 0,
            "Stochastic periods must be positive"
        );
        Self {
            fast_k_period: fast_k,
            range: HighLowRange::new(fast_k),
            slow_k: SimpleMovingAverage::new(slow_k),
            slow_d: SimpleMovingAverage::new(slow_d),
            value: None,
        }
    }

    /// %K and %D, once `fast_k + slow_k + slow_d - 2` bars were seen.
    pub fn value(&self) -> Option<StochasticValue> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_range_gives_zero() {
        let mut s = Stochastic::new(3, 2, 2);
        for _ in 0..6 {
            s.update(&Ohlcv::flat(10.0, 1.0));
        }
        assert_eq!(s.value(), Some(StochasticValue { k: 0.0, d: 0.0 }));
    }

    #[test]
    fn closing_at_the_high_gives_100() {
        let mut s = Stochastic::new(3, 1, 1);
        for i in 0..5 {
            let c = 10.0 + f64::from(i);
            s.update(&Ohlcv {
                open: c,
                high: c,
                low: c - 1.0,
                close: c,
                volume: 1.0,
            });
        }
        assert_eq!(s.value().unwrap().k, 100.0);
    }
}
