//! `Lifecycle`: where a symbol's supervisor is in its life, as one state instead of flags.
//!
//! ```text
//!          new ──▶ Starting{flush: no} ──restored──▶ Running ◀─┐
//!                        ▲                              │      │ refusal given
//!   failure (a caller saw it) ─ restarting ─ Starting{flush} ◀─┤
//!   failure nobody saw (idle clock) ─ restarting ─ Starting{flush, owe} ──restored──▶ Owing
//!   Retire (any state) ──▶ Retired (kept across restarts: no clock, no refusal)
//! ```
//!
//! - A restart flushes the writer before reading the checkpoint back, so a checkpoint
//!   handed over just before the failure is the one restored.
//! - A failure no caller saw (the idle clock's) leaves the consumer believing the symbol's
//!   state includes every trade it sent; the restored state does not. So the supervisor owes
//!   the consumer a refusal: its next batch or checkpoint request fails with
//!   `StageError::Restarted`, and the consumer replays the partition.
//! - A retired supervisor (its partition moved to another instance) must never close bars
//!   again: its clock stays off, also after a restart.

/// The phase of a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Restoring its checkpoint; no trade is looked at meanwhile.
    Starting {
        /// Flush the writer first (a restart: a checkpoint may be in flight).
        flush_first: bool,
        /// Refuse the next request once restored (the failure was nobody's answer).
        owe_refusal: bool,
    },
    /// Processing trades.
    Running,
    /// Restored after a failure nobody saw: the next request is refused.
    Owing,
    /// Its partition went to another instance: it finishes its mailbox and falls silent.
    Retired,
}

impl Lifecycle {
    /// A new supervisor.
    pub const fn new() -> Self {
        Self::Starting {
            flush_first: false,
            owe_refusal: false,
        }
    }

    /// The state after an actix restart (the actor value is reused).
    pub fn restarted(self) -> Self {
        match self {
            Self::Retired => Self::Retired,
            Self::Owing
            | Self::Starting {
                owe_refusal: true, ..
            } => Self::Starting {
                flush_first: true,
                owe_refusal: true,
            },
            _ => Self::Starting {
                flush_first: true,
                owe_refusal: false,
            },
        }
    }

    /// A failure that no caller saw (the idle clock's); the actor is about to restart.
    pub fn failed_unseen(self) -> Self {
        match self {
            Self::Retired => Self::Retired,
            _ => Self::Owing,
        }
    }

    /// The checkpoint is restored.
    pub fn restored(self) -> Self {
        match self {
            Self::Starting {
                owe_refusal: true, ..
            } => Self::Owing,
            Self::Starting { .. } => Self::Running,
            other => other,
        }
    }

    /// Whether the writer must be flushed before the checkpoint is read.
    pub fn flush_first(self) -> bool {
        matches!(
            self,
            Self::Starting {
                flush_first: true,
                ..
            }
        )
    }

    /// Whether a request must be refused now; the refusal is then given (`self` becomes
    /// `Running`).
    pub fn take_refusal(&mut self) -> bool {
        if *self == Self::Owing {
            *self = Self::Running;
            return true;
        }
        false
    }

    /// Whether the idle clock may close bars.
    pub fn clock_allowed(self) -> bool {
        self != Self::Retired
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_supervisor_runs_once_restored_without_flushing_or_refusing() {
        let l = Lifecycle::new();
        assert!(!l.flush_first());
        let mut l = l.restored();
        assert_eq!(l, Lifecycle::Running);
        assert!(!l.take_refusal());
    }

    #[test]
    fn a_failure_a_caller_saw_restarts_with_a_flush_and_no_refusal() {
        let l = Lifecycle::Running.restarted();
        assert!(l.flush_first());
        let mut l = l.restored();
        assert!(!l.take_refusal());
    }

    #[test]
    fn a_failure_nobody_saw_is_owed_once_across_the_restart() {
        let l = Lifecycle::Running.failed_unseen().restarted();
        assert!(l.flush_first());
        let mut l = l.restored();
        assert!(l.take_refusal(), "the next request is refused");
        assert!(!l.take_refusal(), "only once");
        assert_eq!(l, Lifecycle::Running);
    }

    #[test]
    fn a_second_restart_while_restoring_keeps_the_debt() {
        let l = Lifecycle::Running.failed_unseen().restarted().restarted();
        let mut l = l.restored();
        assert!(l.take_refusal());
    }

    #[test]
    fn retired_stays_retired_through_failures_and_restarts() {
        let mut l = Lifecycle::Retired.failed_unseen().restarted().restored();
        assert_eq!(l, Lifecycle::Retired);
        assert!(!l.clock_allowed());
        assert!(!l.take_refusal());
        assert!(Lifecycle::Running.clock_allowed());
    }
}
