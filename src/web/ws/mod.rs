//! WebSockets, from the topics to a client:
//!
//! ```text
//! raw + output topics ─▶ feeder (a consumer group per instance) ─▶ Broadcaster ─▶ session (one per client)
//! ```
//!
//! - [`feeder`]: reads the topics once someone listens, relays each message by its key
//!   (the symbol) and interval header, undecoded except trades.
//! - [`broadcaster`]: `Broadcaster`, the actor fanning messages out to bounded per-client
//!   queues; a client that falls behind is evicted, never waited for.
//! - [`session`]: one client's socket — the routes `/ws/prices/{symbol}`,
//!   `/ws/analytics/{symbol}`, `/ws/bars/{symbol}`, their subscribe/unsubscribe protocol
//!   and heartbeat.

pub mod broadcaster;
pub mod feeder;
mod session;

pub use broadcaster::Broadcaster;
pub use session::{analytics, bars, prices};
