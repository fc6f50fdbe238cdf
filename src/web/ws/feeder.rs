//! The WebSocket feeder: reads the raw and output topics with a consumer group of its own
//! (one per instance, from the latest offsets) and relays what WebSocket clients listen to,
//! so every instance serves every symbol however the pipeline's partitions are spread.
//!
//! Closed, revised and forming bars, analytics and realtime metrics are relayed exactly as
//! published (routed by the message key — the symbol — and the interval header, never
//! decoded); trades are parsed (producers write them in several shapes) and re-encoded in
//! the one raw-tick shape. It starts consuming when the first WebSocket client subscribes:
//! an instance nobody watches does not read every trade a second time.

use crate::domain::{Interval, Symbol};
use crate::kafka::publisher::INTERVAL_HEADER;
use crate::kafka::{config, topics, wire};
use crate::web::ws::broadcaster::{Broadcaster, Channel, Interest, Relay};
use actix::prelude::*;
use futures_util::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use std::sync::Arc;
use std::time::Duration;

/// How often the feeder looks whether anyone subscribed yet.
const IDLE_CHECK: Duration = Duration::from_millis(100);

/// The interval named by a message's header.
fn interval_of(m: &BorrowedMessage<'_>) -> Option<Interval> {
    let header = m
        .headers()?
        .iter()
        .find(|h| h.key == INTERVAL_HEADER)?
        .value?;
    std::str::from_utf8(header).ok()?.parse().ok()
}

/// The channel and payload a message goes to, if anyone wants it.
fn relay_of(m: &BorrowedMessage<'_>, wanted: impl Fn((Channel, Symbol)) -> bool) -> Option<Relay> {
    let payload = m.payload().unwrap_or_default();
    let keyed = m
        .key()
        .and_then(|k| std::str::from_utf8(k).ok())
        .and_then(|k| Symbol::parse(k).ok());
    let verbatim = |key: (Channel, Symbol)| {
        wanted(key).then(|| Relay {
            key,
            payload: Arc::from(String::from_utf8_lossy(payload).as_ref()),
        })
    };
    match m.topic() {
        topics::RAW => {
            if keyed.is_some_and(|s| !wanted((Channel::Prices, s))) {
                return None;
            }
            let t = wire::parse_raw_tick(payload).ok()?;
            let key = (Channel::Prices, t.symbol());
            wanted(key).then(|| Relay {
                key,
                payload: Arc::from(String::from_utf8_lossy(&wire::encode_raw_tick(&t)).as_ref()),
            })
        }
        topics::REALTIME => verbatim((Channel::Realtime, keyed?)),
        topics::ANALYTICS => verbatim((Channel::Analytics(interval_of(m)?), keyed?)),
        topics::OHLCV | topics::FORMING => verbatim((Channel::Bars(interval_of(m)?), keyed?)),
        _ => None,
    }
}

/// Runs until the consumer fails; relays each wanted message to `broadcaster`.
pub async fn run(bootstrap: String, broadcaster: Addr<Broadcaster>, interest: Interest) {
    // unwrap: the broadcaster never panics while holding the lock.
    while interest.read().unwrap().is_empty() {
        tokio::time::sleep(IDLE_CHECK).await;
    }
    let consumer: StreamConsumer = match config::live_reader(&bootstrap).create() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "WebSocket feeder cannot start");
            return;
        }
    };
    if let Err(e) = consumer.subscribe(&[
        topics::RAW,
        topics::OHLCV,
        topics::FORMING,
        topics::ANALYTICS,
        topics::REALTIME,
    ]) {
        tracing::error!(error = %format!("{e:#}"), "WebSocket feeder cannot subscribe");
        return;
    }
    let mut stream = consumer.stream();
    while let Some(msg) = stream.next().await {
        let m = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "WebSocket feeder consumer error");
                continue;
            }
        };
        let wanted = |key: (Channel, Symbol)| {
            // unwrap: the broadcaster never panics while holding the lock.
            interest.read().unwrap().contains(&key)
        };
        if let Some(relay) = relay_of(&m, wanted)
            && broadcaster.send(relay).await.is_err()
        {
            return;
        }
    }
}
