//! Market-data feeds that publish ticks to the raw topic.

pub mod alphavantage;
pub mod simulator;
pub mod yahoo;
pub mod yahoo_stream;

pub use simulator::Simulator;
