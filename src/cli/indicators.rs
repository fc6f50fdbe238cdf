//! `tickflow indicators`: every bar indicator for an OHLCV CSV file.

use crate::cli::csv_io::{cell, column_indexes, number, open_input, open_output, write_cell};
use crate::domain::time::{Timestamp, parse_timestamp};
use crate::domain::{BAR_INDICATOR_NAMES, BarIndicators, Interval, Ohlcv, TradingCalendar};
use anyhow::{Context, bail};
use chrono_tz::Tz;
use std::io::Write;
use std::path::PathBuf;

/// Options of `tickflow indicators`.
#[derive(Debug, clap::Args)]
pub struct IndicatorsArgs {
    /// Bars CSV (optionally gzip): header with ts,open,high,low,close,volume in any order and
    /// case (the time column may also be named timestamp, as in the API's CSV, or Date /
    /// Datetime, as in common exports); ts as a date, a date-time or epoch seconds/ms; rows
    /// in time order, oldest or newest first (the API's order).
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write; stdout when absent.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Bar interval of the file: sets the annualisation of hist_vol_20.
    #[arg(long, default_value = "1d")]
    pub interval: Interval,
    /// Trading calendar: sets the vwap session and the annualisation of hist_vol_20.
    #[arg(long, default_value = "us-equity")]
    pub calendar: TradingCalendar,
    /// Time zone of timestamps without an offset.
    #[arg(long, default_value = "UTC")]
    pub tz: Tz,
}

/// Streams the file through [`BarIndicators`], one output row per input row.
pub(crate) fn run(args: &IndicatorsArgs) -> anyhow::Result<()> {
    let mut reader = open_input(&args.input)?;
    let cols = column_indexes(
        &mut reader,
        ["ts", "open", "high", "low", "close", "volume"],
    )?;
    let mut out = open_output(args.output.as_deref())?;
    out.write_all(b"ts")?;
    for name in BAR_INDICATOR_NAMES {
        write!(out, ",{name}")?;
    }
    out.write_all(b"\n")?;

    // Every row first: a file newest first (as the API answers) is read backwards.
    let mut bars: Vec<(u64, Timestamp, String, Ohlcv)> = Vec::new();
    let mut record = csv::ByteRecord::new();
    while reader
        .read_byte_record(&mut record)
        .with_context(|| format!("cannot read {}", args.input.display()))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let ts_text = cell(&record, cols[0], "ts", line)?;
        let ts =
            parse_timestamp(ts_text, args.tz).with_context(|| format!("line {line}: bad ts"))?;
        bars.push((
            line,
            ts,
            ts_text.to_owned(),
            parse_bar(&record, &cols, line)?,
        ));
    }
    if bars.first().map(|b| b.1) > bars.last().map(|b| b.1) {
        bars.reverse();
    }
    if let Some(w) = bars.windows(2).find(|w| w[1].1 <= w[0].1) {
        bail!(
            "line {}: ts {:?} is not after line {}'s {:?}; sort the file by time",
            w[1].0,
            w[1].2,
            w[0].0,
            w[0].2
        );
    }

    let mut indicators = BarIndicators::new(args.interval, args.calendar);
    let rows = bars.len();
    for (_, ts, ts_text, bar) in &bars {
        let values = indicators.update(*ts, bar, None);
        out.write_all(ts_text.as_bytes())?;
        for v in values.as_array() {
            write_cell(&mut out, *v)?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    tracing::info!(rows, input = %args.input.display(), "indicators written");
    Ok(())
}

fn parse_bar(record: &csv::ByteRecord, cols: &[usize; 6], line: u64) -> anyhow::Result<Ohlcv> {
    let bar = Ohlcv {
        open: number(record, cols[1], "open", line)?,
        high: number(record, cols[2], "high", line)?,
        low: number(record, cols[3], "low", line)?,
        close: number(record, cols[4], "close", line)?,
        volume: number(record, cols[5], "volume", line)?,
    };
    for (name, v) in [
        ("open", bar.open),
        ("high", bar.high),
        ("low", bar.low),
        ("close", bar.close),
    ] {
        if v <= 0.0 {
            bail!("line {line}: {name} {v} is not greater than 0");
        }
    }
    if bar.volume < 0.0 {
        bail!("line {line}: volume {} is negative", bar.volume);
    }
    if bar.high < bar.low {
        bail!("line {line}: high {} is below low {}", bar.high, bar.low);
    }
    Ok(bar)
}
