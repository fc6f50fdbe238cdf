//! `PipelineView`: what every symbol's supervisor reads of the consumer's knowledge — the
//! broker epoch, where each raw partition's log ended when this instance was assigned it,
//! and how far a quiet symbol's clock may move. Shared behind an `Arc`; the consumer writes,
//! supervisors read.

use crate::domain::Timestamp;
use crate::kafka::origin::ForwardKey;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

/// The consumer's shared knowledge.
#[derive(Debug)]
pub struct PipelineView {
    /// The broker's epoch (`kafka::epoch`).
    epoch: String,
    /// The key that signs trades forwarded to their home partition (`kafka::origin`).
    forward_key: ForwardKey,
    /// Raw partition → its log end offset when last assigned here.
    log_ends: RwLock<HashMap<i32, i64>>,
    /// Cap on quiet clocks, in micros; `i64::MAX`: none.
    clock_cap: AtomicI64,
}

impl PipelineView {
    /// A view on broker `epoch`, nothing assigned yet (clocks capped until partitions are
    /// read: see `pipeline::alignment`).
    pub fn new(epoch: impl Into<String>, forward_key: ForwardKey) -> Self {
        Self {
            epoch: epoch.into(),
            forward_key,
            log_ends: RwLock::default(),
            clock_cap: AtomicI64::new(Timestamp::MIN.micros()),
        }
    }

    /// The broker epoch.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The key that signs forwarded trades.
    pub fn forward_key(&self) -> &ForwardKey {
        &self.forward_key
    }

    /// Records where partitions' logs end (at their assignment).
    pub fn set_log_ends(&self, ends: impl IntoIterator<Item = (i32, i64)>) {
        // unwrap: nothing panics while holding the lock.
        self.log_ends.write().unwrap().extend(ends);
    }

    /// Where `partition`'s log ended when it was assigned here.
    pub fn log_end(&self, partition: i32) -> Option<i64> {
        // unwrap: see `set_log_ends`.
        self.log_ends.read().unwrap().get(&partition).copied()
    }

    /// Sets the cap on quiet clocks (`None`: no cap).
    pub fn set_clock_cap(&self, cap: Option<Timestamp>) {
        self.clock_cap
            .store(cap.map_or(i64::MAX, Timestamp::micros), Ordering::Relaxed);
    }

    /// The cap on quiet clocks.
    pub fn clock_cap(&self) -> Option<Timestamp> {
        let cap = self.clock_cap.load(Ordering::Relaxed);
        (cap != i64::MAX).then_some(Timestamp::from_micros(cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_are_capped_until_told_otherwise() {
        let v = PipelineView::new("e", ForwardKey::random());
        assert_eq!(v.clock_cap(), Some(Timestamp::MIN));
        v.set_clock_cap(None);
        assert_eq!(v.clock_cap(), None);
        v.set_clock_cap(Some(Timestamp::from_secs(3)));
        assert_eq!(v.clock_cap(), Some(Timestamp::from_secs(3)));
        v.set_log_ends([(0, 10), (1, 0)]);
        assert_eq!((v.log_end(0), v.log_end(2)), (Some(10), None));
        assert_eq!(v.epoch(), "e");
    }
}
