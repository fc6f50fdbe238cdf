//! `BarBuilder`: turns one symbol's trades into bars of one interval, in event time.
//!
//! A bar is open while the watermark (the latest event time seen, or a time the caller
//! advances it to) is before `end + grace`; then it closes and is emitted. A trade that
//! arrives for a closed bar while the watermark is still before `end + grace +
//! allowed_lateness` revises it (emitted again with `revision + 1`); later than that it is
//! counted and dropped. Bars are never held back for the next session, and a gap spanning
//! many intervals closes every pending bar at once (the reference's defects 9 and 10).

use crate::domain::bar::{Bar, TieBreak};
use crate::domain::calendar::{Session, TradingCalendar};
use crate::domain::interval::Interval;
use crate::domain::tick::Tick;
use crate::domain::time::{MICROS_PER_SECOND, Timestamp};
use std::collections::VecDeque;

/// When bars close and how long they accept late trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BarBuilderConfig {
    /// How far past a bar's end event time must move before the bar closes.
    pub grace_micros: i64,
    /// How long after closing a bar still accepts trades as revisions.
    pub allowed_lateness_micros: i64,
}

impl Default for BarBuilderConfig {
    /// Grace 2 s, allowed lateness 60 s.
    fn default() -> Self {
        Self {
            grace_micros: 2 * MICROS_PER_SECOND,
            allowed_lateness_micros: 60 * MICROS_PER_SECOND,
        }
    }
}

/// A bar leaving the builder.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum BarEvent {
    /// A bar closed for the first time (`revision == 0`).
    Closed(Bar),
    /// A late trade changed an already closed bar (`revision > 0`).
    Revised(Bar),
}

impl BarEvent {
    /// The bar carried.
    pub fn bar(&self) -> &Bar {
        match self {
            Self::Closed(b) | Self::Revised(b) => b,
        }
    }
}

/// What happened to one trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickOutcome {
    /// Added to an open bar (or opened one).
    Applied,
    /// Added to a closed bar, which was re-emitted as a revision (or emitted for the first
    /// time, if no trade had reached that bucket before).
    Revised,
    /// Too late: its bar is past the allowed lateness. Counted, not applied.
    LateDropped,
    /// Outside the calendar's session (daily bars only). Counted, not applied.
    OutsideSession,
}

/// Counters since the builder was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BarBuilderStats {
    /// Trades added to a bar.
    pub applied: u64,
    /// Trades dropped as too late.
    pub late_dropped: u64,
    /// Trades outside the session (daily bars).
    pub outside_session: u64,
    /// Bars closed.
    pub closed: u64,
    /// Revisions emitted.
    pub revised: u64,
}

/// Builds bars of one interval for one symbol. Feed it that symbol's trades in any order
/// (within the grace period order does not matter at all); collect [`BarEvent`]s.
///
/// Steady-state updates do not allocate: the open and recently closed bars live in
/// `VecDeque`s whose capacity is reached after the first few bars.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BarBuilder {
    interval: Interval,
    calendar: TradingCalendar,
    config: BarBuilderConfig,
    /// Bars still accepting trades as normal updates, sorted by start.
    open: VecDeque<Bar>,
    /// Closed bars still inside the allowed lateness, sorted by start.
    closed: VecDeque<Bar>,
    /// Latest event time seen or advanced to; `None` before the first trade.
    watermark: Option<Timestamp>,
    /// The session of the last daily lookup, so most trades skip the time-zone maths.
    session_cache: Option<Session>,
    stats: BarBuilderStats,
}

impl BarBuilder {
    /// A builder for `interval` bars; `calendar` defines daily sessions.
    pub fn new(interval: Interval, calendar: TradingCalendar, config: BarBuilderConfig) -> Self {
        Self {
            interval,
            calendar,
            config,
            open: VecDeque::with_capacity(4),
            closed: VecDeque::with_capacity(4),
            watermark: None,
            session_cache: None,
            stats: BarBuilderStats::default(),
        }
    }

