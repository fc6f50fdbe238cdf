//! The HTTP surface: the REST API, WebSockets, `/health`, `/metrics` and the API docs.
//!
//! # Layout
//! - [`routes`]: the route table (every route, its parameters, access and answer);
//!   [`dispatch`] serves it: the per-route guard (token, metrics label), validation, cache.
//! - [`params`] declares parameters once; [`args`] validates requests against them.
//! - [`series`]: the one handler of the 13 series routes; [`catalog`]: `/`, the symbol
//!   lists and `/api/v2/meta`; [`ws`]: WebSockets; [`health`]: `/health`, `/metrics`;
//!   [`docs`]: Swagger UI and ReDoc from the binary.
//! - [`rows`] and [`format`]: what answers hold and how they are written (JSON, CSV).
//! - [`openapi`]: the document, generated from the route table and the row types.
//! - [`cache`]: recent answers, bounded in bytes; [`errors`]: every failure's status.

pub mod args;
pub mod cache;
pub mod catalog;
pub mod chart;
pub mod dispatch;
pub mod docs;
pub mod errors;
pub mod format;
pub mod health;
pub mod openapi;
pub mod params;
pub mod routes;
pub mod rows;
pub mod series;
pub mod ws;

use crate::metrics::Metrics;
use crate::store::Store;
use actix_web::dev::Service;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Metrics,
    pub store: Store,
    pub kafka: Arc<health::KafkaProbe>,
    /// The raw topic's backlog (and anything a size-bounded broker dropped).
    pub backlog: Arc<crate::kafka::backlog::BacklogMonitor>,
    pub started: std::time::Instant,
    /// WebSocket fan-out (absent when WebSockets are off).
    pub broadcaster: Option<actix::Addr<crate::web::ws::broadcaster::Broadcaster>>,
    /// Access rules.
    pub access: Access,
    /// State of a network feed, when one runs.
    pub feed: Option<Arc<crate::feeds::stream::FeedState>>,
    /// Recent answers of the read routes.
    pub cache: Arc<cache::ResponseCache>,
    /// What the pipeline builds (intervals, calendars), for `/api/v2/meta`.
    pub pipeline: Arc<crate::pipeline::SymbolSettings>,
}

/// Who may call the API.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Bearer token required on `/api/*` and `/ws/*` (`?token=` also works for WebSockets,
    /// which browsers cannot give headers); `None`: open.
    pub token: Option<String>,
    /// Allowed CORS origins; `*` allows any origin without credentials, listed origins get
    /// credentials. Empty: no CORS headers.
    pub cors_origins: Vec<String>,
}

/// Most simultaneous connections per worker thread.
const MAX_CONNECTIONS: usize = 10_000;
/// Open files kept out of the HTTP connections' share: the database pool, Kafka's sockets,
/// the embedded broker, logs, whatever a handler opens. Without it, clients holding enough
/// keep-alive connections use up the process's files and the pipeline cannot reconnect.
const RESERVED_FILES: u64 = 1_024;

/// Longest the kernel keeps a connection whose client acknowledges nothing sent to it (it
/// stopped reading: zero-window probes answered forever). A WebSocket session gives up on
/// such a client after 5 s, but the socket would stay, holding megabytes of unread pongs
/// and messages in kernel buffers, until the client left; `TCP_USER_TIMEOUT` lets the
/// kernel drop it. Connections with nothing in flight (idle keep-alive) are not affected.
const UNACKNOWLEDGED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Sets [`UNACKNOWLEDGED_TIMEOUT`] on an accepted connection.
fn on_connect(conn: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>()
        && let Err(e) =
            socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(UNACKNOWLEDGED_TIMEOUT))
    {
        tracing::debug!(error = %e, "cannot set TCP_USER_TIMEOUT on a connection");
    }
}

/// Connections each of `workers` workers may hold: [`MAX_CONNECTIONS`], or fewer so that
/// all of them together stay [`RESERVED_FILES`] below the open-file limit `files`.
pub fn connections_per_worker(files: u64, workers: usize) -> usize {
    let share = files.saturating_sub(RESERVED_FILES) / workers.max(1) as u64;
    usize::try_from(share)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_CONNECTIONS)
}

/// The open-file limit, raised to the hard limit first (a soft limit of 1,024 is common and
/// would cap the API near 0 connections per worker).
fn open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(4_096, |(soft, _)| soft);
            tracing::warn!(error = %e, limit, "cannot raise the open-file limit");
            limit
        }
    }
}

fn cors(origins: &[String]) -> actix_cors::Cors {
    if origins.is_empty() {
        return actix_cors::Cors::default();
    }
    let base = actix_cors::Cors::default()
        .allow_any_method()
        .allow_any_header()
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        // A wildcard origin never gets credentials (the reference allowed both).
        base.allow_any_origin().send_wildcard()
    } else {
        origins
            .iter()
            .fold(base.supports_credentials(), |c, o| c.allowed_origin(o))
    }
}

/// Serves the routes on `listener` until the returned server is stopped.
///
/// # Errors
/// When the listener cannot be used.
pub fn serve(listener: TcpListener, state: AppState) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(state);
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let files = open_file_limit();
    let per_worker = connections_per_worker(files, workers);
    tracing::info!(
        workers,
        per_worker,
        open_file_limit = files,
        "HTTP connection limits"
    );
    Ok(HttpServer::new(move || {
        let metrics = data.metrics.clone();
        App::new()
            .app_data(data.clone())
            .configure(dispatch::configure)
            .wrap_fn(move |req, srv| {
                // Labels from closed sets only: the route template the request matched (set
                // by the route's guard) or `unmatched`, the method or `other`.
                let method = req.method().as_str().to_owned();
                let started = std::time::Instant::now();
                let metrics = metrics.clone();
                let call = srv.call(req);
                async move {
                    let res = call.await;
                    let (endpoint, status) = match &res {
                        Ok(r) => (dispatch::endpoint_of(r), r.status().as_u16()),
                        Err(e) => (
                            crate::metrics::UNMATCHED,
                            e.as_response_error().status_code().as_u16(),
                        ),
                    };
                    metrics.observe_api(endpoint, &method, status, started.elapsed().as_secs_f64());
                    res
                }
            })
            .wrap(cors(&data.access.cors_origins))
    })
    .on_connect(on_connect)
    .workers(workers)
    .max_connections(per_worker)
    .client_request_timeout(std::time::Duration::from_secs(5))
    .client_disconnect_timeout(std::time::Duration::from_secs(2))
    .keep_alive(std::time::Duration::from_secs(75))
    .listen(listener)?
    .disable_signals()
    .shutdown_timeout(5)
    .run())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_files_for_the_pipeline_whatever_the_limit() {
        // The attack's machine: 20,000 files, 2 workers of 10,000 used them all.
        assert_eq!(connections_per_worker(20_000, 2), 9_488);
        assert_eq!(connections_per_worker(1_048_576, 2), MAX_CONNECTIONS);
        assert_eq!(
            connections_per_worker(1_024, 4),
            1,
            "never 0: the API still answers"
        );
        assert_eq!(connections_per_worker(65_536, 0), MAX_CONNECTIONS);
        for (files, workers) in [(20_000, 2), (8_192, 8), (4_096, 3)] {
            let total = connections_per_worker(files, workers) as u64 * workers as u64;
            assert!(
                total + RESERVED_FILES <= files,
                "{files} files, {workers} workers"
            );
        }
    }
}
