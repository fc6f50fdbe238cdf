//! Domain-level integration tests: TA-Lib parity, bar and routing properties, the offline
//! CLI, and `serve` as operators meet it (configuration, logs, process metrics).

mod bar_properties;
mod cli;
mod failover_properties;
mod helpers;
mod operations;
mod routing_properties;
mod talib_parity;
