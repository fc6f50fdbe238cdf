//! `SymbolSupervisor`: everything one symbol needs, started on its first tick.
//!
//! Owns a `BarBuilderActor` and an `IndicatorActor` per configured interval, computes the
//! realtime tick metrics itself (publishing them through a [`RealtimeThrottle`]), and
//! hands every output to the subscribers ([`Outputs`]).
//! On start it restores the symbol's last checkpoint (or starts fresh) before it looks at a
//! tick, and skips ticks it has already accounted for, so redelivery changes nothing.
//! Runs under an actix `Supervisor`: when a stage panics it stops, is restarted, and
//! restores its last durable state; the consumer then replays the partition.

use crate::actors::bar_builder::BarBuilderActor;
use crate::actors::indicator::IndicatorActor;
use crate::actors::messages::{
    AdvanceClock, BarOutput, BarTicks, BuilderState, IndicatorState, Outputs, StageError,
    TickBatch, guard,
};
use crate::domain::{
    BarBuilder, BarBuilderConfig, BarIndicators, Interval, RealtimeThrottle, Symbol, TickMetrics,
    Timestamp, TradingCalendar,
};
use crate::metrics::Metrics;
use crate::output::{Checkpoint, OutputBatch, RealtimeRecord, Seq};
use crate::store::Store;
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a quiet symbol's bars are checked against the clock.
const CLOCK_EVERY: Duration = Duration::from_secs(1);

/// How the pipeline treats symbols: intervals, calendars, bar timing.
#[derive(Debug, Clone)]
pub struct SymbolSettings {
    /// Bar intervals built for every symbol.
    pub intervals: Vec<Interval>,
    /// Calendar of symbols without an override.
    pub default_calendar: TradingCalendar,
    /// Per-symbol calendars.
    pub calendars: Vec<(Symbol, TradingCalendar)>,
    /// Grace and allowed lateness.
    pub bars: BarBuilderConfig,
    /// Realtime metrics are published at most once per this much event time per symbol
    /// ([`RealtimeThrottle`]; zero: every trade).
    pub realtime_every: Duration,
}

impl SymbolSettings {
    /// The calendar of `symbol`.
    pub fn calendar(&self, symbol: Symbol) -> TradingCalendar {
        self.calendars
            .iter()
            .find(|(s, _)| *s == symbol)
            .map_or(self.default_calendar, |(_, c)| *c)
    }

    /// A symbol's realtime throttle, continuing from `last` (restored from a checkpoint).
    pub fn realtime_throttle(&self, last: Option<Timestamp>) -> RealtimeThrottle {
        let every = i64::try_from(self.realtime_every.as_micros()).unwrap_or(i64::MAX);
        RealtimeThrottle::new(every, last)
    }
}

/// The whole state of a symbol, as checkpointed.
#[derive(serde::Serialize, serde::Deserialize)]
struct SymbolState {
    /// Last tick accounted for.
    seq: Seq,
    metrics: TickMetrics,
    /// Event time of the last published realtime snapshot.
    realtime_last: Option<Timestamp>,
    builders: Vec<BarBuilder>,
    indicators: Vec<BarIndicators>,
}

/// Checkpoints the symbol's state: answers once the checkpoint is handed to the writer.
#[derive(Message)]
#[rtype(result = "Result<(), StageError>")]
pub struct TakeCheckpoint;

/// The consumer no longer owns the symbol (its partition moved to another instance): the
/// supervisor finishes what is in its mailbox, then falls silent — its idle clock must not
/// close bars with what it saw while the new owner builds them from every trade. It stops
/// once nothing refers to it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

/// Internal: the clock fired.
#[derive(Message)]
#[rtype(result = "()")]
struct ClockTick;

/// One stage pair per interval.
struct Stage {
    builder: Addr<BarBuilderActor>,
    indicators: Addr<IndicatorActor>,
}

