//! `YahooStream`: the Yahoo Finance WebSocket as a live feed.
//!
//! One connection for all symbols (the reference opened one per symbol); the subscription is
//! sent again every 15 s as Yahoo expects; any failure reconnects forever with capped
//! exponential backoff and jitter, reset after a healthy minute (the reference gave up after
//! ten lifetime errors). Ticks go to the raw topic keyed by symbol.

use crate::actors::publisher::{DeliveryCounter, send_waiting};
use crate::domain::Symbol;
use crate::feeds::yahoo::{QuoteConverter, decode_frame};
use crate::kafka::{topics, wire};
use crate::metrics::Metrics;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use rdkafka::producer::ThreadedProducer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Yahoo's streaming endpoint.
pub const DEFAULT_URL: &str = "wss://streamer.finance.yahoo.com/?version=2";
/// How often the subscription is repeated.
const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(15);
/// Connected this long, a connection counts as healthy and the backoff starts over.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What `/health` and the metrics show about the feed.
#[derive(Debug, Default)]
pub struct FeedState {
    pub connected: AtomicBool,
    pub connections: AtomicU64,
    pub frames: AtomicU64,
    pub bad_frames: AtomicU64,
}

/// Runs the feed forever (spawn it on the actix runtime: awc clients are not `Send`).
pub async fn run(
    url: String,
    symbols: Vec<Symbol>,
    producer: Arc<ThreadedProducer<DeliveryCounter>>,
    metrics: Metrics,
    state: Arc<FeedState>,
) {
    let subscribe =
        serde_json::json!({ "subscribe": symbols.iter().map(Symbol::as_str).collect::<Vec<_>>() })
            .to_string();
    let mut converter = QuoteConverter::default();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let since = Instant::now();
        match session(
            &url,
            &subscribe,
            &producer,
            &metrics,
            &state,
            &mut converter,
        )
        .await
        {
            Ok(()) => tracing::warn!(url, "Yahoo stream closed; reconnecting"),
            Err(e) => {
                metrics.feed_errors.inc();
                tracing::warn!(url, error = %e, "Yahoo stream failed; reconnecting");
            }
        }
        state.connected.store(false, Ordering::Relaxed);
        if since.elapsed() >= HEALTHY_AFTER {
            backoff = FIRST_BACKOFF;
        }
        let jitter = rand::rng().random_range(0.0..0.25) * backoff.as_secs_f64();
        tokio::time::sleep(backoff + Duration::from_secs_f64(jitter)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn session(
    url: &str,
    subscribe: &str,
    producer: &ThreadedProducer<DeliveryCounter>,
    metrics: &Metrics,
    state: &FeedState,
    converter: &mut QuoteConverter,
) -> anyhow::Result<()> {
    let (_, mut socket) = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish()
        .ws(url)
        .max_frame_size(1 << 20)
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("connect: {e}"))?;
    state.connected.store(true, Ordering::Relaxed);
    state.connections.fetch_add(1, Ordering::Relaxed);
    tracing::info!(url, "Yahoo stream connected");
    socket.send(ws::Message::Text(subscribe.into())).await?;
    let mut resubscribe = tokio::time::interval(RESUBSCRIBE_EVERY);
    resubscribe.tick().await;
    loop {
        tokio::select! {
            frame = socket.next() => {
                let Some(frame) = frame else { return Ok(()) };
                match frame? {
                    ws::Frame::Text(bytes) => {
                        state.frames.fetch_add(1, Ordering::Relaxed);
                        match decode_frame(&String::from_utf8_lossy(&bytes)) {
                            Ok(Some(quote)) => {
                                if let Some(tick) = converter.tick(&quote) {
                                    send_waiting(producer, topics::RAW, tick.symbol().as_str(), &wire::encode_raw_tick(&tick)).await?;
                                    metrics.feed_published.inc();
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                state.bad_frames.fetch_add(1, Ordering::Relaxed);
                                metrics.feed_errors.inc();
                                tracing::warn!(error = %e, "bad Yahoo frame skipped");
                            }
                        }
                    }
                    ws::Frame::Ping(p) => socket.send(ws::Message::Pong(p)).await?,
                    ws::Frame::Close(_) => return Ok(()),
                    _ => {}
                }
            }
            _ = resubscribe.tick() => socket.send(ws::Message::Text(subscribe.into())).await?,
        }
    }
}
