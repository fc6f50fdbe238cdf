//! `Producer`: the one Kafka producer type, with the one flush whose result decides whether
//! anything may be committed.
//!
//! librdkafka queues, batches and sends in its own threads; a full queue makes [`Producer::send`]
//! wait (never drop). A send that librdkafka accepted can still fail later (broker gone,
//! message too large): those failures are counted by the delivery callback, and
//! [`Producer::flush`] reports every failure since the previous flush, so a caller that
//! commits only after `flush()` is `Ok` never commits past a message that did not arrive.

use crate::kafka::config;
use crate::kafka::wire::DeadLetter;
use crate::metrics::Metrics;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Longest a flush waits for librdkafka's queue to drain.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a send waits before trying again while librdkafka's queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(2);

/// Why a flush cannot vouch for what was sent.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// The queue did not drain within [`FLUSH_TIMEOUT`].
    #[error("not flushed within {FLUSH_TIMEOUT:?}: {0}")]
    Timeout(KafkaError),
    /// Messages accepted since the last flush were not delivered.
    #[error("{0} messages were not delivered")]
    Undelivered(u64),
    /// The blocking flush task failed.
    #[error("flush task failed: {0}")]
    Task(String),
}

/// Counts delivery failures reported by librdkafka's delivery callback.
#[derive(Default)]
pub struct DeliveryCounter {
    failed: AtomicU64,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if let Err((e, m)) = result {
            use rdkafka::Message;
            tracing::error!(error = %format!("{e:#}"), topic = m.topic(), partition = m.partition(), "message not delivered");
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One message to send.
pub struct Record<'a> {
    pub topic: &'a str,
    /// The key (the symbol for every tickflow topic); `None` sends an unkeyed message.
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    /// An explicit partition; `None` lets the key decide (murmur2, see `config::producer`).
    pub partition: Option<i32>,
    pub headers: Option<OwnedHeaders>,
}

impl<'a> Record<'a> {
    /// A message to `topic` keyed by `key`.
    pub fn keyed(topic: &'a str, key: &'a str, payload: &'a [u8]) -> Self {
        Self {
            topic,
            key: Some(key.as_bytes()),
            payload,
            partition: None,
            headers: None,
        }
    }
}

/// A producer shared by whoever sends to one set of topics; clones share it.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<ThreadedProducer<DeliveryCounter>>,
    /// Failures already reported by a flush.
    reported: Arc<AtomicU64>,
}

impl Producer {
    /// A producer to the cluster at `bootstrap` (configuration: [`config::producer`]).
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn new(bootstrap: &str) -> anyhow::Result<Self> {
        let inner: ThreadedProducer<DeliveryCounter> =
            config::producer(bootstrap).create_with_context(DeliveryCounter::default())?;
        Ok(Self {
            inner: Arc::new(inner),
            reported: Arc::default(),
        })
    }

    /// Enqueues `record`, waiting while librdkafka's queue is full.
    ///
    /// # Errors
    /// When librdkafka refuses the message for another reason (too large, unknown topic…).
    pub async fn send(&self, record: Record<'_>) -> Result<(), KafkaError> {
        let Record {
            topic,
            key,
            payload,
            partition,
            headers,
        } = record;
        let mut headers = headers;
        loop {
            let mut base = BaseRecord::<[u8], [u8]>::to(topic).payload(payload);
            if let Some(k) = key {
                base = base.key(k);
            }
            if let Some(p) = partition {
                base = base.partition(p);
            }
            if let Some(h) = headers.take() {
                base = base.headers(h);
            }
            match self.inner.send(base) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    headers = back.headers;
                    tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                }
                Err((e, _)) => {
                    self.count_failure();
                    return Err(e);
                }
            }
        }
    }

    /// Sends a dead letter (keyed like the refused message) and counts it by reason. A
    /// letter librdkafka refuses is logged and counted as a failure, so the next
    /// [`Self::flush`] fails and nothing past it is committed.
    pub async fn send_dead_letter(&self, metrics: &Metrics, letter: &DeadLetter) {
        metrics
            .dlq_messages
            .with_label_values(&[&letter.reason])
            .inc();
        let bytes = letter.to_json();
        let record = Record {
            topic: crate::kafka::topics::DLQ,
            key: letter.key.as_deref().map(str::as_bytes),
            payload: &bytes,
            partition: None,
            headers: None,
        };
        if let Err(e) = self.send(record).await {
            tracing::error!(error = %format!("{e:#}"), reason = %letter.reason, "cannot enqueue dead letter");
        }
    }

    /// Waits until everything queued so far is delivered (in a blocking thread: librdkafka's
    /// flush blocks), then reports the delivery failures since the last flush.
    ///
    /// # Errors
    /// A [`FlushError`] when anything sent since the previous flush may not have arrived.
    pub async fn flush(&self) -> Result<(), FlushError> {
        let inner = self.inner.clone();
        let drained = tokio::task::spawn_blocking(move || inner.flush(FLUSH_TIMEOUT))
            .await
            .map_err(|e| FlushError::Task(e.to_string()))?;
        let failed = self.inner.context().failed.load(Ordering::Relaxed);
        let new = failed - self.reported.swap(failed, Ordering::Relaxed);
        drained.map_err(FlushError::Timeout)?;
        if new > 0 {
            return Err(FlushError::Undelivered(new));
        }
        Ok(())
    }

    /// Counts a refused send as a delivery failure (reported by the next flush).
    fn count_failure(&self) {
        self.inner.context().failed.fetch_add(1, Ordering::Relaxed);
    }
}
