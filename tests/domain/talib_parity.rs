//! Every bar indicator against TA-Lib 0.8.2's output, row by row, warm-up included.

use crate::helpers::{opt, read_csv, talib_fixtures};
use std::path::Path;
use tickflow::domain::time::parse_timestamp;
use tickflow::domain::{BarIndicators, Interval, Ohlcv, TradingCalendar};

/// The agreed tolerance: `|ours − ref| ≤ 1e-9·|ref| + 1e-12`.
fn close_enough(ours: f64, reference: f64) -> bool {
    (ours - reference).abs() <= 1e-9 * reference.abs() + 1e-12
}

/// TA-Lib column → our indicator name, and whether we hold it bit for bit (all of them: each
/// indicator follows TA-Lib 0.8's operation order; see `notes/talib_facts.md`).
const COLUMNS: [(&str, &str, bool); 21] = [
    ("sma_20", "sma_20", true),
    ("sma_50", "sma_50", true),
    ("sma_200", "sma_200", true),
    ("ema_12", "ema_12", true),
    ("ema_26", "ema_26", true),
    ("rsi_14", "rsi_14", true),
    ("macd", "macd", true),
    ("macd_signal", "macd_signal", true),
    ("macd_hist", "macd_hist", true),
    ("stoch_k", "stoch_k", true),
    ("stoch_d", "stoch_d", true),
    ("roc_10", "roc_10", true),
    ("momentum_10", "momentum_10", true),
    ("willr_14", "willr_14", true),
    ("bb_upper", "bb_upper", true),
    ("bb_middle", "bb_middle", true),
    ("bb_lower", "bb_lower", true),
    ("atr_14", "atr_14", true),
    ("stdev_20", "stddev_20", true),
    ("adx_14", "adx_14", true),
    ("obv", "obv", true),
];

/// Runs our indicators over an OHLCV file; one row of values per input row.
fn compute(input: &Path, interval: Interval) -> Vec<tickflow::domain::IndicatorValues> {
    let (header, rows) = read_csv(input);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (ts, o, h, l, c, v) = (
        col("ts"),
        col("open"),
        col("high"),
        col("low"),
        col("close"),
        col("volume"),
    );
    let mut ind = BarIndicators::new(interval, TradingCalendar::us_equity());
    rows.iter()
        .map(|r| {
            let bar = Ohlcv {
                open: r[o].parse().unwrap(),
                high: r[h].parse().unwrap(),
                low: r[l].parse().unwrap(),
                close: r[c].parse().unwrap(),
                volume: r[v].parse().unwrap(),
            };
            *ind.update(parse_timestamp(&r[ts], chrono_tz::UTC).unwrap(), &bar, None)
        })
        .collect()
}

/// Compares one fixture; returns the failures (empty when it matches).
fn check(input: &Path, reference: &Path) -> Vec<String> {
    let ours = compute(input, Interval::D1);
    let (header, rows) = read_csv(reference);
    assert_eq!(
        ours.len(),
        rows.len(),
        "{}: row counts differ",
        reference.display()
    );
    let name = input.file_name().unwrap().to_string_lossy();
    let mut failures = Vec::new();
    for (talib_name, our_name, exact) in COLUMNS {
        let idx = header.iter().position(|h| h == talib_name).unwrap();
        let mut worst = 0.0_f64;
        for (i, (row, values)) in rows.iter().zip(&ours).enumerate() {
            let want = opt(&row[idx]);
            let got = values.get(our_name);
            let ok = match (got, want) {
                (None, None) => true,
                (Some(g), Some(w)) if exact => g.to_bits() == w.to_bits(),
                (Some(g), Some(w)) => close_enough(g, w),
                _ => false,
            };
            if let (Some(g), Some(w)) = (got, want) {
                worst = worst.max((g - w).abs() / w.abs().max(f64::MIN_POSITIVE));
            }
            if !ok && failures.len() < 20 {
                failures.push(format!(
                    "{name} row {i} {our_name}: ours {got:?}, TA-Lib {want:?}"
                ));
            }
        }
        eprintln!("{name:32} {our_name:12} max rel diff {worst:.2e}");
    }
    // Generated fixtures also carry the raw (unannualised) σ of log returns from numpy.
    if let Some(idx) = header.iter().position(|h| h == "hist_vol_20_raw") {
        let scale = TradingCalendar::us_equity()
            .periods_per_year(Interval::D1)
            .sqrt()
            * 100.0;
        for (i, (row, values)) in rows.iter().zip(&ours).enumerate() {
            let want = opt(&row[idx]).map(|raw| raw * scale);
            let got = values.get("hist_vol_20");
            let ok = match (got, want) {
                (None, None) => true,
                (Some(g), Some(w)) => close_enough(g, w),
                _ => false,
            };
            if !ok && failures.len() < 40 {
                failures.push(format!(
                    "{name} row {i} hist_vol_20: ours {got:?}, numpy {want:?}"
                ));
            }
        }
    }
    failures
}

#[test]
fn every_indicator_matches_talib_on_every_fixture() {
    let fixtures = talib_fixtures();
    assert!(
        fixtures.len() >= 2,
        "expected the SPY fixture and generated ones, found {fixtures:?}"
    );
    let failures: Vec<String> = fixtures.iter().flat_map(|(i, r)| check(i, r)).collect();
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn derived_indicators_follow_their_definitions_on_spy() {
    let (input, _) = talib_fixtures()
        .into_iter()
        .find(|(i, _)| i.ends_with("SPY_1min.csv"))
        .unwrap();
    let (header, rows) = read_csv(&input);
    let close_idx = header.iter().position(|h| h == "close").unwrap();
    let ours = compute(&input, Interval::M1);
    for (row, v) in rows.iter().zip(&ours) {
        let close: f64 = row[close_idx].parse().unwrap();
        let get = |n: &str| v.get(n);
        if let (Some(u), Some(m), Some(l)) = (get("bb_upper"), get("bb_middle"), get("bb_lower")) {
            assert_eq!(get("bb_bandwidth"), Some((u - l) / m));
            assert_eq!(get("bb_percent_b"), Some((close - l) / (u - l)));
        }
        if let Some(atr) = get("atr_14") {
            assert_eq!(get("atr_percent_14"), Some(atr / close * 100.0));
        }
        assert_eq!(
            get("keltner_upper").is_some(),
            get("ema_12").is_some() && ours.len() > 19 && get("sma_20").is_some()
        );
        assert!(get("vwap").is_some());
    }
}
