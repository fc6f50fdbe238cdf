//! The checkpoint of a symbol: its whole pipeline state, its format, and how it is restored.
//!
//! Written through the `DbWriter` after the outputs it accounts for (one transaction), read
//! back when the symbol's supervisor starts (a restart, or the instance that takes over its
//! partition). Besides the bar, indicator and metric state it holds:
//! - the trades applied, per origin partition ([`Applied`]), and the broker epoch those
//!   offsets belong to (`kafka::epoch`): against another broker the state is kept but the
//!   offsets are not (its partitions start at 0 again);
//! - the event time of the latest trade and the wall-clock time it arrived, so a symbol
//!   restored on another instance closes its bars on time without a next trade.

use crate::domain::bar::TieBreak;
use crate::domain::{BarBuilder, RevisableIndicators, TickMetrics, Timestamp};
use crate::output::{Checkpoint, Seq};
use crate::pipeline::applied::{Applied, Window};
use crate::pipeline::settings::SymbolSettings;

/// The format written now: the format number, the state, the log order of each builder's
/// bars (`BarBuilder::tie_breaks`, which the bars do not serialise), then the applied
/// trades' recent windows (`Applied::windows`). Formats 3 (without the windows: everything
/// up to each last offset counts as applied) and 2 (also without the log order: its bars'
/// ties keep arrival order) are still read. A checkpoint of another format is not restored
/// (the symbol starts fresh, logged).
pub const FORMAT: u32 = 4;
/// The previous format, still read.
const FORMAT_WITHOUT_WINDOWS: u32 = 3;
/// The format before it, still read.
const FORMAT_WITHOUT_TIES: u32 = 2;

/// Why a stored checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint format {found} (this tickflow reads format {FORMAT})")]
    Format { found: u32 },
    #[error("unreadable checkpoint: {0}")]
    Corrupt(String),
}

/// The latest trade of a symbol: its event time, and when it arrived (wall clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastEvent {
    pub event: Timestamp,
    pub arrived: Timestamp,
}

/// A symbol's whole state.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SymbolState {
    /// The broker epoch the offsets in `applied` belong to.
    pub epoch: String,
    pub applied: Applied,
    pub metrics: TickMetrics,
    /// Event time of the last published realtime snapshot.
    pub realtime_last: Option<Timestamp>,
    pub last_event: Option<LastEvent>,
    /// One per configured interval, in order.
    pub builders: Vec<BarBuilder>,
    pub indicators: Vec<RevisableIndicators>,
}

impl SymbolState {
    /// The state of a symbol that has seen nothing, on broker `epoch`.
    pub fn fresh(symbol: crate::domain::Symbol, settings: &SymbolSettings, epoch: &str) -> Self {
        Self {
            epoch: epoch.to_owned(),
            applied: Applied::new(),
            metrics: TickMetrics::new(),
            realtime_last: None,
            last_event: None,
            builders: settings.fresh_builders(symbol),
            indicators: settings.fresh_indicators(symbol),
        }
    }

    /// The bytes stored: the format number, then the state.
    ///
    /// # Errors
    /// When the state cannot be encoded (it always can: plain data).
    pub fn encode(&self) -> Result<Vec<u8>, CheckpointError> {
        let mut out = FORMAT.to_le_bytes().to_vec();
        let ties: Vec<Vec<TieBreak>> = self.builders.iter().map(BarBuilder::tie_breaks).collect();
        let windows = self.applied.windows();
        let config = bincode::config::standard();
        bincode::serde::encode_into_std_write(self, &mut out, config)
            .and_then(|_| bincode::serde::encode_into_std_write(&ties, &mut out, config))
            .and_then(|_| bincode::serde::encode_into_std_write(&windows, &mut out, config))
            .map_err(|e| CheckpointError::Corrupt(e.to_string()))?;
        Ok(out)
    }

    /// The checkpoint row of `symbol` in this state.
    ///
    /// # Errors
    /// When the state cannot be encoded.
    pub fn checkpoint(&self, symbol: crate::domain::Symbol) -> Result<Checkpoint, CheckpointError> {
        let applied: Vec<(i32, i64)> = self.applied.iter().collect();
        // The stored `seq` is for people: the newest trade applied.
        let seq = applied
            .iter()
            .map(|&(partition, offset)| Seq { partition, offset })
            .max()
            .unwrap_or(Seq {
                partition: 0,
                offset: -1,
            });
        Ok(Checkpoint {
            symbol,
            seq,
            state: self.encode()?,
            epoch: self.epoch.clone(),
            applied,
        })
    }

