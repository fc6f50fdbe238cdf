//! `Applied`: which trades a symbol has accounted for, per origin partition.
//!
//! A trade's identity is where it was first produced (its origin partition and offset; a
//! trade forwarded to its symbol's home partition keeps it, see `pipeline::routing`). Each
//! route a trade can take reads its origin partition in order, but a symbol can be fed by two
//! routes at once: after a rebalance gives one instance both a partition it used to forward
//! from and the symbol's home partition, it reads the origin partition directly while the
//! copies it (or the instance before it) forwarded still wait on the home partition. A copy
//! of offset 5284 can then arrive after offset 5291 was applied directly; "the last offset
//! applied" alone would take it for a redelivery and drop it.
//!
//! So each origin partition keeps, besides the last offset applied, the offsets applied
//! most recently ([`RECENT`] of them): an offset at or below the last one is new when it is
//! inside that window and not in it. Below the window, what was applied is no longer known
//! and the offset counts as a redelivery (a replay re-reads from the last commit, which the
//! window normally covers many times over; a copy would have to arrive more than `RECENT`
//! of the symbol's trades late). It is part of the symbol's checkpoint.

use crate::output::Seq;
use std::collections::VecDeque;

/// How many of the most recently applied offsets each origin partition remembers.
pub const RECENT: usize = 128;

/// One origin partition's applied trades.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    partition: i32,
    /// The highest offset applied.
    last: i64,
    /// Offsets below this are taken as applied (no longer remembered one by one).
    since: i64,
    /// Every offset applied at or above `since`, ascending, at most [`RECENT`].
    recent: VecDeque<i64>,
}

impl Origin {
    fn is_new(&self, offset: i64) -> bool {
        offset > self.last || (offset >= self.since && self.recent.binary_search(&offset).is_err())
    }

    fn record(&mut self, offset: i64) {
        if offset > self.last {
            self.last = offset;
            self.recent.push_back(offset);
        } else if offset >= self.since
            && let Err(at) = self.recent.binary_search(&offset)
        {
            self.recent.insert(at, offset);
        }
        while self.recent.len() > RECENT {
            if let Some(forgotten) = self.recent.pop_front() {
                self.since = forgotten + 1;
            }
        }
    }
}

/// The trades applied from each origin partition (a handful of entries: the partitions that
/// ever carried the symbol).
///
/// Serialised as `(partition, last offset)` pairs (the checkpoint's body since format 2); the
/// windows travel separately ([`Applied::windows`]), so an older checkpoint still reads (with
/// no window: everything up to the last offset counts as applied).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "Vec<(i32, i64)>", into = "Vec<(i32, i64)>")]
pub struct Applied(Vec<Origin>);

/// One origin partition's window as a checkpoint keeps it: `(partition, since, recent
/// offsets)`, the offsets as the first one then the differences (small numbers, which the
/// checkpoint's variable-length integers keep in a byte or two each).
pub type Window = (i32, i64, Vec<i64>);

impl From<Vec<(i32, i64)>> for Applied {
    fn from(lasts: Vec<(i32, i64)>) -> Self {
        Self(
            lasts
                .into_iter()
                .map(|(partition, last)| Origin {
                    partition,
                    last,
                    since: last.saturating_add(1),
                    recent: VecDeque::new(),
                })
                .collect(),
        )
    }
}

impl From<Applied> for Vec<(i32, i64)> {
    fn from(applied: Applied) -> Self {
        applied.iter().collect()
    }
}

