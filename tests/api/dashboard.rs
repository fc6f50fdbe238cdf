//! The operator view: every metric the Grafana dashboard (`deploy/grafana/`) queries is
//! exported by a running instance, and the dashboard names the datasource that
//! docker-compose provisions.

use crate::helpers::*;
use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const DASHBOARD: &str = include_str!("../../deploy/grafana/dashboards/tickflow.json");
const DATASOURCE: &str =
    include_str!("../../deploy/grafana/provisioning/datasources/prometheus.yml");
const COMPOSE: &str = include_str!("../../docker-compose.yml");
/// The uid the provisioned datasource has and every panel names.
const DATASOURCE_UID: &str = "tickflow-prometheus";
/// Series Prometheus adds to every scrape itself: no instance exports them.
const PROMETHEUS_OWN_SERIES: [&str; 1] = ["up"];
/// Grafana's range variables, replaced by a duration so that the expressions parse.
const GRAFANA_RANGE_VARIABLES: [&str; 3] = ["$__rate_interval", "$__interval", "$__range"];
/// How long the instance may take to export every series (consumer lag comes from librdkafka
/// statistics every 5 s).
const METRICS_WAIT: Duration = Duration::from_secs(60);

/// `(panel title, PromQL)` of every query target, rows' nested panels included.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        let title = panel["title"].as_str().unwrap_or("?").to_owned();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("a target of panel {title:?} has no expr"));
            out.push((title.clone(), expr.to_owned()));
        }
        out.extend(queries(panel));
    }
    out
}

/// Collects the metric names of a PromQL expression's selectors.
#[derive(Default)]
struct MetricNames(BTreeSet<String>);

impl ExprVisitor for MetricNames {
    type Error = String;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        let selector = match expr {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return Ok(true),
        };
        let by_label = selector
            .matchers
            .matchers
            .iter()
            .find(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
            .map(|m| m.value.clone());
        match selector.name.clone().or(by_label) {
            Some(name) => {
                self.0.insert(name);
                Ok(true)
            }
            None => Err(format!("a selector without a metric name: {expr}")),
        }
    }
}

/// The metric names `expr` reads, with Grafana's variables replaced.
fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let promql = GRAFANA_RANGE_VARIABLES
        .iter()
        .fold(expr.to_owned(), |e, var| e.replace(var, "5m"));
    let parsed = promql_parser::parser::parse(&promql)?;
    let mut names = MetricNames::default();
    walk_expr(&mut names, &parsed)?;
    Ok(names.0)
}

/// The sample names of a text exposition (a histogram `h` shows as `h_bucket`, `h_sum` and
/// `h_count`, which is what queries must name).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn metric_names_are_read_from_selectors_and_not_from_functions_or_labels() {
    let names = metric_names(
        "histogram_quantile(0.99, sum by (le, endpoint) (rate(api_request_duration_seconds_bucket[$__rate_interval]))) \
         / on() group_left sum(rate({__name__=\"db_flush_seconds_count\", job=\"x\"}[5m])) or vector(0) + up{job=\"tickflow\"}",
    )
    .unwrap();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "api_request_duration_seconds_bucket",
            "db_flush_seconds_count",
            "up"
        ]
    );
    assert!(metric_names("sum(rate(x[5m]").is_err(), "bad PromQL fails");
    assert!(
        metric_names("{job=\"x\"}").is_err(),
        "a nameless selector fails"
    );
}

#[test]
fn histograms_show_in_the_exposition_as_bucket_sum_and_count() {
    let text =
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_sum 0\nh_count 0\nc_total 3\n";
    assert_eq!(
        exported(text).into_iter().collect::<Vec<_>>(),
        ["c_total", "h_bucket", "h_count", "h_sum"]
    );
}

#[test]
fn the_dashboard_queries_the_provisioned_datasource_and_compose_mounts_both() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    assert!(DATASOURCE.contains(&format!("uid: {DATASOURCE_UID}")));
    assert!(DATASOURCE.contains("url: http://prometheus:9090"));
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        panels += 1;
        assert_eq!(
            panel["datasource"]["uid"], DATASOURCE_UID,
            "{}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} queries nothing", panel["title"]);
    }
    assert!(panels >= 10, "{panels} panels");
    for mount in [
        "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
        "./deploy/grafana/dashboards:/etc/grafana/dashboards/tickflow:ro",
    ] {
        assert!(COMPOSE.contains(mount), "docker-compose.yml lacks {mount}");
    }
}

#[actix_rt::test]
async fn every_metric_the_grafana_dashboard_queries_is_exported_by_a_running_instance() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let mut wanted = BTreeSet::new();
    for (panel, expr) in queries(&dashboard) {
        let names = metric_names(&expr).unwrap_or_else(|e| panic!("panel {panel:?}: {e}"));
        wanted.extend(names);
    }
    wanted.retain(|n| !PROMETHEUS_OWN_SERIES.contains(&n.as_str()));
    assert!(wanted.len() >= 15, "{wanted:?}");

    // Work that makes every labelled series appear: trades that close bars (stored,
    // published), a malformed message (dead-lettered), API calls (one refused).
    let kafka = broker(2);
    let app = spawn_app(settings(kafka.bootstrap_servers(), None, "dashboard")).await;
    let producer = producer(kafka.bootstrap_servers());
    publish(&producer, &trades(&["AAPL"], 15));
    publish_raw(&producer, Some("AAPL"), b"not json");
    let client = awc::Client::default();
    let base = format!("http://{}", app.http_addr);
    let deadline = Instant::now() + METRICS_WAIT;
    let missing = loop {
        for path in [
            "/api/v2/intraday/prices/AAPL?interval=1m",
            "/api/v2/intraday/prices/AAPL?limit=0",
        ] {
            client.get(format!("{base}{path}")).send().await.unwrap();
        }
        let mut resp = client.get(format!("{base}/metrics")).send().await.unwrap();
        let text = String::from_utf8(resp.body().limit(8 << 20).await.unwrap().to_vec()).unwrap();
        let have = exported(&text);
        let missing: Vec<_> = wanted.difference(&have).cloned().collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    app.shutdown().await;
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics /metrics does not export: {missing:?}"
    );
}
