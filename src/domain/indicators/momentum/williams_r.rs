//! `WilliamsR` (TA-Lib `WILLR`).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::momentum::range::HighLowRange;
use crate::domain::indicators::talib;
use std::fmt;

/// Williams %R in [-100, 0]: `((HH - close) / (HH - LL)) * -100`, clamped to [-100, 0];
/// 0 when the range is within 1e-14 of the prices' size (TA-Lib 0.8's scaled zero test).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WilliamsR {
    period: usize,
    range: HighLowRange,
    value: Option<f64>,
}

impl fmt::Display for WilliamsR {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WilliamsR({})", self.period)
    }
}

impl Indicator for WilliamsR {
    fn update(&mut self, bar: &Ohlcv) {
        if let Some((hh, ll)) = self.range.update(bar.high, bar.low) {
            let range = hh - ll;
            self.value = Some(if talib::is_zero_scaled(range, hh.abs() + ll.abs()) {
                0.0
            } else {
                // -0.0 when the close is the high, as TA-Lib: `max` keeps the sign.
                let w = ((hh - bar.close) / range) * -100.0;
                if w > 0.0 { 0.0 } else { w.max(-100.0) }
            });
        }
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        self.range.has_inputs()
    }

    fn reset(&mut self) {
        self.range.reset();
        self.value = None;
    }
}

impl WilliamsR {
    /// %R over `period` bars.
    ///
    /// # Panics
    /// If `period` is not within 1..=254.
    pub fn new(period: usize) -> Self {
        Self {
            period,
            range: HighLowRange::new(period),
            value: None,
        }
    }

    /// %R, once `period` bars were seen.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_at_low_is_minus_100_and_flat_is_0() {
        let mut w = WilliamsR::new(2);
        w.update(&Ohlcv {
            open: 5.0,
            high: 6.0,
            low: 4.0,
            close: 5.0,
            volume: 0.0,
        });
        w.update(&Ohlcv {
            open: 5.0,
            high: 6.0,
            low: 4.0,
            close: 4.0,
            volume: 0.0,
        });
        assert_eq!(w.value(), Some(-100.0));
        let mut flat = WilliamsR::new(2);
        flat.update(&Ohlcv::flat(3.0, 0.0));
        flat.update(&Ohlcv::flat(3.0, 0.0));
        assert_eq!(flat.value(), Some(0.0));
    }
}
