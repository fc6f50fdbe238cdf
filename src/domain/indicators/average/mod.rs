//! Moving averages.

pub mod ema;
pub mod sma;

pub use ema::ExponentialMovingAverage;
pub use sma::SimpleMovingAverage;
