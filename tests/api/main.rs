//! The HTTP API and WebSockets over loopback, against data the pipeline wrote to real
//! PostgreSQL and to the in-memory store; the chart page's routes; the Grafana dashboard's
//! metrics.

#[path = "../pipeline/helpers.rs"]
#[allow(
    dead_code,
    reason = "shared with the pipeline tests; not every helper is used here"
)]
mod helpers;

mod abuse;
mod access;
mod chart;
mod client;
mod contract;
mod dashboard;
mod fixture;
mod offline;
mod routes;
mod timeouts;
mod ws;
