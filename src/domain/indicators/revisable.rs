//! `RevisableIndicators`: bar indicators that follow revisions of recent bars.
//!
//! Indicators are a function of the bar sequence. When a late trade revises a closed bar,
//! or is the first trade of a bucket that closed empty, the values of that bar and of every
//! bar after it change. So this keeps the indicator state before the oldest bar that can
//! still change (`base`) and the bars since; a change replays those bars from `base` with
//! the new version, and every value from the changed bar on is given again. Stored analytics
//! then always equal what the final bars give, exactly (TA-Lib order of operations kept).

use crate::domain::bar::Bar;
use crate::domain::indicators::set::{BarIndicators, IndicatorValues};
use crate::domain::time::Timestamp;
use std::collections::VecDeque;

/// A bar too old to be revised here: its change is not reflected in the indicators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bar starting at {start} is older than the oldest revisable bar")]
pub struct TooOld {
    pub start: Timestamp,
}

/// Bar indicators of one (symbol, interval) that accept revised and late-first bars among the
/// last `keep` bars.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RevisableIndicators {
    /// The state before `recent[0]` (after every bar older than it).
    base: BarIndicators,
    /// Start of the newest bar folded into `base`.
    base_last: Option<Timestamp>,
    /// The newest bars, oldest first, at most `keep`.
    recent: VecDeque<Bar>,
    keep: usize,
    /// The state after the last of `recent`; rebuilt from `base` and `recent` when missing
    /// (not checkpointed: it is a function of the two).
    #[serde(skip)]
    current: Option<BarIndicators>,
}

impl RevisableIndicators {
    /// Starts from `fresh` (no bar fed yet), keeping the last `keep` bars revisable.
    ///
    /// # Panics
    /// When `keep` is zero.
    pub fn new(fresh: BarIndicators, keep: usize) -> Self {
        assert!(keep > 0, "at least the last bar must be revisable");
        Self {
            current: Some(fresh.clone()),
            base: fresh,
            base_last: None,
            recent: VecDeque::with_capacity(keep + 1),
            keep,
        }
    }

    /// How many bars to keep revisable for bars of `bar_micros` that close `grace_micros`
    /// after their end and accept late trades for `lateness_micros` more: every bar still
    /// open to revisions, plus one.
    pub fn keep_for(bar_micros: i64, grace_micros: i64, lateness_micros: i64) -> usize {
        let window = (grace_micros.saturating_add(lateness_micros)).max(0);
        let bar = bar_micros.max(1);
        // `as usize`: a non-negative count of bars, small for any sane configuration.
        ((window / bar + i64::from(window % bar != 0)) as usize).saturating_add(2)
    }

    /// Bars fed so far (each bar once, however often revised).
    pub fn bars_seen(&self) -> u64 {
        self.base.bars_seen() + self.recent.len() as u64
    }

    fn current(&mut self) -> &mut BarIndicators {
        let (base, recent) = (&self.base, &self.recent);
        self.current.get_or_insert_with(|| {
            let mut state = base.clone();
            for bar in recent {
                state.update_bar(bar);
            }
            state
        })
    }

    /// Feeds a bar that closed for the first time or was revised; pushes the values of every
    /// bar whose values this gives or changes, oldest first, onto `out`.
    ///
    /// # Errors
    /// [`TooOld`] when `bar` starts at or before a bar already folded into the base state
    /// (older than the last `keep`): nothing changes then.
    pub fn on_bar(
        &mut self,
        bar: &Bar,
        out: &mut Vec<(Bar, IndicatorValues)>,
    ) -> Result<(), TooOld> {
        if self.recent.back().is_none_or(|last| last.start < bar.start) {
            if self.base_last.is_some_and(|b| bar.start <= b) {
                return Err(TooOld { start: bar.start });
            }
            let values = *self.current().update_bar(bar);
            out.push((*bar, values));
            self.recent.push_back(*bar);
        } else {
            // unwrap: `recent` is not empty (its last bar starts at or after `bar`).
            let i = self
                .recent
                .iter()
                .position(|b| b.start >= bar.start)
                .unwrap();
            if self.recent[i].start == bar.start {
                self.recent[i] = *bar;
            } else if i == 0 && self.base_last.is_some_and(|b| bar.start <= b) {
                return Err(TooOld { start: bar.start });
            } else {
                self.recent.insert(i, *bar);
            }
            let mut state = self.base.clone();
            for (j, b) in self.recent.iter().enumerate() {
                let values = *state.update_bar(b);
                if j >= i {
                    out.push((*b, values));
                }
            }
            self.current = Some(state);
        }
        while self.recent.len() > self.keep {
            // unwrap: longer than `keep` ≥ 1.
            let oldest = self.recent.pop_front().unwrap();
            self.base.update_bar(&oldest);
            self.base_last = Some(oldest.start);
        }
        Ok(())
    }

