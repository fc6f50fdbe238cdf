//! `TickConsumer`: reads the raw topic and hands every trade to its symbol's supervisor.
//!
//! A thin actor around the pipeline's plain parts (`crate::pipeline`): each trade read is
//! parsed (malformed or future-dated ones are dead-lettered), routed to its symbol's home
//! partition (processed here, or forwarded to the instance that reads it: `routing`),
//! aligned in event time across the partitions read here (`alignment`), and sent to its
//! symbol's `SymbolSupervisor`, created on first sight or when its home partition is
//! assigned here (so quiet symbols close their bars after a failover).
//!
//! Delivery guarantee: offsets are committed (`ledger`) only after (1) every symbol fed
//! since the last commit has checkpointed its state, (2) the database writer, the output
//! topics, and the dead letters and forwards sent so far are all confirmed durable. A
//! symbol that fails goes back to its checkpoint and its partitions are replayed; one that
//! keeps failing has the trade it fails on found and dead-lettered (`quarantine`).
//! Sends to supervisors are awaited on bounded mailboxes: a slow stage slows intake.

use crate::actors::messages::{StageError, TickBatch};
use crate::actors::supervisor::{
    Reset, Retire, SupervisorContext, SymbolSupervisor, TakeCheckpoint,
};
use crate::backoff::Backoff;
use crate::domain::{Symbol, Timestamp};
use crate::kafka::backlog::BacklogMonitor;
use crate::kafka::partitioner::home_partition;
use crate::kafka::producer::{Producer, Record, origin_headers, origin_of};
use crate::kafka::{config, topics, wire};
use crate::metrics::Metrics;
use crate::output::{Seq, TickRecord};
use crate::pipeline::{
    Aligner, ConsumerSettings, Delivery as Mode, Feeds, OffsetLedger, Quarantine, Route, Verdict,
    clock, routing,
};
use actix::prelude::*;
use futures_util::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientContext, Message};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a round waits for more messages before it is dispatched.
const ROUND_LINGER: Duration = Duration::from_millis(5);
/// How long the consumer waits for messages before it settles the round in flight anyway.
const SETTLE_WHEN_IDLE: Duration = Duration::from_millis(20);
/// Trades held back for alignment at most, over all partitions (~80 bytes each); past it the
/// oldest go anyway (counted, logged).
const MAX_HELD: usize = 200_000;
/// A partition holding this many trades back is paused until it holds fewer than
/// [`RESUME_AT`], so the partitions behind it are fetched.
const PAUSE_AT: usize = 40_000;
const RESUME_AT: usize = 10_000;
/// How long trades may be held back without any being released before they all go (a
/// partition that stopped advancing must not stop the others).
const ALIGN_STALL: Duration = Duration::from_secs(5);
/// Longest a watermark query for the checkpoint checks waits.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(5);

/// A round handed to the symbols: each symbol's trades and the answer to come.
type Dispatched = Vec<(Symbol, Arc<[TickRecord]>, Delivery)>;

