//! `Series`: the rows of one memory-store series (a symbol's trades, or a symbol's bars of
//! one interval) in key order.
//!
//! Rows arrive almost always in key order — a symbol's trades and bars move forward — so
//! a sorted `VecDeque` takes them with one comparison against its last row and a push,
//! where a B-tree walks several nodes per insert (cache misses once thousands of series
//! are live). Rows out of order (late trades, replays, revised bars) cost a binary search
//! and a shift of the shorter side. The oldest rows go first when a series is trimmed.

use std::collections::VecDeque;
use std::ops::Bound;

/// Rows ordered by a unique key.
#[derive(Debug, Clone)]
pub(crate) struct Series<K, V> {
    rows: VecDeque<(K, V)>,
}

impl<K, V> Default for Series<K, V> {
    fn default() -> Self {
        Self {
            rows: VecDeque::new(),
        }
    }
}

impl<K: Ord + Copy, V> Series<K, V> {
    /// Where `key` is (`Ok`) or would go (`Err`).
    fn position(&self, key: &K) -> Result<usize, usize> {
        match self.rows.back() {
            None => Err(0),
            Some((last, _)) if last < key => Err(self.rows.len()),
            Some(_) => self.rows.binary_search_by(|(k, _)| k.cmp(key)),
        }
    }

    /// Stores `value` at `key` unless a row is there and `keep_old(old)` says to keep it.
    /// Returns whether `value` was stored.
    pub(crate) fn upsert(&mut self, key: K, value: V, keep_old: impl FnOnce(&V) -> bool) -> bool {
        match self.position(&key) {
            Ok(i) if keep_old(&self.rows[i].1) => false,
            Ok(i) => {
                self.rows[i].1 = value;
                true
            }
            Err(i) if i == self.rows.len() => {
                self.rows.push_back((key, value));
                true
            }
            Err(i) => {
                self.rows.insert(i, (key, value));
                true
            }
        }
    }

    /// Rows whose keys are within the bounds, oldest first.
    pub(crate) fn range(
        &self,
        lo: Bound<K>,
        hi: Bound<K>,
    ) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        let start = match lo {
            Bound::Included(k) => self.rows.partition_point(|(x, _)| *x < k),
            Bound::Excluded(k) => self.rows.partition_point(|(x, _)| *x <= k),
            Bound::Unbounded => 0,
        };
        let end = match hi {
            Bound::Included(k) => self.rows.partition_point(|(x, _)| *x <= k),
            Bound::Excluded(k) => self.rows.partition_point(|(x, _)| *x < k),
            Bound::Unbounded => self.rows.len(),
        };
        self.rows.range(start..end.max(start)).map(|(k, v)| (k, v))
    }

    /// Every row, oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.rows.iter().map(|(k, v)| (k, v))
    }

    /// The oldest and newest keys.
    pub(crate) fn key_span(&self) -> Option<(K, K)> {
        Some((self.rows.front()?.0, self.rows.back()?.0))
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Drops the oldest rows beyond `limit`.
    pub(crate) fn trim(&mut self, limit: usize) {
        let excess = self.rows.len().saturating_sub(limit);
        self.rows.drain(..excess);
    }

    /// Drops the oldest rows while `expired(key)`; returns how many.
    pub(crate) fn drop_while(&mut self, expired: impl Fn(&K) -> bool) -> u64 {
        let n = self.rows.partition_point(|(k, _)| expired(k));
        self.rows.drain(..n);
        n as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &Series<i64, &str>) -> Vec<i64> {
        s.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn rows_stay_in_key_order_whatever_order_they_come_in() {
        let mut s = Series::default();
        for k in [5, 1, 9, 3, 7, 10, 0] {
            assert!(s.upsert(k, "v", |_| false));
        }
        assert_eq!(keys(&s), vec![0, 1, 3, 5, 7, 9, 10]);
        assert_eq!(s.key_span(), Some((0, 10)));
    }

    #[test]
    fn an_existing_row_is_replaced_unless_kept() {
        let mut s = Series::default();
        s.upsert(1, "a", |_| false);
        s.upsert(2, "b", |_| false);
        assert!(!s.upsert(1, "c", |old| *old == "a"));
        assert!(s.upsert(2, "d", |_| false));
        let rows: Vec<_> = s.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(rows, vec![(1, "a"), (2, "d")]);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn ranges_honour_every_kind_of_bound() {
        let mut s = Series::default();
        for k in 0..10 {
            s.upsert(k, "v", |_| false);
        }
        let r = |lo, hi| s.range(lo, hi).map(|(k, _)| *k).collect::<Vec<_>>();
        assert_eq!(r(Bound::Included(3), Bound::Included(5)), vec![3, 4, 5]);
        assert_eq!(r(Bound::Excluded(3), Bound::Excluded(5)), vec![4]);
        assert_eq!(r(Bound::Unbounded, Bound::Excluded(2)), vec![0, 1]);
        assert_eq!(r(Bound::Included(8), Bound::Unbounded), vec![8, 9]);
        assert_eq!(r(Bound::Included(7), Bound::Included(2)), Vec::<i64>::new());
        assert_eq!(
            s.range(Bound::Unbounded, Bound::Unbounded)
                .rev()
                .map(|(k, _)| *k)
                .next(),
            Some(9)
        );
    }

    #[test]
    fn trimming_and_expiry_drop_the_oldest_rows() {
        let mut s = Series::default();
        for k in 0..10 {
            s.upsert(k, "v", |_| false);
        }
        s.trim(6);
        assert_eq!(keys(&s), vec![4, 5, 6, 7, 8, 9]);
        assert_eq!(s.drop_while(|k| *k < 7), 3);
        assert_eq!(keys(&s), vec![7, 8, 9]);
        assert_eq!(s.drop_while(|_| false), 0);
    }
}
