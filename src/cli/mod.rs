//! The `tickflow` command line.
//!
//! - `serve`: the platform; `migrate`, `create-topics`: its setup steps alone; `broker`: the
//!   embedded Kafka broker as a process of its own.
//! - `indicators`: OHLCV bars from a CSV file in, every bar indicator out.
//! - `bars`: trades from a CSV file in, OHLCV bars out.
//! - `replay`: recorded trades or bars onto the topics of a running tickflow.
//! - `backfill`: missing bars from the history providers, through the topics.
//!
//! Both stream in constant memory and stop at the first bad row, naming its line.

mod backfill;
mod bars;
mod csv_io;
mod indicators;
mod replay;
mod serve;

use clap::{Parser, Subcommand};

pub use backfill::BackfillArgs;
pub use bars::BarsArgs;
pub use indicators::IndicatorsArgs;
pub use replay::ReplayArgs;
pub use serve::{BrokerArgs, CreateTopicsArgs, MigrateArgs, ServeArgs};

/// Market-data analytics: exact OHLCV bars and TA-Lib-identical indicators.
#[derive(Debug, Parser)]
#[command(name = "tickflow", version, about)]
pub struct Cli {
    /// Log line format on stderr: `text` (colours only on a terminal) or `json` (one object
    /// per line, for log collectors).
    #[arg(
        long,
        env = "TICKFLOW_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal.
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole platform: feed, Kafka pipeline, storage, HTTP API.
    Serve(Box<ServeArgs>),
    /// Apply the database migrations in sql/ and exit.
    Migrate(MigrateArgs),
    /// Create the Kafka topics (serve also does this) and exit.
    CreateTopics(CreateTopicsArgs),
    /// Run the embedded Kafka broker as a process of its own (for several instances).
    Broker(BrokerArgs),
    /// Compute every bar indicator for an OHLCV CSV file (ts,open,high,low,close,volume).
    Indicators(IndicatorsArgs),
    /// Build OHLCV bars from a trades CSV file (ts,price,volume).
    Bars(BarsArgs),
    /// Publish recorded trades (ts,price,volume[,symbol]) or bars to a running tickflow.
    Replay(ReplayArgs),
    /// Fill a symbol's missing bars from the history providers (TwelveData, Alpha Vantage).
    Backfill(Box<BackfillArgs>),
}

/// Runs one command.
///
/// # Errors
/// Whatever the command reports: unreadable files, bad rows (with their line), bad options.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Migrate(args) => serve::migrate(&args),
        Command::CreateTopics(args) => serve::create_topics(&args),
        Command::Broker(args) => serve::broker(&args),
        Command::Indicators(args) => indicators::run(&args),
        Command::Bars(args) => bars::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Backfill(args) => backfill::run(&args),
    }
}

/// Logs to stderr in `format`, filtered by `RUST_LOG` (default `info`). Colour codes are
/// written only when stderr is a terminal: in files, pipes and `docker logs` they are noise.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests calling `run` twice) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}
