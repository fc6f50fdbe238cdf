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

mod commit;
mod rebalance;
mod rounds;
mod supervisors;

use crate::actors::messages::{StageError, TickBatch};
use crate::actors::supervisor::{
    Reset, Retire, SupervisorContext, SymbolSupervisor, TakeCheckpoint,
};
use crate::backoff::Backoff;
use crate::domain::{Symbol, Timestamp};
use crate::kafka::origin::{Arrival, OriginHeader, origin_headers, origin_of};
use crate::kafka::partitioner::home_partition;
use crate::kafka::producer::{Producer, Record};
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

use rebalance::{PipelineContext, RebalanceEvent};
use rounds::Dispatched;
use supervisors::Supervisors;

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
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics = supervisors.metrics.clone();
        let consumer: StreamConsumer<PipelineContext> =
            config::pipeline_consumer(&settings.bootstrap, &settings.group).create_with_context(
                PipelineContext {
                    events: tx,
                    metrics: metrics.clone(),
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
    /// `Shutdown` is answered only once the consumer is closed: whoever waits on it may
    /// then stop the broker without leaving librdkafka's close waiting on it forever.
    async fn run(self, stop: oneshot::Receiver<oneshot::Sender<()>>) -> anyhow::Result<()> {
        let consumer = self.consumer.clone();
        let result = self.consume(stop).await;
        if let Err(e) = tokio::task::spawn_blocking(move || drop(consumer)).await {
            tracing::warn!(error = %format!("{e:#}"), "closing the consumer failed");
        }
        match result {
            Ok(Some(done)) => {
                let _ = done.send(());
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Returns whom to tell once the consumer is closed.
    async fn consume(
        mut self,
        mut stop: oneshot::Receiver<oneshot::Sender<()>>,
    ) -> anyhow::Result<Option<oneshot::Sender<()>>> {
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
                    return Ok(done.ok());
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
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "Kafka consumer error"),
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
        let clock_limit = match clock::check_not_future(tick.ts(), message_time, now(), skew) {
            Ok(reference) => reference,
            Err(e) => {
                if first {
                    self.dead_letter(m, &e.to_string(), "future_timestamp")
                        .await;
                }
                return;
            }
        };
        if at.partition >= self.partitions && first {
            tracing::error!(
                partition = at.partition,
                known = self.partitions,
                "the raw topic has more partitions than when this instance started; restart every instance so they agree on home partitions"
            );
        }
        let view = &self.supervisors.cx.view;
        let (epoch, key) = (view.epoch(), view.forward_key());
        let payload = m.payload().unwrap_or_default();
        let arrival = Arrival {
            partition: at.partition,
            partitions: self.partitions,
            payload,
        };
        let seq = match origin_of(m.headers(), key, epoch, arrival) {
            OriginHeader::Absent => at,
            OriginHeader::Forwarded(partition, offset) => Seq { partition, offset },
            OriginHeader::Ignored => {
                if first {
                    self.metrics.origin_headers_ignored.inc();
                    let seen = self.metrics.origin_headers_ignored.get();
                    // Logged at 1, 2, 4, 8, …: a producer that sets it on every message
                    // does not flood the log; the counter has the exact number.
                    if seen.is_power_of_two() {
                        tracing::warn!(
                            partition = at.partition,
                            offset = at.offset,
                            seen,
                            "a message carries a tickflow-origin header that does not verify (written by a producer, or by a tickflow instance of this group using another database: instances of one group must share one): ignored, the message is a trade of its own"
                        );
                    }
                }
                at
            }
        };
        let ledger = &self.ledger;
        match routing::route(tick.symbol(), self.partitions, |p| ledger.owns(p)) {
            Route::Local => self.aligner.push(TickRecord {
                tick,
                seq,
                at,
                clock_limit,
            }),
            Route::Forward { home } => {
                let symbol = tick.symbol();
                let record = Record {
                    topic: topics::RAW,
                    key: Some(symbol.as_str().as_bytes()),
                    payload,
                    partition: Some(home),
                    headers: Some(origin_headers(
                        key,
                        epoch,
                        seq.partition,
                        seq.offset,
                        payload,
                    )),
                };
                // A failed send fails the next flush: nothing past it is committed.
                match self.producer.send(record).await {
                    Ok(()) => self.metrics.ticks_forwarded.inc(),
                    Err(e) => {
                        tracing::error!(%symbol, error = %format!("{e:#}"), "cannot forward a trade to its home partition")
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
            tracing::warn!(error = %format!("{e:#}"), "cannot pause partitions");
        }
        if resume.count() > 0
            && let Err(e) = self.consumer.resume(&resume)
        {
            tracing::warn!(error = %format!("{e:#}"), "cannot resume partitions");
        }
    }
}
