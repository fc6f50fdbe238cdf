//! The HTTP surface: `/health` and `/metrics`.

pub mod health;

use crate::metrics::Metrics;
use crate::store::Store;
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
}

/// Serves the routes on `listener` until the returned server is stopped.
///
/// # Errors
/// When the listener cannot be used.
pub fn serve(listener: TcpListener, state: AppState) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(state);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/health", web::get().to(health::health))
            .route("/metrics", web::get().to(health::metrics))
    })
    .listen(listener)?
    .disable_signals()
    .shutdown_timeout(5)
    .run())
}
