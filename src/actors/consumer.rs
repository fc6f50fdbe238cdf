//! `TickConsumer`: reads the raw topic and routes each symbol's ticks to its
//! `SymbolSupervisor`, creating supervisors on first sight.
//!
//! Delivery guarantee: offsets are committed only after (1) every supervisor touched since
//! the last commit has checkpointed its state, (2) the `DbWriter` and the output publisher
//! have made everything sent so far durable. A restart therefore resumes each symbol from
//! its checkpoint and replays only what came after it; supervisors skip ticks they have
//! already accounted for, so redelivery changes nothing. Malformed messages go to the
//! dead-letter topic (and are durable there before their offset is committed).
//!
//! Sends to supervisors are awaited (`send().await` on bounded mailboxes): a slow stage
//! slows intake instead of growing memory.

use crate::actors::messages::{Outputs, StageError, TickBatch};
use crate::actors::publisher::{DeliveryCounter, send_dead_letter};
use crate::actors::supervisor::{Retire, SymbolSettings, SymbolSupervisor, TakeCheckpoint};
use crate::domain::Symbol;
use crate::kafka::{topics, wire};
use crate::metrics::Metrics;
use crate::output::{Seq, TickRecord};
use crate::store::Store;
use actix::prelude::*;
use futures_util::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::producer::ThreadedProducer;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientConfig, ClientContext, Message};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a round waits for more messages before it is dispatched.
const ROUND_LINGER: Duration = Duration::from_millis(5);

/// How long the consumer waits for messages before it settles the round in flight anyway.
const SETTLE_WHEN_IDLE: Duration = Duration::from_millis(20);

/// Different trades a symbol may fail on, one by one, within one failed range before the
/// rest of that range goes to the DLQ at once (a symbol failing on every trade would
/// otherwise cost a replay per trade).
const MAX_CULPRITS: u32 = 3;

/// A round handed to the symbols: each symbol's ticks and the answer to come.
type Dispatched = Vec<(Symbol, Arc<[TickRecord]>, Delivery)>;

/// How a symbol's ticks of a round went out.
enum Delivery {
    /// All in one message (the normal case).
    Batch(actix::dev::Request<SymbolSupervisor, TickBatch>),
    /// One message per tick, each answered before the next goes (to find the trade a
    /// symbol keeps failing on); stops at the first failure.
    OneByOne(futures_util::future::LocalBoxFuture<'static, Result<(), Failure>>),
}

/// Why a symbol's ticks of a round were not processed.
enum Failure {
    /// The supervisor's mailbox is gone (its arbiter stopped): not the ticks' fault.
    Unreachable(String),
    /// The supervisor went back to its checkpoint for a reason other than these ticks (a
    /// subscriber or child failed, or it restarted on its own): replay, blame nothing.
    NotTheTicks(String),
    /// Domain code panicked on these ticks; `at` is the tick when they went one by one.
    Stage { error: String, at: Option<Seq> },
}

impl Failure {
    fn of(e: StageError, at: Option<Seq>) -> Self {
        match e {
            StageError::Panicked(_) => Self::Stage {
                error: e.to_string(),
                at,
            },
            _ => Self::NotTheTicks(e.to_string()),
        }
    }
}

impl Delivery {
    async fn outcome(self) -> Result<(), Failure> {
        match self {
            Self::Batch(request) => match request.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(Failure::of(e, None)),
                Err(e) => Err(Failure::Unreachable(e.to_string())),
            },
            Self::OneByOne(ticks) => ticks.await,
        }
    }
}

/// Sends `ticks` up to `to` to `addr` one at a time, each after the previous one
/// succeeded, then the rest in one message.
async fn one_by_one(
    addr: Addr<SymbolSupervisor>,
    ticks: Arc<[TickRecord]>,
    to: Seq,
) -> Result<(), Failure> {
    let split = ticks.partition_point(|r| r.seq <= to);
    for r in &ticks[..split] {
        match addr.send(TickBatch(Arc::from([*r]))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Failure::of(e, Some(r.seq))),
            Err(e) => return Err(Failure::Unreachable(e.to_string())),
        }
    }
    if split < ticks.len() {
        match addr.send(TickBatch(ticks[split..].into())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Failure::of(e, None)),
            Err(e) => return Err(Failure::Unreachable(e.to_string())),
        }
    }
    Ok(())
}

