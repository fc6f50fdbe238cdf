//! `Metrics`: every Prometheus series tickflow exports, registered once in one registry.
//!
//! Labels stay low-cardinality: intervals, reasons, tables, route templates; never symbols.
//! Label values that come from a request (method, route, status) are mapped onto closed sets
//! here ([`method_label`], [`status_label`], [`UNMATCHED`]), so no client can add series.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// The registry and its series. Cloning shares them (each series is an `Arc` inside).
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Raw messages consumed (reference name: `kafka_messages_consumed_total`).
    pub messages_consumed: IntCounter,
    /// Valid ticks processed.
    pub ticks_consumed: IntCounter,
    /// Bars emitted, by interval and kind (closed, revised).
    pub bars_emitted: IntCounterVec,
    /// Messages sent to the dead-letter topic, by reason.
    pub dlq_messages: IntCounterVec,
    /// Ticks dropped as later than the allowed lateness.
    pub late_ticks_dropped: IntCounter,
    /// Ticks outside the trading session (ignored by daily bars only).
    pub ticks_outside_session: IntCounter,
    /// Rows per database flush.
    pub db_batch_rows: Histogram,
    /// Seconds per database flush.
    pub db_flush_seconds: Histogram,
    /// Rows stored, by table kind (reference name: `records_stored_total{type}`).
    pub records_stored: IntCounterVec,
    /// Failed flushes (each is retried).
    pub persistence_errors: IntCounter,
    /// Consumer lag per partition of the raw topic (messages behind the high watermark).
    pub consumer_lag: IntGaugeVec,
    /// Messages waiting in a stage's queue, by stage.
    pub mailbox_depth: IntGaugeVec,
    /// Output messages published, by topic.
    pub published: IntCounterVec,
    /// Ticks published by the built-in feed (reference: `price_updates_published_total`).
    pub feed_published: IntCounter,
    /// Feed errors.
    pub feed_errors: IntCounter,
    /// Live `SymbolSupervisor`s.
    pub symbols_active: IntGauge,
    /// Supervisor restarts after a panic.
    pub symbol_restarts: IntCounter,
    /// API requests by route template and method.
    pub api_requests: IntCounterVec,
    /// API responses with status ≥ 400, by route template, method and status.
    pub api_errors: IntCounterVec,
    /// API latency by route template.
    pub api_latency: HistogramVec,
    /// Bytes the API answer cache holds (keys, bodies and per-entry overhead).
    pub api_cache_bytes: IntGauge,
    /// Answers the API answer cache holds.
    pub api_cache_entries: IntGauge,
    /// WebSocket clients, and clients closed for falling behind.
    pub ws_clients: IntGauge,
    pub ws_evicted: IntCounter,
    /// Trades read on a partition other than their symbol's home and forwarded there.
    pub ticks_forwarded: IntCounter,
    pub origin_headers_ignored: IntCounter,
    pub checkpoints_fenced: IntCounter,
    pub ticks_unstored: IntCounter,
    /// Trades held back to keep event-time order across partitions.
    pub alignment_held: IntGauge,
    /// Held trades released without waiting for a partition that stopped advancing.
    pub alignment_forced: IntCounter,
    /// Commits skipped because a flush (database, output topics, dead letters, forwards)
    /// failed; everything since the last commit is done again.
    pub commits_failed: IntCounter,
    /// Checkpoints that could not be used (format, corruption): the symbol started fresh.
    pub checkpoints_unusable: IntCounter,
    /// Checkpoint offsets dropped on restore, by reason (`other_broker`, `ahead_of_log`).
    pub checkpoint_offsets_dropped: IntCounterVec,
    /// Revised bars whose analytics could not be recomputed (too old).
    pub analytics_not_revised: IntCounter,
    /// Raw messages the broker dropped before the pipeline committed them.
    pub raw_messages_lost: IntCounter,
    /// Raw messages not committed yet, over all partitions.
    pub raw_uncommitted: IntGauge,
    /// Times an in-process feed waited for the pipeline to catch up, and for how long.
    pub feed_waits: IntCounter,
    pub feed_wait_seconds: prometheus::Counter,
    /// Trades a live feed published while the backlog was over the broker's safe limit.
    pub feed_unpaced: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every series.
    pub fn new() -> Self {
        let registry = Registry::new();
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m;
                // unwrap: names are constants, unique within this fresh registry.
                registry.register(Box::new(m.clone())).unwrap();
                m
            }};
        }
        let counter = |n: &str, h: &str| IntCounter::new(n, h).unwrap();
        let counter_vec =
            |n: &str, h: &str, l: &[&str]| IntCounterVec::new(Opts::new(n, h), l).unwrap();
        let rows_buckets = vec![
            1.0, 10.0, 100.0, 500.0, 1_000.0, 5_000.0, 10_000.0, 50_000.0,
        ];
        let secs_buckets = prometheus::exponential_buckets(0.0005, 2.0, 16).unwrap();
        Self {
            messages_consumed: reg!(counter(
                "kafka_messages_consumed_total",
                "Raw messages consumed"
            )),
            ticks_consumed: reg!(counter("ticks_consumed_total", "Valid ticks processed")),
            bars_emitted: reg!(counter_vec(
                "bars_emitted_total",
                "Bars emitted",
                &["interval", "kind"]
            )),
            dlq_messages: reg!(counter_vec(
                "dlq_messages_total",
                "Messages sent to the dead-letter topic",
                &["reason"]
            )),
            late_ticks_dropped: reg!(counter(
                "late_ticks_dropped_total",
                "Ticks later than the allowed lateness"
            )),
            ticks_outside_session: reg!(counter(
                "ticks_outside_session_total",
                "Ticks outside the daily session"
            )),
            db_batch_rows: reg!(
                Histogram::with_opts(
                    HistogramOpts::new("db_batch_rows", "Rows per database flush")
                        .buckets(rows_buckets)
                )
                .unwrap()
            ),
            db_flush_seconds: reg!(
                Histogram::with_opts(
                    HistogramOpts::new("db_flush_seconds", "Seconds per database flush")
                        .buckets(secs_buckets.clone())
                )
                .unwrap()
            ),
            records_stored: reg!(counter_vec(
                "records_stored_total",
                "Rows stored",
                &["type"]
            )),
            persistence_errors: reg!(counter(
                "persistence_errors_total",
                "Failed database flushes (retried)"
            )),
            consumer_lag: reg!(
                IntGaugeVec::new(
                    Opts::new("consumer_lag", "Messages behind the high watermark"),
                    &["partition"]
                )
                .unwrap()
            ),
            mailbox_depth: reg!(
                IntGaugeVec::new(
                    Opts::new("mailbox_depth", "Messages queued in a stage"),
                    &["stage"]
                )
                .unwrap()
            ),
            published: reg!(counter_vec(
                "output_messages_published_total",
                "Output messages published",
                &["topic"]
            )),
            feed_published: reg!(counter(
                "price_updates_published_total",
                "Ticks published by the built-in feed"
            )),
            feed_errors: reg!(counter("market_data_errors_total", "Feed errors")),
            symbols_active: reg!(
                IntGauge::new("symbols_active", "Symbols with a live supervisor").unwrap()
            ),
            symbol_restarts: reg!(counter(
                "symbol_restarts_total",
                "Symbol supervisors restarted after a panic"
            )),
            api_requests: reg!(counter_vec(
                "api_requests_total",
                "API requests",
                &["endpoint", "method"]
            )),
            api_errors: reg!(counter_vec(
                "api_errors_total",
                "API responses with status >= 400",
                &["endpoint", "method", "status"]
            )),
            api_latency: reg!(
                HistogramVec::new(
                    HistogramOpts::new("api_request_duration_seconds", "API latency")
                        .buckets(secs_buckets),
                    &["endpoint"]
                )
                .unwrap()
            ),
            api_cache_bytes: reg!(
                IntGauge::new(
                    "api_cache_bytes",
                    "Bytes held by the API answer cache (keys, bodies, per-entry overhead)"
                )
                .unwrap()
            ),
            api_cache_entries: reg!(
                IntGauge::new("api_cache_entries", "Answers held by the API answer cache").unwrap()
            ),
            ws_clients: reg!(IntGauge::new("ws_clients", "Connected WebSocket clients").unwrap()),
            ws_evicted: reg!(counter(
                "ws_clients_evicted_total",
                "WebSocket clients closed for falling behind"
            )),
            ticks_forwarded: reg!(counter(
                "ticks_forwarded_total",
                "Trades forwarded to their symbol's home partition"
            )),
            ticks_unstored: reg!(counter(
                "trades_unstored_total",
                "Trades not stored because a trade of an earlier broker epoch has their identity"
            )),
            checkpoints_fenced: reg!(counter(
                "checkpoints_fenced_total",
                "Checkpoints not written because the stored one applied more of the same log"
            )),
            origin_headers_ignored: reg!(counter(
                "origin_headers_ignored_total",
                "Messages whose tickflow-origin header tickflow did not write on this broker"
            )),
            alignment_held: reg!(
                IntGauge::new(
                    "alignment_held_ticks",
                    "Trades held back to keep event-time order across partitions"
                )
                .unwrap()
            ),
            alignment_forced: reg!(counter(
                "alignment_forced_total",
                "Held trades released without waiting for a stalled partition"
            )),
            commits_failed: reg!(counter(
                "commits_failed_total",
                "Commits skipped because a flush failed (work redone)"
            )),
            checkpoints_unusable: reg!(counter(
                "checkpoints_unusable_total",
                "Checkpoints that could not be read (symbol started fresh)"
            )),
            checkpoint_offsets_dropped: reg!(counter_vec(
                "checkpoint_offsets_dropped_total",
                "Checkpoint offsets dropped on restore",
                &["reason"]
            )),
            analytics_not_revised: reg!(counter(
                "analytics_not_revised_total",
                "Revised bars whose analytics could not be recomputed"
            )),
            raw_messages_lost: reg!(counter(
                "raw_messages_lost_total",
                "Raw messages dropped by the broker before they were processed"
            )),
            raw_uncommitted: reg!(
                IntGauge::new(
                    "raw_uncommitted_messages",
                    "Raw messages not committed by the pipeline yet"
                )
                .unwrap()
            ),
            feed_waits: reg!(counter(
                "feed_waits_total",
                "Times an in-process feed waited for the pipeline to catch up"
            )),
            feed_wait_seconds: reg!(
                prometheus::Counter::new(
                    "feed_wait_seconds_total",
                    "Seconds in-process feeds waited for the pipeline"
                )
                .unwrap()
            ),
            feed_unpaced: reg!(counter(
                "feed_unpaced_total",
                "Trades a live feed published while the backlog was over the safe limit"
            )),
            registry,
        }
        .with_process_metrics()
    }

    /// Adds the process's own series (`process_cpu_seconds_total`,
    /// `process_resident_memory_bytes`, `process_open_fds`, `process_start_time_seconds`, …)
    /// where the platform provides them (Linux `/proc`).
    fn with_process_metrics(self) -> Self {
        #[cfg(target_os = "linux")]
        {
            // unwrap: the process collector's names are unique within this fresh registry.
            self.registry
                .register(Box::new(
                    prometheus::process_collector::ProcessCollector::for_self(),
                ))
                .unwrap();
        }
        self
    }

    /// Counts one answered API request: `endpoint` is a route template or [`UNMATCHED`].
    pub fn observe_api(&self, endpoint: &str, method: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.api_requests
            .with_label_values(&[endpoint, method])
            .inc();
        if status >= 400 {
            self.api_errors
                .with_label_values(&[endpoint, method, status_label(status)])
                .inc();
        }
        self.api_latency
            .with_label_values(&[endpoint])
            .observe(seconds);
    }

    /// The text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // unwrap: the text encoder only fails on a `fmt::Write` error, which `String` never gives.
        prometheus::TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut out)
            .unwrap();
        out
    }
}

