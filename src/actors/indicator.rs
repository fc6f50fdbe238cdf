//! `IndicatorActor`: the bar indicators of one (symbol, interval).
//!
//! Receives from its `BarBuilderActor` every bar that closes or is revised, in order, and
//! answers with the analytics of every bar whose values that gives or changes (a revision
//! recomputes its bar and the bars after it: `RevisableIndicators`), so stored analytics
//! always match the stored bars; and, about once a second, the forming values of the open
//! bar, computed without committing any state.

use crate::actors::messages::{IndicatorOutput, IndicatorState, IndicatorWork, StageError, guard};
use crate::domain::{Interval, RevisableIndicators, Symbol};
use crate::metrics::Metrics;
use crate::output::{AnalyticsRecord, FormingBar};
use actix::prelude::*;

/// Owner of one [`RevisableIndicators`].
pub struct IndicatorActor {
    symbol: Symbol,
    interval: Interval,
    indicators: RevisableIndicators,
    metrics: Metrics,
}

impl IndicatorActor {
    /// An actor continuing from `indicators` (fresh or restored from a checkpoint).
    pub fn new(
        symbol: Symbol,
        interval: Interval,
        indicators: RevisableIndicators,
        metrics: Metrics,
    ) -> Self {
        Self {
            symbol,
            interval,
            indicators,
            metrics,
        }
    }
}

impl Actor for IndicatorActor {
    type Context = Context<Self>;
}

impl Handler<IndicatorWork> for IndicatorActor {
    type Result = Result<IndicatorOutput, StageError>;

    /// Feeds the bars in order; gives one analytics record per bar whose values changed,
    /// and the forming values of the last open bar.
    fn handle(&mut self, msg: IndicatorWork, _: &mut Self::Context) -> Self::Result {
        let (symbol, interval, metrics) = (self.symbol, self.interval, &self.metrics);
        let indicators = &mut self.indicators;
        guard("indicators", || {
            let mut changed = Vec::with_capacity(msg.bars.len());
            for bar in &msg.bars {
                if let Err(e) = indicators.on_bar(bar, &mut changed) {
                    // Cannot happen with the builder's lateness (the indicators keep every
                    // bar it can still revise); counted and logged if it ever does.
                    metrics.analytics_not_revised.inc();
                    tracing::error!(%symbol, interval = interval.as_str(), error = %format!("{e:#}"), "revision not reflected in the analytics");
                }
            }
            let analytics = changed
                .into_iter()
                .map(|(bar, values)| AnalyticsRecord {
                    symbol,
                    interval,
                    start: bar.start,
                    end: bar.end,
                    price: bar.close,
                    values,
                    trades: bar.trades,
                })
                .collect();
            let forming = msg.open.last().map(|bar| FormingBar {
                bar: *bar,
                values: indicators.peek(&msg.open),
            });
            IndicatorOutput { analytics, forming }
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