/// A symbol that failed twice on overlapping ticks: its ticks up to `to` go one by one
/// until the trade it fails on is found.
struct Suspect {
    to: Seq,
    /// Trades found and dead-lettered so far in this range.
    culprits: u32,
}

/// Settings of the consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub bootstrap: String,
    /// Consumer group: instances sharing it share the partitions.
    pub group: String,
    /// Most messages routed per round.
    pub max_batch: usize,
    /// How often state is checkpointed and offsets committed.
    pub commit_interval: Duration,
}

/// What the rebalance callback reports to the loop.
enum RebalanceEvent {
    Revoked(Vec<i32>),
}

/// librdkafka callbacks: rebalances (to drop supervisors of lost partitions) and
/// statistics (consumer lag).
struct PipelineContext {
    events: mpsc::UnboundedSender<RebalanceEvent>,
    metrics: Metrics,
}

impl ClientContext for PipelineContext {
    fn stats(&self, stats: Statistics) {
        if let Some(topic) = stats.topics.get(topics::RAW) {
            for (id, p) in &topic.partitions {
                if *id >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[&id.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for PipelineContext {
    fn pre_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let parts = list.elements().iter().map(|e| e.partition()).collect();
            // Unbounded but rare: one event per rebalance.
            let _ = self.events.send(RebalanceEvent::Revoked(parts));
        }
    }
}

/// Asks the consumer to stop after a final checkpoint and commit.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// The consumer actor: a handle on the consume loop, which runs as a future of its context.
pub struct TickConsumer {
    inner: Option<ConsumeLoop>,
    stop: Option<oneshot::Sender<oneshot::Sender<()>>>,
}

impl TickConsumer {
    /// A consumer of the raw topic routing to supervisors that write through `outputs`.
    ///
    /// # Errors
    /// When the Kafka clients cannot be created or the topic subscribed.
    pub fn new(
        settings: ConsumerSettings,
        symbols: Arc<SymbolSettings>,
        store: Store,
        outputs: Outputs,
        metrics: Metrics,
        arbiters: Vec<ArbiterHandle>,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let consumer: StreamConsumer<PipelineContext> = ClientConfig::new()
            .set("bootstrap.servers", &settings.bootstrap)
            .set("group.id", &settings.group)
            .set("enable.auto.commit", "false")
            // A new group reads everything retained: nothing produced before the first
            // start is skipped (the reference started at `latest`).
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("statistics.interval.ms", "5000")
            .set("fetch.wait.max.ms", "10")
            // A killed instance's partitions move to the others after this long.
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .create_with_context(PipelineContext {
                events: tx,
                metrics: metrics.clone(),
            })?;
        consumer.subscribe(&[topics::RAW])?;
        let dlq = crate::actors::publisher::producer(&settings.bootstrap)?;
        Ok(Self {
            inner: Some(ConsumeLoop {
                consumer: Arc::new(consumer),
                dlq: Arc::new(dlq),
                settings,
                symbols,
                store,
                outputs,
                metrics,
                arbiters,
                next_arbiter: 0,
                supervisors: HashMap::new(),
                partition_of: HashMap::new(),
                touched: HashSet::new(),
                positions: HashMap::new(),
                rebalances: rx,
                replay_from: HashMap::new(),
                seen_until: HashMap::new(),
                failures: HashMap::new(),
                suspects: HashMap::new(),
                blameless_replays: 0,
                skip: HashSet::new(),
            }),
            stop: None,
        })
    }
}

impl Actor for TickConsumer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let (stop_tx, stop_rx) = oneshot::channel();
        self.stop = Some(stop_tx);
        if let Some(inner) = self.inner.take() {
            ctx.spawn(inner.run(stop_rx).into_actor(self).map(|res, _, ctx| {
                if let Err(e) = res {
                    tracing::error!(error = %format!("{e:#}"), "consumer loop ended");
                }
                ctx.stop();
            }));
        }
    }
}

impl Handler<Shutdown> for TickConsumer {
    type Result = ResponseFuture<()>;

