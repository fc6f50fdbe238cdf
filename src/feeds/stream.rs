//! `StreamFeed`: a provider's price WebSocket as a live feed (Yahoo Finance, TwelveData).
//!
//! One connection for all symbols (the reference opened one per symbol); a keepalive goes
//! out periodically (Yahoo wants the subscription repeated every 15 s, TwelveData a
//! heartbeat every 10 s); any failure reconnects forever with capped exponential backoff and
//! jitter, reset after a healthy minute (the reference gave up after ten lifetime errors).
//! Ticks carry the provider's event time and go to the raw topic keyed by symbol.

use crate::backoff::Backoff;
use crate::domain::{Source, Symbol, Tick};
use crate::feeds::DayVolumes;
use crate::feeds::twelvedata::{StreamEvent, decode_event};
use crate::feeds::yahoo::{QuoteConverter, decode_frame};
use crate::kafka::backlog::BacklogMonitor;
use crate::kafka::producer::{Producer, Record};
use crate::kafka::{topics, wire};
use crate::metrics::Metrics;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Yahoo's streaming endpoint.
pub const YAHOO_URL: &str = "wss://streamer.finance.yahoo.com/?version=2";
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

/// A streaming provider and what it needs to connect.
#[derive(Debug, Clone)]
pub enum Provider {
    /// Yahoo Finance: base64 protobuf `PricingData` frames.
    Yahoo { url: String },
    /// TwelveData: JSON price events; the key goes in the URL.
    TwelveData { url: String, api_key: String },
}

impl Provider {
    fn name(&self) -> &'static str {
        match self {
            Self::Yahoo { .. } => "yahoo",
            Self::TwelveData { .. } => "twelvedata",
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Yahoo { url } => url.clone(),
            Self::TwelveData { url, api_key } => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}apikey={api_key}")
            }
        }
    }

    /// The subscription message, and the keepalive message with its period.
    fn messages(&self, symbols: &[Symbol]) -> (String, String, Duration) {
        let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
        match self {
            Self::Yahoo { .. } => {
                let subscribe = serde_json::json!({ "subscribe": names }).to_string();
                (subscribe.clone(), subscribe, Duration::from_secs(15))
            }
            Self::TwelveData { .. } => (
                serde_json::json!({"action": "subscribe", "params": {"symbols": names.join(",")}})
                    .to_string(),
                r#"{"action":"heartbeat"}"#.to_owned(),
                Duration::from_secs(10),
            ),
        }
    }
}

/// Frames into ticks, with the per-symbol state the provider's format needs.
enum Decoder {
    Yahoo(QuoteConverter),
    TwelveData(DayVolumes),
}

impl Decoder {
    fn new(provider: &Provider) -> Self {
        match provider {
            Provider::Yahoo { .. } => Self::Yahoo(QuoteConverter::default()),
            Provider::TwelveData { .. } => Self::TwelveData(DayVolumes::default()),
        }
    }

    /// The tick a frame carries, `Ok(None)` for frames without one.
    fn tick(&mut self, text: &str) -> Result<Option<Tick>, String> {
        match self {
            Self::Yahoo(converter) => Ok(decode_frame(text)
                .map_err(|e| e.to_string())?
                .and_then(|q| converter.tick(&q))),
            Self::TwelveData(volumes) => match decode_event(text)? {
                StreamEvent::Price {
                    symbol,
                    price,
                    ts,
                    day_volume,
                } => {
                    let size = day_volume.map_or(0.0, |v| volumes.trade_size(symbol, v));
                    Tick::new(symbol, ts, price, size, Source::new("twelvedata"))
                        .map(Some)
                        .map_err(|e| e.to_string())
                }
                StreamEvent::SubscribeStatus { ok, fails } => {
                    if !ok || !fails.is_empty() {
                        tracing::warn!(?fails, "TwelveData refused some symbols");
                    }
                    Ok(None)
                }
                StreamEvent::Other => Ok(None),
            },
        }
    }
}

/// Runs the feed forever (spawn it on the actix runtime: awc clients are not `Send`).
pub async fn run(
    provider: Provider,
    symbols: Vec<Symbol>,
    producer: Producer,
    backlog: Arc<BacklogMonitor>,
    metrics: Metrics,
    state: Arc<FeedState>,
) {
    let (subscribe, keepalive, every) = provider.messages(&symbols);
    let url = provider.url();
    let name = provider.name();
    let mut decoder = Decoder::new(&provider);
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF).with_jitter(0.25);
    loop {
        let since = Instant::now();
        let messages = Messages {
            subscribe: &subscribe,
            keepalive: &keepalive,
            every,
        };
        match session(
            &url,
            messages,
            &producer,
            &backlog,
            &metrics,
            &state,
            &mut decoder,
        )
        .await
        {
            Ok(()) => tracing::warn!(feed = name, "stream closed; reconnecting"),
            Err(e) => {
                metrics.feed_errors.inc();
                tracing::warn!(feed = name, error = %format!("{e:#}"), "stream failed; reconnecting");
            }
        }
        state.connected.store(false, Ordering::Relaxed);
        if since.elapsed() >= HEALTHY_AFTER {
            backoff.reset();
        }
        backoff.wait().await;
    }
}

struct Messages<'a> {
    subscribe: &'a str,
    keepalive: &'a str,
    every: Duration,
}

async fn session(
    url: &str,
    messages: Messages<'_>,
    producer: &Producer,
    backlog: &BacklogMonitor,
    metrics: &Metrics,
    state: &FeedState,
    decoder: &mut Decoder,
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
    tracing::info!("feed stream connected");
    socket
        .send(ws::Message::Text(messages.subscribe.to_owned().into()))
        .await?;
    let mut keepalive = tokio::time::interval(messages.every);
    keepalive.tick().await;
    loop {
        tokio::select! {
            frame = socket.next() => {
                let Some(frame) = frame else { return Ok(()) };
                match frame? {
                    ws::Frame::Text(bytes) => {
                        state.frames.fetch_add(1, Ordering::Relaxed);
                        match decoder.tick(&String::from_utf8_lossy(&bytes)) {
                            Ok(Some(tick)) => {
                                if backlog.over_limit() {
                                    // A live feed cannot wait: counted, and /health is degraded.
                                    metrics.feed_unpaced.inc();
                                }
                                let payload = wire::encode_raw_tick(&tick);
                                producer.send(Record::keyed(topics::RAW, tick.symbol().as_str(), &payload)).await?;
                                metrics.feed_published.inc();
                            }
                            Ok(None) => {}
                            Err(e) => {
                                state.bad_frames.fetch_add(1, Ordering::Relaxed);
                                metrics.feed_errors.inc();
                                tracing::warn!(error = %format!("{e:#}"), "bad feed frame skipped");
                            }
                        }
                    }
                    ws::Frame::Ping(p) => socket.send(ws::Message::Pong(p)).await?,
                    ws::Frame::Close(_) => return Ok(()),
                    _ => {}
                }
            }
            _ = keepalive.tick() => socket.send(ws::Message::Text(messages.keepalive.to_owned().into())).await?,
        }
    }
}
