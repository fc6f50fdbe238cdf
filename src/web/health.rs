//! `/health` (real checks of Kafka and the store) and `/metrics` (Prometheus text). Both
//! are open, so `/health` says what failed in words and never shows a driver's error text
//! (the log has it).

use crate::web::routes::{Call, Reply};
use actix_web::HttpResponse;
use futures_util::future::LocalBoxFuture;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// How long a health probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A Kafka client kept for health probes (metadata requests).
pub struct KafkaProbe {
    pub bootstrap: String,
    pub embedded: bool,
    client: Arc<BaseProducer>,
}

impl KafkaProbe {
    /// A probe of the cluster at `bootstrap`.
    ///
    /// # Errors
    /// When the client cannot be created.
    pub fn new(bootstrap: &str, embedded: bool) -> anyhow::Result<Self> {
        let client: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()?;
        Ok(Self {
            bootstrap: bootstrap.to_owned(),
            embedded,
            client: Arc::new(client),
        })
    }

    /// Asks the cluster for the raw topic's metadata (in a blocking thread); the error is
    /// logged with its cause and reported without it.
    async fn check(&self) -> Result<usize, &'static str> {
        let client = self.client.clone();
        let res = actix_web::rt::task::spawn_blocking(move || {
            client
                .client()
                .fetch_metadata(Some(crate::kafka::topics::RAW), PROBE_TIMEOUT)
                .map(|m| m.brokers().len())
        })
        .await;
        match res {
            Ok(Ok(brokers)) => Ok(brokers),
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "health: kafka metadata request failed");
                Err("metadata request failed")
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "health: kafka probe did not finish");
                Err("probe failed")
            }
        }
    }
}

/// `GET /health`.
#[derive(Serialize, ToSchema)]
pub struct HealthAnswer {
    /// `healthy` (200) or `degraded` (503).
    pub status: &'static str,
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub services: Services,
}

/// What `/health` checks.
#[derive(Serialize, ToSchema)]
pub struct Services {
    pub kafka: KafkaHealth,
    pub database: DatabaseHealth,
    /// The network feed, when one runs.
    pub feed: Option<FeedHealth>,
    pub pipeline: PipelineHealth,
}

/// Kafka, asked for metadata.
#[derive(Serialize, ToSchema)]
pub struct KafkaHealth {
    /// `connected` or `unreachable`.
    pub status: &'static str,
    pub bootstrap: String,
    /// Whether the broker is the embedded one.
    pub embedded: bool,
    /// What failed, in words (the log has the cause).
    pub error: Option<&'static str>,
}

/// The store, asked a trivial query.
#[derive(Serialize, ToSchema)]
pub struct DatabaseHealth {
    /// `connected` or `unreachable`.
    pub status: &'static str,
    /// `postgres` or `memory`.
    pub mode: &'static str,
    /// What failed, in words (the log has the cause).
    pub error: Option<&'static str>,
}

/// The pipeline's intake: the raw topic's backlog.
#[derive(Serialize, ToSchema)]
pub struct PipelineHealth {
    /// `ok` or `degraded`.
    pub status: &'static str,
    pub backlog: BacklogOut,
    /// Why it is degraded, in words.
    pub problem: Option<String>,
}

/// The raw topic's backlog as the pipeline consumer last saw it.
#[derive(Serialize, ToSchema)]
pub struct BacklogOut {
    /// The largest uncommitted backlog of a partition.
    pub largest: i64,
    /// The limit producers wait at (null: none).
    pub limit: Option<i64>,
    /// Messages dropped by the broker before they were committed, since start.
    pub lost: i64,
}

/// A network feed's connection.
#[derive(Serialize, ToSchema)]
pub struct FeedHealth {
    pub kind: &'static str,
    pub connected: bool,
    pub connections: u64,
    pub frames: u64,
    pub bad_frames: u64,
}

/// `GET /health`: 200 when Kafka and the store answer, 503 otherwise.
pub fn health(call: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move {
        let state = &call.state;
        let (kafka, store) = futures_util::join!(
            state.kafka.check(),
            tokio::time::timeout(PROBE_TIMEOUT, state.store.ping())
        );
        let store = match store {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "health: store ping failed");
                Err("query failed")
            }
            Err(_) => Err("timed out"),
        };
        let feed = state.feed.as_ref().map(|f| {
            use std::sync::atomic::Ordering::Relaxed;
            FeedHealth {
                kind: "stream",
                connected: f.connected.load(Relaxed),
                connections: f.connections.load(Relaxed),
                frames: f.frames.load(Relaxed),
                bad_frames: f.bad_frames.load(Relaxed),
            }
        });
        let backlog = state.backlog.health();
        let problem = backlog.problem();
        let healthy = kafka.is_ok() && store.is_ok() && problem.is_none();
        let body = HealthAnswer {
            status: if healthy { "healthy" } else { "degraded" },
            timestamp: crate::domain::Timestamp::from_datetime(&chrono::Utc::now()).to_rfc3339(),
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: state.started.elapsed().as_secs(),
            services: Services {
                kafka: KafkaHealth {
                    status: if kafka.is_ok() {
                        "connected"
                    } else {
                        "unreachable"
                    },
                    bootstrap: state.kafka.bootstrap.clone(),
                    embedded: state.kafka.embedded,
                    error: kafka.err(),
                },
                database: DatabaseHealth {
                    status: if store.is_ok() {
                        "connected"
                    } else {
                        "unreachable"
                    },
                    mode: state.store.mode(),
                    error: store.err(),
                },
                feed,
                pipeline: PipelineHealth {
                    status: if problem.is_none() { "ok" } else { "degraded" },
                    backlog: BacklogOut {
                        largest: backlog.largest,
                        limit: backlog.limit,
                        lost: backlog.lost,
                    },
                    problem,
                },
            },
        };
        Ok(if healthy {
            HttpResponse::Ok().json(body)
        } else {
            HttpResponse::ServiceUnavailable().json(body)
        })
    })
}

/// `GET /metrics`: every series in Prometheus text format.
pub fn metrics(call: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move {
        Ok(HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(call.state.metrics.render()))
    })
}
