//! The broker epoch: which Kafka log a checkpoint's offsets belong to.
//!
//! A checkpoint says "this symbol has applied every trade up to offset O of partition P".
//! That is only true of the log it was written against: a new embedded broker (every start
//! without `KAFKA_BOOTSTRAP_SERVERS`), or a wiped cluster, starts its partitions at 0 again,
//! and a restored checkpoint would skip every new trade up to O. So the first tickflow to
//! use a broker writes one record to [`topics::EPOCH`] — a random id — and every instance
//! reads the first record of that topic: the id of the log. Checkpoints carry it; one from
//! another epoch keeps its bar and indicator state but none of its offsets.
//! (librdkafka's mock cluster names itself after a heap address, so its cluster id can
//! repeat across starts: not an identity.)

use crate::kafka::producer::{Producer, Record};
use crate::kafka::{config, topics};
use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// Longest the epoch record is looked for (a cluster that does not answer in this time is
/// not usable anyway).
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// The group name the epoch reader gives (it never joins or commits).
const READER_GROUP: &str = "tickflow-epoch-reader";

/// The first record of [`topics::EPOCH`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrokerEpoch {
    /// 128 random bits, hex.
    pub id: String,
    /// Whether the broker is tickflow's embedded one (which keeps only ~5 MiB per
    /// partition: producers into it pace themselves, see `kafka::backlog`).
    pub embedded: bool,
    /// When it was written (RFC 3339), for people.
    pub created_at: String,
}

/// Reads the broker's epoch, writing a new one first if the broker has none.
///
/// # Errors
/// When the broker cannot be read or written, or its epoch record is not one.
pub async fn establish(bootstrap: &str, embedded: bool) -> anyhow::Result<BrokerEpoch> {
    if let Some(epoch) = read(bootstrap).await? {
        return Ok(epoch);
    }
    let mine = BrokerEpoch {
        id: format!("{:032x}", rand::random::<u128>()),
        embedded,
        created_at: crate::domain::Timestamp::from_datetime(&chrono::Utc::now()).to_rfc3339(),
    };
    // unwrap: a struct of strings and a bool always serialises.
    let payload = serde_json::to_vec(&mine).unwrap();
    let producer = Producer::new(bootstrap)?;
    producer
        .send(Record {
            topic: topics::EPOCH,
            key: Some(b"epoch"),
            payload: &payload,
            partition: Some(0),
            headers: None,
        })
        .await
        .context("cannot write the broker epoch")?;
    producer
        .flush()
        .await
        .context("cannot write the broker epoch")?;
    // Another instance may have written one at the same time: the first record wins.
    read(bootstrap)
        .await?
        .context("the broker epoch just written cannot be read back")
}

/// The broker's epoch, or `None` when none was written yet.
///
/// # Errors
/// When the topic cannot be read within [`READ_TIMEOUT`] or its first record is malformed.
pub async fn read(bootstrap: &str) -> anyhow::Result<Option<BrokerEpoch>> {
    let bootstrap = bootstrap.to_owned();
    tokio::task::spawn_blocking(move || read_blocking(&bootstrap)).await?
}

fn read_blocking(bootstrap: &str) -> anyhow::Result<Option<BrokerEpoch>> {
    let consumer: BaseConsumer<config::EofIsNoError> =
        config::direct_reader(bootstrap, READER_GROUP)
            .create_with_context(config::EofIsNoError)
            .context("cannot create the epoch reader")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topics::EPOCH, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let started = Instant::now();
    while started.elapsed() < READ_TIMEOUT {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let payload = m.payload().unwrap_or_default();
                let epoch: BrokerEpoch = serde_json::from_slice(payload).with_context(|| {
                    format!(
                        "the first record of {} is not a broker epoch: {}",
                        topics::EPOCH,
                        String::from_utf8_lossy(payload)
                    )
                })?;
                return Ok(Some(epoch));
            }
            Some(Err(e)) if config::is_partition_eof(&e) => return Ok(None),
            // Not there yet (topic being created, leader election): ask again.
            Some(Err(e)) => tracing::debug!(error = %format!("{e:#}"), "epoch reader"),
            None => {}
        }
    }
    anyhow::bail!(
        "no answer from {} within {READ_TIMEOUT:?} (is the broker up and the topic created?)",
        topics::EPOCH
    )
}
