//! `tickflow indicators` and `tickflow bars` read the API's own CSV (newest first, a
//! `timestamp` column) and `Date,Open,High,Low,Close,Volume` exports, run as a user would on
//! files the API wrote.

use crate::fixture::*;
use std::process::Command;

fn tickflow(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the tickflow binary runs");
    assert!(
        out.status.success(),
        "tickflow {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `(header, rows)` of a CSV text.
fn table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>());
    (lines.next().unwrap_or_default(), lines.collect())
}

#[actix_rt::test]
async fn the_offline_commands_read_the_apis_own_csv_and_common_exports() {
    let f = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let save = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };

    // Indicators of the API's 1-minute bars equal the API's own analytics of those bars
    // (all but vwap: the pipeline knows each bar's exact VWAP, a bar file does not).
    let (_, _, bars_csv) = get(
        &f.pg,
        "/api/v2/intraday/prices/AAPL?interval=1m&start_date=2024-03-08&limit=2000&format=csv",
    )
    .await;
    let bars_file = save("bars.csv", &bars_csv);
    let out = tickflow(&["indicators", "--input", &bars_file, "--interval", "1m"]);
    let (header, computed) = table(&out);
    let analytics = get(
        &f.pg,
        &format!(
            "/api/v2/intraday/analytics/AAPL?interval=1m&start_date=2024-03-08&limit=1000&indicators={}",
            tickflow::domain::BAR_INDICATOR_NAMES.join(",")
        ),
    )
    .await
    .1;
    let stored = analytics["data"].as_array().unwrap();
    assert_eq!(
        computed.len(),
        bars_csv.lines().count() - 1,
        "one row per bar"
    );
    assert_eq!(computed.len(), stored.len());
    // The file is newest first; the output comes oldest first.
    for (row, api) in computed.iter().zip(stored.iter().rev()) {
        assert_eq!(row[0], api["timestamp"].as_str().unwrap());
        for (name, cell) in header.iter().zip(row).skip(1) {
            if name == "vwap" {
                continue;
            }
            let want = api[name.as_str()].as_f64();
            let got = (!cell.is_empty()).then(|| cell.parse::<f64>().unwrap());
            // Equal values, not bits: PostgreSQL's JSONB keeps no sign on a zero.
            assert_eq!(got, want, "{name} at {}", row[0]);
        }
    }

    // A `Date,Open,High,Low,Close,Volume` export of the daily bars gives the same output as
    // the API's daily CSV.
    let (_, _, daily_csv) = get(&f.pg, "/api/v2/historical/prices/BTC-USD?format=csv").await;
    let (h, rows) = table(&daily_csv);
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let mut export = String::from("Date,Open,High,Low,Close,Adj Close,Volume\n");
    for r in rows.iter().rev() {
        export.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r[col("timestamp")],
            r[col("open")],
            r[col("high")],
            r[col("low")],
            r[col("close")],
            r[col("close")],
            r[col("volume")]
        ));
    }
    let from_api = tickflow(&[
        "indicators",
        "--input",
        &save("daily.csv", &daily_csv),
        "--calendar",
        "utc",
    ]);
    let from_export = tickflow(&[
        "indicators",
        "--input",
        &save("export.csv", &export),
        "--calendar",
        "utc",
    ]);
    assert!(!table(&from_api).1.is_empty());
    assert_eq!(from_api, from_export);

    // Bars from the API's trades CSV (newest first) equal the bars the pipeline stored.
    let (_, _, trades_csv) = get(
        &f.pg,
        "/api/v2/realtime/prices/MSFT?date=2024-03-08&limit=5000&format=csv",
    )
    .await;
    let out = tickflow(&[
        "bars",
        "--input",
        &save("trades.csv", &trades_csv),
        "--interval",
        "1m",
    ]);
    let (_, built) = table(&out);
    let bars = get(
        &f.pg,
        "/api/v2/intraday/prices/MSFT?interval=1m&date=2024-03-08&limit=2000",
    )
    .await
    .1;
    let stored = bars["data"].as_array().unwrap();
    // The file's last bar may still be open in the pipeline (its day goes on): compare the
    // bars the pipeline closed.
    assert!(stored.len() > 100);
    for api in stored.iter().rev() {
        let row = built
            .iter()
            .find(|r| r[0] == api["timestamp"].as_str().unwrap())
            .unwrap_or_else(|| panic!("no bar at {}", api["timestamp"]));
        for (i, name) in ["open", "high", "low", "close", "volume"]
            .iter()
            .enumerate()
        {
            assert_eq!(
                row[i + 1].parse::<f64>().unwrap(),
                api[*name].as_f64().unwrap(),
                "{name} at {}",
                row[0]
            );
        }
        assert_eq!(
            row[6].parse::<i64>().unwrap(),
            api["trades"].as_i64().unwrap()
        );
    }
    f.shutdown().await;
}
