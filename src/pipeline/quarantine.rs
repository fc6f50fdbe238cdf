//! `Quarantine`: finding the one trade a symbol keeps failing on, so that only that trade
//! is dead-lettered.
//!
//! A symbol whose domain code panics restarts from its checkpoint and its partitions are
//! replayed (the first failure may be a fluke). If it fails again on overlapping trades, its
//! trades of that range go one per message, each answered before the next, until the one it
//! fails on is found: that trade alone is dead-lettered (`processing_failed`) and skipped by
//! every later replay. After [`MAX_CULPRITS`] culprits in one range, the rest of the range
//! goes at once (a symbol failing on everything would otherwise cost a replay per trade).
//! Positions here are where the consumer read each trade (`TickRecord::at`).

use crate::domain::Symbol;
use crate::output::{Seq, TickRecord};
use std::collections::{HashMap, HashSet};

/// Different trades a symbol may fail on, one by one, within one range before the rest of
/// the range is dead-lettered at once.
pub const MAX_CULPRITS: u32 = 3;

/// Per partition, the first and last position of some trades.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Span(Vec<(i32, i64, i64)>);

impl Span {
    /// The span of `ticks` (by read position).
    pub fn of(ticks: &[TickRecord]) -> Self {
        let mut span = Self::default();
        for r in ticks {
            span.add(r.at);
        }
        span
    }

    fn add(&mut self, at: Seq) {
        match self.0.iter_mut().find(|(p, ..)| *p == at.partition) {
            Some((_, first, last)) => {
                *first = (*first).min(at.offset);
                *last = (*last).max(at.offset);
            }
            None => self.0.push((at.partition, at.offset, at.offset)),
        }
    }

    fn union(&mut self, other: &Self) {
        for &(p, first, last) in &other.0 {
            self.add(Seq {
                partition: p,
                offset: first,
            });
            self.add(Seq {
                partition: p,
                offset: last,
            });
        }
    }

    fn overlaps(&self, other: &Self) -> bool {
        self.0
            .iter()
            .any(|&(p, a, b)| other.0.iter().any(|&(q, c, d)| p == q && a <= d && c <= b))
    }

    /// Whether `at` is at or before the span's end in its partition.
    pub fn reaches(&self, at: Seq) -> bool {
        self.0
            .iter()
            .any(|&(p, _, last)| p == at.partition && at.offset <= last)
    }

    /// Whether every position is before `position(partition)` (committed past).
    fn passed(&self, position: &impl Fn(i32) -> Option<i64>) -> bool {
        self.0
            .iter()
            .all(|&(p, _, last)| position(p).is_some_and(|c| last < c))
    }
}

/// How a symbol's trades of a round go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// All in one message (the normal case).
    Batch,
    /// One message per trade up to and including index `through` of the batch, each
    /// answered before the next; the rest in one message.
    OneByOne { through: usize },
}

/// What to do about a symbol that failed on a batch (its partitions are replayed in every
/// case: the supervisor went back to its checkpoint).
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The first failure on these trades: replay.
    Replay,
    /// A second failure on overlapping trades: replay, now one trade at a time.
    ReplayOneByOne,
    /// The trade(s) it fails on were found: dead-letter them, then replay without them.
    DeadLetter(Vec<TickRecord>),
}

#[derive(Debug)]
struct Suspect {
    /// The range whose trades go one at a time.
    range: Span,
    /// Culprits found and dead-lettered in it so far.
    culprits: u32,
}

/// The failure bookkeeping of every symbol.
#[derive(Debug, Default)]
pub struct Quarantine {
    /// Trades each symbol last failed on.
    failures: HashMap<Symbol, Span>,
    /// Symbols whose trades of a range go one by one.
    suspects: HashMap<Symbol, Suspect>,
    /// Positions dead-lettered: replays skip them.
    skip: HashSet<Seq>,
}

impl Quarantine {
    /// Nothing quarantined.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the trade read at `at` was dead-lettered (a replay skips it).
    pub fn skips(&self, at: Seq) -> bool {
        !self.skip.is_empty() && self.skip.contains(&at)
    }

    /// How `symbol`'s trades `batch` go out.
    pub fn delivery(&self, symbol: Symbol, batch: &[TickRecord]) -> Delivery {
        let Some(s) = self.suspects.get(&symbol) else {
            return Delivery::Batch;
        };
        match batch.iter().rposition(|r| s.range.reaches(r.at)) {
            Some(through) => Delivery::OneByOne { through },
            None => Delivery::Batch,
        }
    }

    /// `symbol`'s domain code failed on `batch`; `culprit` is the trade it failed on when the
    /// trades went one by one.
    pub fn on_failure(
        &mut self,
        symbol: Symbol,
        batch: &[TickRecord],
        culprit: Option<Seq>,
    ) -> Verdict {
        let span = Span::of(batch);
        if let Some(at) = culprit {
            let suspect = self.suspects.entry(symbol).or_insert(Suspect {
                range: span,
                culprits: 0,
            });
            suspect.culprits += 1;
            let dead: Vec<TickRecord> = if suspect.culprits < MAX_CULPRITS {
                batch.iter().filter(|r| r.at == at).copied().collect()
            } else {
                let range = &suspect.range;
                let from = batch.iter().position(|r| r.at == at).unwrap_or(0);
                let rest = batch[from..]
                    .iter()
                    .filter(|r| range.reaches(r.at))
                    .copied()
                    .collect();
                self.suspects.remove(&symbol);
                rest
            };
            self.skip.extend(dead.iter().map(|r| r.at));
            return Verdict::DeadLetter(dead);
        }
        match self.failures.remove(&symbol) {
            Some(mut before) if before.overlaps(&span) => {
                before.union(&span);
                self.suspects.insert(
                    symbol,
                    Suspect {
                        range: before,
                        culprits: 0,
                    },
                );
                Verdict::ReplayOneByOne
            }
            _ => {
                self.failures.insert(symbol, span);
                Verdict::Replay
            }
        }
    }