    /// Stops consuming after a last checkpoint and commit; answers when done.
    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        let stop = self.stop.take();
        Box::pin(async move {
            if let Some(stop) = stop {
                let (done_tx, done_rx) = oneshot::channel();
                if stop.send(done_tx).is_ok() {
                    let _ = done_rx.await;
                }
            }
        })
    }
}

/// The consume loop's state.
struct ConsumeLoop {
    consumer: Arc<StreamConsumer<PipelineContext>>,
    dlq: Arc<ThreadedProducer<DeliveryCounter>>,
    settings: ConsumerSettings,
    symbols: Arc<SymbolSettings>,
    store: Store,
    outputs: Outputs,
    metrics: Metrics,
    /// Supervisors are spread over these arbiters (one per core).
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: usize,
    supervisors: HashMap<Symbol, Addr<SymbolSupervisor>>,
    partition_of: HashMap<Symbol, i32>,
    /// Symbols with ticks since the last checkpoint.
    touched: HashSet<Symbol>,
    /// Next offset to commit, per partition.
    positions: HashMap<i32, i64>,
    rebalances: mpsc::UnboundedReceiver<RebalanceEvent>,
    /// Where a replay of each partition starts: the last committed position, or the first
    /// offset read since the partition was assigned (everything before it is in the
    /// checkpoints).
    replay_from: HashMap<i32, i64>,
    /// Per partition, the offset before which every message was read once already (so a
    /// replay does not dead-letter malformed messages twice).
    seen_until: HashMap<i32, i64>,
    /// Ticks each symbol last failed on (first and last), to tell a repeat from a new failure.
    failures: HashMap<Symbol, (Seq, Seq)>,
    /// Symbols that failed again on the same ticks: their ticks now go one by one.
    suspects: HashMap<Symbol, Suspect>,
    /// Consecutive rounds that replayed for no fault of their ticks: each pauses longer
    /// before going on (a dead subscriber must not spin the consumer).
    blameless_replays: u32,
    /// Ticks dead-lettered after failing twice, skipped when the replay reads them.
    skip: HashSet<Seq>,
}

impl ConsumeLoop {
    /// Consumes until stopped, then leaves the group off the arbiter: librdkafka's close
    /// blocks until the group has taken the partitions back, which can take a rebalance
    /// (and other members, possibly polled from this very thread, must answer it).
    async fn run(self, stop: oneshot::Receiver<oneshot::Sender<()>>) -> anyhow::Result<()> {
        let consumer = self.consumer.clone();
        let result = self.consume(stop).await;
        if let Err(e) = tokio::task::spawn_blocking(move || drop(consumer)).await {
            tracing::warn!(error = %e, "closing the consumer failed");
        }
        result
    }

