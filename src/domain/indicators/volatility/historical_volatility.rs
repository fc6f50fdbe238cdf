//! `HistoricalVolatility`: annualised standard deviation of log returns.

use crate::domain::bar::Ohlcv;
use crate::domain::indicators::indicator::Indicator;
use crate::domain::indicators::volatility::StandardDeviation;
use std::fmt;

/// `σ(ln(close / previous close) over period returns) × √(periods per year) × 100`.
///
/// σ is the population deviation, as the reference computed it. The reference annualised
/// with √252 whatever the bar length (its defect 17), overstating nothing on daily bars and
/// understating 1-minute volatility about 20×; here the caller passes the periods per year
/// of the bar interval (see [`crate::domain::TradingCalendar::periods_per_year`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HistoricalVolatility {
    periods_per_year: f64,
    prev_close: Option<f64>,
    returns: StandardDeviation,
    value: Option<f64>,
}

impl fmt::Display for HistoricalVolatility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HistoricalVolatility({},{})",
            self.returns, self.periods_per_year
        )
    }
}

impl Indicator for HistoricalVolatility {
    fn update(&mut self, bar: &Ohlcv) {
        if let Some(prev) = self.prev_close.replace(bar.close)
            && let Some(sd) = self.returns.update_raw((bar.close / prev).ln())
        {
            self.value = Some(sd * self.periods_per_year.sqrt() * 100.0);
        }
    }

    fn initialized(&self) -> bool {
        self.value.is_some()
    }

    fn has_inputs(&self) -> bool {
        self.prev_close.is_some()
    }

    fn reset(&mut self) {
        self.prev_close = None;
        self.returns.reset();
        self.value = None;
    }
}

impl HistoricalVolatility {
    /// Volatility over `period` returns, annualised with `periods_per_year`.
    ///
    /// # Panics
    /// If `period` is 0 or `periods_per_year` is not finite and positive.
    pub fn new(period: usize, periods_per_year: f64) -> Self {
        assert!(
            periods_per_year.is_finite() && periods_per_year > 0.0,
            "periods per year must be positive"
        );
        Self {
            periods_per_year,
            prev_close: None,
            returns: StandardDeviation::new(period),
            value: None,
        }
    }

    /// Annualised volatility in percent, once `period + 1` closes were seen.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternating_returns_annualise_by_the_square_root_of_periods() {
        let mut hv = HistoricalVolatility::new(2, 100.0);
        let up = 1.1_f64;
        for c in [1.0, up, 1.0] {
            hv.update(&Ohlcv::flat(c, 0.0));
        }
        // Returns +ln 1.1 and −ln 1.1: σ = ln 1.1.
        let want = up.ln() * 10.0 * 100.0;
        assert!((hv.value().unwrap() - want).abs() < 1e-12);
    }
}
