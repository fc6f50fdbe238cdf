//! `OutputPublisher`: every symbol's outputs onto the output topics, keyed by symbol.
//!
//! Not an actor: each symbol's supervisor encodes and enqueues its own outputs on its own
//! arbiter thread (one symbol's messages stay in order: one sender, one key, one
//! partition), so encoding spreads over the workers instead of queueing on one thread.
//! Every bar, analytics and forming-bar message carries its interval in the
//! [`INTERVAL_HEADER`], so readers that route by (symbol, interval) — the WebSocket feeder —
//! never parse the JSON.

use crate::domain::{Interval, Symbol};
use crate::kafka::producer::{FlushError, Producer, Record};
use crate::kafka::{topics, wire};
use crate::metrics::Metrics;
use crate::output::OutputBatch;
use rdkafka::message::{Header, OwnedHeaders};

/// The header naming a message's interval (`1m` … `1d`).
pub const INTERVAL_HEADER: &str = "interval";

/// What one output message is, to pick its topic and count it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Bar,
    Forming,
    Analytics,
    Realtime,
}

impl Kind {
    const ALL: [Self; 4] = [Self::Bar, Self::Forming, Self::Analytics, Self::Realtime];

    fn topic(self) -> &'static str {
        match self {
            Self::Bar => topics::OHLCV,
            Self::Forming => topics::FORMING,
            Self::Analytics => topics::ANALYTICS,
            Self::Realtime => topics::REALTIME,
        }
    }
}

fn interval_headers(interval: Interval) -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(1).insert(Header {
        key: INTERVAL_HEADER,
        value: Some(interval.as_str()),
    })
}

/// The output-topic publisher, shared by every symbol.
pub struct OutputPublisher {
    producer: Producer,
    metrics: Metrics,
}

impl OutputPublisher {
    /// A publisher to the cluster at `bootstrap`.
    ///
    /// # Errors
    /// When the producer cannot be created.
    pub fn new(bootstrap: &str, metrics: Metrics) -> anyhow::Result<Self> {
        Ok(Self {
            producer: Producer::new(bootstrap)?,
            metrics,
        })
    }

    /// Encodes and enqueues every bar, forming bar, analytics and realtime record of `b`,
    /// waiting while librdkafka's queue is full. A message librdkafka refuses is logged and
    /// makes the next [`Self::flush`] fail (so nothing past it is committed).
    pub async fn publish(&self, b: &OutputBatch) {
        // One buffer for every message of the batch; librdkafka copies each payload.
        let mut buf = Vec::with_capacity(512);
        let mut sent = [0u64; 4];
        for r in &b.bars {
            buf.clear();
            buf.extend(wire::encode_bar(&r.bar, wire::BarStatus::of(&r.bar), None));
            self.send(
                Kind::Bar,
                r.bar.symbol,
                Some(r.bar.interval),
                &buf,
                &mut sent,
            )
            .await;
        }
        for f in &b.forming {
            buf.clear();
            buf.extend(wire::encode_bar(
                &f.bar,
                wire::BarStatus::InProgress,
                f.values.as_ref(),
            ));
            self.send(
                Kind::Forming,
                f.bar.symbol,
                Some(f.bar.interval),
                &buf,
                &mut sent,
            )
            .await;
        }
        for a in &b.analytics {
            buf.clear();
            wire::encode_analytics_into(a, &mut buf);
            self.send(Kind::Analytics, a.symbol, Some(a.interval), &buf, &mut sent)
                .await;
        }
        for r in &b.realtime {
            buf.clear();
            wire::encode_realtime_into(r, &mut buf);
            self.send(Kind::Realtime, r.symbol, None, &buf, &mut sent)
                .await;
        }
        for (kind, n) in Kind::ALL.iter().zip(sent) {
            if n > 0 {
                self.metrics
                    .published
                    .with_label_values(&[kind.topic()])
                    .inc_by(n);
            }
        }
    }

    async fn send(
        &self,
        kind: Kind,
        symbol: Symbol,
        interval: Option<Interval>,
        payload: &[u8],
        sent: &mut [u64; 4],
    ) {
        let record = Record {
            topic: kind.topic(),
            key: Some(symbol.as_str().as_bytes()),
            payload,
            partition: None,
            headers: interval.map(interval_headers),
        };
        match self.producer.send(record).await {
            Ok(()) => sent[kind as usize] += 1,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), topic = kind.topic(), "cannot enqueue output message");
            }
        }
    }

    /// Waits until everything enqueued so far is delivered.
    ///
    /// # Errors
    /// When anything since the last flush may not have arrived.
    pub async fn flush(&self) -> Result<(), FlushError> {
        self.producer.flush().await
    }
}
