//! `BarBuilderActor`: the bars of one (symbol, interval).
//!
//! Receives its symbol's ticks from the `SymbolSupervisor`, and clock advances when none
//! come; sends bars that close for the first time to its `IndicatorActor`; answers with the
//! bar events and their analytics, which the supervisor hands to the subscribers.

use crate::actors::indicator::IndicatorActor;
use crate::actors::messages::{
    AdvanceClock, BarOutput, BarTicks, BuilderState, ClosedBars, StageError, guard,
};
use crate::domain::{BarBuilder, BarEvent, TickOutcome};
use crate::metrics::Metrics;
use crate::output::BarRecord;
use actix::prelude::*;

/// How often the open bar is shown to WebSocket clients.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Owner of one [`BarBuilder`].
pub struct BarBuilderActor {
    /// When the open bar was last shown.
    progress_shown: Option<std::time::Instant>,
    builder: BarBuilder,
    indicators: Addr<IndicatorActor>,
    metrics: Metrics,
    /// Reused between messages so a steady stream allocates nothing here.
    events: Vec<BarEvent>,
}

impl BarBuilderActor {
    /// An actor continuing from `builder` (fresh or restored), feeding `indicators`.
    pub fn new(builder: BarBuilder, indicators: Addr<IndicatorActor>, metrics: Metrics) -> Self {
        Self {
            progress_shown: None,
            builder,
            indicators,
            metrics,
            events: Vec::with_capacity(8),
        }
    }

    /// Turns the collected events into records, and asks for the analytics of new bars.
    /// Answers at once (no boxed future) when no bar closed, as in most rounds.
    fn finish(&mut self) -> ActorResponse<Self, Result<BarOutput, StageError>> {
        let interval = self.builder.interval().as_str();
        let mut out = BarOutput::default();
        if self
            .progress_shown
            .is_none_or(|t| t.elapsed() >= PROGRESS_EVERY)
            && let Some(bar) = self.builder.open_bars().last()
        {
            out.in_progress = Some(*bar);
            self.progress_shown = Some(std::time::Instant::now());
        }
        let mut closed = Vec::new();
        for e in self.events.drain(..) {
            let kind = match e {
                BarEvent::Closed(b) => {
                    closed.push(b);
                    "closed"
                }
                BarEvent::Revised(_) => "revised",
            };
            self.metrics
                .bars_emitted
                .with_label_values(&[interval, kind])
                .inc();
            out.bars.push(BarRecord { bar: *e.bar() });
        }
        if closed.is_empty() {
            return ActorResponse::reply(Ok(out));
        }
        let indicators = self.indicators.clone();
        ActorResponse::r#async(
            async move {
                out.analytics = indicators.send(ClosedBars(closed)).await??;
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
        let applied = guard("bar builder", || {
            #[cfg(feature = "fault-injection")]
            if let Some(r) = msg.0.first() {
                crate::fault::maybe_panic(r.tick.symbol());
            }
            for r in msg.0.iter() {
                #[cfg(feature = "fault-injection")]
                crate::fault::check_poison(&r.tick);
                match builder.on_tick(&r.tick, events) {
                    TickOutcome::LateDropped => metrics.late_ticks_dropped.inc(),
                    TickOutcome::OutsideSession => metrics.ticks_outside_session.inc(),
                    TickOutcome::Applied | TickOutcome::Revised => {}
                }
            }
        });
        if let Err(e) = applied {
            return ActorResponse::reply(Err(e));
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
