//! Volatility measures and bands.

pub mod atr;
pub mod bollinger;
pub mod historical_volatility;
pub mod keltner;
pub mod std_dev;

pub use atr::AverageTrueRange;
pub use bollinger::{BollingerBands, BollingerValue};
pub use historical_volatility::HistoricalVolatility;
pub use keltner::KeltnerChannel;
pub use std_dev::StandardDeviation;