/// The per-symbol supervisor.
pub struct SymbolSupervisor {
    symbol: Symbol,
    settings: Arc<SymbolSettings>,
    store: Store,
    outputs: Outputs,
    metrics: Metrics,
    stages: Vec<Stage>,
    tick_metrics: TickMetrics,
    realtime_throttle: RealtimeThrottle,
    /// Last tick accounted for (restored from the checkpoint).
    last_seq: Option<Seq>,
    /// Whether anything changed since the last checkpoint.
    dirty: bool,
    /// Event time of the latest tick and when it arrived, for the idle clock.
    last_event: Option<(Timestamp, Instant)>,
    /// The idle clock, cancelled on [`Retire`].
    clock: Option<SpawnHandle>,
    /// Retired: no clock, also after a restart.
    retired: bool,
    /// Restarted after its clock failed, which no caller saw: the next tick batch or
    /// checkpoint request is refused with [`StageError::Restarted`] so that the consumer
    /// replays the partition (survives the restart).
    restarted_unasked: bool,
    /// Set by a restart: the writer is flushed before the checkpoint is read again, so a
    /// checkpoint handed over just before the failure is not missed (survives the restart).
    restarted: bool,
}

impl SymbolSupervisor {
    /// A supervisor for `symbol`; it restores its state when started.
    pub fn new(
        symbol: Symbol,
        settings: Arc<SymbolSettings>,
        store: Store,
        outputs: Outputs,
        metrics: Metrics,
    ) -> Self {
        let realtime_throttle = settings.realtime_throttle(None);
        Self {
            symbol,
            settings,
            store,
            outputs,
            metrics,
            stages: Vec::new(),
            tick_metrics: TickMetrics::new(),
            realtime_throttle,
            last_seq: None,
            dirty: false,
            last_event: None,
            clock: None,
            retired: false,
            restarted_unasked: false,
            restarted: false,
        }
    }

    /// Starts the children from `state`, or fresh.
    fn start_stages(&mut self, state: Option<SymbolState>) {
        let calendar = self.settings.calendar(self.symbol);
        let (builders, indicators) = match state {
            Some(s)
                if s.builders.len() == self.settings.intervals.len()
                    && s.builders
                        .iter()
                        .zip(&self.settings.intervals)
                        .all(|(b, i)| b.interval() == *i) =>
            {
                self.last_seq = Some(s.seq);
                self.tick_metrics = s.metrics;
                self.realtime_throttle = self.settings.realtime_throttle(s.realtime_last);
                (s.builders, s.indicators)
            }
            Some(_) => {
                tracing::warn!(symbol = %self.symbol, "checkpoint is for other intervals; starting fresh");
                self.fresh_state(calendar)
            }
            None => self.fresh_state(calendar),
        };
        self.stages = builders
            .into_iter()
            .zip(indicators)
            .map(|(builder, ind)| {
                let indicators = IndicatorActor::new(self.symbol, builder.interval(), ind).start();
                let builder =
                    BarBuilderActor::new(builder, indicators.clone(), self.metrics.clone()).start();
                Stage {
                    builder,
                    indicators,
                }
            })
            .collect();
    }

    fn fresh_state(&mut self, calendar: TradingCalendar) -> (Vec<BarBuilder>, Vec<BarIndicators>) {
        self.last_seq = None;
        self.tick_metrics = TickMetrics::new();
        self.realtime_throttle = self.settings.realtime_throttle(None);
        let intervals = &self.settings.intervals;
        (
            intervals
                .iter()
                .map(|i| BarBuilder::new(*i, calendar, self.settings.bars))
                .collect(),
            intervals
                .iter()
                .map(|i| BarIndicators::new(*i, calendar))
                .collect(),
        )
    }

    /// Collects the children's answers into `batch` and hands it to the subscribers.
    fn deliver<F>(
        &self,
        mut batch: OutputBatch,
        pending: Vec<F>,
    ) -> impl Future<Output = Result<(), StageError>> + 'static
    where
        F: Future<Output = Result<Result<BarOutput, StageError>, MailboxError>> + 'static,
    {
        let outputs = self.outputs.clone();
        async move {
            for r in futures_util::future::join_all(pending).await {
                let out = r??;
                batch.bars.extend(out.bars);
                batch.analytics.extend(out.analytics);
                batch.in_progress.extend(out.in_progress);
            }
            outputs.send(Arc::new(batch)).await
        }
    }
}

