//! WebSockets: `/ws/prices/{symbol}`, `/ws/analytics/{symbol}?interval=`,
//! `/ws/bars/{symbol}?interval=`.
//!
//! One task per client runs a `select!` over the socket, its bounded outbound queue and a
//! heartbeat. The confirmation and `{"action":"unsubscribe"}` messages are the reference's
//! (§6.4); `{"action":"subscribe"}` subscribes again. A client that stops answering pings is
//! closed; a client that falls behind is evicted by the broadcaster and closed with a reason.

use crate::actors::broadcaster::{Channel, ChannelKey, Subscribe, Unsubscribe};
use crate::domain::{Interval, Timestamp};
use crate::web::AppState;
use crate::web::errors::ApiError;
use crate::web::params::{self, Params};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Messages a client may have queued before it counts as too slow.
pub const CLIENT_QUEUE: usize = 256;
/// How often the server pings.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Silence after which a client is closed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest frame accepted from a client.
const MAX_FRAME: usize = 64 * 1024;
/// Longest a write to the socket may wait (a client that does not read blocks it).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the close frame waits for an evicted client to drain its socket.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(60);

/// `GET /ws/prices/{symbol}`: every trade of the symbol.
pub async fn prices(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let symbol = params::symbol(&path)?;
    start(req, body, state, (Channel::Prices, symbol), None)
}

/// `GET /ws/analytics/{symbol}?interval=5min` (bar analytics) or `?interval=realtime`.
pub async fn analytics(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let symbol = params::symbol(&path)?;
    let q = Params::parse(req.query_string())?;
    let channel = match q.get("interval").unwrap_or("5min") {
        "realtime" => Channel::Realtime,
        raw => Channel::Analytics(any_interval(raw)?),
    };
    let label = q.get("interval").unwrap_or("5min").to_owned();
    start(req, body, state, (channel, symbol), Some(label))
}

/// `GET /ws/bars/{symbol}?interval=1m`: the open bar about once a second, closed bars, revisions.
pub async fn bars(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let symbol = params::symbol(&path)?;
    let q = Params::parse(req.query_string())?;
    let raw = q.get("interval").unwrap_or("1min").to_owned();
    start(
        req,
        body,
        state,
        (Channel::Bars(any_interval(&raw)?), symbol),
        Some(raw),
    )
}

fn any_interval(raw: &str) -> Result<Interval, ApiError> {
    raw.parse::<Interval>().map_err(|_| {
        ApiError::BadRequest(format!("Invalid interval: {raw}. Valid intervals: ['1min', '5min', '15min', '30min', '1h', '4h', '1day'] or 'realtime' for analytics"))
    })
}

fn confirmation(key: ChannelKey, interval: Option<&str>, status: &str) -> String {
    json!({
        "type": "subscription",
        "status": status,
        "topic": key.0.topic(),
        "symbol": key.1.as_str(),
        "interval": interval,
        "timestamp": Timestamp::from_datetime(&chrono::Utc::now()).to_rfc3339(),
    })
    .to_string()
}

fn start(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    key: ChannelKey,
    interval: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let Some(broadcaster) = state.broadcaster.clone() else {
        return Err(ApiError::NotFound(
            "WebSockets are not enabled on this instance".into(),
        ));
    };
    let (response, mut session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::BadRequest(format!("not a WebSocket request: {e}")))?;
    let mut stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    actix_web::rt::spawn(async move {
        let subscribe = |b: &actix::Addr<crate::actors::broadcaster::Broadcaster>| {
            let (tx, rx) = mpsc::channel::<std::sync::Arc<str>>(CLIENT_QUEUE);
            (b.send(Subscribe { key, queue: tx }), rx)
        };
        let (pending, mut rx) = subscribe(&broadcaster);
        let Ok(mut id) = pending.await else { return };
        let mut subscribed = true;
        if session
            .text(confirmation(key, interval.as_deref(), "success"))
            .await
            .is_err()
        {
            let _ = broadcaster.send(Unsubscribe { id }).await;
            return;
        }
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        let mut last_heard = Instant::now();
        let reason = loop {
            tokio::select! {
                frame = stream.recv() => {
                    last_heard = Instant::now();
                    match frame {
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            let action = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["action"].as_str().map(str::to_owned));
                            match action.as_deref() {
                                Some("unsubscribe") if subscribed => {
                                    let _ = broadcaster.send(Unsubscribe { id }).await;
                                    subscribed = false;
                                    if session.text(confirmation(key, interval.as_deref(), "unsubscribed")).await.is_err() { break None; }
                                }
                                Some("subscribe") if !subscribed => {
                                    let (pending, new_rx) = subscribe(&broadcaster);
                                    let Ok(new_id) = pending.await else { break None };
                                    (id, rx, subscribed) = (new_id, new_rx, true);
                                    if session.text(confirmation(key, interval.as_deref(), "success")).await.is_err() { break None; }
                                }
                                _ => {}
                            }
                        }
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            if session.pong(&bytes).await.is_err() { break None; }
                        }
                        Some(Ok(AggregatedMessage::Close(_))) | None => break None,
                        Some(Ok(_)) => {}
                        Some(Err(e)) => break Some(CloseReason { code: CloseCode::Protocol, description: Some(e.to_string()) }),
                    }
                }
                out = rx.recv(), if subscribed => match out {
                    Some(payload) => match tokio::time::timeout(SEND_TIMEOUT, session.text(&*payload)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break None,
                        Err(_) => break Some(CloseReason { code: CloseCode::Policy, description: Some("client too slow: not reading".into()) }),
                    },
                    None => break Some(CloseReason {
                        code: CloseCode::Policy,
                        description: Some(format!("client too slow: more than {CLIENT_QUEUE} messages behind")),
                    }),
                },
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > CLIENT_TIMEOUT {
                        break Some(CloseReason { code: CloseCode::Away, description: Some("no answer to pings".into()) });
                    }
                    if session.ping(b"").await.is_err() { break None; }
                }
            }
        };
        if subscribed {
            let _ = broadcaster.send(Unsubscribe { id }).await;
        }
        // The close frame queues behind what the client has not read yet; give up after a
        // while (the subscription is already gone, so only the socket is held meanwhile).
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, session.close(reason)).await;
    });
    Ok(response)
}
