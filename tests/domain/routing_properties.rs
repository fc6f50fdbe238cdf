//! Properties of the pipeline's routing parts over generated trades: whatever keys producers
//! use (the symbol, none, another symbol's), however the partitions are read (chunk sizes,
//! interleavings) and re-read (replays: redelivered trades), and whatever reorderings within
//! the grace period, the bars built equal a brute-force aggregation of every trade, once.
//! This is the alignment (`pipeline::alignment`) and the dedupe (`pipeline::applied`) in
//! front of the bar builder, as one instance reading every partition runs them. Producers
//! publish in time order, as feeds do (the alignment's documented assumption).

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use tickflow::domain::time::MICROS_PER_SECOND;
use tickflow::domain::{
    BarBuilder, BarBuilderConfig, BarEvent, Interval, Source, Symbol, Tick, Timestamp,
    TradingCalendar,
};
use tickflow::kafka::partitioner::home_partition;
use tickflow::output::{Seq, TickRecord};
use tickflow::pipeline::{Aligner, Applied};

pub(crate) const PARTITIONS: i32 = 3;
pub(crate) const GRACE: i64 = 2 * MICROS_PER_SECOND;
pub(crate) const SYMBOLS: [&str; 4] = ["AAPL", "MSFT", "W1", "BTC-USD"];
/// Monday 2024-03-04 13:00 UTC.
const T0: i64 = 1_709_557_200 * MICROS_PER_SECOND;

/// How a producer keys a trade.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key {
    Symbol,
    None,
    Other,
}

/// Trades of all symbols in one time order (non-decreasing times — ties are common in real
/// data — then neighbours swapped when less than the grace period apart), each with a key
/// choice.
pub(crate) fn trades() -> impl Strategy<Value = Vec<(Tick, Key)>> {
    let step = prop_oneof![2 => Just(0i64), 6 => 1_000i64..1_500_000, 3 => 1_500_000i64..90_000_000, 1 => 90_000_000i64..900_000_000];
    let key = prop_oneof![Just(Key::Symbol), Just(Key::None), Just(Key::Other)];
    prop::collection::vec(
        (
            step,
            0usize..SYMBOLS.len(),
            1u32..50_000,
            0u32..500,
            key,
            any::<bool>(),
        ),
        1..300,
    )
    .prop_map(|raw| {
        let mut t = T0;
        let mut out: Vec<(Tick, Key)> = raw
            .iter()
            .map(|&(dt, s, cents, size, key, _)| {
                t += dt;
                let tick = Tick::new(
                    Symbol::parse(SYMBOLS[s]).unwrap(),
                    Timestamp::from_micros(t),
                    f64::from(cents) / 100.0,
                    f64::from(size),
                    Source::new("prop"),
                )
                .unwrap();
                (tick, key)
            })
            .collect();
        for (i, &(.., swap)) in raw.iter().enumerate().skip(1) {
            let gap = out[i].0.ts().micros() - out[i - 1].0.ts().micros();
            if swap && gap < GRACE {
                out.swap(i - 1, i);
            }
        }
        out
    })
}

/// The partition a trade lands on.
fn partition_of(tick: &Tick, key: Key, rng: &mut SmallRng) -> i32 {
    match key {
        Key::Symbol => home_partition(tick.symbol(), PARTITIONS),
        Key::None => rng.random_range(0..PARTITIONS),
        Key::Other => {
            let other = SYMBOLS
                .iter()
                .map(|s| Symbol::parse(s).unwrap())
                .find(|s| *s != tick.symbol())
                .unwrap();
            home_partition(other, PARTITIONS)
        }
    }
}

/// The partitions' logs after producers published `trades` in order, each with its key as
/// `rekey` decides (given the drawn key and the generator).
pub(crate) fn logs_of(
    trades: &[(Tick, Key)],
    rng: &mut SmallRng,
    rekey: impl Fn(Key, &mut SmallRng) -> Key,
) -> Vec<Vec<TickRecord>> {
    let mut logs: Vec<Vec<TickRecord>> = vec![Vec::new(); PARTITIONS as usize];
    for (tick, key) in trades {
        let key = rekey(*key, rng);
        let p = partition_of(tick, key, rng);
        let seq = Seq {
            partition: p,
            offset: logs[p as usize].len() as i64,
        };
        logs[p as usize].push(TickRecord::new(*tick, seq, seq));
    }
    logs
}

/// OHLC, volume and count per (symbol, 1-minute bucket).
pub(crate) type Bars = BTreeMap<(String, i64), (f64, f64, f64, f64, f64, u64)>;

