//! Volume-based indicators.

pub mod obv;
pub mod session_vwap;

pub use obv::OnBalanceVolume;
pub use session_vwap::SessionVwap;
