//! Requests that try to exhaust the server: cache-busting URLs against the answer cache's
//! byte bound, invented methods and paths against the metrics' label sets, wrong methods.

use crate::fixture::*;
use crate::helpers::*;
use std::time::Duration;

/// Series lines of the API metrics in `/metrics`.
async fn api_series(app: &tickflow::app::App) -> Vec<String> {
    let (_, _, text) = get(app, "/metrics").await;
    text.lines()
        .filter(|l| l.starts_with("api_") && !l.starts_with("api_cache"))
        .map(|l| {
            l.rsplit_once(' ')
                .map_or(l, |(series, _)| series)
                .to_owned()
        })
        .collect()
}

/// The value of an unlabelled gauge in `/metrics`.
async fn gauge(app: &tickflow::app::App, name: &str) -> i64 {
    let (_, _, text) = get(app, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
        .parse()
        .unwrap()
}

#[actix_rt::test]
async fn thousands_of_cache_busting_urls_keep_the_cache_under_its_byte_bound() {
    const BOUND: usize = 256 * 1024;
    let kafka = broker(1);
    let mut s = settings(kafka.bootstrap_servers(), None, "api-cache-bound");
    s.api_cache_ttl = Duration::from_secs(600);
    s.api_cache_bytes = BOUND;
    let app = spawn_app(s).await;
    let ticks = trades(&["AAPL"], 11);
    let stored = ticks.len().min(2_000);
    publish(&producer(kafka.bootstrap_servers()), &ticks[..stored]);
    let start = std::time::Instant::now();
    while app
        .metrics
        .records_stored
        .with_label_values(&["raw_price"])
        .get()
        < stored as u64
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "ticks not stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every URL differs, every answer is a 200 the cache may keep (up to ~400 KB each).
    let mut peak = 0;
    for limit in 1..=3_000 {
        let (status, _, _) =
            get(&app, &format!("/api/v2/realtime/prices/AAPL?limit={limit}")).await;
        assert_eq!(status, 200);
        if limit % 250 == 0 {
            let bytes = gauge(&app, "api_cache_bytes").await;
            assert!(bytes as usize <= BOUND, "after {limit} URLs: {bytes} bytes");
            peak = peak.max(bytes);
        }
    }
    assert!(
        peak as usize > BOUND / 4,
        "the cache was used: {peak} bytes at most"
    );
    let entries = gauge(&app, "api_cache_entries").await;
    assert!(entries > 0);

    // Unknown parameters are refused before the cache sees them.
    let bytes = gauge(&app, "api_cache_bytes").await;
    for i in 0..1_000 {
        let (status, body, _) = get(
            &app,
            &format!("/api/v2/realtime/prices/AAPL?limit=5&b{i}=1"),
        )
        .await;
        assert_eq!(status, 422);
        assert_eq!(body["detail"][0]["loc"][1], format!("b{i}"));
    }
    assert_eq!(
        gauge(&app, "api_cache_bytes").await,
        bytes,
        "no entry for refused requests"
    );
    assert_eq!(gauge(&app, "api_cache_entries").await, entries);

    // Spellings of one request share an entry.
    get(&app, "/api/v2/realtime/prices/AAPL?limit=0042").await;
    let after = gauge(&app, "api_cache_entries").await;
    get(&app, "/api/v2/realtime/prices/aapl?limit=42").await;
    assert_eq!(gauge(&app, "api_cache_entries").await, after);
    app.shutdown().await;
}

#[actix_rt::test]
async fn invented_methods_and_paths_add_no_metrics_series() {
    let kafka = broker(1);
    let app = spawn_app(settings(kafka.bootstrap_servers(), None, "api-cardinality")).await;
    // One of each kind first, so that the label values they map to exist.
    for (method, path) in [
        ("GET", "/metrics"),
        ("GET", "/health"),
        ("FOO", "/health"),
        ("FOO", "/nope"),
        ("GET", "/nope"),
        ("POST", "/health"),
        ("GET", "/api/v2/realtime/prices/AAPL?limit=0"),
        ("GET", "/api/v2/realtime/prices/AAPL"),
        ("BREW", "/api/v2/realtime/prices/AAPL"),
    ] {
        request(&app, method, path, &[]).await;
    }
    get(&app, "/metrics").await;
    let before = api_series(&app).await;
    let size_before = get(&app, "/metrics").await.2.len();
    for i in 0..1_500 {
        let method = format!("M{i}X");
        request(&app, &method, &format!("/x/{i}"), &[]).await;
        request(&app, &method, "/health", &[]).await;
        request(
            &app,
            "GET",
            &format!("/nope/{i}/{}", "z".repeat(i % 50)),
            &[],
        )
        .await;
        request(
            &app,
            &method.to_lowercase(),
            "/api/v2/realtime/prices/AAPL",
            &[],
        )
        .await;
        if i % 100 == 0 {
            request(
                &app,
                "GET",
                &format!("/api/v2/realtime/prices/SYM{i}?limit={i}"),
                &[],
            )
            .await;
        }
    }
    let after = api_series(&app).await;
    assert_eq!(before, after, "no series added");
    let size_after = get(&app, "/metrics").await.2.len();
    assert!(
        size_after < size_before + 2_000,
        "/metrics grew from {size_before} to {size_after} bytes"
    );
    let (_, _, text) = get(&app, "/metrics").await;
    assert!(
        text.contains(r#"api_requests_total{endpoint="unmatched",method="other"}"#),
        "invented methods count as other"
    );
    app.shutdown().await;
}

#[actix_rt::test]
async fn wrong_methods_get_a_405_with_allow_head_works_and_every_error_is_json() {
    let kafka = broker(1);
    let app = spawn_app(settings(kafka.bootstrap_servers(), None, "api-methods")).await;
    for path in [
        "/api/v2/realtime/symbols",
        "/health",
        "/ws/prices/AAPL",
        "/openapi.json",
    ] {
        for method in ["POST", "PUT", "DELETE", "PATCH", "FOO"] {
            let a = request(&app, method, path, &[]).await;
            assert_eq!(a.status, 405, "{method} {path}");
            assert_eq!(a.headers.get("allow").unwrap(), "GET, HEAD");
            assert!(a.json["detail"].is_string(), "{}", a.text);
        }
    }
    let got = request(&app, "GET", "/api/v2/realtime/symbols", &[]).await;
    let head = request(&app, "HEAD", "/api/v2/realtime/symbols", &[]).await;
    assert_eq!((head.status, head.text.as_str()), (200, ""));
    assert_eq!(
        head.headers.get("content-type"),
        got.headers.get("content-type")
    );
    for path in [
        "/nope",
        "/api/v2/realtime",
        "/ws",
        "/api/v2/intraday",
        "/api/v2/historical",
    ] {
        let a = request(&app, "GET", path, &[]).await;
        assert_eq!(a.status, 404, "{path}");
        assert!(
            a.json["detail"].is_string(),
            "{path}: JSON 404, got {:?}",
            a.text
        );
    }
    let a = request(&app, "GET", "/api/v2/realtime/prices/AAPL/latest", &[]).await;
    assert_eq!(a.status, 404);
    assert!(a.json["detail"].as_str().unwrap().contains("AAPL"));
    // A WebSocket route asked without an upgrade: a JSON 400, not a hang or a 500.
    let a = request(&app, "GET", "/ws/bars/AAPL", &[]).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.json["detail"].is_string());
    app.shutdown().await;
}
