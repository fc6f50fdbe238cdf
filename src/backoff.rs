//! `Backoff`: the one capped exponential back-off every retry loop uses (database flushes,
//! checkpoint loads, bar ingest, feed reconnects, a consumer replaying without progress).
//!
//! Retrying at once would spin against a dead peer; waiting a fixed long time would slow
//! recovery from short blips. Doubling from a short first delay up to a cap does both, and
//! optional jitter keeps many clients from retrying in lockstep.

use std::time::Duration;

/// Capped exponential delays: `first`, `2·first`, … up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    /// Up to this fraction of each delay is added at random.
    jitter: f64,
}

impl Backoff {
    /// Delays from `first` doubling to `max`, without jitter.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
            jitter: 0.0,
        }
    }

    /// The store retry policy: 100 ms doubling to 5 s (a database restart is waited out
    /// within seconds of its return).
    pub const fn store() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// Adds up to `fraction` of each delay at random (reconnecting clients).
    pub const fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// The delay to wait now; the following one doubles (up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        if self.jitter > 0.0 {
            base + base.mul_f64(rand::random::<f64>() * self.jitter)
        } else {
            base
        }
    }

    /// Sleeps for [`Self::next_delay`]; returns how long it slept.
    pub async fn wait(&mut self) -> Duration {
        let delay = self.next_delay();
        tokio::time::sleep(delay).await;
        delay
    }

    /// Starts over from the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// The delay the next wait would use before jitter.
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// Whether no retry has happened since the last reset.
    pub fn is_fresh(&self) -> bool {
        self.next == self.first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_start_over_after_a_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let got: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 500, 500]);
        assert!(!b.is_fresh());
        b.reset();
        assert!(b.is_fresh());
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_adds_at_most_its_fraction() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).with_jitter(0.25);
        for _ in 0..100 {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_secs(1) && d <= Duration::from_millis(1250),
                "{d:?}"
            );
        }
    }
}
