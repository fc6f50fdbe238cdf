//! `RateOfChange` (TA-Lib `ROC`).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::window::RingBuffer;
use std::fmt;

/// Percentage change over `period` bars: `(close / close[-period] - 1) * 100`; 0 when the
/// old close is 0. (TA-Lib's ROC, not ROCP or ROCR. yata's `RateOfChange` computes
/// `(x - old) / old`, which rounds differently.)
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RateOfChange {
    period: usize,
    closes: RingBuffer,
    value: Option<f64>,
}

impl fmt::Display for RateOfChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RateOfChange({})", self.period)
    }
}

impl Indicator for RateOfChange {
    fn update(&mut self, bar: &Ohlcv) {
        self.closes.push(bar.close);
        if self.closes.is_full() {
            let old = self.closes.oldest();
            self.value = Some(if old != 0.0 {
                ((bar.close / old) - 1.0) * 100.0
            } else {
                0.0
            });
        }
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        !self.closes.is_empty()
    }

    fn reset(&mut self) {
        self.closes.clear();
        self.value = None;
    }
}

impl RateOfChange {
    /// ROC over `period` bars.
    ///
    /// # Panics
    /// If `period` is 0.
    pub fn new(period: usize) -> Self {
        assert!(period > 0, "ROC period must be positive");
        Self {
            period,
            closes: RingBuffer::new(period + 1),
            value: None,
        }
    }

    /// The percentage change, once `period + 1` closes were seen.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_percent_up_is_ten() {
        let mut roc = RateOfChange::new(2);
        for c in [100.0, 105.0, 110.0] {
            roc.update(&Ohlcv::flat(c, 0.0));
        }
        assert_eq!(roc.value(), Some(((110.0_f64 / 100.0) - 1.0) * 100.0));
    }
}