    /// The interval built.
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// Latest event time seen or advanced to.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermark
    }

    /// Counters since creation.
    pub fn stats(&self) -> BarBuilderStats {
        self.stats
    }

    /// The log order of the open and revisable bars' open and close trades (open bars, then
    /// closed ones, oldest first): kept by checkpoints beside the builder, whose bars do not
    /// serialise it.
    pub fn tie_breaks(&self) -> Vec<TieBreak> {
        self.open
            .iter()
            .chain(&self.closed)
            .map(|b| b.ties)
            .collect()
    }

    /// Gives the bars back the log order [`Self::tie_breaks`] took (ignored when it does not
    /// fit: a checkpoint of another shape).
    pub fn restore_tie_breaks(&mut self, ties: &[TieBreak]) {
        if ties.len() == self.open.len() + self.closed.len() {
            for (bar, t) in self.open.iter_mut().chain(self.closed.iter_mut()).zip(ties) {
                bar.ties = *t;
            }
        }
    }

    /// The bars still open, oldest first (the in-progress bar is the last).
    pub fn open_bars(&self) -> impl Iterator<Item = &Bar> {
        self.open.iter()
    }

    /// The `[start, end)` bucket of `ts`, or `None` outside the session for daily bars.
    #[inline]
    pub fn bucket(&mut self, ts: Timestamp) -> Option<(Timestamp, Timestamp)> {
        if !self.interval.is_daily() {
            let len = self.interval.micros();
            let start = ts.micros() - ts.micros().rem_euclid(len);
            return Some((
                Timestamp::from_micros(start),
                Timestamp::from_micros(start + len),
            ));
        }
        if let Some(s) = self.session_cache
            && s.start <= ts
            && ts < s.end
        {
            return Some((s.start, s.end));
        }
        let s = self.calendar.session_at(ts)?;
        self.session_cache = Some(s);
        Some((s.start, s.end))
    }

    /// Adds one trade; pushes any bars it closes or revises onto `out`.
    pub fn on_tick(&mut self, tick: &Tick, out: &mut Vec<BarEvent>) -> TickOutcome {
        self.on_trade(tick, None, tick.ts(), out)
    }

    /// Adds one trade, whose log order is `order` (ties in event time go by it: see
    /// [`crate::domain::bar::TieBreak`]) and whose time may move the watermark no further
    /// than `clock_limit` (the time it was vouched for): a trade stamped ahead of the present
    /// is counted in its (future) bar, but does not close the present bars, so the trades of
    /// the present arriving after it are not late.
    pub fn on_trade(
        &mut self,
        tick: &Tick,
        order: Option<i64>,
        clock_limit: Timestamp,
        out: &mut Vec<BarEvent>,
    ) -> TickOutcome {
        let clock = tick.ts().min(clock_limit);
        let Some((start, end)) = self.bucket(tick.ts()) else {
            self.stats.outside_session += 1;
            self.advance_to(clock, out);
            return TickOutcome::OutsideSession;
        };
        let closes_at = end.add_micros(self.config.grace_micros);
        let outcome = match self.watermark {
            Some(wm) if closes_at.add_micros(self.config.allowed_lateness_micros) <= wm => {
                self.stats.late_dropped += 1;
                return TickOutcome::LateDropped;
            }
            Some(wm) if closes_at <= wm => {
                self.revise(tick, order, start, end, out);
                TickOutcome::Revised
            }
            _ => {
                match self.open.iter().rposition(|b| b.start <= start) {
                    Some(i) if self.open[i].start == start => self.open[i].apply(tick, order),
                    Some(i) => self.open.insert(
                        i + 1,
                        Bar::from_tick(tick, order, self.interval, start, end),
                    ),
                    None => {
                        self.open
                            .push_front(Bar::from_tick(tick, order, self.interval, start, end))
                    }
                }
                TickOutcome::Applied
            }
        };
        self.stats.applied += 1;
        self.advance_to(clock, out);
        outcome
    }

    /// Moves the watermark to `to` (never back): closes every bar whose `end + grace` it
    /// reaches and forgets closed bars past the allowed lateness. Call it from a clock when
    /// no trades arrive, so quiet symbols still close their bars.
    pub fn advance_to(&mut self, to: Timestamp, out: &mut Vec<BarEvent>) {
        if self.watermark.is_some_and(|wm| to <= wm) {
            return;
        }
        self.watermark = Some(to);
        let grace = self.config.grace_micros;
        while let Some(bar) = self.open.front() {
            if bar.end.add_micros(grace) > to {
                break;
            }
            // unwrap: front() was Some just above.
            let bar = self.open.pop_front().unwrap();
            self.stats.closed += 1;
            out.push(BarEvent::Closed(bar));
            self.closed.push_back(bar);
        }
        let keep = grace + self.config.allowed_lateness_micros;
        while self
            .closed
            .front()
            .is_some_and(|b| b.end.add_micros(keep) <= to)
        {
            self.closed.pop_front();
        }
    }

    /// Closes every open bar now (end of input). Late trades may still revise them.
    pub fn flush(&mut self, out: &mut Vec<BarEvent>) {
        while let Some(bar) = self.open.pop_front() {
            self.stats.closed += 1;
            out.push(BarEvent::Closed(bar));
            self.closed.push_back(bar);
        }
    }

    fn revise(
        &mut self,
        tick: &Tick,
        order: Option<i64>,
        start: Timestamp,
        end: Timestamp,
        out: &mut Vec<BarEvent>,
    ) {
        match self.closed.binary_search_by(|b| b.start.cmp(&start)) {
            Ok(i) => {
                let bar = &mut self.closed[i];
                bar.apply(tick, order);
                bar.revision += 1;
                self.stats.revised += 1;
                out.push(BarEvent::Revised(*bar));
            }
            Err(i) => {
                // First trade of a bucket that closed empty: it is this bar's first version.
                let bar = Bar::from_tick(tick, order, self.interval, start, end);
                self.closed.insert(i, bar);
                self.stats.closed += 1;
                out.push(BarEvent::Closed(bar));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::symbol::Symbol;
    use crate::domain::tick::Source;
    use crate::domain::time::parse_timestamp;

    fn ts(text: &str) -> Timestamp {
        parse_timestamp(text, chrono_tz::UTC).unwrap()
    }

    fn tick(at: &str, price: f64, size: f64) -> Tick {
        Tick::new(
            Symbol::parse("AAPL").unwrap(),
            ts(at),
            price,
            size,
            Source::new("test"),
        )
        .unwrap()
    }

    fn builder(interval: Interval) -> BarBuilder {
        BarBuilder::new(
            interval,
            TradingCalendar::us_equity(),
            BarBuilderConfig::default(),
        )
    }

    fn feed(b: &mut BarBuilder, ticks: &[Tick]) -> Vec<BarEvent> {
        let mut out = Vec::new();
        for t in ticks {
            b.on_tick(t, &mut out);
        }
        out
    }

    #[test]
    fn a_bar_closes_only_after_its_end_plus_grace() {
        let mut b = builder(Interval::M1);
        let out = feed(
            &mut b,
            &[
                tick("2024-01-02T14:30:10Z", 10.0, 1.0),
                tick("2024-01-02T14:31:01.999Z", 11.0, 1.0),
            ],
        );
        assert!(out.is_empty(), "still inside the 2 s grace");
        let out = feed(&mut b, &[tick("2024-01-02T14:31:02Z", 12.0, 1.0)]);
        assert_eq!(out.len(), 1);
        let bar = out[0].bar();
        assert_eq!(
            (bar.start, bar.end),
            (ts("2024-01-02T14:30:00Z"), ts("2024-01-02T14:31:00Z"))
        );
        assert_eq!((bar.open, bar.close, bar.trades), (10.0, 10.0, 1));
    }

    #[test]
    fn a_trade_stamped_ahead_of_its_clock_limit_closes_no_present_bar() {
        // Vouched for at 14:30:20 but stamped four minutes later: it lands in its own
        // (future) bar, and the present minute's trades after it still count.
        let mut b = builder(Interval::M1);
        let mut out = feed(&mut b, &[tick("2024-01-02T14:30:10Z", 10.0, 1.0)]);
        let ahead = tick("2024-01-02T14:34:20Z", 99.0, 1.0);
        let outcome = b.on_trade(&ahead, None, ts("2024-01-02T14:30:20Z"), &mut out);
        assert_eq!(outcome, TickOutcome::Applied);
        assert!(out.is_empty(), "no bar closed by it");
        let present = tick("2024-01-02T14:30:40Z", 11.0, 2.0);
        assert_eq!(b.on_tick(&present, &mut out), TickOutcome::Applied);
        b.advance_to(ts("2024-01-02T14:35:02Z"), &mut out);
        let bars: Vec<_> = out.iter().map(|e| *e.bar()).collect();
        assert_eq!(bars.len(), 2);
        assert_eq!(
            (bars[0].open, bars[0].close, bars[0].trades),
            (10.0, 11.0, 2)
        );
        assert_eq!(
            (bars[1].start, bars[1].close),
            (ts("2024-01-02T14:34:00Z"), 99.0)
        );
        assert_eq!(b.stats().late_dropped, 0);
    }

    #[test]
    fn a_tick_inside_the_grace_period_updates_the_previous_bar() {
        let mut b = builder(Interval::M1);
        let mut out = feed(
            &mut b,
            &[
                tick("2024-01-02T14:30:10Z", 10.0, 1.0),
                tick("2024-01-02T14:31:00.5Z", 11.0, 1.0),
                tick("2024-01-02T14:30:59Z", 9.0, 2.0),
            ],
        );
        b.flush(&mut out);
        let first = out[0].bar();
        assert_eq!(
            (first.low, first.close, first.volume, first.trades),
            (9.0, 9.0, 3.0, 2)
        );
        assert_eq!(first.revision, 0);
    }

    #[test]
    fn a_gap_closes_every_pending_bar_and_loses_none() {
        let mut b = builder(Interval::M1);
        let mut out = feed(
            &mut b,
            &[
                tick("2024-01-02T14:30:10Z", 10.0, 1.0),
                tick("2024-01-02T14:30:20Z", 10.5, 1.0),
            ],
        );
        // The reference kept only the first of several bars completed by one tick.
        out.extend(feed(&mut b, &[tick("2024-01-02T14:31:10Z", 11.0, 1.0)]));
        out.extend(feed(&mut b, &[tick("2024-01-02T14:45:00Z", 12.0, 1.0)]));
        let starts: Vec<_> = out.iter().map(|e| e.bar().start).collect();
        assert_eq!(
            starts,
            vec![ts("2024-01-02T14:30:00Z"), ts("2024-01-02T14:31:00Z")]
        );
    }

    #[test]
    fn a_clock_closes_a_quiet_bar_without_another_tick() {
        let mut b = builder(Interval::M5);
        let mut out = feed(&mut b, &[tick("2024-01-02T14:31:00Z", 10.0, 1.0)]);
        b.advance_to(ts("2024-01-02T14:35:01.999Z"), &mut out);
        assert!(out.is_empty());
        b.advance_to(ts("2024-01-02T14:35:02Z"), &mut out);
        assert_eq!(out.len(), 1);
        assert!(b.open_bars().next().is_none());
    }

    #[test]
    fn a_late_tick_within_the_allowed_lateness_revises_the_bar() {
        let mut b = builder(Interval::M1);
        let mut out = feed(
            &mut b,
            &[
                tick("2024-01-02T14:30:10Z", 10.0, 1.0),
                tick("2024-01-02T14:31:30Z", 11.0, 1.0),
            ],
        );
        assert_eq!(out.len(), 1);
        out.clear();
        let outcome = b.on_tick(&tick("2024-01-02T14:30:05Z", 8.0, 4.0), &mut out);
        assert_eq!(outcome, TickOutcome::Revised);
        let rev = out[0];
        assert!(matches!(rev, BarEvent::Revised(_)));
        let bar = rev.bar();
        assert_eq!(
            (bar.open, bar.low, bar.close, bar.volume, bar.revision),
            (8.0, 8.0, 10.0, 5.0, 1)
        );
        assert_eq!(bar.vwap(), Some((10.0 + 32.0) / 5.0));
    }

    #[test]
    fn a_tick_beyond_the_allowed_lateness_is_counted_and_dropped() {
        let mut b = builder(Interval::M1);
        let mut out = feed(
            &mut b,
            &[
                tick("2024-01-02T14:30:10Z", 10.0, 1.0),
                tick("2024-01-02T14:32:02Z", 11.0, 1.0),
            ],
        );
        out.clear();
        // 14:30 bar: closes at 14:31:02, revisable until 14:32:02 (exclusive).
        assert_eq!(
            b.on_tick(&tick("2024-01-02T14:30:11Z", 1.0, 1.0), &mut out),
            TickOutcome::LateDropped
        );
        assert!(out.is_empty());
        assert_eq!(b.stats().late_dropped, 1);
    }

    #[test]
    fn a_late_tick_for_an_empty_closed_bucket_emits_a_first_version() {
        let mut b = builder(Interval::M1);
        let mut out = feed(
            &mut b,
            &[
                tick("2024-01-02T14:30:10Z", 10.0, 1.0),
                tick("2024-01-02T14:31:30Z", 11.0, 1.0),
            ],
        );
        out.clear();
        b.advance_to(ts("2024-01-02T14:33:30Z"), &mut out);
        out.clear();
        b.on_tick(&tick("2024-01-02T14:32:59Z", 12.0, 1.0), &mut out);
        assert!(
            matches!(out[..], [BarEvent::Closed(b)] if b.start == ts("2024-01-02T14:32:00Z") && b.revision == 0)
        );
    }

    #[test]
    fn trades_sharing_one_timestamp_all_count() {
        let mut b = builder(Interval::M1);
        let t = "2024-01-02T14:30:10Z";
        let mut out = feed(
            &mut b,
            &[tick(t, 10.0, 1.0), tick(t, 12.0, 2.0), tick(t, 11.0, 3.0)],
        );
        b.flush(&mut out);
        let bar = out[0].bar();
        assert_eq!(
            (
                bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades
            ),
            (10.0, 12.0, 10.0, 11.0, 6.0, 3)
        );
    }

    #[test]
    fn zero_size_trades_count_as_trades_and_leave_vwap_undefined() {
        let mut b = builder(Interval::M1);
        let mut out = feed(&mut b, &[tick("2024-01-02T14:30:10Z", 10.0, 0.0)]);
        b.flush(&mut out);
        assert_eq!((out[0].bar().trades, out[0].bar().vwap()), (1, None));
    }

    #[test]
    fn daily_bars_follow_the_new_york_session_across_the_spring_dst_change() {
        let mut b = builder(Interval::D1);
        let mut out = feed(
            &mut b,
            &[
                tick("2024-03-08T14:29:59Z", 1.0, 1.0), // Friday pre-market (EST: open 14:30Z)
                tick("2024-03-08T14:30:00Z", 2.0, 1.0),
                tick("2024-03-08T20:59:59Z", 3.0, 1.0),
                tick("2024-03-08T21:00:00Z", 4.0, 1.0), // after the close
                tick("2024-03-11T13:30:00Z", 5.0, 1.0), // Monday, EDT: open 13:30Z
                tick("2024-03-11T19:59:59Z", 6.0, 1.0),
            ],
        );
        b.flush(&mut out);
        let bars: Vec<_> = out.iter().map(|e| *e.bar()).collect();
        assert_eq!(bars.len(), 2);
        assert_eq!(
            (bars[0].start, bars[0].end),
            (ts("2024-03-08T14:30:00Z"), ts("2024-03-08T21:00:00Z"))
        );
        assert_eq!((bars[0].open, bars[0].close, bars[0].trades), (2.0, 3.0, 2));
        assert_eq!(
            (bars[1].start, bars[1].end),
            (ts("2024-03-11T13:30:00Z"), ts("2024-03-11T20:00:00Z"))
        );
        assert_eq!(b.stats().outside_session, 2);
    }

    #[test]
    fn daily_bars_follow_the_new_york_session_across_the_autumn_dst_change() {
        let mut b = builder(Interval::D1);
        let mut out = feed(
            &mut b,
            &[
                tick("2024-11-01T13:30:00Z", 1.0, 1.0), // Friday, EDT
                tick("2024-11-04T14:29:00Z", 2.0, 1.0), // Monday pre-market (EST: open 14:30Z)
                tick("2024-11-04T14:30:00Z", 3.0, 1.0),
            ],
        );
        // The Friday bar closed when Monday's first trade moved event time on.
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bar().start, ts("2024-11-01T13:30:00Z"));
        b.flush(&mut out);
        assert_eq!(
            (out[1].bar().start, out[1].bar().open),
            (ts("2024-11-04T14:30:00Z"), 3.0)
        );
    }

    #[test]
    fn the_daily_bar_closes_at_the_session_close_not_at_the_next_session() {
        let mut b = builder(Interval::D1);
        let mut out = feed(&mut b, &[tick("2024-01-05T15:00:00Z", 1.0, 1.0)]);
        b.advance_to(ts("2024-01-05T21:00:02Z"), &mut out);
        assert_eq!(out.len(), 1, "Friday's bar does not wait for Monday");
    }

    #[test]
    fn intraday_buckets_are_aligned_to_utc() {
        let mut b = builder(Interval::H4);
        assert_eq!(
            b.bucket(ts("2024-01-02T14:30:00Z")),
            Some((ts("2024-01-02T12:00:00Z"), ts("2024-01-02T16:00:00Z")))
        );
        let mut b = builder(Interval::M15);
        assert_eq!(
            b.bucket(ts("1969-12-31T23:59:59Z")).unwrap().0,
            ts("1969-12-31T23:45:00Z")
        );
    }
}
