//! `AverageDirectionalIndex` (TA-Lib `ADX`).

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::talib;
use std::fmt;

/// Wilder's ADX in TA-Lib's exact operation order.
///
/// Directional movement and true range are summed over the first `period - 1` changes
/// (13 values for ADX 14, not 14), then smoothed as `s - s / n + x`. DX is skipped (adds 0
/// to the seed, leaves ADX unchanged later) whenever the true-range sum or DI+ + DI- is
/// (within 1e-14 of) zero, so a flat series gives 0. yata's ADX is on a 0–1 scale with other smoothing.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AverageDirectionalIndex {
    period: usize,
    prev: Option<Ohlcv>,
    /// Changes seen (bars − 1).
    changes: usize,
    plus_dm: f64,
    minus_dm: f64,
    tr: f64,
    dx_sum: f64,
    value: Option<f64>,
}

impl fmt::Display for AverageDirectionalIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AverageDirectionalIndex({})", self.period)
    }
}

impl Indicator for AverageDirectionalIndex {
    fn update(&mut self, bar: &Ohlcv) {
        let Some(prev) = self.prev.replace(*bar) else {
            return;
        };
        self.changes += 1;
        let n = self.period as f64;
        let diff_p = bar.high - prev.high;
        let diff_m = prev.low - bar.low;
        let tr = talib::true_range(bar.high, bar.low, prev.close);
        if self.changes < self.period {
            self.accumulate_dm(diff_p, diff_m);
            self.tr += tr;
            return;
        }
        self.minus_dm -= self.minus_dm / n;
        self.plus_dm -= self.plus_dm / n;
        self.accumulate_dm(diff_p, diff_m);
        self.tr = self.tr - (self.tr / n) + tr;
        let dx = self.dx();
        // Rows period .. 2*period-1 seed the first ADX with a plain mean of DX.
        let seed_rows = 2 * self.period - 1;
        if self.changes < seed_rows {
            self.dx_sum += dx.unwrap_or(0.0);
        } else if self.changes == seed_rows {
            self.dx_sum += dx.unwrap_or(0.0);
            self.value = Some(self.dx_sum / n);
        } else if let (Some(dx), Some(adx)) = (dx, self.value) {
            self.value = Some(((adx * (n - 1.0)) + dx) / n);
        }
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        self.prev.is_some()
    }

    fn reset(&mut self) {
        *self = Self::new(self.period);
    }
}

impl AverageDirectionalIndex {
    /// ADX over `period` bars.
    ///
    /// # Panics
    /// If `period` is less than 2.
    pub fn new(period: usize) -> Self {
        assert!(period >= 2, "ADX period must be at least 2");
        Self {
            period,
            prev: None,
            changes: 0,
            plus_dm: 0.0,
            minus_dm: 0.0,
            tr: 0.0,
            dx_sum: 0.0,
            value: None,
        }
    }

    /// The ADX, once `2 * period` bars were seen.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    #[inline]
    fn accumulate_dm(&mut self, diff_p: f64, diff_m: f64) {
        if diff_m > 0.0 && diff_p < diff_m {
            self.minus_dm += diff_m;
        } else if diff_p > 0.0 && diff_p > diff_m {
            self.plus_dm += diff_p;
        }
    }

    /// DX from the current sums, `None` where TA-Lib skips it.
    #[inline]
    fn dx(&self) -> Option<f64> {
        if self.tr <= 0.0 {
            return None;
        }
        let minus_di = (self.minus_dm / self.tr) * 100.0;
        let plus_di = (self.plus_dm / self.tr) * 100.0;
        let sum = minus_di + plus_di;
        (!talib::is_zero(sum)).then(|| ((minus_di - plus_di).abs() / sum) * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_at_row_2n_minus_1_and_flat_is_zero() {
        let mut adx = AverageDirectionalIndex::new(3);
        for i in 0..5 {
            adx.update(&Ohlcv::flat(5.0, 1.0));
            assert!(adx.value().is_none(), "row {i}");
        }
        adx.update(&Ohlcv::flat(5.0, 1.0));
        assert_eq!(adx.value(), Some(0.0));
    }

    #[test]
    fn a_steady_uptrend_has_adx_100() {
        let mut adx = AverageDirectionalIndex::new(3);
        for i in 0..12 {
            let c = 10.0 + f64::from(i);
            adx.update(&Ohlcv {
                open: c,
                high: c + 0.5,
                low: c - 0.5,
                close: c,
                volume: 1.0,
            });
        }
        assert_eq!(adx.value(), Some(100.0));
    }
}