    async fn consume(
        mut self,
        mut stop: oneshot::Receiver<oneshot::Sender<()>>,
    ) -> anyhow::Result<()> {
        let consumer = self.consumer.clone();
        let mut stream = consumer.stream().ready_chunks(self.settings.max_batch);
        let mut commit_timer = tokio::time::interval(self.settings.commit_interval);
        commit_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut groups: HashMap<Symbol, Vec<TickRecord>> = HashMap::new();
        // The round the symbols are working on while the next one is read and parsed.
        let mut in_flight: Option<Dispatched> = None;
        loop {
            tokio::select! {
                done = &mut stop => {
                    self.handle_revocations(&mut groups);
                    if let Some(d) = in_flight.take() {
                        self.settle(d, &mut groups).await;
                    }
                    self.commit(&mut groups).await;
                    if let Ok(done) = done {
                        let _ = done.send(());
                    }
                    return Ok(());
                }
                Some(RebalanceEvent::Revoked(parts)) = self.rebalances.recv() => {
                    // Reported while idle: retire the lost symbols now, before their idle
                    // clocks close bars their new owner is building.
                    self.revoke(&parts, &mut groups);
                    self.handle_revocations(&mut groups);
                    if let Some(d) = in_flight.take() {
                        self.settle(d, &mut groups).await;
                    }
                }
                _ = tokio::time::sleep(SETTLE_WHEN_IDLE), if in_flight.is_some() => {
                    // Nothing new to read: settle the round in flight now, so that a failure
                    // in it is recovered (replayed) without waiting for more messages or for
                    // the next commit.
                    if let Some(d) = in_flight.take() {
                        self.settle(d, &mut groups).await;
                    }
                }
                _ = commit_timer.tick() => {
                    // A commit covers only rounds whose outcome is known, and no partition
                    // this instance has lost.
                    self.handle_revocations(&mut groups);
                    if let Some(d) = in_flight.take() {
                        self.settle(d, &mut groups).await;
                    }
                    self.commit(&mut groups).await;
                }
                chunk = stream.next() => {
                    let Some(chunk) = chunk else { anyhow::bail!("consumer stream ended") };
                    let mut taken = chunk.len();
                    self.accept_all(chunk, &mut groups).await;
                    // Linger briefly for more: with many symbols a round then carries several
                    // ticks per symbol, and actor messages are paid per symbol, not per tick.
                    let deadline = tokio::time::Instant::now() + ROUND_LINGER;
                    while taken < self.settings.max_batch {
                        let Ok(Some(more)) = tokio::time::timeout_at(deadline, stream.next()).await else { break };
                        taken += more.len();
                        self.accept_all(more, &mut groups).await;
                    }
                    // Revocations reported while this round was read: its ticks of lost
                    // partitions are dropped (their new owner reads them), and the lost
                    // symbols retire before anything else waits.
                    self.handle_revocations(&mut groups);
                    // The previous round must be settled (a failure replays its partition:
                    // this round's ticks of it are dropped, they come again) before this one
                    // goes out, so one symbol's batches stay in order.
                    if let Some(d) = in_flight.take() {
                        self.settle(d, &mut groups).await;
                    }
                    in_flight = Some(self.dispatch(&mut groups));
                }
            }
        }
    }

    /// Accepts every message of a chunk.
    async fn accept_all(
        &mut self,
        chunk: Vec<rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'_>>>,
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) {
        for msg in chunk {
            match msg {
                Ok(m) => self.accept(&m, groups).await,
                Err(e) => tracing::warn!(error = %e, "Kafka consumer error"),
            }
        }
    }

    /// Parses one message into its symbol's group, or dead-letters it.
    async fn accept(
        &mut self,
        m: &rdkafka::message::BorrowedMessage<'_>,
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) {
        self.metrics.messages_consumed.inc();
        let seq = Seq {
            partition: m.partition(),
            offset: m.offset(),
        };
        self.replay_from.entry(seq.partition).or_insert(seq.offset);
        self.positions.insert(seq.partition, seq.offset + 1);
        if self.skip.contains(&seq) {
            return; // dead-lettered after failing twice
        }
        match wire::parse_raw_tick(m.payload().unwrap_or_default()) {
            Ok(tick) => {
                self.partition_of.insert(tick.symbol(), seq.partition);
                groups
                    .entry(tick.symbol())
                    .or_default()
                    .push(TickRecord { tick, seq });
            }
            // A replay re-reads malformed messages that are in the DLQ already.
            Err(_)
                if self
                    .seen_until
                    .get(&seq.partition)
                    .is_some_and(|until| seq.offset < *until) => {}
            Err(e) => self.dead_letter(m, &e.to_string(), e.label()).await,
        }
    }

    async fn dead_letter(
        &self,
        m: &rdkafka::message::BorrowedMessage<'_>,
        error: &str,
        reason: &str,
    ) {
        crate::actors::publisher::dead_letter(&self.dlq, &self.metrics, m, error, reason).await;
    }

