//! Market-data feeds against local servers speaking the providers' formats.

use crate::helpers::*;
use actix_web::{App, HttpRequest, web};
use base64::Engine;
use prost::Message as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tickflow::app::FeedKind;
use tickflow::feeds::yahoo::PricingData;
use tickflow::kafka::topics;

fn pricing_frame(symbol: &str, price: f32, time_ms: i64, last_size: i64) -> String {
    let q = PricingData {
        id: symbol.into(),
        price,
        time: time_ms,
        day_volume: 1_000,
        last_size,
        ..Default::default()
    };
    let message = base64::engine::general_purpose::STANDARD.encode(q.encode_to_vec());
    serde_json::json!({ "type": "pricing", "message": message }).to_string()
}

/// A stand-in for Yahoo: each connection waits for `{"subscribe":[…]}`, then sends its
/// scripted frames. The first drops the connection mid-stream (no close frame).
async fn yahoo(
    req: HttpRequest,
    body: web::Payload,
    connections: web::Data<Arc<AtomicUsize>>,
) -> actix_web::Result<actix_web::HttpResponse> {
    let (resp, mut session, mut stream) = actix_ws::handle(&req, body)?;
    let n = connections.fetch_add(1, Ordering::SeqCst);
    actix_web::rt::spawn(async move {
        use futures_util::StreamExt;
        // The subscription comes first.
        while let Some(Ok(m)) = stream.next().await {
            if let actix_ws::Message::Text(t) = m {
                assert!(t.contains("\"subscribe\"") && t.contains("AAPL"), "{t}");
                break;
            }
        }
        let base = 1_755_546_185_000 + (n as i64) * 1_000_000;
        for i in 0..5 {
            let _ = session
                .text(pricing_frame(
                    if i % 2 == 0 { "AAPL" } else { "MSFT" },
                    229.35 + i as f32,
                    base + i * 1_000,
                    100 + i,
                ))
                .await;
        }
        let _ = session
            .text(r#"{"type":"pricing","message":"not base64!"}"#)
            .await;
        let _ = session.text(r#"{"type":"heartbeat"}"#).await;
        if n == 0 {
            // Dropped mid-stream: the session goes away without a close frame.
            drop(session);
            return;
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    Ok(resp)
}

#[actix_rt::test]
async fn the_yahoo_feed_decodes_frames_survives_a_dropped_connection_and_loses_nothing_sent() {
    let connections = Arc::new(AtomicUsize::new(0));
    let data = web::Data::new(connections.clone());
    let (addr, handle) = local_server!(move || {
        App::new()
            .app_data(data.clone())
            .route("/stream", web::get().to(yahoo))
    });

    let kafka = broker(3);
    let mut s = settings(kafka.bootstrap_servers(), None, "yahoo");
    s.feed = FeedKind::Yahoo;
    s.feed_symbols = vec![
        tickflow::domain::Symbol::parse("AAPL").unwrap(),
        tickflow::domain::Symbol::parse("MSFT").unwrap(),
    ];
    s.yahoo_url = format!("ws://{addr}/stream");
    let app = spawn_app(s).await;

    let start = Instant::now();
    while app.metrics.feed_published.get() < 10 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {} ticks published",
            app.metrics.feed_published.get()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        connections.load(Ordering::SeqCst) >= 2,
        "reconnected after the drop"
    );
    assert!(
        app.metrics.feed_errors.get() >= 2,
        "malformed frames and the dropped connection are counted"
    );

    let ticks: Vec<serde_json::Value> = read_topic(
        kafka.bootstrap_servers(),
        topics::RAW,
        Duration::from_secs(2),
    )
    .iter()
    .map(|(_, p)| serde_json::from_slice(p).unwrap())
    .collect();
    assert_eq!(ticks.len(), 10, "every frame sent, once");
    let first = ticks
        .iter()
        .find(|t| t["timestamp"] == "2025-08-18T19:43:05Z")
        .expect("the first quote, at its own event time");
    assert_eq!(
        (
            first["symbol"].as_str(),
            first["price"].as_f64(),
            first["volume"].as_f64(),
            first["source"].as_str()
        ),
        (Some("AAPL"), Some(229.35), Some(100.0), Some("yfinance"))
    );
    let (_, health, _) = {
        let client = awc::Client::default();
        let mut resp = client
            .get(format!("http://{}/health", app.http_addr))
            .send()
            .await
            .unwrap();
        let body = resp.body().await.unwrap();
        (
            (),
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            (),
        )
    };
    assert_eq!(
        health["services"]["feed"]["connected"].as_bool(),
        Some(true)
    );
    assert!(health["services"]["feed"]["connections"].as_u64().unwrap() >= 2);
    app.shutdown().await;
    handle.stop(false).await;
}

/// A stand-in for TwelveData's price WebSocket: checks the key, waits for the subscription,
/// answers `subscribe-status` (refusing one symbol) and heartbeats, and sends price events.
/// The first connection drops mid-stream.
async fn twelvedata(
    req: HttpRequest,
    body: web::Payload,
    connections: web::Data<Arc<AtomicUsize>>,
) -> actix_web::Result<actix_web::HttpResponse> {
    assert!(
        req.query_string().contains("apikey=td-key"),
        "{}",
        req.query_string()
    );
    let (resp, mut session, mut stream) = actix_ws::handle(&req, body)?;
    let n = connections.fetch_add(1, Ordering::SeqCst);
    actix_web::rt::spawn(async move {
        use futures_util::StreamExt;
        while let Some(Ok(m)) = stream.next().await {
            if let actix_ws::Message::Text(t) = m {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                assert_eq!(v["action"], "subscribe");
                assert_eq!(v["params"]["symbols"], "AAPL,MSFT,NOPE");
                break;
            }
        }
        let _ = session
            .text(r#"{"event":"subscribe-status","status":"ok","success":[{"symbol":"AAPL"},{"symbol":"MSFT"}],"fails":[{"symbol":"NOPE"}]}"#)
            .await;
        let base = 1_755_546_185 + (n as i64) * 1_000;
        for i in 0..4i64 {
            let symbol = if i % 2 == 0 { "AAPL" } else { "MSFT" };
            let event = serde_json::json!({
                "event": "price", "symbol": symbol, "currency": "USD", "exchange": "NASDAQ",
                "type": "Common Stock", "timestamp": base + i, "price": 229.5 + i as f64,
                "day_volume": 10_000 + (n as i64) * 1_000 + i * 100,
            });
            let _ = session.text(event.to_string()).await;
        }
        let _ = session.text(r#"{"event":"price","symbol":"AAPL"}"#).await;
        let _ = session.text("not json").await;
        if n == 0 {
            drop(session);
            return;
        }
        // Heartbeats are answered while the connection lives.
        while let Some(Ok(m)) = stream.next().await {
            if let actix_ws::Message::Text(t) = m
                && t.contains("heartbeat")
            {
                let _ = session.text(r#"{"event":"heartbeat","status":"ok"}"#).await;
            }
        }
    });
    Ok(resp)
}

#[actix_rt::test]
async fn the_twelvedata_feed_subscribes_recovers_from_a_drop_and_sizes_trades_from_day_volume() {
    let connections = Arc::new(AtomicUsize::new(0));
    let data = web::Data::new(connections.clone());
    let (addr, handle) = local_server!(move || {
        App::new()
            .app_data(data.clone())
            .route("/v1/quotes/price", web::get().to(twelvedata))
    });

    let kafka = broker(3);
    let mut s = settings(kafka.bootstrap_servers(), None, "twelvedata");
    s.feed = FeedKind::Twelvedata;
    s.feed_symbols = ["AAPL", "MSFT", "NOPE"]
        .iter()
        .map(|n| tickflow::domain::Symbol::parse(n).unwrap())
        .collect();
    s.twelvedata_ws_url = format!("ws://{addr}/v1/quotes/price");
    s.providers.twelvedata_api_key = Some("td-key".into());
    let app = spawn_app(s).await;

    let start = Instant::now();
    while app.metrics.feed_published.get() < 8 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {} ticks published",
            app.metrics.feed_published.get()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(connections.load(Ordering::SeqCst) >= 2, "reconnected");
    assert!(
        app.metrics.feed_errors.get() >= 4,
        "bad events and the drop are counted"
    );
    let mut ticks: Vec<(String, i64, f64, f64)> = read_topic(
        kafka.bootstrap_servers(),
        topics::RAW,
        Duration::from_secs(2),
    )
    .iter()
    .map(|(_, p)| {
        let v: serde_json::Value = serde_json::from_slice(p).unwrap();
        assert_eq!(v["source"], "twelvedata");
        let ts = chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap())
            .unwrap()
            .timestamp();
        (
            v["symbol"].as_str().unwrap().to_owned(),
            ts,
            v["price"].as_f64().unwrap(),
            v["volume"].as_f64().unwrap(),
        )
    })
    .collect();
    ticks.sort_by_key(|t| t.1);
    let aapl: Vec<f64> = ticks
        .iter()
        .filter(|t| t.0 == "AAPL")
        .map(|t| t.3)
        .collect();
    // Sizes are day-volume growth: 0 for the first quote, then 200, then across the
    // reconnect 10_000 + 1_000 − 10_200 = 800, then 200.
    assert_eq!(aapl, vec![0.0, 200.0, 800.0, 200.0]);
    assert_eq!(ticks.len(), 8, "every price event sent, once");
    assert_eq!(ticks[0].1, 1_755_546_185, "event time, not receipt time");
    app.shutdown().await;
    handle.stop(false).await;
}

#[actix_rt::test]
async fn the_simulator_resumes_each_symbol_from_its_last_stored_price() {
    // GOOG 25.56 before a restart and 394.87 after, over one stored series, is what a
    // random start price did; each symbol now continues where it stopped.
    let db = TestDatabase::create().await;
    let kafka = broker(3);
    let mut s = settings(kafka.bootstrap_servers(), Some(&db.url), "sim-resume");
    s.feed = tickflow::app::FeedKind::Sim;
    s.feed_symbols = ["GOOG", "MSFT"]
        .iter()
        .map(|x| tickflow::domain::Symbol::parse(x).unwrap())
        .collect();
    s.sim_rate = 200.0;
    let client = db.client().await;
    let app = spawn_app(s.clone()).await;
    assert!(
        wait_for_count(
            &client,
            "SELECT count(*) FROM realtime_prices",
            500,
            Duration::from_secs(30)
        )
        .await
            >= 500
    );
    app.shutdown().await;
    let before: Vec<(String, f64)> = client
        .query(
            r#"SELECT DISTINCT ON (symbol) symbol, price FROM realtime_prices ORDER BY symbol, "timestamp" DESC, seq DESC"#,
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let restarted_at = chrono::Utc::now();
    let app = spawn_app(s).await;
    let start = std::time::Instant::now();
    loop {
        let resumed: i64 = client
            .query_one(
                r#"SELECT count(DISTINCT symbol) FROM realtime_prices WHERE "timestamp" >= $1"#,
                &[&restarted_at],
            )
            .await
            .unwrap()
            .get(0);
        if resumed == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the simulator did not resume"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.shutdown().await;
    for (symbol, price) in before {
        let first: f64 = client
            .query_one(
                r#"SELECT price FROM realtime_prices WHERE symbol = $1 AND "timestamp" >= $2 ORDER BY "timestamp", seq LIMIT 1"#,
                &[&symbol, &restarted_at],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            (first / price - 1.0).abs() < 0.01,
            "{symbol}: stopped at {price}, resumed at {first}"
        );
    }
}