/// How a symbol's trades of a round went out.
enum Delivery {
    /// All in one message (the normal case).
    Batch(actix::dev::Request<SymbolSupervisor, TickBatch>),
    /// One message per trade, each answered before the next goes (to find the trade a symbol
    /// keeps failing on); stops at the first failure.
    OneByOne(futures_util::future::LocalBoxFuture<'static, Result<(), Failure>>),
}

/// Why a symbol's trades of a round were not processed.
enum Failure {
    /// The supervisor's mailbox is gone (its arbiter stopped): not the trades' fault.
    Unreachable(String),
    /// The supervisor went back to its checkpoint for a reason other than these trades (a
    /// subscriber or child failed, or it restarted on its own): replay, blame nothing.
    NotTheTicks(String),
    /// Domain code panicked on these trades; `at` is the trade when they went one by one.
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

/// Sends `ticks[..=through]` to `addr` one at a time, each after the previous one succeeded,
/// then the rest in one message.
async fn one_by_one(
    addr: Addr<SymbolSupervisor>,
    ticks: Arc<[TickRecord]>,
    through: usize,
) -> Result<(), Failure> {
    let split = (through + 1).min(ticks.len());
    for r in &ticks[..split] {
        match addr.send(TickBatch(Arc::from([*r]))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Failure::of(e, Some(r.at))),
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

/// What the rebalance callback reports to the loop.
enum RebalanceEvent {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

/// librdkafka callbacks: rebalances (to start and retire symbols) and statistics (lag, and
/// messages lost before they were committed).
struct PipelineContext {
    events: mpsc::UnboundedSender<RebalanceEvent>,
    metrics: Metrics,
    backlog: Arc<BacklogMonitor>,
}

impl ClientContext for PipelineContext {
    /// Client errors, but for partition-EOF events, which are not errors here (the
    /// alignment asks for them: `config::pipeline_consumer`).
    fn error(&self, error: KafkaError, reason: &str) {
        if !config::is_partition_eof(&error) {
            tracing::error!(%error, reason, "Kafka client error");
        }
    }

    fn stats(&self, stats: Statistics) {
        let Some(topic) = stats.topics.get(topics::RAW) else {
            return;
        };
        for (id, p) in &topic.partitions {
            if *id < 0 {
                continue;
            }
            if p.consumer_lag >= 0 {
                self.metrics
                    .consumer_lag
                    .with_label_values(&[&id.to_string()])
                    .set(p.consumer_lag);
            }
            if p.committed_offset >= 0 {
                self.backlog.observe(*id, p.hi_offset, p.committed_offset);
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

    fn post_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let parts = list.elements().iter().map(|e| e.partition()).collect();
            let _ = self.events.send(RebalanceEvent::Assigned(parts));
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
    /// A consumer of the raw topic (`partitions` partitions) routing to supervisors on
    /// `arbiters`.
    ///
    /// # Errors
    /// When the Kafka clients cannot be created or the topic subscribed.
    pub fn new(
        settings: ConsumerSettings,
        partitions: i32,
        supervisors: SupervisorContext,
        arbiters: Vec<ArbiterHandle>,
        backlog: Arc<BacklogMonitor>,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics = supervisors.metrics.clone();
        let consumer: StreamConsumer<PipelineContext> =
            config::pipeline_consumer(&settings.bootstrap, &settings.group).create_with_context(
                PipelineContext {
                    events: tx,
                    metrics: metrics.clone(),
                    backlog,
                },
            )?;
        consumer.subscribe(&[topics::RAW])?;
        let producer = Producer::new(&settings.bootstrap)?;
        Ok(Self {
            inner: Some(ConsumeLoop {
                consumer: Arc::new(consumer),
                producer,
                settings,
                partitions,
                supervisors: Supervisors::new(supervisors, arbiters),
                ledger: OffsetLedger::new(),
                aligner: Aligner::new(),
                quarantine: Quarantine::new(),
                feeds: Feeds::new(),
                rebalances: rx,
                blameless: Backoff::new(Duration::from_millis(20), Duration::from_secs(5)),
                paused: BTreeSet::new(),
                last_progress: Instant::now(),
                metrics,
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
                    tracing::error!(error = ?e, "consumer loop ended");
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

/// The supervisors of the symbols processed here, spread over the worker arbiters.
struct Supervisors {
    addrs: HashMap<Symbol, Addr<SymbolSupervisor>>,
    arbiters: Vec<ArbiterHandle>,
    next: usize,
    cx: SupervisorContext,
}

impl Supervisors {
    fn new(cx: SupervisorContext, arbiters: Vec<ArbiterHandle>) -> Self {
        Self {
            addrs: HashMap::new(),
            arbiters,
            next: 0,
            cx,
        }
    }

    /// The supervisor of `symbol`, started on first use (round-robin over the arbiters).
    fn get(&mut self, symbol: Symbol) -> Addr<SymbolSupervisor> {
        if let Some(a) = self.addrs.get(&symbol) {
            return a.clone();
        }
        let arbiter = &self.arbiters[self.next % self.arbiters.len()];
        self.next += 1;
        let cx = self.cx.clone();
        let addr = actix::Supervisor::start_in_arbiter(arbiter, move |_| {
            SymbolSupervisor::new(symbol, cx)
        });
        self.addrs.insert(symbol, addr.clone());
        addr
    }

    fn contains(&self, symbol: Symbol) -> bool {
        self.addrs.contains_key(&symbol)
    }

    /// Retires `symbol`'s supervisor (its home partition moved away).
    fn retire(&mut self, symbol: Symbol) {
        if let Some(addr) = self.addrs.remove(&symbol) {
            // do_send: one message per symbol lost, and it must not be dropped.
            addr.do_send(Retire);
        }
    }

    /// Forgets an unreachable supervisor (a new one starts on next use).
    fn forget(&mut self, symbol: Symbol) {
        self.addrs.remove(&symbol);
    }

    fn symbols(&self) -> Vec<Symbol> {
        self.addrs.keys().copied().collect()
    }
}

/// The consume loop's state.
struct ConsumeLoop {
    consumer: Arc<StreamConsumer<PipelineContext>>,
    /// Dead letters and forwarded trades: flushed (checked) before every commit.
    producer: Producer,
    settings: ConsumerSettings,
    /// Partitions of the raw topic (for home partitions).
    partitions: i32,
    supervisors: Supervisors,
    ledger: OffsetLedger,
    aligner: Aligner,
    quarantine: Quarantine,
    feeds: Feeds,
    rebalances: mpsc::UnboundedReceiver<RebalanceEvent>,
    /// Consecutive rounds that replayed for no fault of their trades pause longer and longer
    /// (a dead subscriber must not spin the consumer).
    blameless: Backoff,
    /// Partitions paused because they hold too many trades back.
    paused: BTreeSet<i32>,
    /// When trades were last released (or none were held).
    last_progress: Instant,
    metrics: Metrics,
}

fn now() -> Timestamp {
    Timestamp::from_datetime(&chrono::Utc::now())
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
                    self.handle_rebalances(&mut groups).await;
                    self.finish_rounds(&mut in_flight, &mut groups).await;
                    self.commit(&mut groups).await;
                    if let Ok(done) = done {
                        let _ = done.send(());
                    }
                    return Ok(());
                }
                Some(event) = self.rebalances.recv() => {
                    // Reported while idle: retire lost symbols now, before their idle clocks
                    // close bars their new owner is building; restore assigned ones.
                    self.on_rebalance(event, &mut groups).await;
                    self.handle_rebalances(&mut groups).await;
                    if let Some(d) = in_flight.take() {
                        self.settle(d, &mut groups).await;
                    }
                }
                _ = tokio::time::sleep(SETTLE_WHEN_IDLE), if in_flight.is_some() => {
                    // Nothing new to read: settle the round in flight now, so that a failure
                    // in it is recovered without waiting for more messages or a commit.
                    if let Some(d) = in_flight.take() {
                        self.settle(d, &mut groups).await;
                    }
                }
                _ = commit_timer.tick() => {
                    // A commit covers only rounds whose outcome is known, and no partition
                    // this instance has lost.
                    self.handle_rebalances(&mut groups).await;
                    self.release(&mut groups);
                    self.finish_rounds(&mut in_flight, &mut groups).await;
                    self.commit(&mut groups).await;
                }
                chunk = stream.next() => {
                    let Some(chunk) = chunk else { anyhow::bail!("consumer stream ended") };
                    // Assignments reported by this poll come before its messages.
                    self.handle_rebalances(&mut groups).await;
                    let mut taken = chunk.len();
                    self.accept_all(chunk).await;
                    // Linger briefly for more: with many symbols a round then carries several
                    // trades per symbol, and actor messages are paid per symbol, not per trade.
                    let deadline = tokio::time::Instant::now() + ROUND_LINGER;
                    while taken < self.settings.max_batch {
                        let Ok(Some(more)) = tokio::time::timeout_at(deadline, stream.next()).await else { break };
                        taken += more.len();
                        self.accept_all(more).await;
                    }
                    // Revocations reported while this round was read: its trades of lost
                    // partitions are dropped (their new owner reads them).
                    self.handle_rebalances(&mut groups).await;
                    self.release(&mut groups);
                    // The previous round must be settled (a failure replays partitions: this
                    // round's trades of them are dropped, they come again) before this one
                    // goes out, so one symbol's batches stay in order.
                    if let Some(d) = in_flight.take() {
                        self.settle(d, &mut groups).await;
                    }
                    in_flight = Some(self.dispatch(&mut groups));
                    self.flow_control();
                }
            }
        }
    }

    /// Settles the round in flight, then sends and settles whatever is released, so that
    /// no trade read is between the aligner and a supervisor at a commit.
    async fn finish_rounds(
        &mut self,
        in_flight: &mut Option<Dispatched>,
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) {
        if let Some(d) = in_flight.take() {
            self.settle(d, groups).await;
        }
        while !groups.is_empty() {
            let round = self.dispatch(groups);
            self.settle(round, groups).await;
        }
    }

    async fn accept_all(&mut self, chunk: Vec<rdkafka::error::KafkaResult<BorrowedMessage<'_>>>) {
        for msg in chunk {
            match msg {
                Ok(m) => self.accept(&m).await,
                Err(KafkaError::PartitionEOF(p)) => self.aligner.reached_end(p),
                Err(e) => tracing::warn!(error = %e, "Kafka consumer error"),
            }
        }
    }

    /// Parses, checks and routes one message.
    async fn accept(&mut self, m: &BorrowedMessage<'_>) {
        self.metrics.messages_consumed.inc();
        let at = Seq {
            partition: m.partition(),
            offset: m.offset(),
        };
        let read = self.ledger.read(at.partition, at.offset);
        let first = read.first;
        if read.skipped > 0 {
            self.metrics.raw_messages_lost.inc_by(read.skipped as u64);
            tracing::error!(
                partition = at.partition,
                offset = at.offset,
                lost = read.skipped,
                "the broker dropped raw messages before they were read"
            );
        }
        self.aligner.saw_message(at.partition);
        if self.quarantine.skips(at) {
            return; // dead-lettered after failing repeatedly
        }
        let tick = match wire::parse_raw_tick(m.payload().unwrap_or_default()) {
            Ok(t) => t,
            Err(e) => {
                // A replay re-reads messages that are in the DLQ already.
                if first {
                    self.dead_letter(m, &e.to_string(), e.label()).await;
                }
                return;
            }
        };
        let message_time = m.timestamp().to_millis().map(Timestamp::from_millis);
        let skew = i64::try_from(self.settings.max_clock_skew.as_micros()).unwrap_or(i64::MAX);
        if let Err(e) = clock::check_not_future(tick.ts(), message_time, now(), skew) {
            if first {
                self.dead_letter(m, &e.to_string(), "future_timestamp")
                    .await;
            }
            return;
        }
        if at.partition >= self.partitions && first {
            tracing::error!(
                partition = at.partition,
                known = self.partitions,
                "the raw topic has more partitions than when this instance started; restart every instance so they agree on home partitions"
            );
        }
        let seq =
            origin_of(m.headers()).map_or(at, |(partition, offset)| Seq { partition, offset });
        let ledger = &self.ledger;
        match routing::route(tick.symbol(), self.partitions, |p| ledger.owns(p)) {
            Route::Local => self.aligner.push(TickRecord { tick, seq, at }),
            Route::Forward { home } => {
                let symbol = tick.symbol();
                let record = Record {
                    topic: topics::RAW,
                    key: Some(symbol.as_str().as_bytes()),
                    payload: m.payload().unwrap_or_default(),
                    partition: Some(home),
                    headers: Some(origin_headers(seq.partition, seq.offset)),
                };
                // A failed send fails the next flush: nothing past it is committed.
                match self.producer.send(record).await {
                    Ok(()) => self.metrics.ticks_forwarded.inc(),
                    Err(e) => {
                        tracing::error!(%symbol, error = %e, "cannot forward a trade to its home partition")
                    }
                }
            }
        }
    }

    async fn dead_letter(&self, m: &BorrowedMessage<'_>, error: &str, reason: &str) {
        let origin = wire::Origin {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        };
        let letter = wire::DeadLetter::new(origin, m.payload().unwrap_or_default(), error, reason);
        self.producer.send_dead_letter(&self.metrics, &letter).await;
    }

    /// Sends a trade the pipeline cannot process to the DLQ (replays skip it from now on).
    async fn dead_letter_tick(&self, symbol: Symbol, r: &TickRecord, failure: &str) {
        let origin = wire::Origin {
            topic: topics::RAW,
            partition: r.at.partition,
            offset: r.at.offset,
            key: Some(symbol.to_string()),
        };
        // The trade as parsed (re-encoded): the original bytes are gone by now.
        let payload = wire::encode_raw_tick(&r.tick);
        let letter = wire::DeadLetter::new(origin, &payload, failure, "processing_failed");
        self.producer.send_dead_letter(&self.metrics, &letter).await;
    }

    /// Moves the trades the alignment admits into `groups` (per symbol, in order); past the
    /// memory bound, or when nothing has moved for [`ALIGN_STALL`], the oldest go anyway.
    fn release(&mut self, groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        let (aligner, feeds) = (&mut self.aligner, &mut self.feeds);
        let mut take = |r: TickRecord| {
            feeds.fed(r.tick.symbol(), r.at.partition);
            groups.entry(r.tick.symbol()).or_default().push(r);
        };
        let mut released = aligner.release(&mut take);
        let held = aligner.held();
        let forced = if held > MAX_HELD {
            aligner.release_forced(held - MAX_HELD / 2, &mut take)
        } else if held > 0 && released == 0 && self.last_progress.elapsed() > ALIGN_STALL {
            aligner.release_forced(held, &mut take)
        } else {
            0
        };
        if forced > 0 {
            self.metrics.alignment_forced.inc_by(forced as u64);
            tracing::warn!(forced, held, bound = ?aligner.bound(), "a partition is not advancing: releasing held trades without waiting for it");
            released += forced;
        }
        if released > 0 || aligner.held() == 0 {
            self.last_progress = Instant::now();
        }
        self.metrics.alignment_held.set(aligner.held() as i64);
        self.supervisors
            .cx
            .view
            .set_clock_cap(aligner.bound().as_cap());
    }

    /// Pauses partitions that hold many trades back (the others are behind), resumes them
    /// once they hold few.
    fn flow_control(&mut self) {
        let mut pause = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        for p in self.ledger.owned() {
            let held = self.aligner.held_in(p);
            if held >= PAUSE_AT && self.paused.insert(p) {
                pause.add_partition(topics::RAW, p);
            } else if held <= RESUME_AT && self.paused.remove(&p) {
                resume.add_partition(topics::RAW, p);
            }
        }
        if pause.count() > 0
            && let Err(e) = self.consumer.pause(&pause)
        {
            tracing::warn!(error = %e, "cannot pause partitions");
        }
        if resume.count() > 0
            && let Err(e) = self.consumer.resume(&resume)
        {
            tracing::warn!(error = %e, "cannot resume partitions");
        }
    }

    /// Hands each symbol its trades of the round now (into its mailbox, or waiting for room
    /// when the mailbox is full); [`Self::settle`] collects the outcomes.
    fn dispatch(&mut self, groups: &mut HashMap<Symbol, Vec<TickRecord>>) -> Dispatched {
        let mut sends = Vec::with_capacity(groups.len());
        for (symbol, ticks) in groups.drain() {
            if ticks.is_empty() {
                continue;
            }
            let addr = self.supervisors.get(symbol);
            let batch: Arc<[TickRecord]> = ticks.into();
            let delivery = match self.quarantine.delivery(symbol, &batch) {
                Mode::OneByOne { through } => {
                    Delivery::OneByOne(Box::pin(one_by_one(addr, batch.clone(), through)))
                }
                Mode::Batch => Delivery::Batch(addr.send(TickBatch(batch.clone()))),
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
            let Err(failure) = result else { continue };
            if !self.supervisors.contains(symbol) {
                // Retired meanwhile: its new owner resumes from the checkpoint.
                continue;
            }
            match failure {
                Failure::Stage { error, at } => {
                    match self.quarantine.on_failure(symbol, &batch, at) {
                        Verdict::Replay => {
                            tracing::error!(%symbol, error, "symbol failed; restarting it from its checkpoint and replaying its partitions")
                        }
                        Verdict::ReplayOneByOne => {
                            tracing::error!(%symbol, error, "symbol failed again on the same trades; replaying them one by one")
                        }
                        Verdict::DeadLetter(dead) => {
                            tracing::error!(%symbol, error, trades = dead.len(), "found the trades the symbol fails on; dead-lettering them");
                            for r in &dead {
                                self.dead_letter_tick(symbol, r, &error).await;
                            }
                        }
                    }
                    self.replay_symbol(symbol, groups);
                }
                Failure::NotTheTicks(e) => {
                    tracing::warn!(%symbol, error = e, "symbol back at its checkpoint; replaying its partitions");
                    self.replay_symbol(symbol, groups);
                    blameless = true;
                }
                Failure::Unreachable(e) => {
                    // The mailbox is gone (its arbiter stopped): not the trades' fault. A new
                    // supervisor resumes from the checkpoint; nothing is dead-lettered.
                    tracing::warn!(%symbol, error = e, "symbol unreachable; starting it again and replaying its partitions");
                    self.supervisors.forget(symbol);
                    self.replay_symbol(symbol, groups);
                }
            }
        }
        if blameless {
            self.blameless.wait().await;
        } else {
            self.blameless.reset();
        }
    }

    /// Replays every partition `symbol` was fed from since the last commit, and its home.
    fn replay_symbol(&mut self, symbol: Symbol, groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        let mut parts: BTreeSet<i32> = self.feeds.of(symbol).iter().copied().collect();
        parts.insert(home_partition(symbol, self.partitions));
        for p in parts {
            self.replay(p, groups);
        }
    }

    /// Reads `partition` again from the last commit (or from where this consumer started
    /// it). Its trades read for the next round or held back are dropped: they come again.
    fn replay(&mut self, partition: i32, groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        if !self.ledger.owns(partition) {
            return;
        }
        let offset = self
            .ledger
            .replay_from(partition)
            .map_or(Offset::Beginning, Offset::Offset);
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
        self.ledger.rewind(partition);
        self.aligner.rewind(partition);
        for ticks in groups.values_mut() {
            ticks.retain(|r| r.at.partition != partition);
        }
    }

    /// Applies the rebalances the callbacks reported.
    async fn handle_rebalances(&mut self, groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        while let Ok(event) = self.rebalances.try_recv() {
            self.on_rebalance(event, groups).await;
        }
    }

    async fn on_rebalance(
        &mut self,
        event: RebalanceEvent,
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) {
        match event {
            RebalanceEvent::Assigned(parts) => self.assigned(&parts).await,
            RebalanceEvent::Revoked(parts) => self.revoked(&parts, groups),
        }
    }

    /// Takes `parts` on: notes where their logs end (a checkpoint past the end belongs to a
    /// replaced log), and restores every symbol checkpointed on them, so that quiet symbols
    /// close their bars on time after a failover.
    async fn assigned(&mut self, parts: &[i32]) {
        for &p in parts {
            self.ledger.assign(p);
            self.aligner.assign(p);
            self.paused.remove(&p);
        }
        let (consumer, partitions, assigned) =
            (self.consumer.clone(), self.partitions, parts.to_vec());
        let (ends, committed) = tokio::task::spawn_blocking(move || {
            let ends: Vec<(i32, i64)> = (0..partitions)
                .filter_map(|p| {
                    consumer
                        .fetch_watermarks(topics::RAW, p, WATERMARK_TIMEOUT)
                        .map(|(_, high)| (p, high))
                        .map_err(|e| tracing::warn!(partition = p, error = %e, "cannot read the partition's end"))
                        .ok()
                })
                .collect();
            let mut tpl = TopicPartitionList::new();
            for p in &assigned {
                tpl.add_partition(topics::RAW, *p);
            }
            let committed: Vec<(i32, i64)> = consumer
                .committed_offsets(tpl, WATERMARK_TIMEOUT)
                .map(|list| {
                    list.elements()
                        .iter()
                        .filter_map(|e| match e.offset() {
                            Offset::Offset(o) => Some((e.partition(), o)),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot read the committed offsets");
                    Vec::new()
                });
            (ends, committed)
        })
        .await
        .unwrap_or_default();
        self.supervisors.cx.view.set_log_ends(ends);
        // Reading starts at the commit: a first offset past it means the broker dropped what
        // lay between.
        for (p, offset) in committed {
            self.ledger.expect(p, offset);
        }
        let restored = match self.supervisors.cx.store.checkpointed_symbols().await {
            Ok(symbols) => symbols
                .into_iter()
                .filter(|s| parts.contains(&home_partition(*s, self.partitions)))
                .map(|s| self.supervisors.get(s))
                .count(),
            Err(e) => {
                tracing::warn!(error = ?e, "cannot list checkpointed symbols; quiet ones start with their next trade");
                0
            }
        };
        tracing::info!(?parts, restored, "partitions assigned");
    }

    /// Gives `parts` up: their symbols retire (their new owner resumes them from the
    /// checkpoints), and the partitions they were also fed from are replayed, so their
    /// trades there since the last commit are forwarded to the new owner.
    fn revoked(&mut self, parts: &[i32], groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        let mut replay = BTreeSet::new();
        for symbol in self.supervisors.symbols() {
            if parts.contains(&home_partition(symbol, self.partitions)) {
                self.supervisors.retire(symbol);
                replay.extend(self.feeds.remove(symbol));
                self.quarantine.forget_symbol(symbol);
                groups.remove(&symbol);
            }
        }
        for &p in parts {
            self.aligner.revoke(p);
            self.ledger.revoke(p);
            self.quarantine.forget_partition(p);
            self.paused.remove(&p);
            for ticks in groups.values_mut() {
                ticks.retain(|r| r.at.partition != p);
            }
        }
        for p in replay {
            self.replay(p, groups);
        }
        tracing::info!(?parts, "partitions revoked");
    }

    /// Checkpoints the symbols fed since the last commit, waits until everything is
    /// durable, commits offsets. On a failed flush, nothing is committed and everything
    /// since the last commit is done again.
    async fn commit(&mut self, groups: &mut HashMap<Symbol, Vec<TickRecord>>) {
        let touched: Vec<Symbol> = self.feeds.symbols().collect();
        let checkpoints: Vec<_> = touched
            .iter()
            .filter_map(|s| {
                let request = self.supervisors.addrs.get(s)?.send(TakeCheckpoint);
                Some(async move { (*s, request.await) })
            })
            .collect();
        let mut checkpointed = true;
        for (symbol, r) in futures_util::future::join_all(checkpoints).await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(StageError::Restarted)) => {
                    // It went back to its checkpoint on its own: rebuild it by replaying.
                    tracing::warn!(%symbol, "symbol back at its checkpoint; replaying its partitions");
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
                    tracing::error!(%symbol, error = %e, "symbol unreachable; not committing, replaying its partitions");
                    self.supervisors.forget(symbol);
                    self.replay_symbol(symbol, groups);
                    checkpointed = false;
                }
            }
        }
        if !checkpointed {
            // The symbols stay in `feeds`: they are asked again next time.
            return;
        }
        let outputs = self.supervisors.cx.outputs.flush().await;
        let letters = self.producer.flush().await.map_err(|e| e.to_string());
        if let Err(e) = outputs.and(letters) {
            tracing::error!(error = %e, "not everything since the last commit is durable; not committing, doing it again");
            self.metrics.commits_failed.inc();
            self.redo_since_commit(&touched, groups);
            return;
        }
        let aligner = &self.aligner;
        let plan = self.ledger.to_commit(|p| aligner.oldest_held(p));
        if !plan.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for (p, next) in &plan {
                if let Err(e) = tpl.add_partition_offset(topics::RAW, *p, Offset::Offset(*next)) {
                    tracing::error!(error = %e, "bad offset");
                }
            }
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                tracing::warn!(error = %e, "offset commit failed; will retry with the next one");
            }
        }
        // Everything before these positions is in the checkpoints and durable, whether or
        // not the asynchronous commit lands: replays can start there.
        self.ledger.committed(&plan);
        let position = |p: i32| plan.iter().find(|(q, _)| *q == p).map(|(_, o)| *o);
        self.quarantine.committed(position);
        self.feeds.clear();
    }

    /// A flush failed: outputs, dead letters or forwards since the last commit may be
    /// missing. The symbols fed since then go back to their checkpoints and every partition
    /// is read again from the last commit, with its malformed messages dead-lettered again
    /// (a duplicate letter is better than a lost one).
    fn redo_since_commit(
        &mut self,
        touched: &[Symbol],
        groups: &mut HashMap<Symbol, Vec<TickRecord>>,
    ) {
        for symbol in touched {
            if self.supervisors.contains(*symbol) {
                // do_send: the reset must not be dropped, and a full mailbox drains.
                self.supervisors.get(*symbol).do_send(Reset);
            }
        }
        let owned: Vec<i32> = self.ledger.owned().collect();
        for p in owned {
            self.ledger.forget_seen(p);
            self.replay(p, groups);
        }
    }
}
