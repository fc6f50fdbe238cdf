//! `OutputPublisher`: every symbol's outputs onto the output topics, keyed by symbol.
//!
//! librdkafka queues and batches the messages; a full queue makes the sender wait, never
//! drop. [`OutputPublisher::flush`] waits until every message so far is acknowledged by the
//! brokers, or reports the delivery failures since the last flush.

use crate::kafka::{topics, wire};
use crate::metrics::Metrics;
use crate::output::OutputBatch;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counts delivery failures reported by librdkafka's delivery callback.
#[derive(Default, Clone)]
pub struct DeliveryCounter {
    failed: Arc<AtomicU64>,
}

impl DeliveryCounter {
    /// Delivery failures reported so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if let Err((e, _)) = result {
            tracing::error!(error = %e, "output message not delivered");
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A producer for tickflow's topics: idempotent, LZ4, acknowledged by all replicas.
///
/// # Errors
/// When librdkafka rejects the configuration.
pub fn producer(bootstrap: &str) -> anyhow::Result<ThreadedProducer<DeliveryCounter>> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        // Only failures are counted: success reports would cost a callback per message.
        .set("delivery.report.only.error", "true")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "200000")
        .create_with_context(DeliveryCounter::default())?)
}

/// Sends `payload` to `topic` keyed by `key`, waiting while librdkafka's queue is full.
pub async fn send_waiting(
    producer: &ThreadedProducer<DeliveryCounter>,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> Result<(), KafkaError> {
    loop {
        match producer.send(BaseRecord::<str, [u8]>::to(topic).key(key).payload(payload)) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Sends `m` to the dead-letter topic with why it was refused, and counts it by `reason`.
/// A failure to enqueue is logged: the DLQ must never stop the consumer that refused `m`.
pub async fn dead_letter(
    dlq: &ThreadedProducer<DeliveryCounter>,
    metrics: &Metrics,
    m: &rdkafka::message::BorrowedMessage<'_>,
    error: &str,
    reason: &str,
) {
    use rdkafka::Message;
    let origin = wire::Origin {
        topic: m.topic(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
    };
    let letter = wire::DeadLetter::new(origin, m.payload().unwrap_or_default(), error, reason);
    send_dead_letter(dlq, metrics, &letter).await;
}

/// Sends `letter` to the dead-letter topic (keyed like the refused message) and counts it by
/// its reason. A failure to enqueue is logged, never returned.
pub async fn send_dead_letter(
    dlq: &ThreadedProducer<DeliveryCounter>,
    metrics: &Metrics,
    letter: &wire::DeadLetter,
) {
    metrics
        .dlq_messages
        .with_label_values(&[&letter.reason])
        .inc();
    // unwrap: a struct of strings and integers always serialises.
    let bytes = serde_json::to_vec(letter).unwrap();
    let key = letter.key.as_deref().unwrap_or("");
    if let Err(e) = send_waiting(dlq, topics::DLQ, key, &bytes).await {
        tracing::error!(error = %e, "cannot enqueue dead letter");
    }
}

/// The output-topic publisher, shared by every symbol.
///
/// Not an actor: each symbol's supervisor encodes and enqueues its own outputs on its own
/// arbiter thread (one symbol's messages stay in order: one sender, one key, one
/// partition), so encoding spreads over the workers instead of queueing on one thread.
/// librdkafka batches, compresses and sends in its own threads.
pub struct OutputPublisher {
    producer: Arc<ThreadedProducer<DeliveryCounter>>,
    metrics: Metrics,
    /// Failures already reported by a flush.
    reported_failures: AtomicU64,
}

impl OutputPublisher {
    /// A publisher to the cluster at `bootstrap`.
    ///
    /// # Errors
    /// When the producer cannot be created.
    pub fn new(bootstrap: &str, metrics: Metrics) -> anyhow::Result<Self> {
        Ok(Self {
            producer: Arc::new(producer(bootstrap)?),
            metrics,
            reported_failures: AtomicU64::new(0),
        })
    }

    /// Encodes and enqueues every bar, analytics and realtime record of `b`, waiting while
    /// librdkafka's queue is full.
    pub async fn publish(&self, b: &OutputBatch) {
        // One buffer for every message of the batch; librdkafka copies each payload.
        let mut buf = Vec::with_capacity(512);
        let mut sent = [0u64; 3];
        for i in 0..b.bars.len() + b.analytics.len() + b.realtime.len() {
            buf.clear();
            let (kind, key) = if let Some(r) = b.bars.get(i) {
                buf.extend_from_slice(&wire::encode_bar(&r.bar));
                (0, r.bar.symbol)
            } else if let Some(a) = b.analytics.get(i - b.bars.len()) {
                wire::encode_analytics_into(a, &mut buf);
                (1, a.symbol)
            } else {
                let r = &b.realtime[i - b.bars.len() - b.analytics.len()];
                wire::encode_realtime_into(r, &mut buf);
                (2, r.symbol)
            };
            let topic = OUTPUT_TOPICS[kind];
            match send_waiting(&self.producer, topic, key.as_str(), &buf).await {
                Ok(()) => sent[kind] += 1,
                Err(e) => {
                    tracing::error!(error = %e, topic, "cannot enqueue output message");
                    self.producer
                        .context()
                        .failed
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        for (topic, n) in OUTPUT_TOPICS.iter().zip(sent) {
            if n > 0 {
                self.metrics.published.with_label_values(&[topic]).inc_by(n);
            }
        }
    }

    /// Waits until librdkafka has delivered everything queued so far (in a blocking thread:
    /// flush blocks), then reports the delivery failures since the last flush.
    ///
    /// # Errors
    /// When the queue does not drain in 30 s, or messages were not delivered.
    pub async fn flush(&self) -> Result<(), String> {
        let producer = self.producer.clone();
        let flushed = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(30)))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("output topics not flushed: {e}"));
        let failed = self.producer.context().failed();
        let new = failed - self.reported_failures.swap(failed, Ordering::Relaxed);
        flushed?;
        if new > 0 {
            return Err(format!("{new} output messages were not delivered"));
        }
        Ok(())
    }
}

/// Bars, analytics, realtime metrics.
const OUTPUT_TOPICS: [&str; 3] = [topics::OHLCV, topics::ANALYTICS, topics::REALTIME];
