//! The topics tickflow uses, and their creation on a real cluster.

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Raw ticks in (the reference's §1.2a JSON), keyed by symbol.
pub const RAW: &str = "market.prices.raw";
/// Bars the pipeline closed or revised, keyed by symbol.
pub const OHLCV: &str = "market.prices.ohlcv";
/// Bars still open, with the indicator values they would give if they closed now, about
/// once a second per symbol and interval while trades come in (short retention: live view).
pub const FORMING: &str = "market.prices.forming";
/// Bars from elsewhere (history providers, `tickflow replay --bars`) and backfill coverage
/// markers, keyed by symbol; stored by the bar-ingest consumer.
pub const HISTORY: &str = "market.prices.history";
/// Bar analytics out, keyed by symbol.
pub const ANALYTICS: &str = "market.analytics";
/// Realtime metrics out (at most one per symbol per `--realtime-every`), keyed by symbol.
pub const REALTIME: &str = "market.analytics.realtime";
/// Raw messages that could not be processed, with the reason.
pub const DLQ: &str = "market.prices.dlq";
/// One record naming the broker's epoch (`kafka::epoch`): one partition, kept forever.
pub const EPOCH: &str = "tickflow.epoch";

/// Retention of the forming-bar topic: it is a live view, replaced every second.
pub const FORMING_RETENTION: Duration = Duration::from_secs(3600);

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

/// One topic to create: name, partitions, retention (`None`: forever).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: &'static str,
    pub partitions: i32,
    pub retention: Option<Duration>,
}

impl TopicSettings {
    /// Every topic tickflow uses. All are `delete`-policy: compaction would keep one bar per
    /// key and reject unkeyed records (the reference's defect 28).
    pub fn all(&self) -> Vec<TopicSpec> {
        let spec = |name, retention| TopicSpec {
            name,
            partitions: self.partitions,
            retention: Some(retention),
        };
        vec![
            spec(RAW, self.raw_retention),
            spec(OHLCV, self.output_retention),
            spec(FORMING, FORMING_RETENTION),
            spec(HISTORY, self.output_retention),
            spec(ANALYTICS, self.output_retention),
            spec(REALTIME, self.output_retention),
            spec(DLQ, self.dlq_retention),
            TopicSpec {
                name: EPOCH,
                partitions: 1,
                retention: None,
            },
        ]
    }
}

impl TopicSpec {
    /// The topic's configuration at creation.
    pub fn configs(&self) -> Vec<(&'static str, String)> {
        let retention = self
            .retention
            .map_or("-1".to_owned(), |r| r.as_millis().to_string());
        let mut configs = vec![
            ("retention.ms", retention),
            ("cleanup.policy", "delete".to_owned()),
        ];
        if self.name == RAW {
            // Trades are judged against their message's time (`pipeline::clock`): the
            // broker's clock, not each producer's — a producer whose clock runs slow would
            // otherwise see its present trades refused as from the future.
            configs.push(("message.timestamp.type", "LogAppendTime".to_owned()));
        }
        configs
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
    let admin: AdminClient<DefaultClientContext> = crate::kafka::config::admin(bootstrap)
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
    let missing: Vec<(TopicSpec, Vec<(&str, String)>)> = settings
        .all()
        .into_iter()
        .filter(|t| !existing.iter().any(|e| e == t.name))
        .map(|t| {
            let configs = t.configs();
            (t, configs)
        })
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|(t, configs)| {
            configs.iter().fold(
                NewTopic::new(
                    t.name,
                    t.partitions,
                    TopicReplication::Fixed(settings.replication),
                ),
                |topic, (key, value)| topic.set(key, value),
            )
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

/// The number of partitions of `topic` (waits up to 10 s for the cluster to answer).
///
/// # Errors
/// When the cluster does not answer or has no such topic.
pub async fn partition_count(bootstrap: &str, topic: &str) -> anyhow::Result<i32> {
    let client: AdminClient<DefaultClientContext> = crate::kafka::config::admin(bootstrap)
        .create()
        .context("cannot create a Kafka admin client")?;
    let name = topic.to_owned();
    let count = tokio::task::spawn_blocking(move || {
        client
            .inner()
            .fetch_metadata(Some(&name), Duration::from_secs(10))
            .map(|m| {
                m.topics()
                    .iter()
                    .find(|t| t.name() == name)
                    .map_or(0, |t| t.partitions().len())
            })
    })
    .await?
    .with_context(|| format!("cannot read the metadata of {topic}"))?;
    anyhow::ensure!(
        count > 0,
        "topic {topic} has no partitions (does it exist?)"
    );
    // `try_from`: Kafka partition counts are i32 on the wire.
    Ok(i32::try_from(count)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_topic_takes_the_brokers_clock_and_every_topic_deletes_by_age() {
        let settings = TopicSettings {
            partitions: 6,
            replication: 1,
            raw_retention: Duration::from_secs(7 * 86_400),
            output_retention: Duration::from_secs(86_400),
            dlq_retention: Duration::from_secs(30 * 86_400),
        };
        for spec in settings.all() {
            let configs = spec.configs();
            let get = |k: &str| {
                configs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(get("cleanup.policy"), Some("delete"), "{}", spec.name);
            assert_eq!(
                get("message.timestamp.type"),
                (spec.name == RAW).then_some("LogAppendTime"),
                "{}",
                spec.name
            );
            let want = spec
                .retention
                .map_or("-1".to_owned(), |r| r.as_millis().to_string());
            assert_eq!(get("retention.ms"), Some(want.as_str()), "{}", spec.name);
        }
    }
}
