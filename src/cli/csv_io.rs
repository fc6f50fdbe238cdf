//! CSV plumbing shared by the offline commands: plain or gzip input, stdout or file output,
//! header lookup and cell parsing with line numbers in every error.

use anyhow::{Context, bail};
use csv::ByteRecord;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// Opens `path` for reading, decompressing it when it starts with the gzip magic bytes
/// (whatever its name), so `.csv.gz` and renamed files both work.
pub(crate) fn open_input(path: &Path) -> anyhow::Result<csv::Reader<Box<dyn Read>>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buffered = BufReader::with_capacity(1 << 16, file);
    let is_gzip = buffered
        .fill_buf()
        .with_context(|| format!("cannot read {}", path.display()))?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if is_gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(reader))
}

/// A buffered writer to `path`, or to stdout when `None`.
pub(crate) fn open_output(path: Option<&Path>) -> anyhow::Result<BufWriter<Box<dyn Write>>> {
    let sink: Box<dyn Write> = match path {
        Some(p) => {
            Box::new(File::create(p).with_context(|| format!("cannot create {}", p.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    Ok(BufWriter::with_capacity(1 << 16, sink))
}

/// Names the time column (`ts`) may have: the API's CSV calls it `timestamp`, common
/// exports `Date` or `Datetime` (first match wins, in this order).
const TIME_COLUMNS: [&str; 5] = ["ts", "timestamp", "datetime", "date", "time"];

/// Positions of `wanted` columns in the header (case-insensitive); `ts` is also found under
/// the names of [`TIME_COLUMNS`].
///
/// # Errors
/// When a column is missing: the message lists the header found.
pub(crate) fn column_indexes<const N: usize>(
    reader: &mut csv::Reader<Box<dyn Read>>,
    wanted: [&str; N],
) -> anyhow::Result<[usize; N]> {
    let header = reader
        .byte_headers()
        .context("cannot read the header line")?
        .clone();
    let names: Vec<String> = header
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim()
                .trim_start_matches('\u{feff}')
                .to_ascii_lowercase()
        })
        .collect();
    let mut out = [0; N];
    for (slot, want) in out.iter_mut().zip(wanted) {
        let accepted: &[&str] = if want == "ts" {
            &TIME_COLUMNS
        } else {
            std::slice::from_ref(&want)
        };
        *slot = accepted
            .iter()
            .find_map(|a| names.iter().position(|n| n == a))
            .with_context(|| {
                let quoted: Vec<String> = accepted.iter().map(|a| format!("{a:?}")).collect();
                format!(
                    "line 1: the header has no {} column (expected {}; found {})",
                    quoted.join(" or "),
                    wanted.join(","),
                    names.join(",")
                )
            })?;
    }
    Ok(out)
}

/// The text of cell `idx` of `record` at `line`.
pub(crate) fn cell<'r>(
    record: &'r ByteRecord,
    idx: usize,
    name: &str,
    line: u64,
) -> anyhow::Result<&'r str> {
    let raw = record
        .get(idx)
        .with_context(|| format!("line {line}: missing {name} column"))?;
    std::str::from_utf8(raw).with_context(|| format!("line {line}: {name} is not UTF-8"))
}

/// Cell `idx` as a finite number.
pub(crate) fn number(
    record: &ByteRecord,
    idx: usize,
    name: &str,
    line: u64,
) -> anyhow::Result<f64> {
    let text = cell(record, idx, name, line)?;
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => bail!("line {line}: {name} {text:?} is not a finite number"),
    }
}

/// Writes `,value` (shortest text that parses back to the same `f64`) or `,` for `None`.
#[inline]
pub(crate) fn write_cell(out: &mut impl Write, value: Option<f64>) -> std::io::Result<()> {
    match value {
        Some(v) => write!(out, ",{v:?}"),
        None => out.write_all(b","),
    }
}
