//! `SymbolSupervisor`: everything one symbol needs, started on its first tick or when this
//! instance is assigned the symbol's home partition.
//!
//! Owns a `BarBuilderActor` and an `IndicatorActor` per configured interval, computes the
//! realtime tick metrics itself (publishing them through a `RealtimeThrottle`), and hands
//! every output to the [`Outputs`]. Before it looks at a tick it restores the symbol's last
//! checkpoint (`pipeline::checkpoint`); it skips trades it has already applied
//! (`pipeline::applied`), so redelivery changes nothing. A clock closes a quiet symbol's bars
//! on time (`pipeline::clock`). Runs under an actix `Supervisor`: when a stage panics it
//! stops, restarts, and restores its last durable state, and the consumer replays its
//! partitions; its phases are a [`Lifecycle`].

use crate::actors::bar_builder::BarBuilderActor;
use crate::actors::indicator::IndicatorActor;
use crate::actors::messages::{
    AdvanceClock, BarOutput, BarTicks, BuilderState, IndicatorState, Persist, StageError,
    TickBatch, guard,
};
use crate::actors::outputs::Outputs;
use crate::domain::{
    BarBuilder, RealtimeThrottle, RevisableIndicators, Symbol, TickMetrics, Timestamp,
};
use crate::metrics::Metrics;
use crate::output::{OutputBatch, RealtimeRecord, TickRecord};
use crate::pipeline::checkpoint::{self, LastEvent, SymbolState};
use crate::pipeline::{Applied, Lifecycle, PipelineView, SymbolSettings, clock};
use crate::store::Store;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;

mod restore;

/// How often a quiet symbol's bars are checked against the clock.
const CLOCK_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints the symbol's state: answers once the checkpoint is handed to the writer.
#[derive(Message)]
#[rtype(result = "Result<(), StageError>")]
pub struct TakeCheckpoint;

/// Sent to itself after restoring a checkpoint of another broker: checkpoints at once, on
/// this broker, without touching the consumer's protocol (a pending refusal stays pending).
#[derive(Message)]
#[rtype(result = "()")]
struct CheckpointRebased;

/// The consumer no longer owns the symbol (its partition moved to another instance): the
/// supervisor finishes what is in its mailbox, then falls silent — its idle clock must not
/// close bars with what it saw while the new owner builds them from every trade. It stops
/// once nothing refers to it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

/// The consumer could not make everything since the last commit durable and will replay
/// it: the supervisor goes back to its checkpoint (a restart, no refusal owed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reset;

/// Internal: the clock fired.
#[derive(Message)]
#[rtype(result = "()")]
struct ClockTick;

/// One stage pair per interval.
struct Stage {
    builder: Addr<BarBuilderActor>,
    indicators: Addr<IndicatorActor>,
}

/// What a supervisor shares with the rest of the pipeline.
#[derive(Clone)]
pub struct SupervisorContext {
    pub settings: Arc<SymbolSettings>,
    pub store: Store,
    pub outputs: Outputs,
    pub metrics: Metrics,
    pub view: Arc<PipelineView>,
}

/// The per-symbol supervisor.
pub struct SymbolSupervisor {
    symbol: Symbol,
    cx: SupervisorContext,
    stages: Vec<Stage>,
    tick_metrics: TickMetrics,
    realtime_throttle: RealtimeThrottle,
    /// Trades accounted for, per origin partition (restored from the checkpoint).
    applied: Applied,
    /// Whether anything changed since the last checkpoint.
    dirty: bool,
    /// The latest trade's event time and when it arrived, for the idle clock.
    last_event: Option<LastEvent>,
    lifecycle: Lifecycle,
    /// The idle clock, cancelled on [`Retire`].
    clock: Option<SpawnHandle>,
    /// Holds the idle clock after the process did not run (see `pipeline::clock`).
    stall: clock::StallGuard,
}

fn now() -> Timestamp {
    Timestamp::from_datetime(&chrono::Utc::now())
}

impl SymbolSupervisor {
    /// A supervisor for `symbol`; it restores its state when started.
    pub fn new(symbol: Symbol, cx: SupervisorContext) -> Self {
        let realtime_throttle = cx.settings.realtime_throttle(None);
        Self {
            symbol,
            cx,
            stages: Vec::new(),
            tick_metrics: TickMetrics::new(),
            realtime_throttle,
            applied: Applied::new(),
            dirty: false,
            last_event: None,
            lifecycle: Lifecycle::new(),
            clock: None,
            stall: clock::StallGuard::default(),
        }
    }

