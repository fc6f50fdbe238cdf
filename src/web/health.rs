//! `/health` (real checks of Kafka and the store) and `/metrics` (Prometheus text).

use crate::web::AppState;
use actix_web::{HttpResponse, web};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

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

    /// Asks the cluster for the raw topic's metadata (in a blocking thread).
    async fn check(&self) -> Result<usize, String> {
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
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// `GET /health`: 200 when Kafka and the store answer, 503 otherwise.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let (kafka, store) = futures_util::join!(
        state.kafka.check(),
        tokio::time::timeout(PROBE_TIMEOUT, state.store.ping())
    );
    let store = match store {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err("timed out".to_owned()),
    };
    let feed = state.feed.as_ref().map(|f| {
        use std::sync::atomic::Ordering::Relaxed;
        json!({
            "kind": "yahoo",
            "connected": f.connected.load(Relaxed),
            "connections": f.connections.load(Relaxed),
            "frames": f.frames.load(Relaxed),
            "bad_frames": f.bad_frames.load(Relaxed),
        })
    });
    let backlog = state.backlog.health();
    let pipeline_problem = backlog.problem();
    let healthy = kafka.is_ok() && store.is_ok() && pipeline_problem.is_none();
    let body = json!({
        "status": if healthy { "healthy" } else { "degraded" },
        "timestamp": crate::domain::Timestamp::from_datetime(&chrono::Utc::now()).to_rfc3339(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "services": {
            "kafka": {
                "status": if kafka.is_ok() { "connected" } else { "unreachable" },
                "bootstrap": state.kafka.bootstrap,
                "embedded": state.kafka.embedded,
                "error": kafka.as_ref().err(),
            },
            "database": {
                "status": if store.is_ok() { "connected" } else { "unreachable" },
                "mode": state.store.mode(),
                "error": store.as_ref().err(),
            },
            "feed": feed,
            "pipeline": {
                "status": if pipeline_problem.is_none() { "ok" } else { "degraded" },
                "backlog": backlog,
                "problem": pipeline_problem,
            },
        },
    });
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: every series in Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
