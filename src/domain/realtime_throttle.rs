//! `RealtimeThrottle`: which trades' realtime metrics are published.
//!
//! The metrics see every trade ([`crate::domain::TickMetrics`]); what is published and
//! stored is at most one snapshot per symbol per period of **event time**: the first trade
//! at least `every` after the last published one (the leading edge, as the reference's
//! throttle). The reference throttled on wall-clock processing time (its defect 18), so a
//! replay or a restart published different rows than the live run; on trade time the same
//! trades give the same rows, however they are batched, delayed or redelivered.
//! A period of zero publishes every trade.

use crate::domain::Timestamp;

/// The publishing rule of one symbol. Only `last` is state (it goes into checkpoints); the
/// period comes from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealtimeThrottle {
    every_micros: i64,
    last: Option<Timestamp>,
}

impl RealtimeThrottle {
    /// A throttle with period `every_micros` (0: every trade) that last published at `last`.
    pub fn new(every_micros: i64, last: Option<Timestamp>) -> Self {
        Self {
            every_micros: every_micros.max(0),
            last,
        }
    }

    /// Whether the trade at `ts` is published; if so, it starts the next period.
    pub fn admit(&mut self, ts: Timestamp) -> bool {
        if self.every_micros == 0 {
            // Every trade, late ones included; `last` stays the newest published time.
            self.last = Some(self.last.map_or(ts, |last| last.max(ts)));
            return true;
        }
        let due = match self.last {
            Some(last) => ts.micros() >= last.micros().saturating_add(self.every_micros),
            None => true,
        };
        if due {
            self.last = Some(ts);
        }
        due
    }

    /// Event time of the last published trade.
    pub fn last(&self) -> Option<Timestamp> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Timestamp {
        Timestamp::from_micros((s * 1e6) as i64)
    }

    fn admitted(every: i64, times: &[f64]) -> Vec<f64> {
        let mut t = RealtimeThrottle::new(every, None);
        times
            .iter()
            .copied()
            .filter(|s| t.admit(secs(*s)))
            .collect()
    }

    #[test]
    fn leading_edge_once_per_period_of_trade_time() {
        let times = [0.0, 0.2, 0.999, 1.0, 1.5, 2.2, 2.3, 10.0, 10.0];
        assert_eq!(admitted(1_000_000, &times), vec![0.0, 1.0, 2.2, 10.0]);
    }

    #[test]
    fn zero_period_publishes_every_trade_including_equal_times() {
        let times = [0.0, 0.0, 0.5, 0.4];
        assert_eq!(admitted(0, &times), times.to_vec());
    }

    #[test]
    fn late_trades_never_start_a_period() {
        // A trade older than the last published one is not published, and does not
        // move the period back.
        assert_eq!(admitted(1_000_000, &[5.0, 3.0, 5.5, 6.0]), vec![5.0, 6.0]);
    }

    #[test]
    fn batching_does_not_change_what_is_published() {
        // A restart resumes from `last` (checkpointed): the same trades, split anywhere,
        // publish the same snapshots.
        let times: Vec<f64> = (0..200).map(|i| f64::from(i) * 0.37).collect();
        let whole = admitted(1_000_000, &times);
        for cut in [1, 7, 99, 150] {
            let mut first = RealtimeThrottle::new(1_000_000, None);
            let mut out: Vec<f64> = times[..cut]
                .iter()
                .copied()
                .filter(|s| first.admit(secs(*s)))
                .collect();
            let mut resumed = RealtimeThrottle::new(1_000_000, first.last());
            out.extend(
                times[cut..]
                    .iter()
                    .copied()
                    .filter(|s| resumed.admit(secs(*s))),
            );
            assert_eq!(out, whole, "cut at {cut}");
        }
    }
}