    /// Continues from what the restore found: the state, a checkpoint on this broker if
    /// it was rebased, and the stored trades to apply again first.
    fn on_restored(&mut self, found: restore::Restored, ctx: &mut Context<Self>) {
        let restore::Restored {
            state,
            restored,
            recovered,
        } = found;
        let rebased = self.restore(state, restored);
        self.lifecycle = self.lifecycle.restored();
        if rebased {
            // Checkpoint the state on this broker before any trade of it is stored: a
            // second crash before this symbol's next commit would otherwise restore the
            // previous broker's checkpoint, and the trades stored under this broker's epoch
            // would never be read back. Queued behind the re-application below (`ctx.wait`
            // holds the mailbox).
            self.dirty = true;
            ctx.notify(CheckpointRebased);
        }
        if recovered.is_empty() {
            return;
        }
        tracing::info!(symbol = %self.symbol, trades = recovered.len(), "re-applying stored trades the checkpoint of the previous broker did not cover");
        match self.apply(recovered.into(), false) {
            Ok(work) => ctx.wait(work.into_actor(self).map(|res, act, ctx| {
                if let Err(e) = res {
                    tracing::error!(symbol = %act.symbol, error = %format!("{e:#}"), "re-applying stored trades failed");
                    ctx.stop();
                }
            })),
            Err(e) => {
                tracing::error!(symbol = %self.symbol, error = %format!("{e:#}"), "re-applying stored trades failed");
                ctx.stop();
            }
        }
    }

    /// Continues from `state`: a checkpoint (`restored`: its offsets are checked against
    /// this broker first) or a fresh state. Returns whether the checkpoint was rebased:
    /// written against another broker, or with offsets past a replaced log. The stored
    /// checkpoint must then be replaced at once: a second crash would restore the previous
    /// broker's one again, and its dropped offsets would fence every later checkpoint
    /// (`Checkpoint::may_replace`).
    fn restore(&mut self, mut state: SymbolState, restored: bool) -> bool {
        let mut rebased = false;
        let (symbol, metrics, view) = (self.symbol, &self.cx.metrics, &self.cx.view);
        if restored {
            let other_broker = state.epoch != view.epoch();
            let notes = checkpoint::prepare_restore(&mut state, view.epoch(), |p| view.log_end(p));
            rebased = other_broker || !notes.ahead_of_log.is_empty();
            if notes.other_epoch {
                metrics
                    .checkpoint_offsets_dropped
                    .with_label_values(&["other_broker"])
                    .inc();
                tracing::info!(%symbol, "checkpoint written against another broker: state kept, reading the new broker from its beginning");
            }
            for (partition, applied, end) in &notes.ahead_of_log {
                metrics
                    .checkpoint_offsets_dropped
                    .with_label_values(&["ahead_of_log"])
                    .inc();
                tracing::error!(%symbol, partition, applied, end, "checkpoint offset past the end of its partition (the log was replaced): reading that partition from its beginning");
            }
        }
        self.applied = state.applied;
        self.tick_metrics = state.metrics;
        self.realtime_throttle = self.cx.settings.realtime_throttle(state.realtime_last);
        self.last_event = state.last_event;
        self.start_stages(state.builders, state.indicators);
        rebased
    }

    fn start_stages(&mut self, builders: Vec<BarBuilder>, indicators: Vec<RevisableIndicators>) {
        self.stages = builders
            .into_iter()
            .zip(indicators)
            .map(|(builder, ind)| {
                let indicators = IndicatorActor::new(
                    self.symbol,
                    builder.interval(),
                    ind,
                    self.cx.metrics.clone(),
                )
                .start();
                let builder =
                    BarBuilderActor::new(builder, indicators.clone(), self.cx.metrics.clone())
                        .start();
                Stage {
                    builder,
                    indicators,
                }
            })
            .collect();
    }

    /// Collects the children's answers into `batch` and hands it to the outputs.
    fn deliver<F>(
        &self,
        mut batch: OutputBatch,
        pending: Vec<F>,
    ) -> impl Future<Output = Result<(), StageError>> + 'static
    where
        F: Future<Output = Result<Result<BarOutput, StageError>, MailboxError>> + 'static,
    {
        let outputs = self.cx.outputs.clone();
        async move {
            for r in futures_util::future::join_all(pending).await {
                let out = r??;
                batch.bars.extend(out.bars);
                batch.analytics.extend(out.analytics);
                batch.forming.extend(out.forming);
            }
            outputs.send(Arc::new(batch)).await
        }
    }

