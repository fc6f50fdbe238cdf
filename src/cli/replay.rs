//! `tickflow replay`: publishes recorded trades to the raw topic of a running tickflow, or
//! recorded bars to its history topic (stored by its bar-ingest consumer, like backfilled
//! bars). Into the embedded broker, which keeps only a few MiB per partition, it waits
//! whenever the pipeline is too far behind (`kafka::backlog`), so nothing is dropped unread.

use crate::cli::csv_io::{cell, column_indexes, number, open_input};
use crate::domain::HistoryBar;
use crate::domain::time::parse_timestamp;
use crate::domain::{Interval, TradingCalendar};
use crate::domain::{Source, Symbol, Tick};
use crate::kafka::backlog::{BacklogProbe, EMBEDDED_BACKLOG_LIMIT};
use crate::kafka::producer::{Producer, Record};
use crate::kafka::{epoch, topics, wire};
use anyhow::{Context, bail};
use chrono_tz::Tz;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::Path;
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
    #[arg(long, required_unless_present = "bars", conflicts_with = "bars")]
    pub ticks: Option<PathBuf>,
    /// Bars CSV (optionally gzip): `ts,open,high,low,close,volume` (bar start), plus `symbol`
    /// unless `--symbol` is given; needs `--interval`.
    #[arg(long, requires = "interval")]
    pub bars: Option<PathBuf>,
    /// Interval of the bars in `--bars`.
    #[arg(long)]
    pub interval: Option<Interval>,
    /// Trading calendar of daily bars (their session gives start and end): us-equity or utc.
    #[arg(long, default_value = "us-equity")]
    pub calendar: TradingCalendar,
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
    /// The running tickflow's consumer group (its backlog paces the replay).
    #[arg(long, env = "TICKFLOW_GROUP", default_value = "tickflow-pipeline")]
    pub group: String,
    /// Wait while a raw partition has more uncommitted messages than this; default: the
    /// embedded broker's safe limit when the target is an embedded broker, no limit else.
    #[arg(long)]
    pub max_backlog: Option<i64>,
    /// Publish history older than the running tickflow's retention too (its bars would be
    /// deleted again within a minute of being stored).
    #[arg(long)]
    pub force: bool,
    /// The running tickflow's table retention (the same flags and variables as `serve`).
    #[command(flatten)]
    pub retention: crate::store::Retention,
}

/// The oldest `ts` of the file: a first pass, so that history the retention would delete
/// again is refused before anything is published.
fn oldest(path: &Path, tz: Tz) -> anyhow::Result<Option<crate::domain::Timestamp>> {
    let mut reader = open_input(path)?;
    let [ts_col] = column_indexes(&mut reader, ["ts"])?;
    let mut record = csv::ByteRecord::new();
    let mut oldest = None;
    while reader
        .read_byte_record(&mut record)
        .with_context(|| format!("cannot read {}", path.display()))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let ts = parse_timestamp(cell(&record, ts_col, "ts", line)?, tz)
            .with_context(|| format!("line {line}: bad ts"))?;
        oldest = Some(oldest.map_or(ts, |o: crate::domain::Timestamp| o.min(ts)));
    }
    Ok(oldest)
}

/// Refuses (without `--force`) history whose bars the retention deletes at once; warns of
/// trades kept only as bars.
fn check_retention(args: &ReplayArgs, path: &Path, bars: Option<Interval>) -> anyhow::Result<()> {
    let Some(oldest) = oldest(path, args.tz)? else {
        return Ok(());
    };
    let now = crate::domain::Timestamp::from_datetime(&chrono::Utc::now());
    let retention = &args.retention;
    let interval = bars.unwrap_or(Interval::M1);
    if let Some(cutoff) = retention.bars_cutoff(interval, now)
        && oldest < cutoff
    {
        let why = format!(
            "the file starts at {oldest}, older than the intraday retention ({}): its {} bars would be deleted within a minute of being stored",
            humantime::format_duration(retention.intraday_ohlcv),
            if bars.is_some() {
                interval.as_str()
            } else {
                "intraday"
            },
        );
        if !args.force {
            bail!(
                "{why}; raise --retain-intraday / TICKFLOW_RETAIN_INTRADAY as the running tickflow has it, or give --force"
            );
        }
        eprintln!("warning: {why} (--force)");
    } else if bars.is_none() && oldest < retention.ticks_cutoff(now) {
        eprintln!(
            "warning: the file starts at {oldest}, older than the trade retention ({}): those trades are deleted from realtime_prices within a minute (their bars are kept)",
            humantime::format_duration(retention.realtime_prices)
        );
    }
    Ok(())
}