/// As SQL would: open and close by (time, identity), so ties go by log order.
pub(crate) fn brute_force(records: &[TickRecord]) -> Bars {
    let mut by_bucket: BTreeMap<(String, i64), Vec<&TickRecord>> = BTreeMap::new();
    for r in records {
        let t = &r.tick;
        let m = Interval::M1.micros();
        let start = t.ts().micros() - t.ts().micros().rem_euclid(m);
        by_bucket
            .entry((t.symbol().to_string(), start))
            .or_default()
            .push(r);
    }
    by_bucket
        .into_iter()
        .map(|(k, ts)| {
            let order = |r: &&&TickRecord| (r.tick.ts(), r.seq.as_i64());
            let first = ts.iter().min_by_key(order).unwrap();
            let last = ts.iter().max_by_key(order).unwrap();
            let high = ts.iter().map(|r| r.tick.price()).fold(f64::MIN, f64::max);
            let low = ts.iter().map(|r| r.tick.price()).fold(f64::MAX, f64::min);
            let volume = ts.iter().map(|r| r.tick.size()).sum();
            (
                k,
                (
                    first.tick.price(),
                    high,
                    low,
                    last.tick.price(),
                    volume,
                    ts.len() as u64,
                ),
            )
        })
        .collect()
}

/// Runs the partitions through the aligner, per-symbol dedupe and bar builders, reading in
/// chunks and interleavings from `seed`, with replays; returns the final bars.
fn pipeline(logs: &[Vec<TickRecord>], seed: u64) -> Bars {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut aligner = Aligner::new();
    for p in 0..PARTITIONS {
        aligner.assign(p);
    }
    let mut cursor = vec![0usize; logs.len()];
    let mut applied: HashMap<Symbol, Applied> = HashMap::new();
    let mut builders: HashMap<Symbol, BarBuilder> = HashMap::new();
    let mut bars: Bars = BTreeMap::new();
    let mut events = Vec::new();
    let mut deliver = |r: TickRecord, events: &mut Vec<BarEvent>| {
        let seen = applied.entry(r.tick.symbol()).or_default();
        if !seen.is_new(r.seq) {
            return; // a redelivery
        }
        seen.record(r.seq);
        builders
            .entry(r.tick.symbol())
            .or_insert_with(|| {
                BarBuilder::new(
                    Interval::M1,
                    TradingCalendar::Utc24h,
                    BarBuilderConfig {
                        grace_micros: GRACE,
                        allowed_lateness_micros: 60 * MICROS_PER_SECOND,
                    },
                )
            })
            .on_trade(&r.tick, Some(r.seq.as_i64()), r.tick.ts(), events);
    };
    let mut replays = 0;
    loop {
        let open: Vec<usize> = (0..logs.len())
            .filter(|&p| cursor[p] < logs[p].len())
            .collect();
        if open.is_empty() {
            break;
        }
        let p = open[rng.random_range(0..open.len())];
        if replays < 3 && rng.random_range(0..20) == 0 && cursor[p] > 0 {
            // A replay from the last commit, which is never past a trade still held back (the
            // consumer commits only what was released): what was read comes again.
            replays += 1;
            let held = aligner
                .oldest_held(p as i32)
                .map_or(cursor[p], |o| o as usize);
            cursor[p] = rng.random_range(0..=held.min(cursor[p]));
            aligner.rewind(p as i32);
            continue;
        }
        let n = rng.random_range(1..40);
        for _ in 0..n {
            if let Some(r) = logs[p].get(cursor[p]) {
                aligner.push(*r);
                cursor[p] += 1;
            }
        }
        if cursor[p] == logs[p].len() {
            aligner.reached_end(p as i32);
        }
        aligner.release(|r| deliver(r, &mut events));
    }
    for p in 0..logs.len() {
        aligner.reached_end(p as i32);
    }
    aligner.release(|r| deliver(r, &mut events));
    assert_eq!(aligner.held(), 0);
    for b in builders.values_mut() {
        b.flush(&mut events);
    }
    for e in events {
        let b = e.bar();
        bars.insert(
            (b.symbol.to_string(), b.start.micros()),
            (b.open, b.high, b.low, b.close, b.volume, b.trades),
        );
    }
    bars
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random keys, redeliveries, read orders, ties in time and reorderings within the grace
    /// period never change the bars: they equal a brute-force aggregation of every trade,
    /// once, ties going by log order.
    #[test]
    fn random_keys_redeliveries_and_reorderings_never_change_the_bars(
        trades in trades(),
        seed in any::<u64>(),
    ) {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
        let logs = logs_of(&trades, &mut rng, |key, _| key);
        let records: Vec<TickRecord> = logs.iter().flatten().copied().collect();
        prop_assert_eq!(pipeline(&logs, seed), brute_force(&records));
    }
}
