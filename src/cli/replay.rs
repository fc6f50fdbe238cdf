//! `tickflow replay`: publishes recorded trades to the raw topic of a running tickflow.

use crate::actors::publisher::{producer, send_waiting};
use crate::cli::csv_io::{cell, column_indexes, number, open_input};
use crate::domain::time::parse_timestamp;
use crate::domain::{Source, Symbol, Tick};
use crate::kafka::{topics, wire};
use anyhow::{Context, bail};
use chrono_tz::Tz;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rdkafka::producer::Producer;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as the broker takes them.
    Max,
    /// `n` times real time (event-time gaps divided by `n`).
    Times(f64),
}

fn parse_speed(s: &str) -> Result<Speed, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Speed::Max);
    }
    let factor = s.strip_suffix(['x', 'X']).unwrap_or(s);
    match factor.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Times(f)),
        _ => Err(format!(
            "{s:?} is not max or a positive factor such as 1x or 10x"
        )),
    }
}

/// Options of `tickflow replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Trades CSV (optionally gzip): `ts,price,volume`, plus `symbol` unless `--symbol` is
    /// given; file order is trade order.
    #[arg(long)]
    pub ticks: PathBuf,
    /// The symbol of every row (overrides a `symbol` column).
    #[arg(long)]
    pub symbol: Option<Symbol>,
    /// `max`, or a factor of real time such as `1x` or `10x`.
    #[arg(long, default_value = "max", value_parser = parse_speed)]
    pub speed: Speed,
    /// Time zone of timestamps without an offset.
    #[arg(long, default_value = "UTC")]
    pub tz: Tz,
    /// Kafka of the running tickflow (its log prints `kafka bootstrap: HOST:PORT`).
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub kafka_bootstrap: String,
}

/// Reads the file and publishes each trade keyed by its symbol, pacing by event time.
pub(crate) fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(replay(args))
}

async fn replay(args: &ReplayArgs) -> anyhow::Result<()> {
    let mut reader = open_input(&args.ticks)?;
    let [ts_col, price_col, volume_col] = column_indexes(&mut reader, ["ts", "price", "volume"])?;
    let symbol_col = if args.symbol.is_none() {
        Some(
            column_indexes(&mut reader, ["symbol"]).context("no --symbol and no symbol column")?[0],
        )
    } else {
        None
    };
    let producer = producer(&args.kafka_bootstrap)?;
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} trades  {per_sec}  {elapsed_precise}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let source = Source::new("replay");
    let mut record = csv::ByteRecord::new();
    let started = Instant::now();
    let mut first_event = None;
    let mut sent = 0u64;
    while reader
        .read_byte_record(&mut record)
        .with_context(|| format!("cannot read {}", args.ticks.display()))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let ts = parse_timestamp(cell(&record, ts_col, "ts", line)?, args.tz)
            .with_context(|| format!("line {line}: bad ts"))?;
        let symbol = match (args.symbol, symbol_col) {
            (Some(s), _) => s,
            (None, Some(c)) => Symbol::parse(cell(&record, c, "symbol", line)?)
                .with_context(|| format!("line {line}"))?,
            (None, None) => bail!("no symbol"),
        };
        let tick = Tick::new(
            symbol,
            ts,
            number(&record, price_col, "price", line)?,
            number(&record, volume_col, "volume", line)?,
            source,
        )
        .with_context(|| format!("line {line}"))?;
        if let Speed::Times(factor) = args.speed {
            let first = *first_event.get_or_insert(ts);
            let due = Duration::from_secs_f64(
                ((ts.micros() - first.micros()).max(0) as f64 / 1e6) / factor,
            );
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        send_waiting(
            &producer,
            topics::RAW,
            symbol.as_str(),
            &wire::encode_raw_tick(&tick),
        )
        .await?;
        sent += 1;
        bar.set_position(sent);
    }
    bar.set_message("flushing");
    let producer = std::sync::Arc::new(producer);
    let flushing = producer.clone();
    tokio::task::spawn_blocking(move || flushing.flush(Duration::from_secs(60))).await??;
    let failed = producer.context().failed();
    bar.finish_with_message(format!("done: {sent} trades published to {}", topics::RAW));
    if failed > 0 {
        bail!("{failed} of {sent} trades were not delivered");
    }
    Ok(())
}
