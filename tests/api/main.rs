//! The REST API over loopback, against data the pipeline wrote to real PostgreSQL and to the
//! in-memory store; the chart page's routes; the Grafana dashboard's metrics.

mod chart;
mod dashboard;
#[path = "../pipeline/helpers.rs"]
#[allow(
    dead_code,
    reason = "shared with the pipeline tests; not every helper is used here"
)]
mod helpers;
mod routes;
mod ws;
