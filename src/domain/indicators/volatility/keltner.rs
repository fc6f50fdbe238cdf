//! `KeltnerChannel`: EMA(20) ± 2 × ATR(14).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::average::ExponentialMovingAverage;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::volatility::AverageTrueRange;
use std::fmt;

/// Keltner channel: an EMA of closes ± `k` × ATR.
///
/// The reference platform centred it on the SMA (its defect 17); Keltner's channel as
/// revised by Raschke, and every charting package, centres it on an EMA. The ATR period
/// stays the reference's 14, so `keltner_*` moves with the published `atr_14`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeltnerChannel {
    k: f64,
    middle: ExponentialMovingAverage,
    atr: AverageTrueRange,
    value: Option<(f64, f64)>,
}

impl fmt::Display for KeltnerChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeltnerChannel({},{},{})", self.middle, self.atr, self.k)
    }
}

impl Indicator for KeltnerChannel {
    fn update(&mut self, bar: &Ohlcv) {
        let middle = self.middle.update_raw(bar.close);
        self.atr.update(bar);
        if let (Some(m), Some(atr)) = (middle, self.atr.value()) {
            self.value = Some((m + self.k * atr, m - self.k * atr));
        }
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        self.atr.has_inputs()
    }

    fn reset(&mut self) {
        self.middle.reset();
        self.atr.reset();
        self.value = None;
    }
}

impl KeltnerChannel {
    /// EMA(`ema_period`) ± `k` × ATR(`atr_period`).
    ///
    /// # Panics
    /// If a period is 0 or `k` is not finite and positive.
    pub fn new(ema_period: usize, atr_period: usize, k: f64) -> Self {
        assert!(k.is_finite() && k > 0.0, "Keltner width must be positive");
        Self {
            k,
            middle: ExponentialMovingAverage::new(ema_period),
            atr: AverageTrueRange::new(atr_period),
            value: None,
        }
    }

    /// `(upper, lower)`, once both the EMA and the ATR are defined.
    pub fn value(&self) -> Option<(f64, f64)> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_sit_k_atrs_around_the_ema() {
        let mut kc = KeltnerChannel::new(2, 1, 2.0);
        kc.update(&Ohlcv {
            open: 10.0,
            high: 11.0,
            low: 9.0,
            close: 10.0,
            volume: 0.0,
        });
        kc.update(&Ohlcv {
            open: 12.0,
            high: 12.0,
            low: 11.0,
            close: 12.0,
            volume: 0.0,
        });
        // EMA seed = 11; ATR = TR = max(1, |10-12|, |10-11|) = 2.
        assert_eq!(kc.value(), Some((15.0, 7.0)));
    }
}
