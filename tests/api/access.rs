//! The token, tried as an attacker would: every protected path (REST and WebSocket) in every
//! spelling a router or a proxy might treat differently — percent-encoded characters and
//! slashes, double slashes, dot segments, trailing slashes, case — must give no data and no
//! upgrade without the token (401, or a JSON 404 where the spelling matches no route).

use crate::fixture::*;
use crate::helpers::*;
use serde_json::Value;
use std::collections::BTreeSet;

const TOKEN: &str = "s3cret";

/// A concrete path for a route template.
fn concrete(template: &str) -> String {
    let file = if template.starts_with("/chart/") {
        "chart.css"
    } else {
        "swagger-ui.css"
    };
    template
        .replace("{symbol}", "AAPL")
        .replace("{count}", "3")
        .replace("{file}", file)
}

fn percent_all(path: &str) -> String {
    path.bytes()
        .map(|b| {
            if b == b'/' {
                "/".to_owned()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Spellings of `path` (which starts with `/api/` or `/ws/`) that a lax router or proxy
/// might take for it.
fn variants(path: &str) -> Vec<String> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut out = Vec::new();
    // One percent-encoded character at the start of each segment (`/%61pi/…`).
    for i in 0..segments.len() {
        let mut s: Vec<String> = segments.iter().map(|x| (*x).to_owned()).collect();
        let first = s[i].as_bytes()[0];
        s[i] = format!("%{first:02X}{}", &s[i][1..]);
        out.push(format!("/{}", s.join("/")));
        out.push(format!("/{}", s.join("/")).to_lowercase());
    }
    out.push(percent_all(path));
    out.push(percent_all(path).to_lowercase());
    // Each separator percent-encoded (`/api%2Fv2/…`).
    for i in 1..segments.len() {
        let (head, tail) = segments.split_at(i);
        out.push(format!("/{}%2F{}", head.join("/"), tail.join("/")));
        out.push(format!("/{}%2f{}", head.join("/"), tail.join("/")));
    }
    out.push(format!("/{}", path));
    out.push(path.replacen('/', "//", 2).replacen("//", "/", 1));
    out.push(format!("{path}/"));
    out.push(format!("{path}//"));
    out.push(format!("/x/..{path}"));
    out.push(format!("/x/%2E%2E{path}"));
    out.push(format!("/./{}", &path[1..]));
    out.push(path.replacen('/', "/./", 2).replacen("/./", "/", 1));
    out.push(format!("{path}/."));
    out.push(format!("{path}/x/.."));
    out.push(path.to_uppercase());
    let first_upper = {
        let mut s: Vec<String> = segments.iter().map(|x| (*x).to_owned()).collect();
        s[0] = s[0].to_uppercase();
        format!("/{}", s.join("/"))
    };
    out.push(first_upper);
    out.push(path.replace("AAPL", "aapl"));
    out.push(path.replace("AAPL", "AA%2FPL"));
    out.push(path.replace("AAPL", "%41APL"));
    out.push(format!("{path};x=1"));
    out.push(format!("{path}%00"));
    out.push(format!("{path}?token={TOKEN}x"));
    out.sort();
    out.dedup();
    out
}

/// Whether an answer leaks anything: a 2xx, or a body with rows or a route's keys.
fn leaks(a: &Answer) -> bool {
    (200..300).contains(&a.status)
        || a.json.get("data").is_some()
        || a.json.get("symbols").is_some()
        || a.json.get("intervals").is_some()
}

#[actix_rt::test]
async fn no_spelling_of_a_protected_path_gives_data_or_an_upgrade_without_the_token() {
    let kafka = broker(3);
    let mut s = settings(kafka.bootstrap_servers(), None, "api-access");
    s.access = tickflow::web::Access {
        token: Some(TOKEN.into()),
        cors_origins: vec!["*".into()],
    };
    let app = spawn_app(s).await;
    // Some data, so that a leak would show rows.
    let ticks = trades(&["AAPL"], 7);
    publish(&producer(kafka.bootstrap_servers()), &ticks[..500]);
    let start = std::time::Instant::now();
    while app
        .metrics
        .records_stored
        .with_label_values(&["raw_price"])
        .get()
        < 500
    {
        assert!(start.elapsed().as_secs() < 60, "ticks not stored");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let (_, doc, _) = get(&app, "/openapi.json").await;
    let mut protected = BTreeSet::new();
    let mut open = BTreeSet::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        if item["get"]["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
        {
            protected.insert(template.clone());
        } else {
            open.insert(template.clone());
        }
    }
    let under_api: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| p.starts_with("/api/") || p.starts_with("/ws/"))
        .cloned()
        .collect();
    assert_eq!(
        protected, under_api,
        "every /api/ and /ws/ route, and only those, is protected"
    );
    assert_eq!(protected.len(), 19, "{protected:?}");

    let bearer = format!("Bearer {TOKEN}");
    let mut tried = 0;
    for template in &protected {
        let path = concrete(template);
        let ws = template.starts_with("/ws/");
        // The canonical spelling: refused without the token, served with it.
        let a = request(&app, "GET", &path, &[]).await;
        assert_eq!(a.status, 401, "{path}: {}", a.text);
        assert_eq!(
            a.json["detail"].as_str(),
            Some("missing or invalid bearer token")
        );
        let a = request(&app, "GET", &path, &[("Authorization", "Bearer wrong")]).await;
        assert_eq!(a.status, 401, "{path} with a wrong token");
        let a = request(&app, "GET", &path, &[("Authorization", &bearer)]).await;
        assert!(
            !a.text.contains("no such route") && a.status != 401,
            "{path} with the token: {} {}",
            a.status,
            a.text
        );
        for variant in variants(&path) {
            tried += 1;
            for method in ["GET", "HEAD", "POST", "OPTIONS"] {
                let a = request(&app, method, &variant, &[]).await;
                assert!(
                    !leaks(&a) && [401, 404, 400].contains(&a.status),
                    "{method} {variant}: {} {}",
                    a.status,
                    a.text
                );
                if a.status == 404 && method != "HEAD" {
                    assert!(
                        a.json["detail"].is_string(),
                        "{variant}: a JSON 404, got {}",
                        a.text
                    );
                }
            }
            if ws {
                let upgraded = awc::Client::new()
                    .ws(format!("ws://{}{variant}", app.http_addr))
                    .connect()
                    .await;
                assert!(upgraded.is_err(), "{variant} upgraded without the token");
            }
        }
        if ws {
            // The same route with the token in the query (browsers) or the header.
            let with_query = format!("ws://{}{path}?token={TOKEN}", app.http_addr);
            assert!(
                awc::Client::new().ws(with_query).connect().await.is_ok(),
                "{path}"
            );
            let encoded = format!("ws://{}{}?token={TOKEN}", app.http_addr, percent_all(&path));
            assert!(
                awc::Client::new().ws(encoded).connect().await.is_ok(),
                "{path}: a percent-encoded spelling reaches the route, and the token opens it"
            );
            let with_header = awc::Client::new()
                .ws(format!("ws://{}{path}", app.http_addr))
                .bearer_auth(TOKEN)
                .connect()
                .await;
            assert!(with_header.is_ok(), "{path}");
        } else {
            // A percent-encoded spelling reaches the same route: with the token it answers.
            let a = request(
                &app,
                "GET",
                &percent_all(&path),
                &[("Authorization", &bearer)],
            )
            .await;
            assert!(!a.text.contains("no such route"), "{path}: {}", a.text);
        }
    }
    assert!(tried > 400, "{tried} spellings tried");

    // Open routes stay open, and tokens in a REST query string are not accepted.
    for template in &open {
        let a = request(&app, "GET", &concrete(template), &[]).await;
        assert_eq!(a.status, 200, "{template} is open");
    }
    let a = request(
        &app,
        "GET",
        &format!("/api/v2/realtime/symbols?token={TOKEN}"),
        &[],
    )
    .await;
    assert_eq!(a.status, 401, "REST takes the token from the header only");
    app.shutdown().await;
}

#[actix_rt::test]
async fn cors_never_pairs_a_wildcard_origin_with_credentials() {
    let kafka = broker(1);
    let mut s = settings(kafka.bootstrap_servers(), None, "api-cors");
    s.access = tickflow::web::Access {
        token: Some(TOKEN.into()),
        cors_origins: vec!["*".into()],
    };
    let app = spawn_app(s).await;
    let a = request(
        &app,
        "GET",
        "/api/v2/realtime/symbols",
        &[
            ("Authorization", "Bearer s3cret"),
            ("Origin", "http://dash.example"),
        ],
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.headers
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("*")
    );
    assert!(
        a.headers.get("access-control-allow-credentials").is_none(),
        "no credentials with a wildcard origin"
    );
    // A preflight is answered without the token (browsers send none with it).
    let a = request(
        &app,
        "OPTIONS",
        "/api/v2/realtime/symbols",
        &[
            ("Origin", "http://dash.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json, Value::Null, "a preflight carries no data");
    app.shutdown().await;
}
