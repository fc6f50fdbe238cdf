//! `/chart` over loopback: the page and its assets come from the binary, open even when the
//! API needs a token; bad parameters are 422s naming them. (What the page does in a browser
//! is `scripts/test_browser`'s.)

use crate::helpers::*;
use serde_json::Value;

async fn fetch(
    addr: std::net::SocketAddr,
    path: &str,
) -> (u16, awc::http::header::HeaderMap, Vec<u8>) {
    // Redirects are checked, not followed.
    let mut resp = awc::Client::builder()
        .disable_redirects()
        .finish()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .expect("request");
    let body = resp.body().limit(8 << 20).await.expect("body").to_vec();
    (resp.status().as_u16(), resp.headers().clone(), body)
}

#[actix_rt::test]
async fn the_chart_page_and_its_assets_are_served_from_the_binary_and_open_with_a_token_set() {
    let kafka = broker(1);
    let mut s = settings(kafka.bootstrap_servers(), None, "api-chart");
    s.access.token = Some("chart-secret".into());
    let app = spawn_app(s).await;
    let addr = app.http_addr;

    let (status, headers, body) = fetch(addr, "/chart?symbol=AAPL&interval=1m").await;
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "text/html; charset=utf-8"
    );
    let policy = headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"));
    assert_eq!(headers.get("referrer-policy").unwrap(), "no-referrer");
    let html = String::from_utf8(body).unwrap();
    for asset in [
        "/chart/assets/chart.js",
        "/chart/assets/chart.css",
        "/chart/assets/lightweight-charts.standalone.production.js",
    ] {
        assert!(html.contains(asset), "the page does not load {asset}");
        let (status, headers, body) = fetch(addr, asset).await;
        assert_eq!(status, 200, "{asset}");
        assert!(headers.get("content-type").is_some() && !body.is_empty());
    }
    assert_eq!(fetch(addr, "/chart").await.0, 200);
    assert_eq!(fetch(addr, "/chart/assets/../../Cargo.toml").await.0, 404);
    assert_eq!(fetch(addr, "/chart/assets/nope.js").await.0, 404);

    // The API behind the page still needs the token.
    assert_eq!(
        fetch(addr, "/api/v2/intraday/prices/AAPL?interval=1m")
            .await
            .0,
        401
    );
    let (status, _, body) = fetch(addr, "/").await;
    let index: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200);
    assert!(
        index["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == "/chart" && e["token"] == false),
        "/ lists the chart, open: {index}"
    );
    app.shutdown().await;
}

#[actix_rt::test]
async fn chart_parameters_are_checked_and_other_spellings_redirected() {
    let kafka = broker(1);
    let app = spawn_app(settings(
        kafka.bootstrap_servers(),
        None,
        "api-chart-params",
    ))
    .await;
    let addr = app.http_addr;
    for (path, name) in [
        ("/chart?interval=7m", "interval"),
        ("/chart?interval=realtime", "interval"),
        ("/chart?symbol=%3Cscript%3E", "symbol"),
        ("/chart?symbol=ABCDEFGHIJKLMNOPQRSTUVWXYZ", "symbol"),
        ("/chart?symbol=AAPL&theme=dark", "theme"),
        ("/chart?symbol=AAPL&symbol=MSFT", "symbol"),
    ] {
        let (status, _, body) = fetch(addr, path).await;
        let detail: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 422, "{path}");
        assert_eq!(detail["detail"][0]["loc"][1], name, "{path}: {detail}");
    }
    let (status, headers, _) = fetch(addr, "/chart?symbol=msft&interval=5min").await;
    assert_eq!(status, 308);
    assert_eq!(
        headers.get("location").unwrap(),
        "/chart?symbol=MSFT&interval=5m"
    );
    app.shutdown().await;
}
