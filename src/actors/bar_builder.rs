//! `BarBuilderActor`: the bars of one (symbol, interval).
//!
//! Receives its symbol's ticks from the `SymbolSupervisor`, and clock advances when none
//! come; hands every bar that closes or is revised to its `IndicatorActor` (in order), and
//! about once a second the bars still open, for their forming values; answers with the bar
//! events, their analytics and the forming bar, which the supervisor hands to the outputs.

use crate::actors::indicator::IndicatorActor;
use crate::actors::messages::{
    AdvanceClock, BarOutput, BarTicks, BuilderState, IndicatorWork, StageError, guard,
};
use crate::domain::{BarBuilder, BarEvent, TickOutcome};
use crate::log_throttle::LogThrottle;
use crate::metrics::Metrics;
use crate::output::BarRecord;
use actix::prelude::*;
use std::time::{Duration, Instant};

/// How often the open bar is published with its forming values.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// At most one log line per this period about trades too late for their bar (they are
/// counted one by one in `late_ticks_dropped_total`; the log says which symbol).
const LATE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Owner of one [`BarBuilder`].
pub struct BarBuilderActor {
    builder: BarBuilder,
    indicators: Addr<IndicatorActor>,
    metrics: Metrics,
    /// When the open bar was last published.
    progress_shown: Option<Instant>,
    /// Reused between messages so a steady stream allocates nothing here.
    events: Vec<BarEvent>,
    /// Trades too late for their bar, logged at most once per [`LATE_LOG_EVERY`].
    late_log: LogThrottle,
}

impl BarBuilderActor {
    /// An actor continuing from `builder` (fresh or restored), feeding `indicators`.
    pub fn new(builder: BarBuilder, indicators: Addr<IndicatorActor>, metrics: Metrics) -> Self {
        Self {
            builder,
            indicators,
            metrics,
            progress_shown: None,
            events: Vec::with_capacity(8),
            late_log: LogThrottle::new(LATE_LOG_EVERY),
        }
    }

    /// Turns the collected events into records and asks for their analytics (and the open
    /// bar's forming values when due). Answers at once, without a boxed future, when no bar
    /// closed and no progress is due, as in most rounds.
    fn finish(&mut self) -> ActorResponse<Self, Result<BarOutput, StageError>> {
        let interval = self.builder.interval().as_str();
        let mut out = BarOutput::default();
        let progress_due = self
            .progress_shown
            .is_none_or(|t| t.elapsed() >= PROGRESS_EVERY)
            && self.builder.open_bars().next().is_some();
        let mut bars = Vec::new();
        for e in self.events.drain(..) {
            let kind = match e {
                BarEvent::Closed(_) => "closed",
                BarEvent::Revised(_) => "revised",
            };
            self.metrics
                .bars_emitted
                .with_label_values(&[interval, kind])
                .inc();
            out.bars.push(BarRecord { bar: *e.bar() });
            bars.push(*e.bar());
        }
        if bars.is_empty() && !progress_due {
            return ActorResponse::reply(Ok(out));
        }
        let open = if progress_due {
            self.progress_shown = Some(Instant::now());
            self.builder.open_bars().copied().collect()
        } else {
            Vec::new()
        };
        let indicators = self.indicators.clone();
        ActorResponse::r#async(
            async move {
                let work = indicators.send(IndicatorWork { bars, open }).await??;
                out.analytics = work.analytics;
                out.forming = work.forming;
                Ok(out)
            }
            .into_actor(self),
        )
    }
}

impl Actor for BarBuilderActor {
    type Context = Context<Self>;
}

impl Handler<BarTicks> for BarBuilderActor {
    type Result = ActorResponse<Self, Result<BarOutput, StageError>>;

    /// Applies the ticks in order.
    fn handle(&mut self, msg: BarTicks, _: &mut Self::Context) -> Self::Result {
        let (builder, events, metrics) = (&mut self.builder, &mut self.events, &self.metrics);
        let mut late = 0;
        let applied = guard("bar builder", || {
            #[cfg(feature = "fault-injection")]
            if let Some(r) = msg.0.first() {
                crate::fault::maybe_panic(r.tick.symbol());
            }
            for r in msg.0.iter() {
                #[cfg(feature = "fault-injection")]
                crate::fault::check_poison(&r.tick);
                match builder.on_trade(&r.tick, Some(r.seq.as_i64()), r.clock_limit, events) {
                    TickOutcome::LateDropped => {
                        metrics.late_ticks_dropped.inc();
                        late += 1;
                    }
                    TickOutcome::OutsideSession => metrics.ticks_outside_session.inc(),
                    TickOutcome::Applied | TickOutcome::Revised => {}
                }
            }
        });
        if let Err(e) = applied {
            return ActorResponse::reply(Err(e));
        }
        if let (Some(late), Some(r)) = (self.late_log.record(late, Instant::now()), msg.0.first()) {
            tracing::warn!(
                symbol = %r.tick.symbol(),
                interval = self.builder.interval().as_str(),
                late,
                "trades arrived after their bar's allowed lateness: stored as trades, left out of the bar (late_ticks_dropped_total); producers out of time order? see docs/delivery.md"
            );
        }
        self.finish()
    }
}

impl Handler<AdvanceClock> for BarBuilderActor {
    type Result = ActorResponse<Self, Result<BarOutput, StageError>>;

    /// Closes the bars the new watermark reaches.
    fn handle(&mut self, msg: AdvanceClock, _: &mut Self::Context) -> Self::Result {
        let (builder, events) = (&mut self.builder, &mut self.events);
        if let Err(e) = guard("bar builder clock", || builder.advance_to(msg.0, events)) {
            return ActorResponse::reply(Err(e));
        }
        if self.events.is_empty() {
            // A clock that closed nothing publishes no progress either (nothing changed).
            return ActorResponse::reply(Ok(BarOutput::default()));
        }
        self.finish()
    }
}

impl Handler<BuilderState> for BarBuilderActor {
    type Result = MessageResult<BuilderState>;

    /// A copy of the state, for the symbol's checkpoint.
    fn handle(&mut self, _: BuilderState, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.builder.clone())
    }
}
