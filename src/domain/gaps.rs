//! Backfill planning: which bars a symbol should have, which are missing, how to ask a
//! provider for them in pieces, and provider bars regrouped onto tickflow's bar grid.
//!
//! Everything is half-open `[start, end)` and keyed by bar start, so chunks tile a gap with
//! no hole and no overlap (the reference skipped a day at every chunk boundary).

use crate::domain::history::HistoryBar;
use crate::domain::{Interval, Symbol, Timestamp, TradingCalendar};
use chrono::NaiveDate;

/// A bar tickflow expects to exist: one slot of the bar grid inside a trading session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// The slots of `interval` in the sessions of the local dates `from..=to`, in time order.
///
/// Intraday slots are the UTC-aligned buckets that overlap a session (so a 1 h grid on a
/// 09:30 open starts at 09:00 local, as live bars do); daily slots are the sessions.
pub fn expected_slots(
    calendar: &TradingCalendar,
    interval: Interval,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<Slot> {
    let mut out = Vec::new();
    let step = interval.micros();
    for date in from.iter_days().take_while(|d| *d <= to) {
        let Some(session) = calendar.session_on(date) else {
            continue;
        };
        if interval.is_daily() {
            out.push(Slot {
                start: session.start,
                end: session.end,
            });
            continue;
        }
        let mut t = session.start.micros().div_euclid(step) * step;
        while t < session.end.micros() {
            let start = Timestamp::from_micros(t);
            if out.last().is_none_or(|s: &Slot| s.start < start) {
                out.push(Slot {
                    start,
                    end: start.add_micros(step),
                });
            }
            t += step;
        }
    }
    out
}

/// Consecutive missing slots, asked for together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Start of the first slot.
    pub start: Timestamp,
    /// End of the last slot.
    pub end: Timestamp,
    /// The slots it fills.
    pub slots: Vec<Slot>,
}

impl Chunk {
    /// The chunk of consecutive `slots` (not empty).
    pub fn of(slots: &[Slot]) -> Self {
        Self {
            start: slots[0].start,
            end: slots[slots.len() - 1].end,
            slots: slots.to_vec(),
        }
    }
}

/// Splits the slots that are neither `present` (sorted bar starts already stored) nor inside
/// a `covered` span (asked for before, even if the provider had nothing) into chunks of at
/// most `max_slots` consecutive missing slots.
pub fn missing_chunks(
    expected: &[Slot],
    present: &[Timestamp],
    covered: &[(Timestamp, Timestamp)],
    max_slots: usize,
) -> Vec<Chunk> {
    let max_slots = max_slots.max(1);
    let mut chunks = Vec::new();
    let mut run: Vec<Slot> = Vec::new();
    let flush = |run: &mut Vec<Slot>, chunks: &mut Vec<Chunk>| {
        chunks.extend(run.chunks(max_slots).map(Chunk::of));
        run.clear();
    };
    for slot in expected {
        let stored = present.binary_search(&slot.start).is_ok();
        let asked = covered
            .iter()
            .any(|(s, e)| *s <= slot.start && slot.start < *e);
        if stored || asked {
            flush(&mut run, &mut chunks);
        } else {
            run.push(*slot);
        }
    }
    flush(&mut run, &mut chunks);
    chunks
}

/// One provider bar before it is placed on the grid: its start and prices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawBar {
    pub start: Timestamp,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// Places provider bars (any order, a grid at least as fine as `chunk`'s) onto the chunk's