impl Actor for SymbolSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.metrics.symbols_active.inc();
        let (store, symbol) = (self.store.clone(), self.symbol);
        let flush_first = std::mem::take(&mut self.restarted).then(|| self.outputs.db.clone());
        // `wait`: no tick is looked at before the state is restored.
        ctx.wait(
            {
                let metrics = self.metrics.clone();
                async move {
                    if let Some(db) = flush_first {
                        // A checkpoint handed to the writer before the failure must be the
                        // one read back.
                        if let Ok(Err(e)) = db.send(crate::actors::messages::Flush).await {
                            tracing::warn!(%symbol, error = %e, "flush before restoring failed");
                        }
                    }
                    // Without its checkpoint the symbol cannot go on: wait for the store.
                    let mut backoff = Duration::from_millis(100);
                    loop {
                        match store.load_checkpoint(symbol).await {
                            Ok(cp) => break Ok::<_, anyhow::Error>(cp),
                            Err(e) => {
                                metrics.persistence_errors.inc();
                                tracing::warn!(%symbol, error = %format!("{e:#}"), retry_in = ?backoff, "cannot load checkpoint");
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(Duration::from_secs(5));
                            }
                        }
                    }
                }
            }
                .into_actor(self)
                .map(|loaded, act, ctx| {
                    let state = match loaded {
                        Ok(Some(cp)) => match bincode::serde::decode_from_slice::<SymbolState, _>(&cp.state, bincode::config::standard()) {
                            Ok((s, _)) => Some(s),
                            Err(e) => {
                                tracing::error!(symbol = %act.symbol, error = %e, "unreadable checkpoint; starting fresh");
                                None
                            }
                        },
                        Ok(None) => None,
                        Err(e) => {
                            // Without the checkpoint the state would be wrong: stop and let
                            // the supervisor retry.
                            tracing::error!(symbol = %act.symbol, error = %e, "cannot load checkpoint");
                            ctx.stop();
                            return;
                        }
                    };
                    act.start_stages(state);
                }),
        );
        if !self.retired {
            self.clock = Some(ctx.run_interval(CLOCK_EVERY, |act, ctx| {
                if act.last_event.is_some() {
                    // try_send: a busy symbol does not need the clock, and the mailbox stays
                    // bounded.
                    let _ = ctx.address().try_send(ClockTick);
                }
            }));
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.metrics.symbols_active.dec();
    }
}

impl Supervised for SymbolSupervisor {
    /// Forgets the in-memory state; `started` restores the last checkpoint again.
    fn restarting(&mut self, _: &mut Self::Context) {
        self.metrics.symbol_restarts.inc();
        tracing::warn!(symbol = %self.symbol, "restarting from the last checkpoint");
        self.stages.clear();
        self.tick_metrics = TickMetrics::new();
        self.realtime_throttle = self.settings.realtime_throttle(None);
        self.last_seq = None;
        self.dirty = false;
        self.last_event = None;
        self.clock = None;
        self.restarted = true;
    }
}

impl Handler<Retire> for SymbolSupervisor {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Self::Context) {
        self.retired = true;
        if let Some(clock) = self.clock.take() {
            ctx.cancel_future(clock);
        }
    }
}

impl Handler<TickBatch> for SymbolSupervisor {
    type Result = AtomicResponse<Self, Result<(), StageError>>;

    /// Processes the ticks not yet accounted for: metrics here, bars in the children.
    fn handle(&mut self, msg: TickBatch, ctx: &mut Self::Context) -> Self::Result {
        if std::mem::take(&mut self.restarted_unasked) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(StageError::Restarted))));
        }
        let last = self.last_seq;
        let fresh: Arc<[crate::output::TickRecord]> =
            match msg.0.iter().position(|r| last.is_none_or(|s| r.seq > s)) {
                Some(0) => msg.0,
                Some(i) => msg.0[i..].into(),
                None => {
                    // All accounted for already (a replay): the idle clock still starts.
                    if let Some(r) = msg.0.last() {
                        self.last_event.get_or_insert((r.tick.ts(), Instant::now()));
                    }
                    return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
                }
            };
        let (symbol, tick_metrics, throttle) = (
            self.symbol,
            &mut self.tick_metrics,
            &mut self.realtime_throttle,
        );
        let realtime = guard("tick metrics", || {
            fresh
                .iter()
                .filter_map(|r| {
                    // Every trade moves the metrics; only some are published.
                    let values = *tick_metrics.update(&r.tick);
                    throttle.admit(r.tick.ts()).then_some(RealtimeRecord {
                        symbol,
                        ts: r.tick.ts(),
                        seq: r.seq,
                        price: r.tick.price(),
                        values,
                    })
                })
                .collect::<Vec<_>>()
        });
        let realtime = match realtime {
            Ok(r) => r,
            Err(e) => {
                ctx.stop();
                return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
            }
        };
        // unwrap: `fresh` is not empty (position found an element).
        let newest = fresh.last().unwrap();
        self.last_seq = Some(newest.seq);
        self.last_event = Some((newest.tick.ts(), Instant::now()));
        self.dirty = true;
        self.metrics.ticks_consumed.inc_by(fresh.len() as u64);
        let batch = OutputBatch {
            ticks: fresh.to_vec(),
            realtime,
            ..OutputBatch::default()
        };
        let pending: Vec<_> = self
            .stages
            .iter()
            .map(|s| s.builder.send(BarTicks(fresh.clone())))
            .collect();
        let work = self.deliver(batch, pending);
        AtomicResponse::new(Box::pin(work.into_actor(self).map(|res, _, ctx| {
            if res.is_err() {
                ctx.stop();
            }
            res
        })))
    }
}

