//! How far the pipeline is behind on the raw topic, and whether anything was lost before
//! it was committed.
//!
//! A broker that drops old messages by size (the embedded broker keeps ~5 MiB or 100,000
//! message sets per partition, then drops the oldest) loses trades the pipeline has not
//! committed yet when it falls far enough behind — a PostgreSQL outage with the feed
//! running is enough. So:
//! - [`BacklogMonitor`] (fed every second by [`BacklogMonitor::watch`], which asks the broker
//!   for the pipeline group's committed offsets and the partitions' ends — not by the
//!   consumer's statistics, which stop while the consumer waits on a slow database) knows each
//!   partition's uncommitted backlog; in-process feeds that can wait (the simulator) wait while it is
//!   above the limit; feeds that cannot (live providers) are counted and `/health` shows the
//!   pipeline as degraded before anything is dropped;
//! - messages dropped unread (the consumer finds its next offset gone: `pipeline::ledger`)
//!   are counted (`raw_messages_lost_total`), logged and shown on `/health`, never silent;
//! - [`BacklogProbe`] gives another process (`tickflow replay`) the same backlog, read from
//!   the broker (the group's committed offsets and the partitions' ends).

use crate::kafka::{config, topics};
use crate::metrics::Metrics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Uncommitted messages per partition above which producers into the embedded broker wait:
/// ~20,000 trades of ~150 bytes is ~3 MB, well inside its ~5 MiB, whatever the batching.
pub const EMBEDDED_BACKLOG_LIMIT: i64 = 20_000;
/// How often a waiting producer looks again.
const WAIT_STEP: Duration = Duration::from_millis(100);

/// What `/health` shows of the backlog.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BacklogHealth {
    /// The largest uncommitted backlog of a partition.
    pub largest: i64,
    /// The limit producers wait at (`None`: none).
    pub limit: Option<i64>,
    /// Messages dropped by the broker before they were committed, since start.
    pub lost: i64,
}

impl BacklogHealth {
    /// Why the pipeline is degraded, if it is.
    pub fn problem(&self) -> Option<String> {
        if self.lost > 0 {
            return Some(format!(
                "{} raw messages were dropped by the broker before they were processed",
                self.lost
            ));
        }
        match self.limit {
            Some(limit) if self.largest > limit => Some(format!(
                "{} uncommitted messages in a partition, above the broker's safe limit {limit}: \
                 the broker may drop messages before they are processed",
                self.largest
            )),
            _ => None,
        }
    }
}

/// The raw topic's backlog as the pipeline consumer last saw it.
pub struct BacklogMonitor {
    /// Uncommitted messages per partition.
    partitions: Mutex<BTreeMap<i32, i64>>,
    limit: Option<i64>,
    metrics: Metrics,
}

impl BacklogMonitor {
    /// A monitor whose producers wait above `limit` uncommitted messages per partition.
    pub fn new(limit: Option<i64>, metrics: Metrics) -> Self {
        Self {
            partitions: Mutex::default(),
            limit,
            metrics,
        }
    }

    /// A partition's log ends at `high` and the pipeline committed up to `committed`.
    pub fn observe(&self, partition: i32, high: i64, committed: i64) {
        // unwrap: nothing panics while holding the lock.
        let mut parts = self.partitions.lock().unwrap();
        parts.insert(partition, (high - committed).max(0));
        self.metrics.raw_uncommitted.set(parts.values().sum());
    }

    /// The largest uncommitted backlog of a partition.
    pub fn largest(&self) -> i64 {
        // unwrap: see `observe`.
        let parts = self.partitions.lock().unwrap();
        parts.values().copied().max().unwrap_or(0)
    }

    /// Whether producers should wait now.
    pub fn over_limit(&self) -> bool {
        self.limit.is_some_and(|l| self.largest() > l)
    }

    /// Waits while the backlog is over the limit; returns how long it waited.
    pub async fn wait_for_room(&self) -> Duration {
        let mut waited = Duration::ZERO;
        while self.over_limit() {
            tokio::time::sleep(WAIT_STEP).await;
            waited += WAIT_STEP;
        }
        waited
    }

    /// Refreshes the backlog from the broker every `every`, for as long as it runs.
    pub async fn watch(self: std::sync::Arc<Self>, probe: BacklogProbe, every: Duration) {
        let probe = std::sync::Arc::new(probe);
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            let asking = probe.clone();
            match tokio::task::spawn_blocking(move || asking.backlog_blocking()).await {
                Ok(Ok(parts)) => {
                    for (partition, uncommitted) in parts {
                        self.observe(partition, uncommitted, 0);
                    }
                }
                Ok(Err(e)) => tracing::debug!(error = %format!("{e:#}"), "backlog not read"),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "backlog probe failed"),
            }
        }
    }

    /// The backlog for `/health`.
    pub fn health(&self) -> BacklogHealth {
        BacklogHealth {
            largest: self.largest(),
            limit: self.limit,
            lost: self.metrics.raw_messages_lost.get() as i64,
        }
    }
}

/// Reads the pipeline group's backlog on the raw topic from the broker (for producers in
/// another process).
pub struct BacklogProbe {
    client: BaseConsumer<config::EofIsNoError>,
}

impl BacklogProbe {
    /// A probe of `group`'s backlog on the cluster at `bootstrap` (it never joins the group).
    ///
    /// # Errors
    /// When the client cannot be created.
    pub fn new(bootstrap: &str, group: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: config::direct_reader(bootstrap, group)
                .create_with_context(config::EofIsNoError)?,
        })
    }

    /// The largest uncommitted backlog of a partition (blocking: call it off the runtime).
    ///
    /// # Errors
    /// When the broker does not answer.
    pub fn largest_blocking(&self) -> anyhow::Result<i64> {
        Ok(self
            .backlog_blocking()?
            .into_iter()
            .map(|(_, b)| b)
            .max()
            .unwrap_or(0))
    }

    /// Each partition's uncommitted backlog (blocking: call it off the runtime).
    ///
    /// # Errors
    /// When the broker does not answer.
    pub fn backlog_blocking(&self) -> anyhow::Result<Vec<(i32, i64)>> {
        let timeout = Duration::from_secs(5);
        let metadata = self.client.fetch_metadata(Some(topics::RAW), timeout)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(topics::RAW, *p);
        }
        let committed = self.client.committed_offsets(tpl, timeout)?;
        let mut backlog = Vec::with_capacity(partitions.len());
        for p in partitions {
            let (low, high) = self.client.fetch_watermarks(topics::RAW, p, timeout)?;
            let from = match committed.find_partition(topics::RAW, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                // Nothing committed yet: everything in the log is backlog.
                _ => low,
            };
            backlog.push((p, (high - from).max(0)));
        }
        Ok(backlog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_wait_above_the_limit_and_losses_degrade_health() {
        let metrics = Metrics::new();
        let m = BacklogMonitor::new(Some(100), metrics.clone());
        m.observe(0, 50, 10);
        assert_eq!(m.largest(), 40);
        assert!(!m.over_limit());
        assert_eq!(m.health().problem(), None);
        m.observe(1, 500, 0);
        assert!(m.over_limit());
        assert!(m.health().problem().unwrap().contains("safe limit"));
        m.observe(1, 500, 450);
        assert!(!m.over_limit());
        metrics.raw_messages_lost.inc_by(7);
        assert_eq!(m.health().lost, 7);
        assert!(m.health().problem().unwrap().contains("dropped"));
        let unlimited = BacklogMonitor::new(None, Metrics::new());
        unlimited.observe(0, 1_000_000, 0);
        assert!(!unlimited.over_limit());
    }
}
