//! `IndicatorActor`: the bar indicators of one (symbol, interval).
//!
//! Receives bars from its `BarBuilderActor` the first time they close, answers with their
//! analytics. Revisions update the stored bar but not the indicators: indicators are a
//! function of the bar sequence as first closed (documented in the README).

use crate::actors::messages::{ClosedBars, IndicatorState, StageError, guard};
use crate::domain::{BarIndicators, Interval, Symbol};
use crate::output::AnalyticsRecord;
use actix::prelude::*;

/// Owner of one [`BarIndicators`].
pub struct IndicatorActor {
    symbol: Symbol,
    interval: Interval,
    indicators: BarIndicators,
}

impl IndicatorActor {
    /// An actor continuing from `indicators` (fresh or restored from a checkpoint).
    pub fn new(symbol: Symbol, interval: Interval, indicators: BarIndicators) -> Self {
        Self {
            symbol,
            interval,
            indicators,
        }
    }
}

impl Actor for IndicatorActor {
    type Context = Context<Self>;
}

impl Handler<ClosedBars> for IndicatorActor {
    type Result = Result<Vec<AnalyticsRecord>, StageError>;

    /// Feeds the bars in order and returns one analytics record per bar.
    fn handle(&mut self, msg: ClosedBars, _: &mut Self::Context) -> Self::Result {
        guard("indicators", || {
            msg.0
                .iter()
                .map(|bar| AnalyticsRecord {
                    symbol: self.symbol,
                    interval: self.interval,
                    start: bar.start,
                    end: bar.end,
                    price: bar.close,
                    values: *self.indicators.update_bar(bar),
                })
                .collect()
        })
    }
}

impl Handler<IndicatorState> for IndicatorActor {
    type Result = MessageResult<IndicatorState>;

    /// A copy of the state, for the symbol's checkpoint.
    fn handle(&mut self, _: IndicatorState, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.indicators.clone())
    }
}
