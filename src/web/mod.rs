//! The HTTP surface: the reference's REST routes, `/health` and `/metrics`.

pub mod errors;
pub mod format;
pub mod health;
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
    pub started: std::time::Instant,
    /// WebSocket fan-out (absent when WebSockets are off).
    pub broadcaster: Option<actix::Addr<crate::actors::broadcaster::Broadcaster>>,
}

/// Serves the routes on `listener` until the returned server is stopped.
///
/// # Errors
/// When the listener cannot be used.
pub fn serve(listener: TcpListener, state: AppState) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(state);
    Ok(HttpServer::new(move || {
        let metrics = data.metrics.clone();
        App::new()
            .app_data(data.clone())
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
            .route("/", web::get().to(routes::root))
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
    .listen(listener)?
    .disable_signals()
    .shutdown_timeout(5)
    .run())
}
