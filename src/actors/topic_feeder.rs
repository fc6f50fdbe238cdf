//! `TopicFeeder`: reads the raw and output topics with a consumer group of its own (one per
//! instance, from the latest offsets) and relays what WebSocket clients listen to, so every
//! instance serves every symbol however the pipeline's partitions are spread.
//!
//! It starts consuming when the first WebSocket client subscribes: an instance nobody
//! watches does not read every trade and metric a second time.

use crate::actors::broadcaster::{Broadcaster, Channel, Interest, Relay};
use crate::domain::{Interval, Symbol};
use crate::kafka::{topics, wire};
use actix::prelude::*;
use futures_util::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message};
use std::sync::Arc;

#[derive(serde::Deserialize)]
struct Routing {
    symbol: String,
    interval_minutes: u32,
}

/// Runs until the consumer fails; relays each wanted message to `broadcaster`.
pub async fn run(bootstrap: String, broadcaster: Addr<Broadcaster>, interest: Interest) {
    // unwrap: the broadcaster never panics while holding the lock.
    while interest.read().unwrap().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let consumer: StreamConsumer = match ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set(
            "group.id",
            format!("tickflow-ws-{:016x}", rand::random::<u64>()),
        )
        .set("auto.offset.reset", "latest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "20")
        .create()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "WebSocket feeder cannot start");
            return;
        }
    };
    if let Err(e) = consumer.subscribe(&[
        topics::RAW,
        topics::OHLCV,
        topics::ANALYTICS,
        topics::REALTIME,
    ]) {
        tracing::error!(error = %e, "WebSocket feeder cannot subscribe");
        return;
    }
    let mut stream = consumer.stream();
    while let Some(msg) = stream.next().await {
        let m = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "WebSocket feeder consumer error");
                continue;
            }
        };
        let payload = m.payload().unwrap_or_default();
        let keyed = m
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| Symbol::parse(k).ok());
        let wanted = |key: (Channel, Symbol)| {
            // unwrap: the broadcaster never panics while holding the lock.
            interest.read().unwrap().contains(&key)
        };
        let relay = match m.topic() {
            topics::RAW => {
                if keyed.is_some_and(|s| !wanted((Channel::Prices, s))) {
                    continue;
                }
                match wire::parse_raw_tick(payload) {
                    Ok(t) if wanted((Channel::Prices, t.symbol())) => Some((
                        (Channel::Prices, t.symbol()),
                        Arc::from(String::from_utf8_lossy(&wire::encode_raw_tick(&t)).as_ref()),
                    )),
                    _ => None,
                }
            }
            topics::REALTIME => keyed.filter(|s| wanted((Channel::Realtime, *s))).map(|s| {
                (
                    (Channel::Realtime, s),
                    Arc::from(String::from_utf8_lossy(payload).as_ref()),
                )
            }),
            topic @ (topics::ANALYTICS | topics::OHLCV) => {
                let Ok(r) = serde_json::from_slice::<Routing>(payload) else {
                    continue;
                };
                let (Ok(symbol), Some(interval)) = (
                    Symbol::parse(&r.symbol),
                    Interval::from_minutes(r.interval_minutes),
                ) else {
                    continue;
                };
                if topic == topics::ANALYTICS {
                    let key = (Channel::Analytics(interval), symbol);
                    wanted(key).then(|| (key, Arc::from(String::from_utf8_lossy(payload).as_ref())))
                } else {
                    let key = (Channel::Bars(interval), symbol);
                    if !wanted(key) {
                        continue;
                    }
                    serde_json::from_slice::<wire::BarMessage>(payload)
                        .ok()
                        // Backfilled and replayed bars are history, not live.
                        .filter(|b| b.source == wire::AGGREGATOR)
                        .map(|b| {
                            let mut v = serde_json::to_value(&b).unwrap_or_default();
                            v["type"] = "bar".into();
                            v["status"] = if b.revision == 0 { "closed" } else { "revised" }.into();
                            (key, Arc::from(v.to_string()))
                        })
                }
            }
            _ => None,
        };
        if let Some((key, payload)) = relay
            && broadcaster.send(Relay { key, payload }).await.is_err()
        {
            return;
        }
    }
}
