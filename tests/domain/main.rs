//! Domain-level integration tests: TA-Lib parity, bar properties, and the offline CLI.

mod bar_properties;
mod cli;
mod helpers;
mod routing_properties;
mod talib_parity;