/// How many trades go between two looks at the pipeline's backlog.
const BACKLOG_CHECK_EVERY: u64 = 2_000;

/// Paces a replay by the pipeline's backlog. It looks at the broker only when the first
/// check is due, so a file with a bad row fails on that row without contacting Kafka.
struct Pacer {
    probe: Option<Option<(BacklogProbe, i64)>>,
}

impl Pacer {
    fn new() -> Self {
        Self { probe: None }
    }

    async fn probe(&mut self, args: &ReplayArgs) -> anyhow::Result<Option<&(BacklogProbe, i64)>> {
        if self.probe.is_none() {
            let limit = match args.max_backlog {
                Some(l) => Some(l),
                None => epoch::read(&args.kafka_bootstrap)
                    .await
                    .context("cannot read the broker's epoch (is tickflow running there?)")?
                    .filter(|e| e.embedded)
                    .map(|_| EMBEDDED_BACKLOG_LIMIT),
            };
            self.probe = Some(match limit {
                Some(l) => Some((BacklogProbe::new(&args.kafka_bootstrap, &args.group)?, l)),
                None => None,
            });
        }
        Ok(self.probe.as_ref().and_then(Option::as_ref))
    }

    /// Waits while the pipeline is too far behind.
    async fn wait(
        &mut self,
        args: &ReplayArgs,
        producer: &Producer,
        progress: &ProgressBar,
    ) -> anyhow::Result<()> {
        let Some((probe, limit)) = self.probe(args).await? else {
            return Ok(());
        };
        // What is queued locally counts too: deliver it first.
        producer.flush().await?;
        loop {
            let largest = tokio::task::block_in_place(|| probe.largest_blocking())?;
            if largest <= *limit {
                return Ok(());
            }
            progress.set_message(format!(
                "waiting for tickflow to catch up ({largest} uncommitted in a partition)"
            ));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Reads the file and publishes each trade keyed by its symbol, pacing by event time.
pub(crate) fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    // Multi-threaded: the backlog probe blocks (`block_in_place`).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match (&args.ticks, &args.bars, args.interval) {
        (Some(ticks), None, _) => rt.block_on(replay(args, ticks)),
        (None, Some(bars), Some(interval)) => rt.block_on(replay_bars(args, bars, interval)),
        _ => bail!("give --ticks FILE, or --bars FILE with --interval"),
    }
}

/// The file's `symbol` column, unless `--symbol` gives every row's symbol.
fn symbol_column(
    args: &ReplayArgs,
    reader: &mut csv::Reader<Box<dyn std::io::Read>>,
) -> anyhow::Result<Option<usize>> {
    if args.symbol.is_some() {
        return Ok(None);
    }
    Ok(Some(
        column_indexes(reader, ["symbol"]).context("no --symbol and no symbol column")?[0],
    ))
}

/// The symbol of the row at `line`.
fn row_symbol(
    args: &ReplayArgs,
    symbol_col: Option<usize>,
    record: &csv::ByteRecord,
    line: u64,
) -> anyhow::Result<Symbol> {
    match (args.symbol, symbol_col) {
        (Some(s), _) => Ok(s),
        (None, Some(c)) => {
            Symbol::parse(cell(record, c, "symbol", line)?).with_context(|| format!("line {line}"))
        }
        (None, None) => bail!("no symbol"),
    }
}

fn progress(template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar
}

/// Waits until every message is acknowledged.
async fn flush(producer: &Producer, sent: u64, what: &str) -> anyhow::Result<()> {
    producer
        .flush()
        .await
        .with_context(|| format!("not all of {sent} {what} were delivered"))
}

/// Publishes bars to the bar topic with `replay` as their source: the running tickflow
/// stores them as it stores backfilled bars (upserts; never over bars built from trades).
async fn replay_bars(args: &ReplayArgs, path: &Path, interval: Interval) -> anyhow::Result<()> {
    check_retention(args, path, Some(interval))?;
    let mut reader = open_input(path)?;
    let [ts_col, o_col, h_col, l_col, c_col, v_col] = column_indexes(
        &mut reader,
        ["ts", "open", "high", "low", "close", "volume"],
    )?;
    let symbol_col = symbol_column(args, &mut reader)?;
    let producer = Producer::new(&args.kafka_bootstrap)?;
    let bar = progress("{spinner} {pos} bars  {per_sec}  {elapsed_precise}  {msg}");
    let mut record = csv::ByteRecord::new();
    let mut sent = 0u64;
    while reader
        .read_byte_record(&mut record)
        .with_context(|| format!("cannot read {}", path.display()))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let ts = parse_timestamp(cell(&record, ts_col, "ts", line)?, args.tz)
            .with_context(|| format!("line {line}: bad ts"))?;
        let symbol = row_symbol(args, symbol_col, &record, line)?;
        let (start, end) = if interval.is_daily() {
            let date = ts
                .to_datetime()
                .with_timezone(&args.calendar.tz())
                .date_naive();
            let s = args.calendar.session_on(date).with_context(|| {
                format!("line {line}: {date} has no session in {}", args.calendar)
            })?;
            (s.start, s.end)
        } else {
            if ts.micros().rem_euclid(interval.micros()) != 0 {
                bail!(
                    "line {line}: {ts} is not the start of a {} bar",
                    interval.as_str()
                );
            }
            (ts, ts.add_micros(interval.micros()))
        };
        let num = |col, name| number(&record, col, name, line);
        let history = HistoryBar {
            symbol,
            interval,
            start,
            end,
            open: num(o_col, "open")?,
            high: num(h_col, "high")?,
            low: num(l_col, "low")?,
            close: num(c_col, "close")?,
            volume: num(v_col, "volume")?,
        };
        if !(history.low <= history.open.min(history.close)
            && history.high >= history.open.max(history.close)
            && history.low > 0.0
            && history.volume >= 0.0)
        {
            bail!("line {line}: prices are not low <= open, close <= high, or volume < 0");
        }
        let payload = wire::encode_history_bar(&history, "replay");
        producer
            .send(Record::keyed(topics::HISTORY, symbol.as_str(), &payload))
            .await?;
        sent += 1;
        bar.set_position(sent);
    }
    bar.set_message("flushing");
    flush(&producer, sent, "bars").await?;
    bar.finish_with_message(format!(
        "done: {sent} bars published to {}",
        topics::HISTORY
    ));
    Ok(())
}

