//! The domain layer: pure types and maths. No I/O, no Kafka, SQL, HTTP or actors, so
//! everything here is deterministic and tested without infrastructure.
//!
//! - [`Symbol`], [`Tick`], [`Source`], [`Timestamp`]: validated inputs.
//! - [`Interval`], [`TradingCalendar`]: what a bar covers.
//! - [`Bar`], [`BarBuilder`]: trades into OHLCV bars in event time.
//! - [`indicators`]: TA-Lib-exact incremental bar indicators ([`BarIndicators`]).
//! - [`TickMetrics`]: per-trade realtime metrics.
//! - [`history`]: provider bars and backfill coverage; [`gaps`]: which bars are missing.

pub mod bar;
pub mod bar_builder;
pub mod calendar;
pub mod gaps;
pub mod history;
pub mod holidays;
pub mod indicators;
pub mod interval;
pub mod realtime_throttle;
pub mod symbol;
pub mod tick;
pub mod tick_metrics;
pub mod time;

pub use bar::{Bar, Ohlcv};
pub use bar_builder::{BarBuilder, BarBuilderConfig, BarBuilderStats, BarEvent, TickOutcome};
pub use calendar::{Session, TradingCalendar};
pub use history::{Coverage, HistoryBar};
pub use indicators::{BAR_INDICATOR_NAMES, BarIndicators, IndicatorValues, RevisableIndicators};
pub use interval::Interval;
pub use realtime_throttle::RealtimeThrottle;
pub use symbol::Symbol;
pub use tick::{Source, Tick, TickError};
pub use tick_metrics::{TICK_METRIC_NAMES, TickMetricValues, TickMetrics};
pub use time::{Timestamp, parse_timestamp};