    /// Commits reached `position(partition)`: what lies wholly before is settled.
    pub fn committed(&mut self, position: impl Fn(i32) -> Option<i64>) {
        self.skip
            .retain(|s| position(s.partition).is_none_or(|c| s.offset >= c));
        self.failures.retain(|_, span| !span.passed(&position));
        self.suspects.retain(|_, s| !s.range.passed(&position));
    }

    /// `symbol` is no longer owned here.
    pub fn forget_symbol(&mut self, symbol: Symbol) {
        self.failures.remove(&symbol);
        self.suspects.remove(&symbol);
    }

    /// `partition` is no longer owned here.
    pub fn forget_partition(&mut self, partition: i32) {
        self.skip.retain(|s| s.partition != partition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Source, Tick, Timestamp};

    fn sym() -> Symbol {
        Symbol::parse("AAPL").unwrap()
    }

    fn batch(partition: i32, offsets: std::ops::Range<i64>) -> Vec<TickRecord> {
        offsets
            .map(|o| {
                let seq = Seq {
                    partition,
                    offset: o,
                };
                TickRecord::new(
                    Tick::new(sym(), Timestamp::from_secs(o), 1.0, 1.0, Source::new("t")).unwrap(),
                    seq,
                    seq,
                )
            })
            .collect()
    }

    fn at(partition: i32, offset: i64) -> Seq {
        Seq { partition, offset }
    }

    #[test]
    fn a_first_failure_replays_a_repeat_goes_one_by_one_and_the_culprit_alone_is_dead_lettered() {
        let mut q = Quarantine::new();
        let b = batch(0, 10..20);
        assert_eq!(q.delivery(sym(), &b), Delivery::Batch);
        assert_eq!(q.on_failure(sym(), &b, None), Verdict::Replay);
        assert_eq!(q.on_failure(sym(), &b[2..], None), Verdict::ReplayOneByOne);
        assert_eq!(q.delivery(sym(), &b), Delivery::OneByOne { through: 9 });
        let later = batch(0, 20..30);
        assert_eq!(q.delivery(sym(), &later), Delivery::Batch, "past the range");
        match q.on_failure(sym(), &b, Some(at(0, 14))) {
            Verdict::DeadLetter(dead) => {
                assert_eq!(dead.iter().map(|r| r.at.offset).collect::<Vec<_>>(), [14])
            }
            other => panic!("{other:?}"),
        }
        assert!(q.skips(at(0, 14)) && !q.skips(at(0, 15)));
        q.committed(|_| Some(20));
        assert!(!q.skips(at(0, 14)), "committed past: forgotten");
        assert_eq!(q.delivery(sym(), &b), Delivery::Batch);
    }

    #[test]
    fn failures_on_other_trades_are_not_repeats() {
        let mut q = Quarantine::new();
        assert_eq!(q.on_failure(sym(), &batch(0, 0..5), None), Verdict::Replay);
        assert_eq!(q.on_failure(sym(), &batch(0, 5..9), None), Verdict::Replay);
        assert_eq!(
            q.on_failure(sym(), &batch(1, 5..9), None),
            Verdict::Replay,
            "another partition"
        );
    }

    #[test]
    fn after_max_culprits_the_rest_of_the_range_goes_at_once() {
        let mut q = Quarantine::new();
        let b = batch(2, 0..10);
        q.on_failure(sym(), &b, None);
        q.on_failure(sym(), &b, None);
        for (i, culprit) in [1, 3].iter().enumerate() {
            match q.on_failure(sym(), &b, Some(at(2, *culprit))) {
                Verdict::DeadLetter(d) => assert_eq!(d.len(), 1, "culprit {i}"),
                other => panic!("{other:?}"),
            }
        }
        match q.on_failure(sym(), &b, Some(at(2, 5))) {
            Verdict::DeadLetter(d) => {
                assert_eq!(
                    d.iter().map(|r| r.at.offset).collect::<Vec<_>>(),
                    [5, 6, 7, 8, 9]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            q.delivery(sym(), &b),
            Delivery::Batch,
            "no longer a suspect"
        );
    }

    #[test]
    fn a_revoked_partition_and_a_retired_symbol_are_forgotten() {
        let mut q = Quarantine::new();
        let b = batch(4, 0..3);
        q.on_failure(sym(), &b, None);
        q.on_failure(sym(), &b, None);
        q.on_failure(sym(), &b, Some(at(4, 1)));
        q.forget_partition(4);
        assert!(!q.skips(at(4, 1)));
        q.forget_symbol(sym());
        assert_eq!(q.delivery(sym(), &b), Delivery::Batch);
    }
}