    /// The state in `bytes`.
    ///
    /// # Errors
    /// [`CheckpointError::Format`] for another format (older tickflow), `Corrupt` otherwise.
    pub fn decode(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let (head, body) = bytes
            .split_first_chunk::<4>()
            .ok_or_else(|| CheckpointError::Corrupt("shorter than its header".into()))?;
        let found = u32::from_le_bytes(*head);
        if ![FORMAT, FORMAT_WITHOUT_WINDOWS, FORMAT_WITHOUT_TIES].contains(&found) {
            return Err(CheckpointError::Format { found });
        }
        let config = bincode::config::standard();
        let corrupt = |e: bincode::error::DecodeError| CheckpointError::Corrupt(e.to_string());
        let (mut state, mut read): (Self, usize) =
            bincode::serde::decode_from_slice(body, config).map_err(corrupt)?;
        if found >= FORMAT_WITHOUT_WINDOWS {
            let (ties, n): (Vec<Vec<TieBreak>>, usize) =
                bincode::serde::decode_from_slice(&body[read..], config).map_err(corrupt)?;
            read += n;
            for (builder, ties) in state.builders.iter_mut().zip(&ties) {
                builder.restore_tie_breaks(ties);
            }
        }
        if found == FORMAT {
            let (windows, _): (Vec<Window>, usize) =
                bincode::serde::decode_from_slice(&body[read..], config).map_err(corrupt)?;
            state.applied.restore_windows(windows);
        }
        Ok(state)
    }

    /// Whether the state was built for `settings`' intervals (in order).
    pub fn fits(&self, settings: &SymbolSettings) -> bool {
        self.builders.len() == settings.intervals.len()
            && self.indicators.len() == settings.intervals.len()
            && self
                .builders
                .iter()
                .zip(&settings.intervals)
                .all(|(b, i)| b.interval() == *i)
    }
}

/// What restoring a checkpoint found, for the log and the metrics.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RestoreNotes {
    /// Written against another broker: its offsets were dropped.
    pub other_epoch: bool,
    /// `(partition, applied offset, log end)` of offsets at or past their partition's end:
    /// the log was replaced (topic recreated); those offsets were dropped.
    pub ahead_of_log: Vec<(i32, i64, i64)>,
}

