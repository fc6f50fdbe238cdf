//! Time rules of the pipeline that are not bar maths: which trades are too far in the
//! future to believe, and how far a quiet symbol's clock may move its bars.

use crate::domain::Timestamp;
use std::time::{Duration, Instant};

/// A trade stamped later than its reference time plus the allowed skew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("trade time {trade} is more than {skew_secs} s ahead of {reference}")]
pub struct FutureTimestamp {
    pub trade: Timestamp,
    pub reference: Timestamp,
    pub skew_secs: i64,
}

/// Checks a trade's time against the moment it was produced.
///
/// The reference is the Kafka message's own timestamp when it is earlier than the wall clock
/// (the broker's append time on a raw topic tickflow created — `kafka::topics` — else the
/// producer's clock when it sent the trade), else the wall clock: so a replay of the
/// same log, however much later, judges every trade as the first reading did (no trade
/// dead-lettered once and accepted later, or the reverse), and a producer that stamps its
/// messages in the future cannot vouch for its own trades.
///
/// Returns the reference: the trade may not move its symbol's clock past it (a trade
/// stamped minutes ahead, within the skew, would otherwise close the present bars early and
/// make every trade after it late; see `TickRecord::clock_limit`).
///
/// # Errors
/// [`FutureTimestamp`] when `trade` is more than `max_skew_micros` after the reference.
pub fn check_not_future(
    trade: Timestamp,
    message_time: Option<Timestamp>,
    now: Timestamp,
    max_skew_micros: i64,
) -> Result<Timestamp, FutureTimestamp> {
    let reference = message_time.map_or(now, |m| m.min(now));
    if trade.micros() > reference.micros().saturating_add(max_skew_micros) {
        return Err(FutureTimestamp {
            trade,
            reference,
            skew_secs: max_skew_micros / 1_000_000,
        });
    }
    Ok(reference)
}

/// Where a quiet symbol's clock moves event time to: its latest trade time plus the wall
/// time since that trade arrived, but never past `cap` (the event time up to which every
/// partition the pipeline reads has been read: see `pipeline::alignment`; trades being held
/// back there must not find their bars closed). `None` while the symbol has been quiet for
/// less than `grace_micros` (its bars close on their own trades then).
pub fn idle_advance(
    last_event: Timestamp,
    quiet_micros: i64,
    grace_micros: i64,
    cap: Option<Timestamp>,
) -> Option<Timestamp> {
    if quiet_micros < grace_micros {
        return None;
    }
    let to = last_event.add_micros(quiet_micros);
    Some(cap.map_or(to, |c| to.min(c)))
}

/// A gap between two idle-clock checks longer than this means the process did not run
/// (SIGSTOP, a stalled VM, a machine swapping) for long enough that the group may have
/// given its partitions away: the checks come every second, and the group's session
/// timeout is 6 s (`kafka::config::SESSION_TIMEOUT`). Shorter pauses lose nothing, and
/// holding after them would only delay quiet bars (repeated short pauses, indefinitely).
pub const STALL: Duration = Duration::from_secs(5);
/// How long quiet clocks hold still after a stall: longer than a heartbeat and a rebalance,
/// so that an instance the group dropped while it was not running learns it (its symbols
/// retire) before its clocks close any bar.
pub const STALL_HOLD: Duration = Duration::from_secs(10);

/// Holds a symbol's idle clock still for a while after the process was not running.
///
/// An instance paused past the group's session timeout has lost its partitions to another
/// without knowing; on waking, the wall time that passed would close its open bars with
/// only the trades it had seen — bars the new owner is building from every trade.
#[derive(Debug, Default)]
pub struct StallGuard {
    last: Option<Instant>,
    hold_until: Option<Instant>,
}

impl StallGuard {
    /// Whether the idle clock may move at `now` (called once per check).
    pub fn allows(&mut self, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|l| now.saturating_duration_since(l) > STALL)
        {
            self.hold_until = Some(now + STALL_HOLD);
        }
        self.last = Some(now);
        self.hold_until.is_none_or(|h| now >= h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn a_trade_far_ahead_of_its_message_is_refused() {
        let now = t(1_000_000);
        assert_eq!(
            check_not_future(t(1_000_000 + 299), Some(now), now, 5 * MIN),
            Ok(now),
            "accepted, and its clock limited to the message time"
        );
        assert!(check_not_future(t(1_000_000 + 301), Some(now), now, 5 * MIN).is_err());
        // The year 2200.
        assert!(check_not_future(t(7_258_118_400), None, now, 5 * MIN).is_err());
        // Trades far in the past are not this rule's business.
        assert!(check_not_future(t(0), Some(now), now, 5 * MIN).is_ok());
    }

    #[test]
    fn the_reference_is_the_message_time_so_a_later_replay_judges_the_same() {
        let produced = t(1_000_000);
        let trade = t(1_000_000 + 600);
        let first_read = t(1_000_001);
        let replayed_an_hour_later = t(1_003_600);
        assert!(check_not_future(trade, Some(produced), first_read, 5 * MIN).is_err());
        assert!(check_not_future(trade, Some(produced), replayed_an_hour_later, 5 * MIN).is_err());
        // A producer whose message times are in the future cannot vouch for its trades.
        let err = check_not_future(trade, Some(t(2_000_000)), first_read, 5 * MIN).unwrap_err();
        assert_eq!(err.reference, first_read);
    }

    #[test]
    fn a_quiet_clock_moves_by_the_wall_time_but_not_past_the_cap() {
        assert_eq!(idle_advance(t(100), 1_000_000, 2_000_000, None), None);
        assert_eq!(
            idle_advance(t(100), 3_000_000, 2_000_000, None),
            Some(t(103))
        );
        assert_eq!(
            idle_advance(t(100), 3_000_000, 2_000_000, Some(t(101))),
            Some(t(101))
        );
    }

    #[test]
    fn a_stall_holds_the_idle_clock_for_a_while_then_lets_it_go() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let mut g = StallGuard::default();
        assert!(g.allows(at(0)));
        assert!(g.allows(at(1)));
        assert!(g.allows(at(2)), "checks a second apart: running");
        assert!(
            !g.allows(at(60)),
            "58 s without a check: the process was stopped"
        );
        for s in 61..70 {
            assert!(!g.allows(at(s)), "{s}: held");
        }
        assert!(g.allows(at(70)), "held for STALL_HOLD");
        assert!(g.allows(at(71)));
        // Pauses of 4 s every 9 s: too short to lose a partition, so no hold at all.
        let mut g = StallGuard::default();
        for cycle in 0..10 {
            let base = cycle * 9;
            for s in [base, base + 1, base + 2, base + 3, base + 4] {
                assert!(g.allows(at(s)), "{s}");
            }
        }
        assert!(STALL < crate::kafka::config::SESSION_TIMEOUT);
    }
}
