//! `RateLimiter`: a provider's request allowance per minute and per UTC day.
//!
//! Providers answer an exceeded allowance with an error body (and the reference then gave
//! up or, worse, read it as "no data"); tickflow counts its own requests and waits for the
//! window to free up instead. A throttle answer that still arrives (another client shares
//! the key) blocks the limiter for a whole window.

use chrono::NaiveDate;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Why a request may not go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The per-minute allowance frees up after this long.
    For(Duration),
    /// Today's allowance is spent.
    NextDay,
}

/// Requests allowed per sliding `window` (a minute for real providers) and per UTC day.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_window: usize,
    window: Duration,
    per_day: u32,
    recent: VecDeque<Instant>,
    day: Option<NaiveDate>,
    used_today: u32,
    blocked_until: Option<Instant>,
}

impl RateLimiter {
    /// `per_window` requests per `window`, `per_day` per UTC day.
    pub fn new(per_window: usize, window: Duration, per_day: u32) -> Self {
        Self {
            per_window: per_window.max(1),
            window,
            per_day,
            recent: VecDeque::new(),
            day: None,
            used_today: 0,
            blocked_until: None,
        }
    }

    /// Takes one request at `now` on `today`, or says how long to wait.
    ///
    /// # Errors
    /// The [`Wait`] before a request may go.
    pub fn try_acquire(&mut self, now: Instant, today: NaiveDate) -> Result<(), Wait> {
        if self.day != Some(today) {
            self.day = Some(today);
            self.used_today = 0;
        }
        if self.used_today >= self.per_day {
            return Err(Wait::NextDay);
        }
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(Wait::For(until - now));
            }
            self.blocked_until = None;
        }
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.per_window {
            // unwrap-free: the queue is non-empty here.
            let oldest = self.recent.front().copied().unwrap_or(now);
            return Err(Wait::For(self.window - now.duration_since(oldest)));
        }
        self.recent.push_back(now);
        self.used_today += 1;
        Ok(())
    }

    /// The provider said "too many requests": wait a whole window before the next one.
    pub fn throttled(&mut self, now: Instant) {
        self.blocked_until = Some(now + self.window);
    }

    /// The provider said today's allowance is spent.
    pub fn exhausted_today(&mut self) {
        self.used_today = self.per_day;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minute_allowance_slides_and_the_day_allowance_resets_at_midnight() {
        let mut r = RateLimiter::new(2, Duration::from_secs(60), 3);
        let t0 = Instant::now();
        let day = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
        assert_eq!(r.try_acquire(t0, day), Ok(()));
        assert_eq!(r.try_acquire(t0 + Duration::from_secs(10), day), Ok(()));
        assert_eq!(
            r.try_acquire(t0 + Duration::from_secs(20), day),
            Err(Wait::For(Duration::from_secs(40)))
        );
        assert_eq!(r.try_acquire(t0 + Duration::from_secs(60), day), Ok(()));
        assert_eq!(
            r.try_acquire(t0 + Duration::from_secs(200), day),
            Err(Wait::NextDay),
            "three a day"
        );
        let next = day.succ_opt().unwrap();
        assert_eq!(r.try_acquire(t0 + Duration::from_secs(200), next), Ok(()));
    }

    #[test]
    fn a_throttle_answer_blocks_a_whole_window() {
        let mut r = RateLimiter::new(8, Duration::from_secs(60), 800);
        let t0 = Instant::now();
        let day = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
        r.throttled(t0);
        assert_eq!(
            r.try_acquire(t0 + Duration::from_secs(15), day),
            Err(Wait::For(Duration::from_secs(45)))
        );
        assert_eq!(r.try_acquire(t0 + Duration::from_secs(60), day), Ok(()));
        r.exhausted_today();
        assert_eq!(
            r.try_acquire(t0 + Duration::from_secs(61), day),
            Err(Wait::NextDay)
        );
    }
}
