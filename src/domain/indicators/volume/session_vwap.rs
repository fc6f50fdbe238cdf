//! `SessionVwap`: volume-weighted average price since the session began.

use std::fmt;

/// Σ price × volume / Σ volume over the bars of the current session, reset when the
/// session changes. Each bar contributes its own VWAP when it has one (bars built from
/// trades) and its typical price `(h + l + c) / 3` otherwise (bars read from files), so on
/// live bars the result is the exact VWAP of every trade of the session.
///
/// Not an [`crate::domain::indicators::Indicator`]: it needs the session of each bar,
/// which [`crate::domain::indicators::BarIndicators`] derives from the calendar.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SessionVwap {
    session: Option<i32>,
    price_volume: f64,
    volume: f64,
    value: Option<f64>,
}

impl fmt::Display for SessionVwap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionVwap")
    }
}

impl SessionVwap {
    /// A VWAP with no bars seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a bar of `session` with representative `price` and `volume`.
    #[inline]
    pub fn update(&mut self, session: i32, price: f64, volume: f64) -> Option<f64> {
        if self.session != Some(session) {
            self.session = Some(session);
            self.price_volume = 0.0;
            self.volume = 0.0;
        }
        self.price_volume += price * volume;
        self.volume += volume;
        self.value = (self.volume > 0.0).then(|| self.price_volume / self.volume);
        self.value
    }

    /// The VWAP; `None` while the session has traded no volume.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// Returns to the state of `new`.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_at_each_session_and_ignores_zero_volume() {
        let mut v = SessionVwap::new();
        assert_eq!(v.update(1, 10.0, 0.0), None);
        assert_eq!(v.update(1, 10.0, 1.0), Some(10.0));
        assert_eq!(v.update(1, 13.0, 2.0), Some(12.0));
        assert_eq!(v.update(2, 20.0, 1.0), Some(20.0));
    }
}
