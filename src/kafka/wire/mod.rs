//! Message formats on the topics: the reference platform's JSON field names, one timestamp
//! convention (RFC 3339 UTC strings, `Z` suffix, key time = trade time for ticks and bar
//! start for bars and analytics), every message keyed by its symbol.
//!
//! One file per message family: [`tick`] (the raw topic), [`bar`] (bars built, forming,
//! provided), [`history`] (what backfill publishes: bars and coverage markers), [`analytics`]
//! (indicators per bar and per trade), [`dead_letter`] (refused messages).

mod analytics;
mod bar;
mod dead_letter;
mod history;
mod tick;

pub use analytics::{
    encode_analytics, encode_analytics_into, encode_realtime, encode_realtime_into,
};
pub use bar::{AGGREGATOR, BarMessage, BarStatus, encode_bar, encode_history_bar};
pub use dead_letter::{DeadLetter, MAX_LETTER_PAYLOAD, Origin};
pub use history::{
    COVERAGE_EVENT, CoverageMessage, HistoryMessage, decode_history, encode_coverage,
};
pub use tick::{RawTickOut, encode_raw_tick, parse_raw_tick};

use crate::domain::tick::TickError;
use crate::domain::time::TimeError;

/// Why a raw message is not a tick; each becomes a dead-letter reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("not a JSON tick object: {0}")]
    NotJson(String),
    #[error("missing field {0:?}")]
    MissingField(&'static str),
    #[error("bad symbol: {0}")]
    Symbol(#[from] crate::domain::symbol::SymbolError),
    #[error("bad timestamp: {0}")]
    Timestamp(#[from] TimeError),
    #[error("bad tick: {0}")]
    Tick(#[from] TickError),
}

impl WireError {
    /// A short, fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotJson(_) => "not_json",
            Self::MissingField(_) => "missing_field",
            Self::Symbol(_) => "bad_symbol",
            Self::Timestamp(_) => "bad_timestamp",
            Self::Tick(_) => "bad_tick",
        }
    }
}
