//! `BollingerBands` (TA-Lib `BBANDS` with an SMA middle band).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::average::SimpleMovingAverage;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::volatility::StandardDeviation;
use std::fmt;

/// SMA(`period`) ± `k` population standard deviations, plus bandwidth and %B.
///
/// yata's Bollinger bands divide the variance by n−1; TA-Lib divides by n.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BollingerBands {
    k: f64,
    middle: SimpleMovingAverage,
    sd: StandardDeviation,
    value: Option<BollingerValue>,
}

/// One Bollinger output.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BollingerValue {
    pub upper: f64,
    pub middle: f64,
    pub lower: f64,
    /// The population standard deviation the bands are built on (TA-Lib `STDDEV`).
    pub std_dev: f64,
    /// `(upper - lower) / middle`, a ratio (not percent).
    pub bandwidth: f64,
    /// `(close - lower) / (upper - lower)`; 0.5 when the bands meet.
    pub percent_b: f64,
}

impl fmt::Display for BollingerBands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BollingerBands({},{})", self.sd, self.k)
    }
}

impl Indicator for BollingerBands {
    fn update(&mut self, bar: &Ohlcv) {
        let middle = self.middle.update_raw(bar.close);
        let sd = self.sd.update_raw(bar.close);
        if let (Some(middle), Some(sd)) = (middle, sd) {
            let width = self.k * sd;
            let (upper, lower) = (middle + width, middle - width);
            self.value = Some(BollingerValue {
                upper,
                middle,
                lower,
                std_dev: sd,
                bandwidth: (upper - lower) / middle,
                percent_b: if upper == lower {
                    0.5
                } else {
                    (bar.close - lower) / (upper - lower)
                },
            });
        }
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        self.middle.has_inputs()
    }

    fn reset(&mut self) {
        self.middle.reset();
        self.sd.reset();
        self.value = None;
    }
}

impl BollingerBands {
    /// Bands over `period` closes, `k` deviations wide on each side.
    ///
    /// # Panics
    /// If `period` is 0 or `k` is not finite and positive.
    pub fn new(period: usize, k: f64) -> Self {
        assert!(k.is_finite() && k > 0.0, "Bollinger width must be positive");
        Self {
            k,
            middle: SimpleMovingAverage::new(period),
            sd: StandardDeviation::new(period),
            value: None,
        }
    }

    /// The bands, once `period` closes were seen.
    pub fn value(&self) -> Option<BollingerValue> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_prices_collapse_the_bands() {
        let mut bb = BollingerBands::new(3, 2.0);
        for _ in 0..3 {
            bb.update(&Ohlcv::flat(10.0, 0.0));
        }
        let v = bb.value().unwrap();
        assert_eq!(
            (v.upper, v.lower, v.bandwidth, v.percent_b),
            (10.0, 10.0, 0.0, 0.5)
        );
    }
}
