//! Every Kafka client configuration tickflow uses, in one place, with its reasons.
//!
//! Each function returns a `ClientConfig` for one role; callers add nothing but what is
//! theirs alone (a context, a group name). Numbers are named constants.

use rdkafka::ClientConfig;
use std::time::Duration;

/// How long a librdkafka fetch waits for data before answering: short, so a quiet partition
/// does not hold up a round (latency over throughput; batches form under load anyway).
pub const FETCH_WAIT: Duration = Duration::from_millis(10);
/// A killed instance's partitions move to the others after this long without heartbeats.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// Heartbeats to the group coordinator (a third of the session timeout or less).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How often librdkafka reports statistics (consumer lag, watermarks, committed offsets).
pub const STATISTICS_INTERVAL: Duration = Duration::from_secs(1);
/// How long producers wait to fill a batch.
pub const LINGER: Duration = Duration::from_millis(5);
/// Messages librdkafka queues per producer before a send waits.
pub const PRODUCER_QUEUE_MESSAGES: u32 = 200_000;
/// Largest message tickflow produces (librdkafka's and the broker's default limit): dead
/// letters of larger inputs are truncated to fit (see `wire::DeadLetter`).
pub const MAX_MESSAGE_BYTES: usize = 1_000_000;
/// Per-partition fetch size: small enough that partitions are read at similar rates, so the
/// pipeline's event-time alignment across partitions holds back little.
pub const MAX_PARTITION_FETCH_BYTES: u32 = 256 * 1024;

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

/// The base of every client: the cluster address.
fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

/// The pipeline's consumer of the raw topic (`group` shared by the instances).
///
/// Manual commits (offsets are committed only once everything before them is durable);
/// `earliest` for a new group (nothing produced before the first start is skipped);
/// cooperative-sticky assignment (a rebalance moves only the partitions that must move);
/// partition-EOF events (the event-time alignment needs to know which partitions are
/// caught up).
pub fn pipeline_consumer(bootstrap: &str, group: &str) -> ClientConfig {
    let mut c = client(bootstrap);
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("statistics.interval.ms", ms(STATISTICS_INTERVAL))
        .set("fetch.wait.max.ms", ms(FETCH_WAIT))
        .set(
            "max.partition.fetch.bytes",
            MAX_PARTITION_FETCH_BYTES.to_string(),
        )
        .set("enable.partition.eof", "true")
        .set("session.timeout.ms", ms(SESSION_TIMEOUT))
        .set("heartbeat.interval.ms", ms(HEARTBEAT_INTERVAL));
    c
}

/// A consumer of its own group that stores what it reads and commits by hand (the bar
/// ingest of backfilled history): `earliest`, so nothing published before it started is
/// missed.
pub fn ingest_consumer(bootstrap: &str, group: &str) -> ClientConfig {
    let mut c = client(bootstrap);
    c.set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", ms(FETCH_WAIT));
    c
}

/// A live reader (the WebSocket feeder): a group of its own per process, from the latest
/// offsets, never committing (a restart starts at "now" again).
pub fn live_reader(bootstrap: &str) -> ClientConfig {
    let mut c = client(bootstrap);
    c.set(
        "group.id",
        format!("tickflow-live-{:016x}", rand::random::<u64>()),
    )
    .set("auto.offset.reset", "latest")
    .set("enable.auto.commit", "false")
    .set("fetch.wait.max.ms", ms(FETCH_WAIT));
    c
}

/// A client that reads assigned partitions directly (no group membership): the broker-epoch
/// record, committed offsets of the pipeline's group for the backlog probe.
pub fn direct_reader(bootstrap: &str, group: &str) -> ClientConfig {
    let mut c = client(bootstrap);
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true");
    c
}

/// Every producer: idempotent and acknowledged by all in-sync replicas (no duplicate or
/// reordered message on retries), LZ4, only failed deliveries reported (a callback per
/// success would cost more than the send), and the Java client's key hashing (murmur2), so
/// tickflow's own keyed messages land on their symbol's home partition
/// ([`crate::kafka::partitioner`]) as Java, aiokafka and kafka-python producers' do.
pub fn producer(bootstrap: &str) -> ClientConfig {
    let mut c = client(bootstrap);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", ms(LINGER))
        .set("delivery.report.only.error", "true")
        .set("compression.type", "lz4")
        .set("partitioner", "murmur2_random")
        .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
        .set(
            "queue.buffering.max.messages",
            PRODUCER_QUEUE_MESSAGES.to_string(),
        );
    c
}

/// An admin or metadata client (topic creation, health probes).
pub fn admin(bootstrap: &str) -> ClientConfig {
    client(bootstrap)
}

/// The context of tickflow's consumers that ask for partition-EOF events: librdkafka also
/// reports each of them through the error callback, where they are not errors.
pub struct EofIsNoError;

impl rdkafka::ClientContext for EofIsNoError {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if !is_partition_eof(&error) {
            tracing::error!(%error, reason, "Kafka client error");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for EofIsNoError {}

/// Whether `error` only says a partition's end was reached.
pub fn is_partition_eof(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    matches!(
        error,
        KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
    )
}