    /// The values the bars `open` (oldest first, all newer than every fed bar) would give if
    /// they closed now, without changing anything ("peek", as TA-Lib's streaming API calls
    /// it): the last open bar's values. `None` when `open` is empty.
    pub fn peek<'a>(&mut self, open: impl IntoIterator<Item = &'a Bar>) -> Option<IndicatorValues> {
        let mut state = self.current().clone();
        let mut last = None;
        for bar in open {
            last = Some(*state.update_bar(bar));
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::TradingCalendar;
    use crate::domain::interval::Interval;
    use crate::domain::symbol::Symbol;
    use proptest::prelude::*;

    fn bar(minute: i64, close: f64, volume: f64) -> Bar {
        let start = Timestamp::from_secs(1_704_204_000 + minute * 60);
        Bar {
            symbol: Symbol::parse("AAPL").unwrap(),
            interval: Interval::M1,
            start,
            end: start.add_micros(60_000_000),
            open: close - 0.5,
            high: close + 1.0,
            low: close - 1.0,
            close,
            volume,
            trades: 3,
            price_volume: close * volume,
            open_time: start,
            close_time: start,
            revision: 0,
            ties: crate::domain::bar::TieBreak::default(),
        }
    }

    fn fresh() -> BarIndicators {
        BarIndicators::new(Interval::M1, TradingCalendar::Utc24h)
    }

    /// The values of every bar of `bars`, fed once in order from scratch.
    fn from_scratch(bars: &[Bar]) -> Vec<IndicatorValues> {
        let mut state = fresh();
        bars.iter().map(|b| *state.update_bar(b)).collect()
    }

    #[test]
    fn a_revised_bar_gives_its_values_and_those_after_it_again() {
        let mut r = RevisableIndicators::new(fresh(), 3);
        let mut out = Vec::new();
        let bars: Vec<Bar> = (0..30).map(|i| bar(i, 100.0 + i as f64, 10.0)).collect();
        for b in &bars {
            r.on_bar(b, &mut out).unwrap();
        }
        out.clear();
        let mut revised = bars[28];
        revised.close = 50.0;
        revised.revision = 1;
        r.on_bar(&revised, &mut out).unwrap();
        assert_eq!(out.len(), 2, "the revised bar and the one after it");
        let mut final_bars = bars.clone();
        final_bars[28] = revised;
        let want = from_scratch(&final_bars);
        assert_eq!(out[0].1, want[28]);
        assert_eq!(out[1].1, want[29]);
        assert_eq!(out[1].0.start, bars[29].start);
    }

    #[test]
    fn a_late_first_bar_is_placed_among_the_recent_ones() {
        let mut r = RevisableIndicators::new(fresh(), 4);
        let mut out = Vec::new();
        let bars: Vec<Bar> = [0, 1, 3, 4]
            .iter()
            .map(|&i| bar(i, 100.0 + i as f64, 5.0))
            .collect();
        for b in &bars {
            r.on_bar(b, &mut out).unwrap();
        }
        out.clear();
        let late = bar(2, 90.0, 1.0);
        r.on_bar(&late, &mut out).unwrap();
        let want = from_scratch(&[bars[0], bars[1], late, bars[2], bars[3]]);
        let got: Vec<_> = out.iter().map(|(_, v)| *v).collect();
        assert_eq!(got, want[2..]);
    }

    #[test]
    fn a_bar_older_than_the_revisable_ones_is_refused_and_changes_nothing() {
        let mut r = RevisableIndicators::new(fresh(), 2);
        let mut out = Vec::new();
        for i in 0..5 {
            r.on_bar(&bar(i, 100.0, 1.0), &mut out).unwrap();
        }
        out.clear();
        assert!(r.on_bar(&bar(1, 1.0, 1.0), &mut out).is_err());
        assert!(out.is_empty());
        let next = bar(5, 101.0, 1.0);
        r.on_bar(&next, &mut out).unwrap();
        let want = from_scratch(
            &(0..5)
                .map(|i| bar(i, 100.0, 1.0))
                .chain([next])
                .collect::<Vec<_>>(),
        );
        assert_eq!(out[0].1, want[5]);
    }

    #[test]
    fn peeking_changes_nothing_and_equals_closing_the_bar() {
        let mut r = RevisableIndicators::new(fresh(), 3);
        let mut out = Vec::new();
        for i in 0..25 {
            r.on_bar(&bar(i, 100.0 + (i % 7) as f64, 3.0), &mut out)
                .unwrap();
        }
        let forming = bar(25, 104.5, 2.0);
        let peeked = r.peek([&forming]).unwrap();
        assert_eq!(r.peek([&forming]).unwrap(), peeked, "peek is repeatable");
        out.clear();
        r.on_bar(&forming, &mut out).unwrap();
        assert_eq!(out[0].1, peeked);
        assert!(r.peek(std::iter::empty()).is_none());
    }

    #[test]
    fn a_checkpointed_copy_continues_exactly() {
        let mut r = RevisableIndicators::new(fresh(), 3);
        let mut out = Vec::new();
        for i in 0..40 {
            r.on_bar(&bar(i, 100.0 + (i % 5) as f64, 2.0), &mut out)
                .unwrap();
        }
        let bytes = bincode::serde::encode_to_vec(&r, bincode::config::standard()).unwrap();
        let (mut back, _): (RevisableIndicators, _) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut revised = bar(39, 80.0, 9.0);
        revised.revision = 1;
        r.on_bar(&revised, &mut a).unwrap();
        back.on_bar(&revised, &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn keep_covers_every_bar_still_open_to_revisions() {
        // 1m bars, 2 s grace, 60 s lateness: the last two closed bars can change.
        assert_eq!(
            RevisableIndicators::keep_for(60_000_000, 2_000_000, 60_000_000),
            4
        );
        assert_eq!(
            RevisableIndicators::keep_for(86_400_000_000, 2_000_000, 60_000_000),
            3
        );
        assert_eq!(RevisableIndicators::keep_for(60_000_000, 0, 0), 2);
    }

    proptest! {
        /// Whatever revisions and late first bars arrive (within the revisable window), the
        /// last values given for each bar equal the values of the final bar sequence fed once.
        #[test]
        fn values_always_equal_the_final_sequence_fed_once(
            steps in proptest::collection::vec((0usize..3, 50.0f64..150.0, 0.0f64..20.0), 1..120),
        ) {
            let keep = 4;
            let mut r = RevisableIndicators::new(fresh(), keep);
            let mut latest: std::collections::BTreeMap<i64, (Bar, IndicatorValues)> = Default::default();
            let mut bars: std::collections::BTreeMap<i64, Bar> = Default::default();
            let mut next = 0i64;
            let mut out = Vec::new();
            for (kind, close, volume) in steps {
                let newest = next - 1;
                let minute = match kind {
                    // A revision, or the late first bar of a skipped minute, among the last
                    // `keep - 1` minutes (always among the revisable bars).
                    1 if newest >= 1 => newest - (close as i64 % (keep as i64 - 1)).min(newest),
                    // A new bar after a skipped minute.
                    2 => { next += 2; newest + 2 }
                    _ => { next += 1; newest + 1 }
                };
                let mut b = bar(minute, close, volume);
                if let Some(old) = bars.get(&minute) {
                    b.revision = old.revision + 1;
                }
                out.clear();
                r.on_bar(&b, &mut out).unwrap();
                bars.insert(minute, b);
                for (bar, values) in &out {
                    latest.insert((bar.start.micros() - 1_704_204_000_000_000) / 60_000_000, (*bar, *values));
                }
            }
            let final_bars: Vec<Bar> = bars.values().copied().collect();
            let want = from_scratch(&final_bars);
            for (i, (minute, b)) in bars.iter().enumerate() {
                let (got_bar, got) = latest[minute];
                prop_assert_eq!(got_bar, *b);
                prop_assert_eq!(got, want[i], "minute {}", minute);
            }
        }
    }
}