/// The `endpoint` label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// HTTP methods kept as label values; anything else is `other`.
const KNOWN_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// The `method` label: a standard method's name, or `other` for anything a client invents.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// Status codes the API answers with, kept as label values; others count by class.
const KNOWN_STATUSES: [(u16, &str); 12] = [
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (408, "408"),
    (413, "413"),
    (422, "422"),
    (429, "429"),
    (500, "500"),
    (502, "502"),
    (503, "503"),
];

/// The `status` label: a known code, else its class (`4xx`, `5xx`, …).
pub fn status_label(status: u16) -> &'static str {
    if let Some((_, label)) = KNOWN_STATUSES.iter().find(|(code, _)| *code == status) {
        return label;
    }
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_exposition_carries_the_process_series() {
        let text = Metrics::new().render();
        for series in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(series)),
                "{series} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn invented_methods_and_statuses_fall_into_closed_sets() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("get"), "other", "methods are case-sensitive");
        assert_eq!(method_label("FOO"), "other");
        assert_eq!(status_label(422), "422");
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(599), "5xx");
        assert_eq!(status_label(999), "5xx");
    }

    #[test]
    fn api_series_stay_bounded_whatever_clients_send() {
        let m = Metrics::new();
        for i in 0..100 {
            m.observe_api(UNMATCHED, &format!("M{i}"), 400 + (i % 200) as u16, 0.001);
        }
        let series = m
            .render()
            .lines()
            .filter(|l| l.starts_with("api_") && !l.starts_with('#'))
            .count();
        m.observe_api(UNMATCHED, "ANOTHER", 450, 0.001);
        let after = m
            .render()
            .lines()
            .filter(|l| l.starts_with("api_") && !l.starts_with('#'))
            .count();
        assert_eq!(series, after);
    }
}