/// Makes a decoded state safe to resume from on broker `epoch`, whose raw partitions ended
/// at `log_end(partition)` when this instance was assigned them (`None`: unknown).
///
/// A trade is skipped only when its offset is at or before the applied one; offsets of
/// another log would skip that log's trades, so they are dropped (the bar and indicator
/// state is kept: it is right, only the positions are foreign).
pub fn prepare_restore(
    state: &mut SymbolState,
    epoch: &str,
    log_end: impl Fn(i32) -> Option<i64>,
) -> RestoreNotes {
    let mut notes = RestoreNotes::default();
    if state.epoch != epoch {
        notes.other_epoch = !state.applied.is_empty();
        state.applied.clear();
        state.epoch = epoch.to_owned();
    }
    let ahead: Vec<(i32, i64, i64)> = state
        .applied
        .iter()
        .filter_map(|(p, o)| log_end(p).filter(|end| o >= *end).map(|end| (p, o, end)))
        .collect();
    for (p, _, _) in &ahead {
        state.applied.forget(*p);
    }
    notes.ahead_of_log = ahead;
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BarBuilderConfig, Interval, TradingCalendar};
    use crate::output::Seq;
    use std::time::Duration;

    fn settings() -> SymbolSettings {
        SymbolSettings {
            intervals: vec![Interval::M1, Interval::D1],
            default_calendar: TradingCalendar::us_equity(),
            calendars: vec![],
            bars: BarBuilderConfig::default(),
            realtime_every: Duration::from_secs(1),
        }
    }

    fn state(epoch: &str) -> SymbolState {
        let s = settings();
        let sym = crate::domain::Symbol::parse("AAPL").unwrap();
        let mut applied = Applied::new();
        applied.record(Seq {
            partition: 0,
            offset: 500,
        });
        applied.record(Seq {
            partition: 2,
            offset: 7,
        });
        SymbolState {
            epoch: epoch.into(),
            applied,
            metrics: TickMetrics::new(),
            realtime_last: Some(Timestamp::from_secs(5)),
            last_event: Some(LastEvent {
                event: Timestamp::from_secs(5),
                arrived: Timestamp::from_secs(6),
            }),
            builders: s.fresh_builders(sym),
            indicators: s.fresh_indicators(sym),
        }
    }

    #[test]
    fn a_checkpoint_reads_back_as_written() {
        let s = state("e1");
        let back = SymbolState::decode(&s.encode().unwrap()).unwrap();
        assert_eq!(back.applied, s.applied);
        assert_eq!(back.last_event, s.last_event);
        assert!(back.fits(&settings()));
    }

    #[test]
    fn the_log_order_of_tied_trades_survives_a_checkpoint_and_format_2_still_reads() {
        use crate::domain::{Source, Tick};
        let mut s = state("e1");
        let t = Timestamp::from_secs(1_704_205_800);
        let trade = |price| {
            Tick::new(
                crate::domain::Symbol::parse("AAPL").unwrap(),
                t,
                price,
                1.0,
                Source::new("t"),
            )
            .unwrap()
        };
        let mut out = Vec::new();
        // Log order 20 then 10 for the same instant: the open is 10's price.
        s.builders[0].on_trade(&trade(2.0), Some(20), t, &mut out);
        s.builders[0].on_trade(&trade(1.0), Some(10), t, &mut out);
        let bytes = s.encode().unwrap();
        let mut back = SymbolState::decode(&bytes).unwrap();
        assert_eq!(back.builders[0].tie_breaks()[0].open, Some(10));
        // A later trade of the same instant, earlier in the log, still goes first.
        back.builders[0].on_trade(&trade(0.5), Some(5), t, &mut out);
        assert_eq!(back.builders[0].open_bars().next().unwrap().open, 0.5);
        // Format 2: the same without the log order behind the state.
        let mut old = FORMAT_WITHOUT_TIES.to_le_bytes().to_vec();
        bincode::serde::encode_into_std_write(&s, &mut old, bincode::config::standard()).unwrap();
        let back = SymbolState::decode(&old).unwrap();
        assert_eq!(
            back.builders[0].tie_breaks()[0].open,
            None,
            "unknown: arrival order"
        );
        assert_eq!(back.builders[0].open_bars().next().unwrap().open, 1.0);
    }

    #[test]
    fn the_applied_windows_survive_a_checkpoint_and_format_3_still_reads() {
        let mut s = state("e1");
        s.applied.record(Seq {
            partition: 0,
            offset: 520,
        });
        let hole = Seq {
            partition: 0,
            offset: 510,
        };
        let back = SymbolState::decode(&s.encode().unwrap()).unwrap();
        assert!(
            back.applied.is_new(hole),
            "a hole below the last offset stays a hole"
        );
        assert_eq!(back.applied, s.applied);
        // Format 3: the state and the log order, no windows.
        let mut old = FORMAT_WITHOUT_WINDOWS.to_le_bytes().to_vec();
        let ties: Vec<Vec<TieBreak>> = s.builders.iter().map(BarBuilder::tie_breaks).collect();
        bincode::serde::encode_into_std_write(&s, &mut old, bincode::config::standard()).unwrap();
        bincode::serde::encode_into_std_write(&ties, &mut old, bincode::config::standard())
            .unwrap();
        let back = SymbolState::decode(&old).unwrap();
        assert_eq!(back.applied.get(0), Some(520));
        assert!(
            !back.applied.is_new(hole),
            "without a window everything up to the last offset counts as applied"
        );
    }

    #[test]
    fn another_format_or_garbage_is_refused_not_misread() {
        let mut bytes = state("e1").encode().unwrap();
        bytes[0] = 1;
        assert!(matches!(
            SymbolState::decode(&bytes),
            Err(CheckpointError::Format { found: 1 })
        ));
        assert!(SymbolState::decode(&[2, 0]).is_err());
        assert!(SymbolState::decode(&[2, 0, 0, 0, 255, 255]).is_err());
    }

    #[test]
    fn offsets_of_another_broker_are_dropped_and_the_state_kept() {
        let mut s = state("old");
        let notes = prepare_restore(&mut s, "new", |_| Some(0));
        assert!(notes.other_epoch);
        assert!(s.applied.is_empty());
        assert_eq!(s.epoch, "new");
        assert!(notes.ahead_of_log.is_empty());
        assert!(s.realtime_last.is_some(), "the rest of the state stays");
    }

    #[test]
    fn offsets_past_the_end_of_their_partition_are_dropped_and_reported() {
        let mut s = state("e1");
        let notes = prepare_restore(&mut s, "e1", |p| Some(if p == 0 { 100 } else { 8 }));
        assert!(!notes.other_epoch);
        assert_eq!(notes.ahead_of_log, [(0, 500, 100)]);
        assert_eq!(s.applied.get(0), None);
        assert_eq!(s.applied.get(2), Some(7), "offset 7 < end 8 is fine");
        let mut s = state("e1");
        assert_eq!(
            prepare_restore(&mut s, "e1", |_| None),
            RestoreNotes::default()
        );
    }
}
