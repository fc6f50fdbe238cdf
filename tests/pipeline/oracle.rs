//! The oracle of the pipeline tests: bars as SQL aggregates the stored trades, compared
//! with the bars tickflow stored.

use crate::helpers::assert_realtime_rows;
use std::collections::BTreeMap;
use tickflow::domain::Interval;

/// OHLC, volume and trade count per (symbol, bucket text), from SQL over `realtime_prices`.
pub type Aggregates = BTreeMap<(String, String), (f64, f64, f64, f64, f64, i64)>;

pub async fn sql_intraday(client: &tokio_postgres::Client, minutes: i32) -> Aggregates {
    let rows = client
        .query(
            r#"WITH t AS (
                 SELECT symbol, "timestamp" AS ts, seq, price, volume,
                        to_timestamp(floor(extract(epoch FROM "timestamp") / ($1::int * 60)) * ($1::int * 60)) AS bucket
                 FROM realtime_prices)
               SELECT symbol, bucket::text,
                      (array_agg(price ORDER BY ts, seq))[1], max(price), min(price),
                      (array_agg(price ORDER BY ts DESC, seq DESC))[1], sum(volume), count(*)
               FROM t GROUP BY symbol, bucket"#,
            &[&minutes],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                (r.get(0), r.get(1)),
                (r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)),
            )
        })
        .collect()
}

/// Daily bars the SQL way: New York sessions (09:30–16:00, weekdays) for equities, UTC
/// days for BTC-USD.
pub async fn sql_daily(client: &tokio_postgres::Client) -> Aggregates {
    let rows = client
        .query(
            r#"WITH t AS (
                 SELECT symbol, "timestamp" AS ts, seq, price, volume,
                        CASE WHEN symbol = 'BTC-USD' THEN ("timestamp" AT TIME ZONE 'UTC')::date
                             ELSE ("timestamp" AT TIME ZONE 'America/New_York')::date END AS day,
                        symbol = 'BTC-USD'
                          OR (extract(isodow FROM "timestamp" AT TIME ZONE 'America/New_York') < 6
                              AND ("timestamp" AT TIME ZONE 'America/New_York')::time >= '09:30'
                              AND ("timestamp" AT TIME ZONE 'America/New_York')::time < '16:00') AS in_session
                 FROM realtime_prices)
               SELECT symbol, day::text,
                      (array_agg(price ORDER BY ts, seq))[1], max(price), min(price),
                      (array_agg(price ORDER BY ts DESC, seq DESC))[1], sum(volume), count(*)
               FROM t WHERE in_session GROUP BY symbol, day"#,
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                (r.get(0), r.get(1)),
                (r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)),
            )
        })
        .collect()
}

pub async fn stored_intraday(client: &tokio_postgres::Client, minutes: i32) -> Aggregates {
    let rows = client
        .query(
            r#"SELECT symbol, "timestamp"::text, open, high, low, close, volume, num_samples FROM intraday_ohlcv WHERE interval_minutes = $1"#,
            &[&minutes],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                (r.get(0), r.get(1)),
                (r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)),
            )
        })
        .collect()
}

pub async fn stored_daily(client: &tokio_postgres::Client) -> Aggregates {
    let rows = client
        .query(r#"SELECT symbol, "timestamp"::text, open, high, low, close, volume, num_samples FROM historical_ohlcv"#, &[])
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                (r.get(0), r.get(1)),
                (r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)),
            )
        })
        .collect()
}

/// Every SQL bucket is stored identically, except the ones still open at the end of the
/// data (those holding each symbol's final trade); nothing is stored that SQL lacks.
pub fn assert_same_bars(
    what: &str,
    sql: &Aggregates,
    stored: &Aggregates,
    open: &[(String, String)],
) {
    for (key, want) in sql {
        match stored.get(key) {
            Some(got) => assert_eq!(
                got, want,
                "{what} {key:?}: stored bar differs from the SQL aggregation"
            ),
            None => assert!(
                open.contains(key),
                "{what} {key:?}: bar missing (not an open bar)"
            ),
        }
    }
    for key in stored.keys() {
        assert!(
            sql.contains_key(key),
            "{what} {key:?}: stored bar has no ticks"
        );
    }
    assert!(
        stored.len() + open.len() >= sql.len() && !stored.is_empty(),
        "{what}: no bars"
    );
}

/// Every 1m, 5m and 1h bar of `symbols` equals the SQL aggregation of the stored trades
/// (each symbol's last bars, left open by its 16:30 trade, excepted), and the realtime rows
/// are exactly the published ones.
pub async fn assert_bars_and_realtime_exact(
    client: &tokio_postgres::Client,
    symbols: &[&str],
    ticks: &[tickflow::domain::Tick],
) {
    assert_bars_exact_except(client, symbols, ticks, &[]).await;
}

/// [`assert_bars_and_realtime_exact`], with more buckets allowed to be still open:
/// `(symbol, interval, bucket start as PostgreSQL prints it)`.
pub async fn assert_bars_exact_except(
    client: &tokio_postgres::Client,
    symbols: &[&str],
    ticks: &[tickflow::domain::Tick],
    also_open: &[(&str, Interval, &str)],
) {
    for (interval, bucket) in [
        (Interval::M1, "2024-03-11 16:30:00+00"),
        (Interval::M5, "2024-03-11 16:30:00+00"),
        (Interval::H1, "2024-03-11 16:00:00+00"),
    ] {
        let mut open: Vec<(String, String)> = symbols
            .iter()
            .map(|s| (s.to_string(), bucket.to_owned()))
            .collect();
        open.extend(
            also_open
                .iter()
                .filter(|(_, i, _)| *i == interval)
                .map(|(s, _, b)| (s.to_string(), b.to_string())),
        );
        let minutes = interval.minutes() as i32;
        assert_same_bars(
            interval.as_str(),
            &sql_intraday(client, minutes).await,
            &stored_intraday(client, minutes).await,
            &open,
        );
    }
    assert_realtime_rows(client, ticks).await;
}
