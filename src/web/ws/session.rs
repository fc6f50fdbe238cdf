//! WebSockets: `/ws/prices/{symbol}`, `/ws/analytics/{symbol}?interval=`,
//! `/ws/bars/{symbol}?interval=`.
//!
//! One task per client runs a `select!` over the socket, its bounded outbound queue and a
//! heartbeat. The confirmation and `{"action":"unsubscribe"}` messages are the reference's
//! (§6.4), with the interval's canonical name (`1m`, not the `1min` a client may have sent);
//! `{"action":"subscribe"}` subscribes again. The token and the parameters are checked on
//! the route before the upgrade (`dispatch::guard`, `args::Args`). A client that stops
//! answering pings is closed; a client that falls behind is evicted by the broadcaster and
//! closed with a reason.

use crate::domain::{Interval, Timestamp};
use crate::web::errors::ApiError;
use crate::web::params::REALTIME;
use crate::web::routes::{Call, Reply};
use crate::web::ws::broadcaster::{Channel, ChannelKey, Subscribe, Unsubscribe};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use futures_util::future::LocalBoxFuture;
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
pub fn prices(call: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move {
        let symbol = call.args.symbol()?;
        start(call, (Channel::Prices, symbol), None)
    })
}

/// `GET /ws/analytics/{symbol}?interval=5m` (bar analytics) or `?interval=realtime`.
pub fn analytics(call: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move {
        let symbol = call.args.symbol()?;
        let (channel, name) = match call.args.interval()? {
            Some(i) => (Channel::Analytics(built(&call, i)?), i.as_str()),
            None => (Channel::Realtime, REALTIME),
        };
        start(call, (channel, symbol), Some(name))
    })
}

/// `GET /ws/bars/{symbol}?interval=1m`: the open bar about once a second, closed bars, revisions.
pub fn bars(call: Call) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move {
        let symbol = call.args.symbol()?;
        let interval = call
            .args
            .interval()?
            .ok_or(ApiError::Undeclared("interval"))?;
        let interval = built(&call, interval)?;
        start(
            call,
            (Channel::Bars(interval), symbol),
            Some(interval.as_str()),
        )
    })
}

/// `interval` when this instance builds it: a subscription to one it does not build would
/// wait forever in silence, so it is refused (422 naming `interval`, listing the built ones).
fn built(call: &Call, interval: Interval) -> Result<Interval, ApiError> {
    let intervals = &call.state.pipeline.intervals;
    if intervals.contains(&interval) {
        return Ok(interval);
    }
    let names: Vec<&str> = intervals.iter().map(|i| i.as_str()).collect();
    Err(ApiError::query(
        "interval",
        "not_built",
        format!(
            "this instance does not build {} bars; it builds {}",
            interval.as_str(),
            names.join(", ")
        ),
        interval.as_str(),
    ))
}

/// The subscription message; `interval` is the canonical name, whatever spelling was asked.
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

/// A close for a client that does not read.
fn too_slow(why: String) -> Option<CloseReason> {
    Some(CloseReason {
        code: CloseCode::Policy,
        description: Some(format!("client too slow: {why}")),
    })
}

/// Every write to the socket (messages, confirmations, pings, pongs) waits at most
/// [`SEND_TIMEOUT`]: a client that does not read must not pin its session, which would stop
/// the heartbeat's silence check too. `Err` holds the close to send (`None`: the client is
/// gone).
async fn write(
    sending: impl std::future::Future<Output = Result<(), actix_ws::Closed>>,
) -> Result<(), Option<CloseReason>> {
    match tokio::time::timeout(SEND_TIMEOUT, sending).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(None),
        Err(_) => Err(too_slow("not reading".into())),
    }
}

fn start(call: Call, key: ChannelKey, interval: Option<&'static str>) -> Reply {
    let Call {
        req,
        payload,
        state,
        ..
    } = call;
    let Some(broadcaster) = state.broadcaster.clone() else {
        return Err(ApiError::NotFound(
            "WebSockets are not enabled on this instance".into(),
        ));
    };
    let (response, mut session, stream) = actix_ws::handle(&req, payload)
        .map_err(|e| ApiError::BadRequest(format!("not a WebSocket request: {e}")))?;
    let mut stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    actix_web::rt::spawn(async move {
        let subscribe = |b: &actix::Addr<crate::web::ws::broadcaster::Broadcaster>| {
            let (tx, rx) = mpsc::channel::<std::sync::Arc<str>>(CLIENT_QUEUE);
            (b.send(Subscribe { key, queue: tx }), rx)
        };
        let (pending, mut rx) = subscribe(&broadcaster);
        let Ok(mut id) = pending.await else { return };
        let mut subscribed = true;
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        let mut last_heard = Instant::now();
        let confirmed = write(session.text(confirmation(key, interval, "success"))).await;
        let reason = loop {
            // A confirmation the client did not take ends the session before anything else.
            if let Err(reason) = confirmed {
                break reason;
            }
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
                                    if let Err(reason) = write(session.text(confirmation(key, interval, "unsubscribed"))).await { break reason; }
                                }
                                Some("subscribe") if !subscribed => {
                                    let (pending, new_rx) = subscribe(&broadcaster);
                                    let Ok(new_id) = pending.await else { break None };
                                    (id, rx, subscribed) = (new_id, new_rx, true);
                                    if let Err(reason) = write(session.text(confirmation(key, interval, "success"))).await { break reason; }
                                }
                                _ => {}
                            }
                        }
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            if let Err(reason) = write(session.pong(&bytes)).await { break reason; }
                        }
                        Some(Ok(AggregatedMessage::Close(_))) | None => break None,
                        Some(Ok(_)) => {}
                        Some(Err(e)) => break Some(CloseReason { code: CloseCode::Protocol, description: Some(e.to_string()) }),
                    }
                }
                out = rx.recv(), if subscribed => match out {
                    Some(payload) => if let Err(reason) = write(session.text(&*payload)).await { break reason; },
                    None => break too_slow(format!("more than {CLIENT_QUEUE} messages behind")),
                },
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > CLIENT_TIMEOUT {
                        break Some(CloseReason { code: CloseCode::Away, description: Some("no answer to pings".into()) });
                    }
                    if let Err(reason) = write(session.ping(b"")).await { break reason; }
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
