//! The topics tickflow uses, and their creation on a real cluster.

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Raw ticks in (the reference's §1.2a JSON), keyed by symbol.
pub const RAW: &str = "market.prices.raw";
/// Bars out, keyed by symbol.
pub const OHLCV: &str = "market.prices.ohlcv";
/// Bar analytics out, keyed by symbol.
pub const ANALYTICS: &str = "market.analytics";
/// Realtime metrics out (at most one per symbol per `--realtime-every`), keyed by symbol.
pub const REALTIME: &str = "market.analytics.realtime";
/// Raw messages that could not be processed, with the reason.
pub const DLQ: &str = "market.prices.dlq";

/// Partitions and retention of the topics.
#[derive(Debug, Clone, clap::Args)]
pub struct TopicSettings {
    /// Partitions per topic: the unit of parallelism across instances.
    #[arg(long, env = "TICKFLOW_PARTITIONS", default_value_t = 6)]
    pub partitions: i32,
    /// Replication factor (1 for a single broker).
    #[arg(long, env = "TICKFLOW_REPLICATION", default_value_t = 1)]
    pub replication: i32,
    /// Retention of the raw topic: long enough to replay after an outage.
    #[arg(long, env = "TICKFLOW_RAW_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub raw_retention: Duration,
    /// Retention of the output topics.
    #[arg(long, env = "TICKFLOW_OUTPUT_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub output_retention: Duration,
    /// Retention of the dead-letter topic.
    #[arg(long, env = "TICKFLOW_DLQ_RETENTION", default_value = "30d", value_parser = humantime::parse_duration)]
    pub dlq_retention: Duration,
}

impl TopicSettings {
    /// `(name, retention)` of every topic. All are `delete`-policy: compaction would keep
    /// one bar per key and reject unkeyed records (the reference's defect 28).
    pub fn all(&self) -> [(&'static str, Duration); 5] {
        [
            (RAW, self.raw_retention),
            (OHLCV, self.output_retention),
            (ANALYTICS, self.output_retention),
            (REALTIME, self.output_retention),
            (DLQ, self.dlq_retention),
        ]
    }
}

/// Creates every topic that does not exist yet; existing ones are left as they are. Only
/// missing topics are requested, so a cluster without the CreateTopics API (librdkafka's
/// mock broker, whose topics are made up front) works too.
///
/// # Errors
/// When the cluster cannot be reached or refuses a creation for another reason.
pub async fn create_topics(
    bootstrap: &str,
    settings: &TopicSettings,
) -> anyhow::Result<Vec<String>> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("cannot create a Kafka admin client")?;
    let admin = std::sync::Arc::new(admin);
    let probe = admin.clone();
    let existing: Vec<String> = tokio::task::spawn_blocking(move || {
        probe
            .inner()
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|m| m.topics().iter().map(|t| t.name().to_owned()).collect())
    })
    .await?
    .context("cannot read the cluster's topics")?;
    let retention: Vec<(String, String)> = settings
        .all()
        .iter()
        .filter(|(n, _)| !existing.iter().any(|e| e == n))
        .map(|(n, r)| ((*n).to_owned(), r.as_millis().to_string()))
        .collect();
    if retention.is_empty() {
        return Ok(Vec::new());
    }
    let topics: Vec<NewTopic<'_>> = retention
        .iter()
        .map(|(name, ms)| {
            NewTopic::new(
                name,
                settings.partitions,
                TopicReplication::Fixed(settings.replication),
            )
            .set("retention.ms", ms)
            .set("cleanup.policy", "delete")
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&topics, &opts)
        .await
        .context("create_topics failed")?;
    let mut created = Vec::new();
    for r in results {
        match r {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(created)
}
