//! `tickflow bars`: OHLCV bars from a trades CSV file.

use crate::cli::csv_io::{cell, column_indexes, number, open_input, open_output, write_cell};
use crate::domain::time::parse_timestamp;
use crate::domain::{
    Bar, BarBuilder, BarBuilderConfig, BarEvent, Interval, Source, Symbol, Tick, TickOutcome,
    TradingCalendar,
};
use anyhow::Context;
use chrono_tz::Tz;
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `tickflow bars`.
#[derive(Debug, clap::Args)]
pub struct BarsArgs {
    /// Trades CSV (optionally gzip): header with ts,price,volume in any case (the time column
    /// may also be named timestamp, as in the API's CSV, or Date / Datetime); file order is
    /// trade order, read backwards when the file is newest first (its first trade later than
    /// its last, as the API answers); volume is the trade size.
    #[arg(long)]
    pub input: PathBuf,
    /// Bar interval: 1m 5m 15m 30m 1h 4h 1d (or 1min … 1day, or minutes).
    #[arg(long)]
    pub interval: Interval,
    /// Where to write; stdout when absent.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Trading calendar for daily bars: us-equity (New York 09:30–16:00) or utc.
    #[arg(long, default_value = "us-equity")]
    pub calendar: TradingCalendar,
    /// Time zone of timestamps without an offset.
    #[arg(long, default_value = "UTC")]
    pub tz: Tz,
    /// How far past a bar's end event time moves before the bar closes.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// How long a closed bar still accepts out-of-order trades.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub allowed_lateness: Duration,
}

/// Reads the trades, then runs them through a [`BarBuilder`] in trade order and writes each
/// bar once, in its final form: a bar is written when no trade can revise it any more (or
/// at the end of the file).
pub(crate) fn run(args: &BarsArgs) -> anyhow::Result<()> {
    let mut reader = open_input(&args.input)?;
    let cols = column_indexes(&mut reader, ["ts", "price", "volume"])?;
    let mut out = open_output(args.output.as_deref())?;
    out.write_all(b"ts,open,high,low,close,volume,trades,vwap\n")?;

    let config = BarBuilderConfig {
        grace_micros: micros(args.grace),
        allowed_lateness_micros: micros(args.allowed_lateness),
    };
    let settle = config.grace_micros + config.allowed_lateness_micros;
    let mut builder = BarBuilder::new(args.interval, args.calendar, config);
    // unwrap: a constant, valid symbol; the file carries a single instrument.
    let symbol = Symbol::parse("FILE").unwrap();
    let source = Source::new("csv");
    // Bars emitted but still revisable, oldest first; bounded by the allowed lateness.
    let mut pending: VecDeque<Bar> = VecDeque::new();
    let mut events = Vec::new();
    let mut ticks = Vec::new();
    let mut record = csv::ByteRecord::new();
    while reader
        .read_byte_record(&mut record)
        .with_context(|| format!("cannot read {}", args.input.display()))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let ts = parse_timestamp(cell(&record, cols[0], "ts", line)?, args.tz)
            .with_context(|| format!("line {line}: bad ts"))?;
        let price = number(&record, cols[1], "price", line)?;
        let size = number(&record, cols[2], "volume", line)?;
        ticks.push(
            Tick::new(symbol, ts, price, size, source).with_context(|| format!("line {line}"))?,
        );
    }
    if ticks.first().map(Tick::ts) > ticks.last().map(Tick::ts) {
        ticks.reverse();
    }
    let (mut trades, mut late, mut outside) = (0u64, 0u64, 0u64);
    for tick in &ticks {
        match builder.on_tick(tick, &mut events) {
            TickOutcome::LateDropped => late += 1,
            TickOutcome::OutsideSession => outside += 1,
            TickOutcome::Applied | TickOutcome::Revised => trades += 1,
        }
        absorb(&mut pending, &mut events);
        if let Some(wm) = builder.watermark() {
            while pending
                .front()
                .is_some_and(|b| b.end.add_micros(settle) <= wm)
            {
                // unwrap: front() was Some just above.
                write_bar(&mut out, &pending.pop_front().unwrap())?;
            }
        }
    }
    builder.flush(&mut events);
    absorb(&mut pending, &mut events);
    let bars = pending.len();
    for bar in &pending {
        write_bar(&mut out, bar)?;
    }
    out.flush()?;
    let stats = builder.stats();
    tracing::info!(
        trades,
        late_dropped = late,
        outside_session = outside,
        bars_closed = stats.closed,
        revisions = stats.revised,
        last_bars = bars,
        "bars written"
    );
    Ok(())
}

/// Moves emitted bars into `pending`, replacing an earlier version of the same bar.
fn absorb(pending: &mut VecDeque<Bar>, events: &mut Vec<BarEvent>) {
    for event in events.drain(..) {
        let bar = *event.bar();
        match pending.binary_search_by(|b| b.start.cmp(&bar.start)) {
            Ok(i) => pending[i] = bar,
            Err(i) => pending.insert(i, bar),
        }
    }
}

fn write_bar(out: &mut impl Write, bar: &Bar) -> std::io::Result<()> {
    write!(out, "{}", bar.start.to_rfc3339())?;
    for v in [bar.open, bar.high, bar.low, bar.close, bar.volume] {
        write_cell(out, Some(v))?;
    }
    write!(out, ",{}", bar.trades)?;
    write_cell(out, bar.vwap())?;
    out.write_all(b"\n")
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
}
