//! `OnBalanceVolume` (TA-Lib `OBV`).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use std::fmt;

/// Running volume signed by the close's direction. Starts at the first bar's volume, as
/// TA-Lib does (libraries that start at 0 differ by that constant).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct OnBalanceVolume {
    prev_close: Option<f64>,
    value: Option<f64>,
}

impl fmt::Display for OnBalanceVolume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnBalanceVolume")
    }
}

impl Indicator for OnBalanceVolume {
    fn update(&mut self, bar: &Ohlcv) {
        let obv = match (self.prev_close, self.value) {
            (Some(prev), Some(obv)) if bar.close > prev => obv + bar.volume,
            (Some(prev), Some(obv)) if bar.close < prev => obv - bar.volume,
            (_, Some(obv)) => obv,
            (_, None) => bar.volume,
        };
        self.prev_close = Some(bar.close);
        self.value = Some(obv);
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        self.value.is_some()
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

impl OnBalanceVolume {
    /// An OBV with no bars seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// The OBV, from the first bar on.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_first_volume_and_follows_direction() {
        let mut obv = OnBalanceVolume::new();
        let mut out = Vec::new();
        for (c, v) in [(10.0, 5.0), (11.0, 2.0), (11.0, 7.0), (9.0, 3.0)] {
            obv.update(&Ohlcv::flat(c, v));
            out.push(obv.value().unwrap());
        }
        assert_eq!(out, vec![5.0, 7.0, 7.0, 4.0]);
    }
}