    /// Hands each symbol its ticks of the round, now (into its mailbox, or waiting for room
    /// when the mailbox is full); [`Self::settle`] collects the outcomes.
    fn dispatch(&mut self, groups: &mut HashMap<Symbol, Vec<TickRecord>>) -> Dispatched {
        let mut sends = Vec::with_capacity(groups.len());
        for (symbol, ticks) in groups.drain() {
            if ticks.is_empty() {
                continue;
            }
            let addr = self.supervisor(symbol);
            self.touched.insert(symbol);
            let batch: Arc<[TickRecord]> = ticks.into();
            let delivery = match self.suspects.get(&symbol) {
                Some(s) if batch[0].seq <= s.to => {
                    Delivery::OneByOne(Box::pin(one_by_one(addr, batch.clone(), s.to)))
                }
                _ => Delivery::Batch(addr.send(TickBatch(batch.clone()))),
            };
            sends.push((symbol, batch, delivery));
        }
        sends
    }

    /// Waits for a dispatched round; a symbol that failed is restarted and replayed.
    async fn settle(&mut self, sends: Dispatched, groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        let outcomes = futures_util::future::join_all(sends.into_iter().map(
            |(symbol, batch, delivery)| async move { (symbol, batch, delivery.outcome().await) },
        ))
        .await;
        let mut blameless = false;
        for (symbol, batch, result) in outcomes {
            if result.is_err() && !self.partition_of.contains_key(&symbol) {
                // Its partition was revoked meanwhile: the new owner resumes from the
                // checkpoint and the last commit; nothing to replay or blame here.
                continue;
            }
            let (failure, at) = match result {
                Ok(()) => {
                    // A suspect that got through its range is cleared.
                    let through = |s: &Suspect| batch.last().is_some_and(|r| r.seq >= s.to);
                    if self.suspects.get(&symbol).is_some_and(through) {
                        self.suspects.remove(&symbol);
                    }
                    continue;
                }
                Err(Failure::Stage { error, at }) => (error, at),
                Err(Failure::NotTheTicks(e)) => {
                    tracing::warn!(%symbol, error = %e, "symbol back at its checkpoint; replaying its partition");
                    self.replay_symbol(symbol, groups);
                    blameless = true;
                    continue;
                }
                Err(Failure::Unreachable(e)) => {
                    // The mailbox is gone (its arbiter stopped): not the ticks' fault. A new
                    // supervisor resumes from the checkpoint; nothing is dead-lettered.
                    tracing::warn!(%symbol, error = %e, "symbol unreachable; starting it again and replaying its partition");
                    self.supervisors.remove(&symbol);
                    self.replay_symbol(symbol, groups);
                    continue;
                }
            };
            self.recover(symbol, &batch, &failure, at, groups).await;
        }
        if blameless {
            self.blameless_replays += 1;
            let pause = Duration::from_millis(10 << self.blameless_replays.min(9));
            tokio::time::sleep(pause).await;
        } else {
            self.blameless_replays = 0;
        }
    }