/// slots: bars falling in one slot are merged (first open, highest high, lowest low, last
/// close, summed volume), and bars outside every slot are dropped. A slot with no bar stays
/// empty: the provider had no trade there either.
pub fn fill_chunk(
    symbol: Symbol,
    interval: Interval,
    chunk: &Chunk,
    mut bars: Vec<RawBar>,
) -> Vec<HistoryBar> {
    bars.sort_by_key(|b| b.start);
    let mut out: Vec<HistoryBar> = Vec::new();
    let mut slots = chunk.slots.iter().peekable();
    for b in bars {
        while slots.peek().is_some_and(|s| s.end <= b.start) {
            slots.next();
        }
        let Some(slot) = slots.peek() else { break };
        if b.start < slot.start {
            continue;
        }
        match out.last_mut() {
            Some(h) if h.start == slot.start => {
                h.high = h.high.max(b.high);
                h.low = h.low.min(b.low);
                h.close = b.close;
                h.volume += b.volume;
            }
            _ => out.push(HistoryBar {
                symbol,
                interval,
                start: slot.start,
                end: slot.end,
                open: b.open,
                high: b.high,
                low: b.low,
                close: b.close,
                volume: b.volume,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse_timestamp;

    fn ts(s: &str) -> Timestamp {
        parse_timestamp(s, chrono_tz::UTC).unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn slots_follow_sessions_weekends_and_holidays() {
        let cal = TradingCalendar::us_equity();
        // Thu 2024-03-28, Good Friday, the weekend, Mon 2024-04-01.
        let m5 = expected_slots(&cal, Interval::M5, d("2024-03-28"), d("2024-04-01"));
        assert_eq!(m5.len(), 2 * 78);
        assert_eq!(m5[0].start, ts("2024-03-28T13:30:00Z"));
        assert_eq!(m5[78].start, ts("2024-04-01T13:30:00Z"));
        let h1 = expected_slots(&cal, Interval::H1, d("2024-03-28"), d("2024-03-28"));
        assert_eq!(
            h1.len(),
            7,
            "13:00..20:00 UTC: the 09:00 ET hour holds the open"
        );
        assert_eq!(h1[0].start, ts("2024-03-28T13:00:00Z"));
        let days = expected_slots(&cal, Interval::D1, d("2024-12-23"), d("2024-12-27"));
        assert_eq!(days.len(), 4, "Christmas closed");
        assert_eq!(days[1].end, ts("2024-12-24T18:00:00Z"), "early close");
    }

    #[test]
    fn chunks_tile_the_gaps_without_holes_or_overlaps() {
        let cal = TradingCalendar::us_equity();
        let slots = expected_slots(&cal, Interval::M30, d("2024-03-04"), d("2024-03-08"));
        assert_eq!(slots.len(), 5 * 13);
        // Tuesday's bars are stored, and Thursday was asked for before.
        let present: Vec<Timestamp> = slots[13..26].iter().map(|s| s.start).collect();
        let covered = [(slots[39].start, slots[51].end)];
        let chunks = missing_chunks(&slots, &present, &covered, 10);
        let filled: Vec<Slot> = chunks.iter().flat_map(|c| c.slots.clone()).collect();
        let want: Vec<Slot> = slots[..13]
            .iter()
            .chain(&slots[26..39])
            .chain(&slots[52..])
            .copied()
            .collect();
        assert_eq!(filled, want, "every missing slot exactly once, in order");
        assert!(chunks.iter().all(|c| c.slots.len() <= 10));
        for c in &chunks {
            assert_eq!(
                (c.start, c.end),
                (c.slots[0].start, c.slots.last().unwrap().end)
            );
        }
        assert!(missing_chunks(&slots, &[], &[(slots[0].start, slots[64].end)], 10).is_empty());
    }

    #[test]
    fn finer_provider_bars_merge_into_slots_and_strays_are_dropped() {
        let sym = Symbol::parse("AAPL").unwrap();
        let cal = TradingCalendar::us_equity();
        let slots = expected_slots(&cal, Interval::H1, d("2024-03-28"), d("2024-03-28"));
        let chunk = missing_chunks(&slots, &[], &[], 100).remove(0);
        let raw = |t: &str, o: f64, h: f64, l: f64, c: f64, v: f64| RawBar {
            start: ts(t),
            open: o,
            high: h,
            low: l,
            close: c,
            volume: v,
        };
        let bars = vec![
            raw("2024-03-28T14:00:00Z", 10.0, 11.0, 9.5, 10.5, 100.0),
            raw("2024-03-28T13:30:00Z", 9.0, 10.0, 8.0, 9.5, 50.0),
            raw("2024-03-28T14:30:00Z", 10.5, 12.0, 10.0, 11.0, 70.0),
            raw("2024-03-28T22:00:00Z", 1.0, 1.0, 1.0, 1.0, 1.0),
        ];
        let out = fill_chunk(sym, Interval::H1, &chunk, bars);
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].start, out[0].open, out[0].close, out[0].volume),
            (ts("2024-03-28T13:00:00Z"), 9.0, 9.5, 50.0)
        );
        assert_eq!(
            (
                out[1].open,
                out[1].high,
                out[1].low,
                out[1].close,
                out[1].volume
            ),
            (10.0, 12.0, 9.5, 11.0, 170.0)
        );
        assert_eq!(out[1].end, ts("2024-03-28T15:00:00Z"));
    }
}
