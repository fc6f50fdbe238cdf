//! The streaming pipeline's logic, as plain types the actors (`crate::actors`) stay thin
//! around: everything here is unit-tested without a broker or a database.
//!
//! - [`settings`]: how symbols are built and the raw topic consumed.
//! - [`routing`]: where a trade is processed (its symbol's home partition) and which
//!   partitions fed each symbol.
//! - [`alignment`]: trades of all partitions read here, released in event-time order.
//! - [`ledger`]: per partition, what was read, where a replay starts, what to commit.
//! - [`quarantine`]: finding the one trade a symbol keeps failing on.
//! - [`applied`]: which trades a symbol has accounted for (redelivery changes nothing).
//! - [`checkpoint`]: a symbol's whole state, its format, how it is restored.
//! - [`lifecycle`]: the phases of a symbol's supervisor.
//! - [`clock`]: future-dated trades, and how far a quiet symbol's clock may move.
//! - [`view`]: what supervisors read of the consumer's knowledge.

pub mod alignment;
pub mod applied;
pub mod checkpoint;
pub mod clock;
pub mod ledger;
pub mod lifecycle;
pub mod quarantine;
pub mod routing;
pub mod settings;
pub mod view;

pub use alignment::{Aligner, Bound};
pub use applied::Applied;
pub use checkpoint::{LastEvent, SymbolState};
pub use ledger::{OffsetLedger, Read};
pub use lifecycle::Lifecycle;
pub use quarantine::{Delivery, Quarantine, Verdict};
pub use routing::{Feeds, Handover, Route};
pub use settings::{ConsumerSettings, SymbolSettings};
pub use view::PipelineView;
