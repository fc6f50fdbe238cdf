//! Bar indicators: one per file, grouped by kind, each incremental and equal to TA-Lib C
//! 0.8 (formulas and how each was verified: `notes/talib_facts.md`) including warm-up positions.
//!
//! yata supplies the parts whose arithmetic is exact whatever the order (rolling
//! highest/lowest, momentum); everything that rounds is written here in TA-Lib's operation
//! order, and each file says where and why yata's maths differs.

pub mod average;
mod indicator;
pub mod momentum;
mod revisable;
mod set;
mod talib;
mod values;
pub mod volatility;
pub mod volume;
mod window;
pub use window::RingBuffer;

pub use indicator::Indicator;
pub use revisable::{RevisableIndicators, TooOld};
pub use set::{BAR_INDICATOR_COUNT, BAR_INDICATOR_NAMES, BarIndicators, IndicatorValues};
pub use values::NamedValues;
