//! `Indicator`: the small trait every bar indicator implements.

use crate::domain::bar::Ohlcv;

/// A bar indicator updated once per closed bar in O(1) (or O(period) for the few that
/// must rescan a short window to stay exact; each says so).
pub trait Indicator {
    /// Feeds one closed bar.
    fn update(&mut self, bar: &Ohlcv);
    /// Whether enough bars were seen for the value to be defined (TA-Lib's lookback is
    /// over). Before that the value is `None`, exactly where TA-Lib outputs NaN.
    fn initialized(&self) -> bool;
    /// Whether any bar was fed since creation or the last reset.
    fn has_inputs(&self) -> bool;
    /// Returns to the state of `new`.
    fn reset(&mut self);
}
