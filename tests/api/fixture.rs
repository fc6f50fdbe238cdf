//! Apps with data to ask for, and plain HTTP over loopback.

use crate::helpers::*;
use serde_json::Value;
use std::time::Duration;
use tickflow::app::App;

pub const SYMBOLS: [&str; 3] = ["AAPL", "MSFT", "BTC-USD"];

/// Two apps over the same ticks: one on PostgreSQL, one on the memory store.
pub struct Fixture {
    pub pg: App,
    pub memory: App,
    pub db: TestDatabase,
    pub ticks: Vec<tickflow::domain::Tick>,
    pub _kafka: tickflow::kafka::EmbeddedKafka,
}

impl Fixture {
    pub async fn shutdown(self) {
        self.pg.shutdown().await;
        self.memory.shutdown().await;
    }
}

/// A [`Fixture`] whose apps run with `adjust`ed settings.
pub async fn fixture_with(adjust: impl Fn(&mut tickflow::app::Settings)) -> Fixture {
    let kafka = broker(3);
    let ticks = trades(&SYMBOLS, 4);
    publish(&producer(kafka.bootstrap_servers()), &ticks);
    let db = TestDatabase::create().await;
    let mut pg = settings(kafka.bootstrap_servers(), Some(&db.url), "api-pg");
    let mut memory = settings(kafka.bootstrap_servers(), None, "api-mem");
    adjust(&mut pg);
    adjust(&mut memory);
    let pg = spawn_app(pg).await;
    let memory = spawn_app(memory).await;
    let client = db.client().await;
    assert_eq!(
        wait_for_count(
            &client,
            "SELECT count(*) FROM realtime_prices",
            ticks.len() as i64,
            Duration::from_secs(90)
        )
        .await,
        ticks.len() as i64
    );
    let start = std::time::Instant::now();
    while memory
        .metrics
        .records_stored
        .with_label_values(&["raw_price"])
        .get()
        < ticks.len() as u64
    {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "memory store did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the last bars and analytics land too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Fixture {
        pg,
        memory,
        db,
        ticks,
        _kafka: kafka,
    }
}

/// The default [`Fixture`].
pub async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

/// An answer: status, JSON body (`Null` when not JSON), text, headers.
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub text: String,
    pub headers: awc::http::header::HeaderMap,
}

/// `method path` on `app` with `headers`; the path is sent exactly as given.
pub async fn request(app: &App, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let method = awc::http::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut req = client.request(method, format!("http://{}{path}", app.http_addr));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.body().limit(64 << 20).await.expect("body");
    let text = String::from_utf8_lossy(&body).into_owned();
    Answer {
        status,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
        headers,
    }
}

/// `GET path`: status, JSON body (`Null` when not JSON), text.
pub async fn get(app: &App, path: &str) -> (u16, Value, String) {
    let a = request(app, "GET", path, &[]).await;
    (a.status, a.json, a.text)
}
