//! WebSocket clients over loopback: live bars and trades, unsubscribe, eviction of a stalled
//! client while the others keep receiving, a client that does not read closed and its
//! connection dropped, intervals not built refused.

use crate::helpers::*;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::{Duration, Instant};
use tickflow::domain::{Source, Symbol, Tick, Timestamp};

type Socket = actix_codec::Framed<awc::BoxedSocket, ws::Codec>;

async fn connect(addr: std::net::SocketAddr, path: &str) -> Socket {
    let (_, socket) = awc::Client::new()
        .ws(format!("ws://{addr}{path}"))
        .max_frame_size(1 << 20)
        .connect()
        .await
        .expect("WebSocket upgrade");
    socket
}

/// The next text message, answering pings; `None` on close or after `wait`.
async fn next_text(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, socket.next()).await.ok()?? {
            Ok(ws::Frame::Text(t)) => return serde_json::from_slice(&t).ok(),
            Ok(ws::Frame::Ping(p)) => socket.send(ws::Message::Pong(p)).await.ok()?,
            Ok(ws::Frame::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

fn minute_ticks(symbol: &str, from_secs: i64, minutes: i64, per_minute: i64) -> Vec<Tick> {
    let sym = Symbol::parse(symbol).unwrap();
    (0..minutes * per_minute)
        .map(|i| {
            let ts = Timestamp::from_micros(from_secs * 1_000_000 + i * 60_000_000 / per_minute);
            Tick::new(
                sym,
                ts,
                100.0 + (i % 7) as f64,
                10.0,
                Source::new("ws-test"),
            )
            .unwrap()
        })
        .collect()
}

#[actix_rt::test]
async fn websocket_clients_receive_live_bars_and_trades_and_can_unsubscribe() {
    let kafka = broker(3);
    let app = spawn_app(settings(kafka.bootstrap_servers(), None, "ws-live")).await;
    let mut bars = connect(app.http_addr, "/ws/bars/aapl?interval=1min").await;
    let mut trades = connect(app.http_addr, "/ws/prices/AAPL").await;
    let mut analytics = connect(app.http_addr, "/ws/analytics/AAPL?interval=realtime").await;
    for (s, topic, interval) in [
        (&mut bars, "market.prices.ohlcv", Some("1m")),
        (&mut trades, "market.prices.raw", None),
        (
            &mut analytics,
            "market.analytics.realtime",
            Some("realtime"),
        ),
    ] {
        let c = next_text(s, Duration::from_secs(5))
            .await
            .expect("confirmation");
        assert_eq!(
            (
                c["type"].as_str(),
                c["status"].as_str(),
                c["topic"].as_str(),
                c["symbol"].as_str()
            ),
            (
                Some("subscription"),
                Some("success"),
                Some(topic),
                Some("AAPL")
            )
        );
        assert_eq!(
            c["interval"].as_str(),
            interval,
            "the canonical name, whatever spelling was asked (1min)"
        );
    }
    // The feeder's consumer group starts at the latest offsets: let it join first.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let ticks = minute_ticks("AAPL", 1_709_910_000, 3, 20);
    publish(&producer(kafka.bootstrap_servers()), &ticks);

    let mut prices = Vec::new();
    while prices.len() < ticks.len() {
        let m = next_text(&mut trades, Duration::from_secs(10))
            .await
            .expect("a trade");
        prices.push(m["price"].as_f64().unwrap());
    }
    assert_eq!(
        prices,
        ticks.iter().map(Tick::price).collect::<Vec<_>>(),
        "every trade, in order"
    );

    let mut closed = Vec::new();
    while closed.len() < 2 {
        let m = next_text(&mut bars, Duration::from_secs(10))
            .await
            .expect("a bar");
        assert_eq!(
            (
                m["type"].as_str(),
                m["symbol"].as_str(),
                m["interval"].as_str(),
                m["interval_minutes"].as_u64()
            ),
            (Some("bar"), Some("AAPL"), Some("1m"), Some(1))
        );
        if m["status"] == "closed" {
            closed.push(m);
        }
    }
    assert_eq!(
        closed[0]["timestamp"].as_str(),
        Some("2024-03-08T15:00:00Z")
    );
    assert_eq!(
        (closed[0]["trades"].as_u64(), closed[0]["volume"].as_f64()),
        (Some(20), Some(200.0))
    );
    let realtime = next_text(&mut analytics, Duration::from_secs(10))
        .await
        .expect("realtime metrics");
    assert_eq!(realtime["event_type"].as_str(), Some("analytics.realtime"));

    // Unsubscribe: confirmed, then silence.
    trades
        .send(ws::Message::Text(r#"{"action":"unsubscribe"}"#.into()))
        .await
        .unwrap();
    let m = next_text(&mut trades, Duration::from_secs(5))
        .await
        .expect("unsubscribed");
    assert_eq!(m["status"].as_str(), Some("unsubscribed"));
    publish(
        &producer(kafka.bootstrap_servers()),
        &minute_ticks("AAPL", 1_709_910_600, 1, 5),
    );
    assert!(
        next_text(&mut trades, Duration::from_secs(2))
            .await
            .is_none(),
        "no messages after unsubscribing"
    );
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_stalled_client_is_evicted_while_others_keep_receiving() {
    let kafka = broker(3);
    let app = spawn_app(settings(kafka.bootstrap_servers(), None, "ws-stall")).await;
    let mut reader = connect(app.http_addr, "/ws/prices/MSFT").await;
    let mut stalled = connect(app.http_addr, "/ws/prices/MSFT").await;
    next_text(&mut reader, Duration::from_secs(5))
        .await
        .expect("confirmation");
    next_text(&mut stalled, Duration::from_secs(5))
        .await
        .expect("confirmation");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Waves smaller than the client queue, until the stalled client (whose socket buffers
    // fill up, then its queue) is evicted: the reading client is never far behind, even on a
    // loaded machine, and must get every trade.
    let ticks = minute_ticks("MSFT", 1_709_910_000, 2000, 100);
    let producer = producer(kafka.bootstrap_servers());
    let (mut sent, mut received, mut evicted_at) = (0usize, 0usize, None);
    for wave in ticks.chunks(200) {
        for t in wave {
            publish_raw(
                &producer,
                Some("MSFT"),
                &tickflow::kafka::wire::encode_raw_tick(t),
            );
        }
        sent += wave.len();
        while received < sent {
            next_text(&mut reader, Duration::from_secs(15))
                .await
                .unwrap_or_else(|| panic!("the reading client stopped at {received}"));
            received += 1;
        }
        if evicted_at.is_none() && app.metrics.ws_evicted.get() >= 1 {
            evicted_at = Some(sent);
        }
        if evicted_at.is_some_and(|at| sent >= at + 2_000) {
            break;
        }
    }
    assert!(
        evicted_at.is_some(),
        "the stalled client was never evicted ({sent} trades sent)"
    );
    assert_eq!(received, sent, "the reading client got every trade");

    // The stalled client, when it finally reads, finds its messages end in a close frame.
    let mut closed = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), stalled.next()).await {
            Ok(Some(Ok(ws::Frame::Close(reason)))) => {
                let reason = reason.expect("a close reason");
                assert!(reason.description.unwrap_or_default().contains("too slow"));
                closed = true;
                break;
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    assert!(closed, "the stalled client was closed with a reason");
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_client_that_pings_without_reading_is_closed_and_unsubscribed() {
    let kafka = broker(3);
    let app = spawn_app(settings(kafka.bootstrap_servers(), None, "ws-pinger")).await;
    let mut pinger = connect(app.http_addr, "/ws/prices/NFLX").await;
    next_text(&mut pinger, Duration::from_secs(5))
        .await
        .expect("confirmation");
    assert_eq!(app.metrics.ws_clients.get(), 1);
    // Pings (125 bytes, the most a control frame carries) until the pongs the server owes
    // fill both socket buffers; the client never reads. Its own writes then block too.
    let payload = actix_web::web::Bytes::from_static(&[b'p'; 125]);
    let flood = async {
        for _ in 0..400_000 {
            if pinger
                .feed(ws::Message::Ping(payload.clone()))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = pinger.flush().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), flood).await;
    // A session stuck writing a pong would never reach its silence check: it must give up
    // on the client instead, and drop its subscription.
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.metrics.ws_clients.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.metrics.ws_clients.get(),
        0,
        "the client that does not read still holds its session"
    );
    // The session is gone; its connection must go too, though the client still reads
    // nothing (left open, it holds megabytes of unread pongs in kernel buffers until the
    // client leaves). The kernel drops it once nothing sent was acknowledged for 30 s: the
    // client's writes then fail.
    let dropped = tokio::time::timeout(Duration::from_secs(90), async {
        while pinger
            .send(ws::Message::Ping(payload.clone()))
            .await
            .is_ok()
        {}
    })
    .await;
    assert!(
        dropped.is_ok(),
        "the server still holds the connection of a client that does not read"
    );
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_subscription_to_an_interval_this_instance_does_not_build_is_refused_by_name() {
    // Built: 1m, 5m, 1h, 1d (the default). A 15-minute subscription would wait forever.
    let kafka = broker(3);
    let app = spawn_app(settings(kafka.bootstrap_servers(), None, "ws-not-built")).await;
    for path in [
        "/ws/bars/AAPL?interval=15m",
        "/ws/analytics/AAPL?interval=15min",
    ] {
        let upgrade = awc::Client::new()
            .ws(format!("ws://{}{path}", app.http_addr))
            .connect()
            .await;
        assert!(
            matches!(&upgrade, Err(awc::error::WsClientError::InvalidResponseStatus(s)) if s.as_u16() == 422),
            "{path}: {:?}",
            upgrade.map(|_| ())
        );
        let (status, body, _) = crate::fixture::get(&app, path).await;
        assert_eq!(status, 422, "{path}");
        let item = &body["detail"][0];
        assert_eq!(item["loc"][1], "interval", "{path}: {body}");
        let msg = item["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains("15m") && msg.contains("1m, 5m, 1h, 1d"),
            "{path}: {msg}"
        );
    }
    let mut built = connect(app.http_addr, "/ws/bars/AAPL?interval=5min").await;
    let confirmation = next_text(&mut built, Duration::from_secs(5))
        .await
        .expect("confirmation");
    assert_eq!(confirmation["status"], "success", "{confirmation}");
    assert_eq!(confirmation["interval"], "5m", "{confirmation}");
    app.shutdown().await;
}
