//! `OffsetLedger`: what the consumer has read of each partition it owns, where a replay
//! starts, and what it may commit.
//!
//! Per partition: the next offset after the last message read; where a replay starts (the
//! last committed position, or the first offset read since the partition was assigned:
//! everything before it is in the checkpoints); the offset before which every message was
//! read once already (a replay must not dead-letter or count a malformed message twice);
//! and the last position committed.

use std::collections::BTreeMap;

/// What reading one message found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// Read for the first time (not a replay re-reading it).
    pub first: bool,
    /// Messages missing right before it: offsets the broker skipped (dropped unread).
    pub skipped: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct PartitionLedger {
    /// Offset after the last message read; `None` right after assignment or a rewind.
    next: Option<i64>,
    replay_from: Option<i64>,
    seen_until: i64,
    committed: Option<i64>,
}

/// The ledger of every owned partition.
#[derive(Debug, Default)]
pub struct OffsetLedger {
    parts: BTreeMap<i32, PartitionLedger>,
}

impl OffsetLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// `partition` is now owned: nothing read yet.
    pub fn assign(&mut self, partition: i32) {
        self.parts.entry(partition).or_default();
    }

    /// Reading `partition` resumes at its committed `offset`: a first message read past it
    /// counts the messages in between as skipped.
    pub fn expect(&mut self, partition: i32, offset: i64) {
        let p = self.parts.entry(partition).or_default();
        if p.next.is_none() {
            p.next = Some(offset);
            p.committed = Some(offset);
            p.replay_from = Some(offset);
        }
    }

    /// `partition` is no longer owned: its new owner resumes from the last commit.
    pub fn revoke(&mut self, partition: i32) {
        self.parts.remove(&partition);
    }

    /// Whether `partition` is owned.
    pub fn owns(&self, partition: i32) -> bool {
        self.parts.contains_key(&partition)
    }

    /// The owned partitions.
    pub fn owned(&self) -> impl Iterator<Item = i32> + '_ {
        self.parts.keys().copied()
    }

    /// Records that the message at `offset` of `partition` was read.
    pub fn read(&mut self, partition: i32, offset: i64) -> Read {
        let p = self.parts.entry(partition).or_default();
        p.replay_from.get_or_insert(offset);
        // A jump forward while reading on: the broker no longer had the messages between
        // (a size-bounded log dropped them; the consumer was reset to the log's start).
        let skipped = p.next.map_or(0, |n| (offset - n).max(0));
        p.next = Some(offset + 1);
        Read {
            first: offset >= p.seen_until,
            skipped,
        }
    }

    /// Where a replay of `partition` starts: an offset, or `None` for the log's beginning
    /// (nothing committed nor read since assignment).
    pub fn replay_from(&self, partition: i32) -> Option<i64> {
        self.parts.get(&partition).and_then(|p| p.replay_from)
    }

    /// The consumer seeks `partition` back to [`Self::replay_from`]: what was read is marked
    /// seen, and nothing of it is committed until it is read again.
    pub fn rewind(&mut self, partition: i32) {
        if let Some(p) = self.parts.get_mut(&partition)
            && let Some(next) = p.next.take()
        {
            p.seen_until = p.seen_until.max(next);
        }
    }

    /// Everything from the replay start of `partition` on counts as never read (a failed
    /// flush may have lost the dead letters sent for it: they are sent again).
    pub fn forget_seen(&mut self, partition: i32) {
        if let Some(p) = self.parts.get_mut(&partition) {
            p.seen_until = p.replay_from.unwrap_or(0);
        }
    }

    /// The positions to commit: per partition read since its last commit, the next offset
    /// after what was read, or the oldest offset still `held` back unprocessed (see
    /// `pipeline::alignment`) if that is earlier.
    pub fn to_commit(&self, held: impl Fn(i32) -> Option<i64>) -> Vec<(i32, i64)> {
        self.parts
            .iter()
            .filter_map(|(&partition, p)| {
                let next = p.next?;
                let position = held(partition).map_or(next, |h| h.min(next));
                p.committed
                    .is_none_or(|c| position > c)
                    .then_some((partition, position))
            })
            .collect()
    }

    /// The positions were committed (everything before them is durable): replays start
    /// there from now on.
    pub fn committed(&mut self, positions: &[(i32, i64)]) {
        for &(partition, position) in positions {
            if let Some(p) = self.parts.get_mut(&partition) {
                p.committed = Some(position);
                p.replay_from = Some(position);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_then_committing_moves_the_replay_start() {
        let mut l = OffsetLedger::new();
        l.assign(0);
        assert_eq!(l.replay_from(0), None, "nothing read: the beginning");
        assert!(l.read(0, 40).first);
        assert!(l.read(0, 41).first);
        assert_eq!(
            l.replay_from(0),
            Some(40),
            "the first offset read since assignment"
        );
        assert_eq!(l.to_commit(|_| None), [(0, 42)]);
        l.committed(&[(0, 42)]);
        assert_eq!(l.replay_from(0), Some(42));
        assert!(l.to_commit(|_| None).is_empty(), "nothing new");
    }

    #[test]
    fn a_replay_re_reads_without_counting_twice_and_commits_nothing_until_read_again() {
        let mut l = OffsetLedger::new();
        l.assign(1);
        for o in 0..10 {
            l.read(1, o);
        }
        l.rewind(1);
        assert!(l.to_commit(|_| None).is_empty());
        assert!(!l.read(1, 3).first, "seen before");
        assert_eq!(
            l.read(1, 3).skipped,
            0,
            "re-reading after a rewind is no gap"
        );
        assert!(!l.read(1, 9).first);
        assert!(l.read(1, 10).first, "new");
        assert_eq!(l.to_commit(|_| None), [(1, 11)]);
        l.rewind(1);
        l.forget_seen(1);
        assert!(
            l.read(1, 3).first,
            "after a failed flush everything since the commit is new"
        );
    }

    #[test]
    fn held_back_messages_keep_the_commit_before_them() {
        let mut l = OffsetLedger::new();
        l.assign(2);
        for o in 0..100 {
            l.read(2, o);
        }
        assert_eq!(l.to_commit(|_| Some(60)), [(2, 60)]);
        l.committed(&[(2, 60)]);
        assert!(l.to_commit(|_| Some(60)).is_empty());
        assert_eq!(l.to_commit(|_| None), [(2, 100)]);
    }

    #[test]
    fn a_jump_forward_while_reading_counts_the_messages_skipped() {
        let mut l = OffsetLedger::new();
        l.assign(0);
        assert_eq!(
            l.read(0, 1_000).skipped,
            0,
            "where reading starts is no gap"
        );
        assert_eq!(l.read(0, 1_001).skipped, 0);
        assert_eq!(l.read(0, 5_000).skipped, 3_998, "1002..=4999");
        l.assign(1);
        l.expect(1, 100);
        assert_eq!(
            l.read(1, 250).skipped,
            150,
            "the log no longer starts at the commit"
        );
        assert_eq!(l.replay_from(1), Some(100));
    }

    #[test]
    fn a_revoked_partition_is_forgotten() {
        let mut l = OffsetLedger::new();
        l.assign(0);
        l.assign(3);
        l.read(3, 5);
        l.revoke(3);
        assert!(!l.owns(3) && l.owns(0));
        assert_eq!(l.owned().collect::<Vec<_>>(), [0]);
        assert!(l.to_commit(|_| None).is_empty());
    }
}
