//! The HTTP surface: the reference's REST routes, `/health`, `/metrics`, the docs and the chart page.

pub mod cache;
pub mod chart;
pub mod docs;
pub mod errors;
pub mod format;
pub mod health;
pub mod openapi;
pub mod params;
pub mod routes;
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
    pub broadcaster: Option<actix::Addr<crate::actors::broadcaster::Broadcaster>>,
    /// Access rules.
    pub access: Access,
    /// State of a network feed, when one runs.
    pub feed: Option<Arc<crate::feeds::stream::FeedState>>,
    /// Recent answers of the read routes.
    pub cache: Arc<cache::ResponseCache>,
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

/// Whether `req` may pass: protected paths need the token.
fn authorised(req: &actix_web::dev::ServiceRequest, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let path = req.path();
    if !(path.starts_with("/api/") || path.starts_with("/ws/")) {
        return true;
    }
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let query = path.starts_with("/ws/").then(|| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
            .ok()
            .and_then(|q| q.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v))
    });
    header == Some(token) || query.flatten().as_deref() == Some(token)
}

/// Serves the routes on `listener` until the returned server is stopped.
///
/// # Errors
/// When the listener cannot be used.
pub fn serve(listener: TcpListener, state: AppState) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(state);
    Ok(HttpServer::new(move || {
        let metrics = data.metrics.clone();
        let token = data.access.token.clone();
        let (cache, store) = (data.cache.clone(), data.store.clone());
        App::new()
            .app_data(data.clone())
            // Innermost: after the token check, inside the request metrics.
            .wrap_fn(move |req, srv| {
                use futures_util::future::{Either, FutureExt, ready};
                match cache::lookup(&cache, store.generations(), req) {
                    cache::Lookup::Hit(res) => Either::Left(ready(Ok(res))),
                    cache::Lookup::Pass(req) => Either::Right(srv.call(req).boxed_local()),
                    cache::Lookup::Miss {
                        req,
                        key,
                        generation,
                    } => {
                        let cache = cache.clone();
                        let call = srv.call(req);
                        Either::Right(
                            async move {
                                call.await
                                    .map(|res| cache::keep(&cache, key, generation, res))
                            }
                            .boxed_local(),
                        )
                    }
                }
            })
            .wrap_fn(move |req, srv| {
                let allowed = authorised(&req, token.as_deref());
                let call = allowed.then(|| srv.call(req));
                async move {
                    match call {
                        Some(call) => call.await,
                        None => Err(errors::ApiError::Unauthorized.into()),
                    }
                }
            })
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| errors::ApiError::BadRequest(e.to_string()).into()),
            )
            .wrap_fn(move |req, srv| {
                // Route template, not raw path: one series per route, not per symbol.
                let endpoint = req
                    .match_pattern()
                    .unwrap_or_else(|| "unmatched".to_owned());
                let method = req.method().to_string();
                let started = std::time::Instant::now();
                let metrics = metrics.clone();
                let call = srv.call(req);
                async move {
                    let res = call.await;
                    let status = res.as_ref().map_or(500, |r| r.status().as_u16());
                    metrics
                        .api_requests
                        .with_label_values(&[&endpoint, &method])
                        .inc();
                    if status >= 400 {
                        metrics
                            .api_errors
                            .with_label_values(&[&endpoint, &method, &status.to_string()])
                            .inc();
                    }
                    metrics
                        .api_latency
                        .with_label_values(&[&endpoint])
                        .observe(started.elapsed().as_secs_f64());
                    res
                }
            })
            .wrap(cors(&data.access.cors_origins))
            .route("/", web::get().to(routes::root))
            .route("/docs", web::get().to(docs::swagger))
            .route("/redoc", web::get().to(docs::redoc))
            .route("/docs/assets/{file}", web::get().to(docs::asset))
            .route("/chart", web::get().to(chart::page))
            .route("/chart/assets/{file}", web::get().to(chart::asset))
            .route(
                "/openapi.json",
                web::get().to(|| async { actix_web::HttpResponse::Ok().json(openapi::document()) }),
            )
            .route("/ws/prices/{symbol}", web::get().to(ws::prices))
            .route("/ws/analytics/{symbol}", web::get().to(ws::analytics))
            .route("/ws/bars/{symbol}", web::get().to(ws::bars))
            .route("/health", web::get().to(health::health))
            .route("/metrics", web::get().to(health::metrics))
            .service(
                web::scope("/api/v2/realtime")
                    .route("/prices/{symbol}", web::get().to(routes::realtime_prices))
                    .route(
                        "/prices/{symbol}/latest",
                        web::get().to(routes::realtime_latest),
                    )
                    .route(
                        "/analytics/{symbol}",
                        web::get().to(routes::realtime_analytics),
                    )
                    .route("/symbols", web::get().to(routes::realtime_symbols)),
            )
            .service(
                web::scope("/api/v2/intraday")
                    .route("/prices/{symbol}", web::get().to(routes::intraday_prices))
                    .route(
                        "/prices/{symbol}/latest",
                        web::get().to(routes::intraday_latest),
                    )
                    .route(
                        "/prices/{symbol}/last/{count}",
                        web::get().to(routes::intraday_last),
                    )
                    .route(
                        "/analytics/{symbol}",
                        web::get().to(routes::intraday_analytics),
                    )
                    .route(
                        "/analytics/{symbol}/last/{count}",
                        web::get().to(routes::intraday_analytics_last),
                    ),
            )
            .service(
                web::scope("/api/v2/historical")
                    .route("/prices/{symbol}", web::get().to(routes::historical_prices))
                    .route(
                        "/prices/{symbol}/latest",
                        web::get().to(routes::historical_latest),
                    )
                    .route(
                        "/prices/{symbol}/last/{count}",
                        web::get().to(routes::historical_last),
                    )
                    .route(
                        "/analytics/{symbol}",
                        web::get().to(routes::historical_analytics),
                    )
                    .route(
                        "/analytics/{symbol}/last/{count}",
                        web::get().to(routes::historical_analytics_last),
                    ),
            )
    })
    .max_connections(MAX_CONNECTIONS)
    .client_request_timeout(std::time::Duration::from_secs(5))
    .client_disconnect_timeout(std::time::Duration::from_secs(2))
    .keep_alive(std::time::Duration::from_secs(75))
    .listen(listener)?
    .disable_signals()
    .shutdown_timeout(5)
    .run())
}
