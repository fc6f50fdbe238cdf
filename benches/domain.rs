//! Domain hot paths: all bar indicators per closed bar, the bar builder per trade, and the
//! realtime tick metrics per trade.
//!
//! Run with `cargo bench --bench domain`. Inputs are prepared outside the timed closures;
//! each timed call processes exactly one bar or one trade (`Throughput::Elements(1)`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use tickflow::domain::time::parse_timestamp;
use tickflow::domain::{
    BarBuilder, BarBuilderConfig, BarIndicators, Interval, Ohlcv, Source, Symbol, Tick,
    TickMetrics, Timestamp, TradingCalendar,
};

/// The SPY 1-minute fixture of the TA-Lib tests, as `(start, bar)` pairs.
fn spy_bars() -> Vec<(Timestamp, Ohlcv)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/SPY_1min.csv");
    let mut reader = csv::Reader::from_path(&path).expect("tests/fixtures/SPY_1min.csv");
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let n = |i: usize| r[i].parse::<f64>().unwrap();
            let ts = parse_timestamp(&r[0], chrono_tz::UTC).unwrap();
            (
                ts,
                Ohlcv {
                    open: n(1),
                    high: n(2),
                    low: n(3),
                    close: n(4),
                    volume: n(5),
                },
            )
        })
        .collect()
}

/// A deterministic random walk of trade prices and sizes (xorshift; no allocation in use).
fn walk(len: usize) -> Vec<(f64, f64)> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut price = 100.0;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            price *= 1.0 + ((state % 2001) as f64 - 1000.0) * 1e-6;
            (price, (state % 500) as f64)
        })
        .collect()
}

fn bar_indicators(c: &mut Criterion) {
    let bars = spy_bars();
    let mut group = c.benchmark_group("bar_indicators");
    group.throughput(Throughput::Elements(1));
    group.bench_function("all_28_per_closed_bar", |b| {
        let mut ind = BarIndicators::new(Interval::M1, TradingCalendar::us_equity());
        // Warm up past every look-back so the timed updates compute every value.
        for (ts, bar) in bars.iter().take(300) {
            ind.update(*ts, bar, None);
        }
        let mut i = 300;
        b.iter(|| {
            let (ts, bar) = &bars[i % bars.len()];
            i += 1;
            black_box(ind.update(black_box(*ts), black_box(bar), None));
        });
    });
    group.finish();
}

fn bar_builder(c: &mut Criterion) {
    let prices = walk(1 << 16);
    let symbol = Symbol::parse("AAPL").unwrap();
    let source = Source::new("bench");
    let mut group = c.benchmark_group("bar_builder");
    group.throughput(Throughput::Elements(1));
    for interval in [Interval::M1, Interval::H1, Interval::D1] {
        group.bench_with_input(
            BenchmarkId::new("tick_update", interval),
            &interval,
            |b, &interval| {
                let mut builder = BarBuilder::new(
                    interval,
                    TradingCalendar::us_equity(),
                    BarBuilderConfig::default(),
                );
                let mut events = Vec::with_capacity(8);
                // 2024-01-02 14:30 UTC, one trade every 20 ms.
                let mut ts = 1_704_205_800_000_000_i64;
                let mut i = 0usize;
                b.iter(|| {
                    let (p, s) = prices[i & 0xFFFF];
                    i += 1;
                    ts += 20_000;
                    let tick = Tick::new(symbol, Timestamp::from_micros(ts), p, s, source).unwrap();
                    black_box(builder.on_tick(black_box(&tick), &mut events));
                    events.clear();
                });
            },
        );
    }
    group.finish();
}

fn tick_metrics(c: &mut Criterion) {
    let prices = walk(1 << 16);
    let symbol = Symbol::parse("AAPL").unwrap();
    let source = Source::new("bench");
    let mut group = c.benchmark_group("tick_metrics");
    group.throughput(Throughput::Elements(1));
    group.bench_function("all_8_per_tick", |b| {
        let mut metrics = TickMetrics::new();
        let mut i = 0usize;
        b.iter(|| {
            let (p, s) = prices[i & 0xFFFF];
            i += 1;
            let tick = Tick::new(symbol, Timestamp::from_micros(i as i64), p, s, source).unwrap();
            black_box(metrics.update(black_box(&tick)));
        });
    });
    group.finish();
}

criterion_group!(benches, bar_indicators, bar_builder, tick_metrics);
criterion_main!(benches);