    /// Applies `ticks` (new to this symbol): tick metrics here, bars in the children; the
    /// returned future hands the outputs over (with the trades themselves when
    /// `store_ticks`; trades read back from the store are not written again).
    ///
    /// # Errors
    /// When the tick metrics panic (the supervisor must then restart).
    fn apply(
        &mut self,
        ticks: Arc<[TickRecord]>,
        store_ticks: bool,
    ) -> Result<impl Future<Output = Result<(), StageError>> + 'static, StageError> {
        let (symbol, tick_metrics, throttle) = (
            self.symbol,
            &mut self.tick_metrics,
            &mut self.realtime_throttle,
        );
        let realtime = guard("tick metrics", || {
            ticks
                .iter()
                .filter_map(|r| {
                    // Every trade moves the metrics; only some are published.
                    let values = *tick_metrics.update(&r.tick);
                    throttle.admit(r.clock()).then_some(RealtimeRecord {
                        symbol,
                        ts: r.tick.ts(),
                        seq: r.seq,
                        price: r.tick.price(),
                        values,
                    })
                })
                .collect::<Vec<_>>()
        })?;
        if let Some(newest) = ticks.iter().map(TickRecord::clock).max() {
            let event = self.last_event.map_or(newest, |l| l.event.max(newest));
            self.last_event = Some(LastEvent {
                event,
                arrived: now(),
            });
        }
        self.dirty = true;
        let batch = OutputBatch {
            ticks: if store_ticks {
                ticks.to_vec()
            } else {
                Vec::new()
            },
            realtime,
            ..OutputBatch::default()
        };
        let pending: Vec<_> = self
            .stages
            .iter()
            .map(|s| s.builder.send(BarTicks(ticks.clone())))
            .collect();
        Ok(self.deliver(batch, pending))
    }

    /// The ticks of `batch` not applied yet, recorded as applied. Most batches are all new:
    /// they are then passed on without a copy.
    fn fresh(&mut self, batch: Arc<[TickRecord]>) -> Arc<[TickRecord]> {
        if batch.iter().all(|r| self.applied.is_new(r.seq))
            && batch.windows(2).all(|w| {
                w[0].seq.partition != w[1].seq.partition || w[0].seq.offset < w[1].seq.offset
            })
        {
            for r in batch.iter() {
                self.applied.record(r.seq);
            }
            return batch;
        }
        let mut fresh = Vec::with_capacity(batch.len());
        for r in batch.iter() {
            if self.applied.is_new(r.seq) {
                self.applied.record(r.seq);
                fresh.push(*r);
            }
        }
        fresh.into()
    }
}

impl Actor for SymbolSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.cx.metrics.symbols_active.inc();
        let restoring = restore::Restoring {
            symbol: self.symbol,
            cx: self.cx.clone(),
            flush_first: self.lifecycle.flush_first(),
        };
        // `wait`: no tick is looked at before the state is restored.
        ctx.wait(
            restoring
                .run()
                .into_actor(self)
                .map(|restored, act, ctx| act.on_restored(restored, ctx)),
        );
        if self.lifecycle.clock_allowed() {
            self.clock = Some(ctx.run_interval(CLOCK_EVERY, |act, ctx| {
                let running = act.stall.allows(std::time::Instant::now());
                if running && act.last_event.is_some() {
                    // try_send: a busy symbol does not need the clock, and the mailbox stays
                    // bounded.
                    let _ = ctx.address().try_send(ClockTick);
                }
            }));
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.cx.metrics.symbols_active.dec();
    }
}

impl Supervised for SymbolSupervisor {
    /// Forgets the in-memory state; `started` restores the last checkpoint again.
    fn restarting(&mut self, _: &mut Self::Context) {
        self.cx.metrics.symbol_restarts.inc();
        tracing::warn!(symbol = %self.symbol, "restarting from the last checkpoint");
        self.stages.clear();
        self.tick_metrics = TickMetrics::new();
        self.realtime_throttle = self.cx.settings.realtime_throttle(None);
        self.applied = Applied::new();
        self.dirty = false;
        self.last_event = None;
        self.clock = None;
        self.lifecycle = self.lifecycle.restarted();
    }
}

impl Handler<Retire> for SymbolSupervisor {
    type Result = ();

    /// Falls silent: no clock from now on, also after a restart.
    fn handle(&mut self, _: Retire, ctx: &mut Self::Context) {
        self.lifecycle = Lifecycle::Retired;
        if let Some(clock) = self.clock.take() {
            ctx.cancel_future(clock);
        }
    }
}

