//! `LogThrottle`: one log line per period about something that can happen on every trade
//! (trades too late for their bar), with the count since the last line.
//!
//! Every occurrence is counted exactly in its Prometheus counter; the log says which symbol
//! and roughly how many, without one line per trade flooding it.

use std::time::{Duration, Instant};

/// Occurrences since the last line, and when that line was written.
#[derive(Debug, Clone)]
pub struct LogThrottle {
    every: Duration,
    unlogged: u64,
    logged: Option<Instant>,
}

impl LogThrottle {
    /// At most one line per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            unlogged: 0,
            logged: None,
        }
    }

    /// Notes `n` occurrences at `now`; returns how many to report when a line is due (the
    /// first occurrence, then once per period), `None` otherwise.
    pub fn record(&mut self, n: u64, now: Instant) -> Option<u64> {
        self.unlogged += n;
        let due = n > 0
            && self
                .logged
                .is_none_or(|t| now.saturating_duration_since(t) >= self.every);
        if !due {
            return None;
        }
        self.logged = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_occurrence_is_logged_then_one_line_per_period_with_the_count_since() {
        let t0 = Instant::now();
        let mut t = LogThrottle::new(Duration::from_secs(60));
        assert_eq!(t.record(0, t0), None, "nothing happened");
        assert_eq!(t.record(3, t0), Some(3));
        assert_eq!(t.record(5, t0 + Duration::from_secs(10)), None);
        assert_eq!(t.record(0, t0 + Duration::from_secs(70)), None, "none new");
        assert_eq!(t.record(1, t0 + Duration::from_secs(70)), Some(6));
        assert_eq!(t.record(2, t0 + Duration::from_secs(129)), None);
        assert_eq!(t.record(2, t0 + Duration::from_secs(130)), Some(4));
    }
}
