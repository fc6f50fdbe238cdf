//! The offline `tickflow indicators` and `tickflow bars` commands, run as a user would.

use crate::helpers::{opt, read_csv, spy_bars};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use tickflow::domain::time::parse_timestamp;
use tickflow::domain::{BAR_INDICATOR_NAMES, BarIndicators, Interval, Ohlcv, TradingCalendar};

fn tickflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the tickflow binary runs")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn gzip(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    path.to_string_lossy().into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn indicators_command_prints_values_that_parse_back_to_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let input = spy_bars();
    let output = dir.path().join("out.csv");
    let out = tickflow(&[
        "indicators",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--interval",
        "1m",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let (in_header, in_rows) = read_csv(&input);
    let (header, rows) = read_csv(&output);
    assert_eq!(header[0], "ts");
    assert_eq!(&header[1..], &BAR_INDICATOR_NAMES[..]);
    assert_eq!(rows.len(), in_rows.len(), "one output row per input row");
    let mut ind = BarIndicators::new(Interval::M1, TradingCalendar::us_equity());
    let col = |n: &str| in_header.iter().position(|h| h == n).unwrap();
    for (input_row, row) in in_rows.iter().zip(&rows) {
        assert_eq!(row[0], input_row[col("ts")], "ts is echoed");
        let bar = Ohlcv {
            open: input_row[col("open")].parse().unwrap(),
            high: input_row[col("high")].parse().unwrap(),
            low: input_row[col("low")].parse().unwrap(),
            close: input_row[col("close")].parse().unwrap(),
            volume: input_row[col("volume")].parse().unwrap(),
        };
        let want = *ind.update(
            parse_timestamp(&row[0], chrono_tz::UTC).unwrap(),
            &bar,
            None,
        );
        let got: Vec<Option<f64>> = row[1..].iter().map(|c| opt(c)).collect();
        assert_eq!(got.as_slice(), want.as_array().as_slice(), "row {}", row[0]);
    }
}

#[test]
fn indicators_command_reads_gzip_epoch_and_date_timestamps_in_any_column_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("volume,close,low,high,open,ts\n");
    for i in 0..30 {
        let c = 100.0 + f64::from(i % 7);
        text.push_str(&format!(
            "{},{c},{},{},{c},{}\n",
            1000 + i,
            c - 1.0,
            c + 1.0,
            1_704_153_600_000i64 + i64::from(i) * 86_400_000
        ));
    }
    let input = gzip(dir.path(), "bars.csv.gz", &text);
    let out = tickflow(&["indicators", "--input", &input]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 31);
    let last: Vec<&str> = lines[30].split(',').collect();
    assert_ne!(last[1], "", "sma_20 is defined on row 29");
    assert_eq!(last[3], "", "sma_200 is not");

    let dated = write(
        dir.path(),
        "dated.csv",
        "ts,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1.5,2,1,1.8,11\n",
    );
    assert!(
        tickflow(&["indicators", "--input", &dated])
            .status
            .success()
    );
}

#[test]
fn indicators_command_refuses_bad_rows_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let head =
        "ts,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.5,10\n";
    let cases = [
        (
            "nan.csv",
            format!("{head}2024-01-04,1,2,0.5,NaN,10\n"),
            "line 4: close",
        ),
        (
            "text.csv",
            format!("{head}2024-01-04,1,2,0.5,abc,10\n"),
            "line 4: close \"abc\"",
        ),
        (
            "negvol.csv",
            format!("{head}2024-01-04,1,2,0.5,1.5,-3\n"),
            "line 4: volume",
        ),
        (
            "zero.csv",
            format!("{head}2024-01-04,1,2,0,1.5,3\n"),
            "line 4: low 0",
        ),
        (
            "highlow.csv",
            format!("{head}2024-01-04,1,1,2,1.5,3\n"),
            "line 4: high 1 is below low 2",
        ),
        (
            "order.csv",
            format!("{head}2024-01-03,1,2,0.5,1.5,10\n"),
            "line 4: ts \"2024-01-03\" is not after",
        ),
        (
            "badts.csv",
            format!("{head}yesterday,1,2,0.5,1.5,10\n"),
            "line 4: bad ts",
        ),
        ("short.csv", format!("{head}2024-01-04,1,2\n"), "line 4"),
        (
            "header.csv",
            "when,open,high,low,close,volume\n1,1,1,1,1,1\n".to_owned(),
            "no \"ts\" or \"timestamp\" or \"datetime\" or \"date\" or \"time\" column",
        ),
    ];
    for (name, text, expected) in cases {
        let input = write(dir.path(), name, &text);
        let out = tickflow(&["indicators", "--input", &input]);
        assert!(!out.status.success(), "{name} should fail");
        assert!(
            stderr(&out).contains(expected),
            "{name}: {:?} lacks {expected:?}",
            stderr(&out)
        );
    }
    let missing = tickflow(&["indicators", "--input", "/nonexistent.csv"]);
    assert!(!missing.status.success() && stderr(&missing).contains("cannot open /nonexistent.csv"));
}

