//! A Python client generated from `/openapi.json` by `openapi-python-client` calls every
//! route of a running app, with the token, and parses every answer with the generated
//! models. The generator is installed with pip when missing; when that fails, the test
//! fails and says how to install it (it never skips).

use crate::fixture::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::Command;

/// The generator version the test installs when none is there.
const GENERATOR: &str = "openapi-python-client==0.29.1";

fn python(args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed for the generated-client test: {e}"))
}

/// Makes sure the generator can run: imports it, or installs it with pip.
fn ensure_generator() {
    if python(&["-c", "import openapi_python_client"])
        .status
        .success()
    {
        return;
    }
    let install = python(&[
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        GENERATOR,
    ]);
    assert!(
        install.status.success()
            && python(&["-c", "import openapi_python_client"])
                .status
                .success(),
        "openapi-python-client is not installed and `python3 -m pip install {GENERATOR}` failed \
         (install it, with pip and network access to PyPI, to run this test):\n{}",
        String::from_utf8_lossy(&install.stderr)
    );
}

#[actix_rt::test]
async fn a_client_generated_from_the_document_calls_every_route() {
    ensure_generator();
    let f = fixture_with(|s| {
        s.access.token = Some("gen-token".into());
    })
    .await;
    let app = &f.memory;
    let (status, doc, text) = get(app, "/openapi.json").await;
    assert_eq!(status, 200);
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("openapi.json");
    std::fs::write(&spec, &text).unwrap();
    let package = dir.path().join("tickflow_client");
    let generated = python(&[
        "-m",
        "openapi_python_client",
        "generate",
        "--path",
        spec.to_str().unwrap(),
        "--meta",
        "none",
        "--output-path",
        package.to_str().unwrap(),
    ]);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(generated.status.success(), "generation failed:\n{log}");
    assert!(
        !log.contains("WARNING"),
        "the generator left parts out:\n{log}"
    );

    let plan = json!({
        "path": {"symbol": "AAPL", "count": 3, "file": "redoc.standalone.js"},
        "path_by_operation": {"chart_asset": {"file": "chart.css"}},
        "extra": [
            {"operation": "intraday_prices", "query": {"interval": "1m", "limit": 5, "before": "2024-03-11T14:00:00+00:00"}},
            {"operation": "intraday_analytics", "query": {"interval": "5m", "date": "2024-03-08", "start_time": "10:00", "end_time": "11:00", "indicators": ["rsi_14", "vwap"]}},
            {"operation": "historical_prices", "query": {"before": "2024-03-11", "limit": 1}},
            {"operation": "realtime_analytics", "query": {"start_date": "2024-03-08", "end_date": "2024-03-11", "indicators": ["tick_rsi_14", "price"], "limit": 3}},
        ],
    });
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/generated_client.py");
    let base = format!("http://{}", app.http_addr);
    let run = python(&[
        script,
        package.to_str().unwrap(),
        &base,
        "gen-token",
        plan_file.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "the generated client failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let calls: Vec<Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let operations: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["get"]["operationId"].as_str().unwrap().to_owned())
        .collect();
    let called: BTreeSet<String> = calls
        .iter()
        .map(|c| c["operation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        called, operations,
        "every operation has a generated function, called"
    );
    for c in &calls {
        let op = c["operation"].as_str().unwrap();
        assert!(c.get("error").is_none(), "{op}: {c}");
        if op.starts_with("ws_") {
            // An HTTP client cannot upgrade: the documented 400, parsed.
            assert_eq!(
                (c["status"].as_u64(), c["type"].as_str()),
                (Some(400), Some("Detail")),
                "{c}"
            );
            continue;
        }
        assert_eq!(c["status"], 200, "{op}: {c}");
        assert_ne!(
            c["type"], "NoneType",
            "{op}: the answer was not parsed: {c}"
        );
        let series = ["prices", "analytics", "latest", "last"]
            .iter()
            .any(|k| op.contains(k));
        // Realtime analytics default to the last 30 minutes: the test's trades are older.
        let recent_only = op == "realtime_analytics" && c["query"] == json!({});
        if series && !recent_only {
            assert!(c["rows"].as_u64().unwrap_or(0) >= 1, "{op}: {c}");
        }
    }
    let extra: Vec<&Value> = calls.iter().filter(|c| c["query"] != json!({})).collect();
    assert_eq!(extra.len(), 4);
    assert_eq!(extra[0]["rows"], 5);
    let row = &extra[0]["first_row"];
    assert!(
        row["timestamp"].as_str().unwrap() < "2024-03-11T14:00:00",
        "{row}"
    );
    assert_eq!(extra[2]["rows"], 1);
    assert_eq!(extra[3]["rows"], 3);
    assert_eq!(
        extra[1]["keys"],
        json!([
            "count",
            "data",
            "indicators",
            "interval",
            "symbol",
            "timezone_note"
        ])
    );
    f.shutdown().await;
}