    /// A supervisor failed on `batch`. It restarts from its checkpoint, so its partition is
    /// replayed from the last commit: every other symbol skips what it has accounted for,
    /// and the failed one rebuilds its state through every tick after its checkpoint, in
    /// order (retrying the batch alone would skip the ticks between the checkpoint and it).
    /// If the replay fails on the same ticks again, the symbol's ticks go one by one until
    /// the trade it fails on is found (`at`); only that trade is dead-lettered, and the
    /// partition is replayed once more without it. A symbol that fails on
    /// [`MAX_CULPRITS`] trades of one range gets the rest of that range dead-lettered.
    async fn recover(
        &mut self,
        symbol: Symbol,
        batch: &Arc<[TickRecord]>,
        failure: &str,
        at: Option<Seq>,
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return;
        };
        let partition = first.seq.partition;
        let (first, last) = (first.seq, last.seq);
        if let Some(at) = at {
            let suspect = self.suspects.entry(symbol).or_insert(Suspect {
                to: last,
                culprits: 0,
            });
            suspect.culprits += 1;
            let dead: Vec<TickRecord> = if suspect.culprits < MAX_CULPRITS {
                tracing::error!(%symbol, error = failure, offset = at.offset, "found the trade the symbol fails on; dead-lettering it");
                batch.iter().filter(|r| r.seq == at).copied().collect()
            } else {
                tracing::error!(%symbol, error = failure, "symbol failed on {MAX_CULPRITS} different trades; dead-lettering the rest of the range");
                let to = suspect.to;
                self.suspects.remove(&symbol);
                batch
                    .iter()
                    .filter(|r| at <= r.seq && r.seq <= to)
                    .copied()
                    .collect()
            };
            for r in &dead {
                self.dead_letter_tick(symbol, r, failure).await;
            }
        } else if self
            .failures
            .get(&symbol)
            .is_some_and(|(a, b)| first <= *b && *a <= last)
        {
            tracing::error!(%symbol, error = failure, "symbol failed again on the same trades; replaying them one by one");
            let (_, to) = self.failures.remove(&symbol).unwrap_or((first, last));
            self.suspects.insert(symbol, Suspect { to, culprits: 0 });
        } else {
            tracing::error!(%symbol, error = failure, "symbol failed; restarting it from its checkpoint and replaying its partition");
            self.failures.insert(symbol, (first, last));
        }
        self.replay(partition, groups);
    }

    /// Sends a tick the pipeline cannot process to the DLQ; replays skip it from now on.
    async fn dead_letter_tick(&mut self, symbol: Symbol, r: &TickRecord, failure: &str) {
        let origin = wire::Origin {
            topic: topics::RAW,
            partition: r.seq.partition,
            offset: r.seq.offset,
            key: Some(symbol.to_string()),
        };
        // The tick as parsed (re-encoded): the original bytes are gone by now.
        let payload = wire::encode_raw_tick(&r.tick);
        let letter = wire::DeadLetter::new(origin, &payload, failure, "processing_failed");
        send_dead_letter(&self.dlq, &self.metrics, &letter).await;
        self.skip.insert(r.seq);
    }

    /// Replays the partition `symbol` is read from (see [`Self::replay`]).
    fn replay_symbol(&mut self, symbol: Symbol, groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        if let Some(p) = self.partition_of.get(&symbol).copied() {
            self.replay(p, groups);
        }
    }

    /// Reads `partition` again from the last commit (or from where this consumer started
    /// it). Ticks of it already read for the next round are dropped: they come again.
    fn replay(&mut self, partition: i32, groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        let offset = self
            .replay_from
            .get(&partition)
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        // A zero timeout makes the seek asynchronous (nothing blocks the arbiter); messages
        // fetched from the old position are discarded by librdkafka all the same.
        if let Err(e) = self
            .consumer
            .seek(topics::RAW, partition, offset, Duration::ZERO)
        {
            // Reading goes on from where it was: keep what was read.
            tracing::error!(error = %e, partition, "cannot seek back for replay");
            return;
        }
        if let Some(next) = self.positions.remove(&partition) {
            let until = self.seen_until.entry(partition).or_insert(next);
            *until = (*until).max(next);
        }
        for ticks in groups.values_mut() {
            ticks.retain(|r| r.seq.partition != partition);
        }
    }

    /// The supervisor of `symbol`, started on first use (round-robin over the arbiters).
    fn supervisor(&mut self, symbol: Symbol) -> Addr<SymbolSupervisor> {
        if let Some(a) = self.supervisors.get(&symbol) {
            return a.clone();
        }
        let arbiter = &self.arbiters[self.next_arbiter % self.arbiters.len()];
        self.next_arbiter += 1;
        let (settings, store, outputs, metrics) = (
            self.symbols.clone(),
            self.store.clone(),
            self.outputs.clone(),
            self.metrics.clone(),
        );
        let addr = actix::Supervisor::start_in_arbiter(arbiter, move |_| {
            SymbolSupervisor::new(symbol, settings, store, outputs, metrics)
        });
        self.supervisors.insert(symbol, addr.clone());
        addr
    }

    /// Applies the revocations the rebalance callback reported (before the round in flight
    /// is settled: its lost symbols' outcomes are then ignored).
    fn handle_revocations(&mut self, groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        while let Ok(RebalanceEvent::Revoked(parts)) = self.rebalances.try_recv() {
            self.revoke(&parts, groups);
        }
    }

    /// Drops the supervisors, read ticks and positions of lost partitions (their new owner
    /// resumes from the checkpoints and the last commit).
    fn revoke(&mut self, partitions: &[i32], groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        for ticks in groups.values_mut() {
            ticks.retain(|r| !partitions.contains(&r.seq.partition));
        }
        let lost: Vec<Symbol> = self
            .partition_of
            .iter()
            .filter(|(_, p)| partitions.contains(p))
            .map(|(s, _)| *s)
            .collect();
        for s in lost {
            if let Some(supervisor) = self.supervisors.remove(&s) {
                // do_send: one message per symbol lost, and it must not be dropped.
                supervisor.do_send(Retire);
            }
            self.partition_of.remove(&s);
            self.touched.remove(&s);
            self.failures.remove(&s);
            self.suspects.remove(&s);
        }
        for p in partitions {
            self.positions.remove(p);
            self.replay_from.remove(p);
            self.seen_until.remove(p);
        }
        self.skip.retain(|s| !partitions.contains(&s.partition));
        tracing::info!(?partitions, "partitions revoked");
    }

    /// Checkpoints touched symbols, waits until everything is durable, commits offsets.
    async fn commit(&mut self, groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        if self.positions.is_empty() {
            return;
        }
        let touched: Vec<Symbol> = self.touched.drain().collect();
        let checkpoints: Vec<_> = touched
            .iter()
            .filter_map(|s| {
                let request = self.supervisors.get(s)?.send(TakeCheckpoint);
                Some(async move { (*s, request.await) })
            })
            .collect();
        let mut checkpointed = true;
        for (symbol, r) in futures_util::future::join_all(checkpoints).await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(StageError::Restarted)) => {
                    // It went back to its checkpoint on its own: rebuild it by replaying.
                    tracing::warn!(%symbol, "symbol back at its checkpoint; replaying its partition");
                    self.replay_symbol(symbol, groups);
                    checkpointed = false;
                }
                Ok(Err(e)) => {
                    tracing::error!(%symbol, error = %e, "checkpoint failed; not committing");
                    checkpointed = false;
                }
                Err(e) => {
                    // Its mailbox is gone: start it again from its checkpoint by replaying
                    // (otherwise no commit could ever succeed again).
                    tracing::error!(%symbol, error = %e, "symbol unreachable; not committing, replaying its partition");
                    self.supervisors.remove(&symbol);
                    self.replay_symbol(symbol, groups);
                    checkpointed = false;
                }
            }
        }
        if !checkpointed {
            // They are asked again next time, whether or not they see new ticks.
            self.touched.extend(touched);
            return;
        }
        if let Err(e) = self.outputs.flush().await {
            tracing::error!(error = %e, "outputs not durable; not committing");
            return;
        }
        let dlq = self.dlq.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || {
            rdkafka::producer::Producer::flush(&*dlq, Duration::from_secs(30))
        })
        .await
        {
            tracing::error!(error = %e, "dead letters not flushed; not committing");
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (p, next) in &self.positions {
            if let Err(e) = tpl.add_partition_offset(topics::RAW, *p, Offset::Offset(*next)) {
                tracing::error!(error = %e, "bad offset");
            }
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(error = %e, "offset commit failed; will retry with the next one");
        }
        // Everything before these positions is in the checkpoints and stored, whether or
        // not the asynchronous commit lands: replays can start here.
        let positions = &self.positions;
        let passed = |s: &Seq| positions.get(&s.partition).is_some_and(|n| s.offset < *n);
        self.replay_from
            .extend(positions.iter().map(|(p, n)| (*p, *n)));
        self.skip.retain(|s| !passed(s));
        self.failures.retain(|_, (_, last)| !passed(last));
        self.suspects.retain(|_, s| !passed(&s.to));
    }
}
