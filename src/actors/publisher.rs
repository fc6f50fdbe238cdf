//! `OutputPublisher`: every symbol's outputs onto the output topics, keyed by symbol.
//!
//! librdkafka queues and batches the messages; a full queue makes the handler wait (and so
//! the sender), never drop. [`Flush`] waits until every message so far is acknowledged by
//! the brokers, or reports the delivery failures since the last flush.

use crate::actors::messages::{Flush, Publish};
use crate::kafka::{topics, wire};
use crate::metrics::Metrics;
use actix::prelude::*;
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
    use base64::Engine;
    use rdkafka::Message;
    metrics.dlq_messages.with_label_values(&[reason]).inc();
    let payload = m.payload().unwrap_or_default();
    let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
    let letter = wire::DeadLetter {
        error: error.to_owned(),
        reason: reason.to_owned(),
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        key: key.clone(),
        payload: String::from_utf8_lossy(payload).into_owned(),
        payload_base64: base64::engine::general_purpose::STANDARD.encode(payload),
        received_at: crate::domain::Timestamp::from_datetime(&chrono::Utc::now()).to_rfc3339(),
    };
    // unwrap: a struct of strings and integers always serialises.
    let bytes = serde_json::to_vec(&letter).unwrap();
    if let Err(e) = send_waiting(dlq, topics::DLQ, key.as_deref().unwrap_or(""), &bytes).await {
        tracing::error!(error = %e, "cannot enqueue dead letter");
    }
}

/// The output-topic publisher.
pub struct OutputPublisher {
    producer: Arc<ThreadedProducer<DeliveryCounter>>,
    metrics: Metrics,
    /// Failures already reported by a flush.
    reported_failures: u64,
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
            reported_failures: 0,
        })
    }
}

impl Actor for OutputPublisher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
    }
}

impl Handler<Publish> for OutputPublisher {
    type Result = AtomicResponse<Self, ()>;

    /// Encodes and enqueues every bar, analytics and realtime record of the batch.
    fn handle(&mut self, msg: Publish, _: &mut Self::Context) -> Self::Result {
        let (producer, metrics) = (self.producer.clone(), self.metrics.clone());
        AtomicResponse::new(Box::pin(
            async move {
                let b = &msg.0;
                // One buffer for every message of the batch; librdkafka copies each payload.
                let mut buf = Vec::with_capacity(512);
                let counters = [topics::OHLCV, topics::ANALYTICS, topics::REALTIME]
                    .map(|t| metrics.published.with_label_values(&[t]));
                for i in 0..b.bars.len() + b.analytics.len() + b.realtime.len() {
                    buf.clear();
                    let (topic, key) = if let Some(r) = b.bars.get(i) {
                        buf.extend_from_slice(&wire::encode_bar(&r.bar));
                        (topics::OHLCV, r.bar.symbol)
                    } else if let Some(a) = b.analytics.get(i - b.bars.len()) {
                        wire::encode_analytics_into(a, &mut buf);
                        (topics::ANALYTICS, a.symbol)
                    } else {
                        let r = &b.realtime[i - b.bars.len() - b.analytics.len()];
                        wire::encode_realtime_into(r, &mut buf);
                        (topics::REALTIME, r.symbol)
                    };
                    match send_waiting(&producer, topic, key.as_str(), &buf).await {
                        Ok(()) => counters[usize::from(topic == topics::ANALYTICS)
                            + 2 * usize::from(topic == topics::REALTIME)]
                        .inc(),
                        Err(e) => {
                            tracing::error!(error = %e, topic, "cannot enqueue output message");
                            producer.context().failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            .into_actor(self),
        ))
    }
}

impl Handler<Flush> for OutputPublisher {
    type Result = AtomicResponse<Self, Result<(), String>>;

    /// Waits until librdkafka has delivered everything queued (in a blocking thread: flush
    /// blocks), then reports failures since the last flush.
    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        let producer = self.producer.clone();
        AtomicResponse::new(Box::pin(
            async move {
                tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(30)))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("output topics not flushed: {e}"))
            }
            .into_actor(self)
            .map(|res, act, _| {
                let failed = act.producer.context().failed.load(Ordering::Relaxed);
                let new = failed - act.reported_failures;
                act.reported_failures = failed;
                res?;
                if new > 0 {
                    return Err(format!("{new} output messages were not delivered"));
                }
                Ok(())
            }),
        ))
    }
}