#[test]
fn bars_command_builds_bars_from_trades() {
    let dir = tempfile::tempdir().unwrap();
    let trades = "ts,price,volume\n\
        2024-01-02 14:30:00.100,10,1\n\
        2024-01-02 14:30:30,12,2\n\
        2024-01-02 14:30:30,9,3\n\
        2024-01-02 14:31:00.500,11,1\n\
        2024-01-02 14:30:59,10.5,4\n\
        2024-01-02 14:35:10,11.5,0\n";
    let input = write(dir.path(), "trades.csv", trades);
    let out = tickflow(&["bars", "--input", &input, "--interval", "1min"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        "ts,open,high,low,close,volume,trades,vwap\n\
         2024-01-02T14:30:00Z,10.0,12.0,9.0,10.5,10.0,4,10.3\n\
         2024-01-02T14:31:00Z,11.0,11.0,11.0,11.0,1.0,1,11.0\n\
         2024-01-02T14:35:00Z,11.5,11.5,11.5,11.5,0.0,1,\n"
    );
}

#[test]
fn bars_command_builds_new_york_session_bars_from_gzip_with_local_times() {
    let dir = tempfile::tempdir().unwrap();
    let trades = "ts,price,volume\n\
        2024-03-08 09:29:59,1,1\n\
        2024-03-08 09:30:00,2,1\n\
        2024-03-08 15:59:59,3,1\n\
        2024-03-11 09:30:00,4,1\n";
    let input = gzip(dir.path(), "t.gz", trades);
    let out = tickflow(&[
        "bars",
        "--input",
        &input,
        "--interval",
        "1day",
        "--tz",
        "America/New_York",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[1], "2024-03-08T14:30:00Z,2.0,3.0,2.0,3.0,2.0,2,2.5");
    assert_eq!(
        lines[2], "2024-03-11T13:30:00Z,4.0,4.0,4.0,4.0,1.0,1,4.0",
        "EDT after the DST change"
    );
}

#[test]
fn bars_command_refuses_bad_rows_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "price.csv",
            "ts,price,volume\n2024-01-02T14:30:00Z,0,1\n",
            "line 2: price 0",
        ),
        (
            "size.csv",
            "ts,price,volume\n2024-01-02T14:30:00Z,1,1\n2024-01-02T14:30:01Z,1,-1\n",
            "line 3: trade size -1",
        ),
        (
            "ts.csv",
            "ts,price,volume\n2024-03-10 02:30:00,1,1\n",
            "line 2: bad ts",
        ),
        ("cols.csv", "ts,last,volume\n1,1,1\n", "no \"price\" column"),
    ];
    for (name, text, expected) in cases {
        let input = write(dir.path(), name, text);
        let out = tickflow(&[
            "bars",
            "--input",
            &input,
            "--interval",
            "5m",
            "--tz",
            "America/New_York",
        ]);
        assert!(!out.status.success(), "{name} should fail");
        assert!(
            stderr(&out).contains(expected),
            "{name}: {:?} lacks {expected:?}",
            stderr(&out)
        );
    }
    let bad_interval = tickflow(&["bars", "--input", "x.csv", "--interval", "7m"]);
    assert!(!bad_interval.status.success() && stderr(&bad_interval).contains("invalid interval"));
}

#[test]
fn replay_command_refuses_bad_rows_naming_the_line_before_publishing_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "t.csv",
        "ts,price,volume\n2024-01-02T14:30:00Z,abc,1\n",
    );
    let out = tickflow(&[
        "replay",
        "--ticks",
        &input,
        "--symbol",
        "AAPL",
        "--force",
        "--kafka-bootstrap",
        "127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("line 2: price \"abc\""),
        "{}",
        stderr(&out)
    );
    // 2024 trades are older than the default intraday retention (730 days): their bars
    // would be deleted within a minute, so nothing is published without --force.
    let old = tickflow(&[
        "replay",
        "--ticks",
        &input,
        "--symbol",
        "AAPL",
        "--kafka-bootstrap",
        "127.0.0.1:1",
    ]);
    assert!(!old.status.success());
    assert!(
        stderr(&old).contains("older than the intraday retention")
            && stderr(&old).contains("--force"),
        "{}",
        stderr(&old)
    );
    let no_symbol = tickflow(&[
        "replay",
        "--ticks",
        &input,
        "--force",
        "--kafka-bootstrap",
        "127.0.0.1:1",
    ]);
    assert!(!no_symbol.status.success() && stderr(&no_symbol).contains("symbol"));
    let bad_speed = tickflow(&[
        "replay",
        "--ticks",
        &input,
        "--speed",
        "fast",
        "--force",
        "--kafka-bootstrap",
        "127.0.0.1:1",
    ]);
    assert!(!bad_speed.status.success() && stderr(&bad_speed).contains("positive factor"));
}