impl Handler<Reset> for SymbolSupervisor {
    type Result = ();

    /// Restarts from the last checkpoint.
    fn handle(&mut self, _: Reset, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<TickBatch> for SymbolSupervisor {
    type Result = AtomicResponse<Self, Result<(), StageError>>;

    /// Processes the ticks not yet applied: metrics here, bars in the children.
    fn handle(&mut self, msg: TickBatch, ctx: &mut Self::Context) -> Self::Result {
        if self.lifecycle.take_refusal() {
            return AtomicResponse::new(Box::pin(fut::ready(Err(StageError::Restarted))));
        }
        let Some(newest) = msg.0.iter().map(|r| r.tick.ts()).max() else {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        };
        let fresh = self.fresh(msg.0);
        if fresh.is_empty() {
            // All applied already (a replay): the idle clock still starts.
            self.last_event.get_or_insert(LastEvent {
                event: newest,
                arrived: now(),
            });
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        self.cx.metrics.ticks_consumed.inc_by(fresh.len() as u64);
        match self.apply(fresh, true) {
            Ok(work) => AtomicResponse::new(Box::pin(work.into_actor(self).map(|res, _, ctx| {
                if res.is_err() {
                    ctx.stop();
                }
                res
            }))),
            Err(e) => {
                ctx.stop();
                AtomicResponse::new(Box::pin(fut::ready(Err(e))))
            }
        }
    }
}

impl Handler<ClockTick> for SymbolSupervisor {
    type Result = AtomicResponse<Self, ()>;

    /// When no tick came for longer than the grace period, moves event time on by the wall
    /// time elapsed (never past what every partition read here has reached), so the last
    /// bars of a quiet spell close.
    fn handle(&mut self, _: ClockTick, _: &mut Self::Context) -> Self::Result {
        let advance = self
            .last_event
            .filter(|_| self.lifecycle.clock_allowed())
            .and_then(|l| {
                let quiet = now().micros().saturating_sub(l.arrived.micros());
                clock::idle_advance(
                    l.event,
                    quiet,
                    self.cx.settings.bars.grace_micros,
                    self.cx.view.clock_cap(),
                )
            });
        let Some(to) = advance else {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        };
        let pending: Vec<_> = self
            .stages
            .iter()
            .map(|s| s.builder.send(AdvanceClock(to)))
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
                tracing::error!(symbol = %act.symbol, error = %format!("{e:#}"), "clock advance failed");
                act.lifecycle = act.lifecycle.failed_unseen();
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
        if self.lifecycle.take_refusal() {
            return AtomicResponse::new(Box::pin(fut::ready(Err(StageError::Restarted))));
        }
        AtomicResponse::new(self.checkpoint())
    }
}

impl Handler<CheckpointRebased> for SymbolSupervisor {
    type Result = ();

    fn handle(&mut self, _: CheckpointRebased, ctx: &mut Self::Context) {
        ctx.wait(self.checkpoint().map(|res, act, _| {
            if let Err(e) = res {
                tracing::warn!(symbol = %act.symbol, error = %format!("{e:#}"), "checkpoint on the new broker not written; the next commit writes it");
            }
        }));
    }
}

impl SymbolSupervisor {
    /// Gathers the children's state and hands a checkpoint to the writer (when anything
    /// changed since the last one).
    fn checkpoint(&mut self) -> ResponseActFuture<Self, Result<(), StageError>> {
        if !self.dirty {
            return Box::pin(fut::ready(Ok(())));
        }
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
        let symbol = self.symbol;
        let partial = SymbolState {
            epoch: self.cx.view.epoch().to_owned(),
            applied: self.applied.clone(),
            metrics: self.tick_metrics.clone(),
            realtime_last: self.realtime_throttle.last(),
            last_event: self.last_event,
            builders: Vec::new(),
            indicators: Vec::new(),
        };
        let db = self.cx.outputs.db.clone();
        Box::pin(
            async move {
                let mut state = partial;
                state.builders = futures_util::future::try_join_all(builders).await?;
                state.indicators = futures_util::future::try_join_all(indicators).await?;
                let checkpoint = state
                    .checkpoint(symbol)
                    .map_err(|e| StageError::Panicked(format!("checkpoint encoding: {e}")))?;
                let batch = OutputBatch {
                    checkpoints: vec![checkpoint],
                    ..OutputBatch::default()
                };
                db.send(Persist(Arc::new(batch)))
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
        )
    }
}
