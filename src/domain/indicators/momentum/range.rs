//! `HighLowRange`: highest high and lowest low of the last N bars, from yata.

use yata::core::Method;
use yata::methods::{Highest, Lowest};

/// Highest high and lowest low over the last `period` bars.
///
/// A max/min involves no rounding, so yata's `Highest`/`Lowest` give TA-Lib's values
/// exactly. yata pre-fills its window with the first input and has no warm-up flag, so
/// this wrapper counts bars and answers only once `period` real bars are inside.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct HighLowRange {
    period: usize,
    seen: usize,
    windows: Option<(Highest, Lowest)>,
}

impl HighLowRange {
    /// A range over `period` (1..=254, yata's `u8` period) bars.
    pub(crate) fn new(period: usize) -> Self {
        assert!((1..=254).contains(&period), "range period must be 1..=254");
        Self {
            period,
            seen: 0,
            windows: None,
        }
    }

    /// Feeds one bar; returns `(highest, lowest)` once `period` bars were seen.
    #[inline]
    pub(crate) fn update(&mut self, high: f64, low: f64) -> Option<(f64, f64)> {
        // Cast is safe: `new` checked period ≤ 254.
        let period = self.period as u8;
        let (hi, lo) = match &mut self.windows {
            Some((h, l)) => (h.next(&high), l.next(&low)),
            None => {
                // unwrap: yata refuses only non-finite inputs or a zero period; bars hold
                // finite prices and `new` checked the period.
                let h = Highest::new(period, &high).unwrap();
                let l = Lowest::new(period, &low).unwrap();
                self.windows = Some((h, l));
                (high, low)
            }
        };
        self.seen += 1;
        (self.seen >= self.period).then_some((hi, lo))
    }

    pub(crate) fn has_inputs(&self) -> bool {
        self.seen > 0
    }

    pub(crate) fn reset(&mut self) {
        self.seen = 0;
        self.windows = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_only_when_the_window_is_full() {
        let mut r = HighLowRange::new(3);
        assert_eq!(r.update(5.0, 1.0), None);
        assert_eq!(r.update(7.0, 2.0), None);
        assert_eq!(r.update(6.0, 3.0), Some((7.0, 1.0)));
        assert_eq!(r.update(4.0, 3.5), Some((7.0, 2.0)));
        assert_eq!(r.update(4.0, 3.5), Some((6.0, 3.0)));
    }
}