async fn replay(args: &ReplayArgs, path: &Path) -> anyhow::Result<()> {
    check_retention(args, path, None)?;
    let mut reader = open_input(path)?;
    let [ts_col, price_col, volume_col] = column_indexes(&mut reader, ["ts", "price", "volume"])?;
    let symbol_col = symbol_column(args, &mut reader)?;
    let producer = Producer::new(&args.kafka_bootstrap)?;
    let mut pacer = Pacer::new();
    let bar = progress("{spinner} {pos} trades  {per_sec}  {elapsed_precise}  {msg}");
    let source = Source::new("replay");
    let mut record = csv::ByteRecord::new();
    let started = Instant::now();
    let mut first_event = None;
    let mut sent = 0u64;
    while reader
        .read_byte_record(&mut record)
        .with_context(|| format!("cannot read {}", path.display()))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let ts = parse_timestamp(cell(&record, ts_col, "ts", line)?, args.tz)
            .with_context(|| format!("line {line}: bad ts"))?;
        let symbol = row_symbol(args, symbol_col, &record, line)?;
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
        if sent % BACKLOG_CHECK_EVERY == BACKLOG_CHECK_EVERY - 1 {
            pacer.wait(args, &producer, &bar).await?;
        }
        let payload = wire::encode_raw_tick(&tick);
        producer
            .send(Record::keyed(topics::RAW, symbol.as_str(), &payload))
            .await?;
        sent += 1;
        bar.set_position(sent);
    }
    bar.set_message("flushing");
    flush(&producer, sent, "trades").await?;
    bar.finish_with_message(format!("done: {sent} trades published to {}", topics::RAW));
    Ok(())
}