impl Applied {
    /// Nothing applied yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn origin(&self, partition: i32) -> Option<&Origin> {
        self.0.iter().find(|o| o.partition == partition)
    }

    /// The last offset applied from `partition`.
    pub fn get(&self, partition: i32) -> Option<i64> {
        self.origin(partition).map(|o| o.last)
    }

    /// Whether the trade `id` has not been applied.
    pub fn is_new(&self, id: Seq) -> bool {
        self.origin(id.partition)
            .is_none_or(|o| o.is_new(id.offset))
    }

    /// Records `id` as applied.
    pub fn record(&mut self, id: Seq) {
        match self.0.iter_mut().find(|o| o.partition == id.partition) {
            Some(origin) => origin.record(id.offset),
            None => {
                // Nothing was applied from this partition: every offset below is exactly
                // known (none).
                self.0.push(Origin {
                    partition: id.partition,
                    last: id.offset,
                    since: i64::MIN,
                    recent: VecDeque::from([id.offset]),
                });
                self.0.sort_unstable_by_key(|o| o.partition);
            }
        }
    }

    /// Forgets what was applied from `partition` (its log was replaced: see
    /// `pipeline::checkpoint`).
    pub fn forget(&mut self, partition: i32) {
        self.0.retain(|o| o.partition != partition);
    }

    /// Forgets everything (the checkpoint was written against another broker).
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// `(partition, last offset)` pairs, by partition.
    pub fn iter(&self) -> impl Iterator<Item = (i32, i64)> + '_ {
        self.0.iter().map(|o| (o.partition, o.last))
    }

    /// Whether nothing was applied.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recent windows, for the checkpoint.
    pub fn windows(&self) -> Vec<Window> {
        self.0
            .iter()
            .map(|o| {
                let mut previous = 0;
                let deltas = o
                    .recent
                    .iter()
                    .map(|x| {
                        let d = x - previous;
                        previous = *x;
                        d
                    })
                    .collect();
                (o.partition, o.since, deltas)
            })
            .collect()
    }

    /// Restores the windows of a checkpoint (those of partitions not applied are ignored).
    pub fn restore_windows(&mut self, windows: Vec<Window>) {
        for (partition, since, deltas) in windows {
            let mut previous = 0i64;
            let recent: Vec<i64> = deltas
                .iter()
                .map(|d| {
                    previous = previous.saturating_add(*d);
                    previous
                })
                .collect();
            if let Some(o) = self.0.iter_mut().find(|o| o.partition == partition) {
                // A window is only taken whole and consistent with the last offset: anything
                // else (a corrupt or foreign checkpoint) keeps "everything up to last".
                let ordered = recent.windows(2).all(|w| w[0] < w[1]);
                let fits = recent.len() <= RECENT
                    && recent.first().is_none_or(|f| *f >= since)
                    && recent.last() == Some(&o.last);
                if ordered && fits {
                    o.since = since;
                    o.recent = recent.into();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seq(partition: i32, offset: i64) -> Seq {
        Seq { partition, offset }
    }

    #[test]
    fn each_origin_partition_is_followed_on_its_own() {
        let mut a = Applied::new();
        assert!(a.is_new(seq(0, 0)));
        a.record(seq(0, 10));
        a.record(seq(3, 2));
        assert!(!a.is_new(seq(0, 10)));
        assert!(a.is_new(seq(0, 11)));
        assert!(!a.is_new(seq(3, 2)) && a.is_new(seq(3, 3)));
        assert!(a.is_new(seq(1, 0)), "another partition is independent");
        a.record(seq(0, 5));
        assert_eq!(a.get(0), Some(10), "the last offset never moves back");
        assert_eq!(a.iter().collect::<Vec<_>>(), [(0, 10), (3, 2)]);
        a.forget(0);
        assert!(a.is_new(seq(0, 0)));
        a.clear();
        assert!(a.is_empty());
    }

    #[test]
    fn a_copy_arriving_after_a_later_direct_read_is_new_once() {
        // Offset 5291 read directly, then the forwarded copies of 5284 and 5285.
        let mut a = Applied::new();
        a.record(seq(3, 5280));
        a.record(seq(3, 5291));
        assert!(a.is_new(seq(3, 5284)), "never applied: not a redelivery");
        a.record(seq(3, 5284));
        a.record(seq(3, 5285));
        assert!(!a.is_new(seq(3, 5284)) && !a.is_new(seq(3, 5285)));
        assert!(!a.is_new(seq(3, 5291)) && !a.is_new(seq(3, 5280)));
        assert_eq!(a.get(3), Some(5291));
    }

    #[test]
    fn below_the_window_everything_counts_as_applied() {
        let mut a = Applied::new();
        for o in 0..(RECENT as i64 + 10) {
            a.record(seq(0, 2 * o));
        }
        assert!(!a.is_new(seq(0, 1)), "forgotten: taken as applied");
        assert!(
            a.is_new(seq(0, 2 * RECENT as i64 + 5)),
            "inside the window, a hole"
        );
        assert!(!a.is_new(seq(0, 2 * RECENT as i64 + 4)));
    }

    #[test]
    fn windows_survive_a_checkpoint_and_older_checkpoints_know_only_the_last_offset() {
        let mut a = Applied::new();
        a.record(seq(3, 10));
        a.record(seq(3, 20));
        let mut restored: Applied = Vec::<(i32, i64)>::from(a.clone()).into();
        assert!(
            !restored.is_new(seq(3, 15)),
            "no window: up to 20 counts as applied"
        );
        restored.restore_windows(a.windows());
        assert_eq!(restored, a);
        assert!(restored.is_new(seq(3, 15)));
        let mut foreign: Applied = Vec::<(i32, i64)>::from(a.clone()).into();
        foreign.restore_windows(vec![(3, 0, vec![10, 9])]);
        assert!(
            !foreign.is_new(seq(3, 15)),
            "a window not ending at the last offset is ignored"
        );
    }

    proptest! {
        /// Two routes, each reading the origin partition in order and replaying from earlier
        /// points, interleaved any way: every trade is applied exactly once (the disorder
        /// between the routes stays inside the window).
        #[test]
        fn two_routes_with_replays_apply_every_trade_once(
            gaps in prop::collection::vec(1i64..50, 1..RECENT),
            route in prop::collection::vec(any::<bool>(), RECENT),
            picks in prop::collection::vec(any::<bool>(), 4 * RECENT),
            replays in prop::collection::vec((0usize..RECENT, any::<bool>()), 0..4),
        ) {
            let mut offset = 0;
            let offsets: Vec<i64> = gaps.iter().map(|g| { offset += g; offset }).collect();
            let mut routes: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
            for (i, o) in offsets.iter().enumerate() {
                routes[usize::from(route[i])].push(*o);
            }
            // A replay re-reads a route from an earlier point: its trades come again.
            for (from, which) in replays {
                let r = &mut routes[usize::from(which)];
                let from = from.min(r.len());
                let at = from + (r.len() - from) / 2;
                // Read up to `at`, then from `from` again to the end.
                let again: Vec<i64> = r[from..].to_vec();
                r.truncate(at);
                r.extend(again);
            }
            let mut a = Applied::new();
            let mut applied = Vec::new();
            let (mut i, mut j, mut k) = (0, 0, 0);
            while i < routes[0].len() || j < routes[1].len() {
                let first = if i == routes[0].len() { false } else if j == routes[1].len() { true } else { picks[k % picks.len()] };
                k += 1;
                let o = if first { i += 1; routes[0][i - 1] } else { j += 1; routes[1][j - 1] };
                if a.is_new(seq(0, o)) {
                    a.record(seq(0, o));
                    applied.push(o);
                }
            }
            applied.sort_unstable();
            prop_assert_eq!(applied, offsets);
        }
    }
}