impl Handler<ClockTick> for SymbolSupervisor {
    type Result = AtomicResponse<Self, ()>;

    /// When no tick came for longer than the grace period, moves event time on by the wall
    /// time elapsed, so the last bars of a quiet spell close.
    fn handle(&mut self, _: ClockTick, _: &mut Self::Context) -> Self::Result {
        let Some((event, at)) = self.last_event.filter(|_| !self.retired) else {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        };
        let idle = at.elapsed();
        if (idle.as_micros() as i64) < self.settings.bars.grace_micros {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        let now = event.add_micros(idle.as_micros() as i64);
        self.dirty = true;
        let pending: Vec<_> = self
            .stages
            .iter()
            .map(|s| s.builder.send(AdvanceClock(now)))
            .collect();
        let work = self.deliver(OutputBatch::default(), pending);
        #[cfg(feature = "fault-injection")]
        let work = {
            let fault = crate::fault::take_clock_fault(self.symbol);
            async move {
                let res = work.await;
                if fault {
                    return Err(StageError::Panicked("injected fault: clock".into()));
                }
                res
            }
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(|res, act, ctx| {
            if let Err(e) = res {
                tracing::error!(symbol = %act.symbol, error = %e, "clock advance failed");
                act.restarted_unasked = true;
                ctx.stop();
            }
        })))
    }
}

impl Handler<TakeCheckpoint> for SymbolSupervisor {
    type Result = AtomicResponse<Self, Result<(), StageError>>;

    /// Gathers the children's state and hands a checkpoint to the writer, after every
    /// output it accounts for.
    fn handle(&mut self, _: TakeCheckpoint, _: &mut Self::Context) -> Self::Result {
        if std::mem::take(&mut self.restarted_unasked) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(StageError::Restarted))));
        }
        let Some(seq) = self.last_seq.filter(|_| self.dirty) else {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        };
        self.dirty = false;
        let builders: Vec<_> = self
            .stages
            .iter()
            .map(|s| s.builder.send(BuilderState))
            .collect();
        let indicators: Vec<_> = self
            .stages
            .iter()
            .map(|s| s.indicators.send(IndicatorState))
            .collect();
        let (symbol, metrics, realtime_last, db) = (
            self.symbol,
            self.tick_metrics.clone(),
            self.realtime_throttle.last(),
            self.outputs.db.clone(),
        );
        AtomicResponse::new(Box::pin(
            async move {
                let builders = futures_util::future::try_join_all(builders).await?;
                let indicators = futures_util::future::try_join_all(indicators).await?;
                let state = SymbolState {
                    seq,
                    metrics,
                    realtime_last,
                    builders,
                    indicators,
                };
                let bytes = bincode::serde::encode_to_vec(&state, bincode::config::standard())
                    .map_err(|e| StageError::Panicked(format!("checkpoint encoding: {e}")))?;
                let batch = OutputBatch {
                    checkpoints: vec![Checkpoint {
                        symbol,
                        seq,
                        state: bytes,
                    }],
                    ..OutputBatch::default()
                };
                db.send(crate::actors::messages::Persist(Arc::new(batch)))
                    .await
                    .map_err(|e| StageError::Subscriber(e.to_string()))
            }
            .into_actor(self)
            .map(|res, act, _| {
                if res.is_err() {
                    // Not checkpointed: the next commit must ask again.
                    act.dirty = true;
                }
                res
            }),
        ))
    }
}
