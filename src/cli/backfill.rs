//! `tickflow backfill`: fills one symbol's missing bars from the history providers.
//!
//! Gaps come from the database (against the exchange calendar); the bars go to the Kafka
//! topic of a running `tickflow serve`, whose bar-ingest consumer stores them. By default
//! the command then waits until they are stored. Interrupted, it resumes: what was stored
//! is no longer a gap.

use crate::backfill::{Backfiller, Job};
use crate::domain::{Interval, Symbol, TradingCalendar};
use crate::feeds::history::{HistoryClient, ProviderSettings};
use crate::store::{PgStore, Store};
use anyhow::bail;
use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};

/// Options of `tickflow backfill`.
#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// The symbol to fill.
    pub symbol: Symbol,
    /// Bar interval: 1min 5min 15min 30min 1h 4h 1day (or 1m … 1d).
    #[arg(long)]
    pub interval: Interval,
    /// First local date (YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub from: NaiveDate,
    /// Last local date (YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub to: NaiveDate,
    /// Trading calendar of the symbol: us-equity or utc.
    #[arg(long, env = "TICKFLOW_CALENDAR", default_value = "us-equity")]
    pub calendar: TradingCalendar,
    /// The database of the running tickflow (gaps are read from it).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Kafka of the running tickflow (its log prints `kafka bootstrap: HOST:PORT`).
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub kafka_bootstrap: String,
    /// Return once the bars are published, without waiting until they are stored.
    #[arg(long)]
    pub no_wait: bool,
    /// Longest wait for the running tickflow to store the bars.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    pub wait_timeout: Duration,
    /// Fill spans older than the intraday retention too (they are deleted again within a
    /// minute of being stored, unless the running tickflow keeps them longer).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub providers: ProviderSettings,
    /// The running tickflow's table retention (the same flags and variables as `serve`).
    #[command(flatten)]
    pub retention: crate::store::Retention,
}

pub(crate) fn run(args: &BackfillArgs) -> anyhow::Result<()> {
    if args.from > args.to {
        bail!("--from {} is after --to {}", args.from, args.to);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    actix::System::new().block_on(backfill(args))
}

async fn backfill(args: &BackfillArgs) -> anyhow::Result<()> {
    let store = Store::Postgres(PgStore::connect(&args.database_url, 2).await?);
    let backfiller = Backfiller::new(
        HistoryClient::new(&args.providers),
        store,
        crate::kafka::Producer::new(&args.kafka_bootstrap)?,
    );
    let job = Job {
        symbol: args.symbol,
        interval: args.interval,
        calendar: args.calendar,
        from: args.from,
        to: args.to,
    };
    if let Some(kept) = job.retained_from(&args.retention) {
        let why = format!(
            "{} bars before {kept} are older than the intraday retention ({}): they would be deleted within a minute of being stored",
            args.interval.as_str(),
            humantime::format_duration(args.retention.intraday_ohlcv)
        );
        if !args.force {
            bail!(
                "{why}; give --from {kept} or later, raise --retain-intraday / TICKFLOW_RETAIN_INTRADAY as the running tickflow has it, or --force"
            );
        }
        eprintln!("warning: {why} (--force)");
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} chunks  {elapsed_precise}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = backfiller.run(&job, &bar).await?;
    bar.finish_with_message(format!(
        "{} bars in {} of {} chunks published",
        report.bars,
        report.published.len(),
        report.chunks
    ));
    if !args.no_wait && !report.published.is_empty() {
        let deadline = Instant::now() + args.wait_timeout;
        while !backfiller.stored(&job, &report.published).await? {
            if Instant::now() > deadline {
                bail!(
                    "bars published but not stored within {}: is `tickflow serve` running on this Kafka and database?",
                    humantime::format_duration(args.wait_timeout)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!("stored: {} bars", report.bars);
    }
    for f in &report.failed {
        eprintln!("not filled: {f}");
    }
    if !report.failed.is_empty() {
        bail!(
            "{} of {} chunks could not be filled; run again to retry them",
            report.failed.len(),
            report.chunks
        );
    }
    Ok(())
}
