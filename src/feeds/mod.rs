//! Market-data feeds that publish ticks to the raw topic.

pub mod simulator;

pub use simulator::Simulator;
