//! Momentum and trend-strength oscillators.

pub mod adx;
pub mod macd;
pub mod mom;
mod range;
pub mod rate_of_change;
pub mod rsi;
pub mod stochastic;
pub mod williams_r;

pub use adx::AverageDirectionalIndex;
pub use macd::{MacdValue, MovingAverageConvergenceDivergence};
pub use mom::Momentum;
pub use rate_of_change::RateOfChange;
pub use rsi::RelativeStrengthIndex;
pub use stochastic::{Stochastic, StochasticValue};
pub use williams_r::WilliamsR;
