//! `RingBuffer`: a fixed-capacity ring of the last N values, allocated once.

/// The last `capacity` values pushed, oldest first. Allocates only in `new`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RingBuffer {
    buf: Box<[f64]>,
    /// Index of the oldest value.
    head: usize,
    len: usize,
}

impl RingBuffer {
    /// An empty window of `capacity` (> 0) values.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "window capacity must be positive");
        Self {
            buf: vec![0.0; capacity].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    /// Appends `x`, dropping the oldest value when full.
    #[inline]
    pub fn push(&mut self, x: f64) {
        if self.len < self.buf.len() {
            let slot = self.wrap(self.head + self.len);
            self.buf[slot] = x;
            self.len += 1;
        } else {
            self.buf[self.head] = x;
            self.head = self.wrap(self.head + 1);
        }
    }

    /// `i` reduced into the buffer for `i < 2 × capacity`: a compare instead of a division,
    /// which dominated the per-tick metrics.
    #[inline]
    fn wrap(&self, i: usize) -> usize {
        if i >= self.buf.len() {
            i - self.buf.len()
        } else {
            i
        }
    }

    /// Whether `capacity` values are held.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// Whether no value is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of values held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The oldest value held (the first pushed still inside).
    ///
    /// # Panics
    /// If the window is empty.
    #[inline]
    pub fn oldest(&self) -> f64 {
        assert!(self.len > 0, "empty window");
        self.buf[self.head]
    }

    /// The value `k` steps before the newest (`back(0)` is the newest).
    ///
    /// # Panics
    /// If fewer than `k + 1` values are held.
    #[inline]
    pub fn back(&self, k: usize) -> f64 {
        assert!(
            k < self.len,
            "window holds {} values, asked for {}",
            self.len,
            k + 1
        );
        self.buf[self.wrap(self.head + self.len - 1 - k)]
    }

    /// The values, oldest first.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let (tail, wrapped) = self.buf.split_at(self.head);
        wrapped.iter().chain(tail).take(self.len).copied()
    }

    /// Forgets every value.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_values_in_order() {
        let mut w = RingBuffer::new(3);
        for x in 1..=5 {
            w.push(f64::from(x));
        }
        assert_eq!(w.iter().collect::<Vec<_>>(), vec![3.0, 4.0, 5.0]);
        assert_eq!((w.oldest(), w.back(0), w.back(2)), (3.0, 5.0, 3.0));
        w.clear();
        assert_eq!(w.len(), 0);
    }
}
