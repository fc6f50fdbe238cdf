//! `Broadcaster`: fans live messages out to WebSocket clients.
//!
//! Each client has a bounded queue; a client whose queue is full is evicted (its queue is
//! dropped, its session closes with a reason) and counted, so one slow client never slows
//! the others or the pipeline. Fed by the topic feeder (the raw and output topics, so an
//! instance serves every symbol, not only the ones its pipeline owns).

use crate::domain::{Interval, Symbol};
use crate::metrics::Metrics;
use actix::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// What a client listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Trades.
    Prices,
    /// Bar analytics of one interval.
    Analytics(Interval),
    /// Published realtime metrics.
    Realtime,
    /// Bars of one interval: forming, closed, revised.
    Bars(Interval),
}

impl Channel {
    /// The topic a channel's messages come from (named in subscription confirmations).
    pub fn topic(self) -> &'static str {
        use crate::kafka::topics;
        match self {
            Self::Prices => topics::RAW,
            Self::Analytics(_) => topics::ANALYTICS,
            Self::Realtime => topics::REALTIME,
            Self::Bars(_) => topics::OHLCV,
        }
    }
}

/// A channel of one symbol.
pub type ChannelKey = (Channel, Symbol);

/// The keys anyone listens to, shared with the feeder so it parses only what is wanted.
pub type Interest = Arc<RwLock<HashSet<ChannelKey>>>;

/// Registers a client; answers its id.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct Subscribe {
    pub key: ChannelKey,
    pub queue: mpsc::Sender<Arc<str>>,
}

/// Removes a client.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub id: u64,
}

/// One encoded message for the clients of `key`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Relay {
    pub key: ChannelKey,
    pub payload: Arc<str>,
}

struct Client {
    id: u64,
    queue: mpsc::Sender<Arc<str>>,
}

/// The fan-out actor.
pub struct Broadcaster {
    clients: HashMap<ChannelKey, Vec<Client>>,
    keys: HashMap<u64, ChannelKey>,
    next_id: u64,
    interest: Interest,
    metrics: Metrics,
}

impl Broadcaster {
    /// A broadcaster publishing its subscriptions into `interest`.
    pub fn new(interest: Interest, metrics: Metrics) -> Self {
        Self {
            clients: HashMap::new(),
            keys: HashMap::new(),
            next_id: 1,
            interest,
            metrics,
        }
    }

    fn refresh_interest(&self) {
        // unwrap: only this actor writes, and it never panics while holding the lock.
        *self.interest.write().unwrap() = self.clients.keys().copied().collect();
    }

    fn deliver(&mut self, key: ChannelKey, payload: &Arc<str>) {
        let Some(clients) = self.clients.get_mut(&key) else {
            return;
        };
        let before = clients.len();
        clients.retain(|c| match c.queue.try_send(payload.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(client = c.id, "WebSocket client too slow; closing it");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        let evicted = before - clients.len();
        if evicted > 0 {
            self.metrics.ws_evicted.inc_by(evicted as u64);
            if clients.is_empty() {
                self.clients.remove(&key);
                self.refresh_interest();
            }
        }
    }
}

impl Actor for Broadcaster {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<Subscribe> for Broadcaster {
    type Result = u64;

    /// Registers the client's queue under its channel.
    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.clients.entry(msg.key).or_default().push(Client {
            id,
            queue: msg.queue,
        });
        self.keys.insert(id, msg.key);
        self.refresh_interest();
        self.metrics.ws_clients.inc();
        id
    }
}

impl Handler<Unsubscribe> for Broadcaster {
    type Result = ();

    /// Forgets the client (idempotent).
    fn handle(&mut self, msg: Unsubscribe, _: &mut Self::Context) {
        let Some(key) = self.keys.remove(&msg.id) else {
            return;
        };
        self.metrics.ws_clients.dec();
        if let Some(list) = self.clients.get_mut(&key) {
            list.retain(|c| c.id != msg.id);
            if list.is_empty() {
                self.clients.remove(&key);
            }
        }
        self.refresh_interest();
    }
}

impl Handler<Relay> for Broadcaster {
    type Result = ();

    /// Hands the message to every client of its channel.
    fn handle(&mut self, msg: Relay, _: &mut Self::Context) {
        self.deliver(msg.key, &msg.payload);
    }
}
