//! Properties of the bar builder over generated trades, checked against a brute-force
//! aggregation (first / max / min / last / sum per bucket).

use proptest::prelude::*;
use std::collections::BTreeMap;
use tickflow::domain::time::MICROS_PER_SECOND;
use tickflow::domain::{
    Bar, BarBuilder, BarBuilderConfig, BarEvent, Interval, Source, Symbol, Tick, Timestamp,
    TradingCalendar,
};

const GRACE: i64 = 2 * MICROS_PER_SECOND;
/// Monday 2024-03-04 13:00 UTC: sessions, a weekend and the 2024-03-10 DST change ahead.
const T0: i64 = 1_709_557_200 * MICROS_PER_SECOND;

fn config() -> BarBuilderConfig {
    BarBuilderConfig {
        grace_micros: GRACE,
        allowed_lateness_micros: 60 * MICROS_PER_SECOND,
    }
}

/// Trades with strictly increasing event times: steps from 1 ms to ~3 h (so gaps span many
/// intervals and whole sessions), integer sizes (sums are exact), prices on a 0.01 grid.
fn trades() -> impl Strategy<Value = Vec<Tick>> {
    let step = prop_oneof![8 => 1_000i64..5_000_000, 2 => 5_000_000i64..600_000_000, 1 => 600_000_000i64..10_800_000_000];
    prop::collection::vec((step, 1u32..100_000, 0u32..1_000), 1..400).prop_map(|raw| {
        let sym = Symbol::parse("PROP").unwrap();
        let mut t = T0;
        raw.into_iter()
            .map(|(dt, cents, size)| {
                t += dt;
                Tick::new(
                    sym,
                    Timestamp::from_micros(t),
                    f64::from(cents) / 100.0,
                    f64::from(size),
                    Source::new("prop"),
                )
                .unwrap()
            })
            .collect()
    })
}

fn calendars() -> impl Strategy<Value = TradingCalendar> {
    prop_oneof![
        Just(TradingCalendar::us_equity()),
        Just(TradingCalendar::Utc24h)
    ]
}

/// Feeds ticks in the given order; returns the final version of every bar, by start.
fn build(
    interval: Interval,
    calendar: TradingCalendar,
    ticks: &[Tick],
) -> (BTreeMap<Timestamp, Bar>, BarBuilder) {
    let mut builder = BarBuilder::new(interval, calendar, config());
    let mut events = Vec::new();
    for t in ticks {
        builder.on_tick(t, &mut events);
    }
    builder.flush(&mut events);
    let mut bars = BTreeMap::new();
    for e in events {
        let bar = *e.bar();
        if let Some(old) = bars.insert(bar.start, bar) {
            assert!(matches!(e, BarEvent::Revised(_)) && bar.revision > old.revision);
        }
    }
    (bars, builder)
}

/// The oracle: group sorted ticks by bucket the slow way.
fn aggregate(
    interval: Interval,
    calendar: TradingCalendar,
    ticks: &[Tick],
) -> BTreeMap<Timestamp, (f64, f64, f64, f64, f64, u64)> {
    let mut out: BTreeMap<Timestamp, (f64, f64, f64, f64, f64, u64)> = BTreeMap::new();
    for t in ticks {
        let start = if interval.is_daily() {
            match calendar.session_at(t.ts()) {
                Some(s) => s.start,
                None => continue,
            }
        } else {
            let len = interval.micros();
            Timestamp::from_micros(t.ts().micros().div_euclid(len) * len)
        };
        let e = out
            .entry(start)
            .or_insert((t.price(), t.price(), t.price(), t.price(), 0.0, 0));
        e.1 = e.1.max(t.price());
        e.2 = e.2.min(t.price());
        e.3 = t.price();
        e.4 += t.size();
        e.5 += 1;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn bars_equal_a_brute_force_aggregation_and_conserve_trades(
        ticks in trades(),
        interval in prop::sample::select(Interval::ALL.to_vec()),
        calendar in calendars(),
    ) {
        let (bars, builder) = build(interval, calendar, &ticks);
        let want = aggregate(interval, calendar, &ticks);
        let got: BTreeMap<_, _> = bars.values().map(|b| (b.start, (b.open, b.high, b.low, b.close, b.volume, b.trades))).collect();
        prop_assert_eq!(&got, &want);
        let stats = builder.stats();
        let placed: u64 = bars.values().map(|b| b.trades).sum();
        prop_assert_eq!(placed + stats.outside_session, ticks.len() as u64, "every tick lands in exactly one bar or is outside the session");
        prop_assert_eq!(stats.late_dropped, 0);
        let volume_in: f64 = ticks.iter().filter(|t| !interval.is_daily() || calendar.session_at(t.ts()).is_some()).map(Tick::size).sum();
        prop_assert_eq!(bars.values().map(|b| b.volume).sum::<f64>(), volume_in);
        for b in bars.values() {
            prop_assert!(b.start < b.end && b.low <= b.open.min(b.close) && b.high >= b.open.max(b.close));
            prop_assert_eq!(b.revision, 0);
        }
    }

    #[test]
    fn ticks_shuffled_within_the_grace_period_give_the_same_bars(
        ticks in trades(),
        jitter in prop::collection::vec(0i64..GRACE, 400),
        interval in prop::sample::select(Interval::ALL.to_vec()),
        calendar in calendars(),
    ) {
        // Each tick arrives up to `grace` after its event time: sort by ts + jitter.
        let mut arrival: Vec<(i64, Tick)> = ticks.iter().zip(&jitter).map(|(t, j)| (t.ts().micros() + j, *t)).collect();
        arrival.sort_by_key(|(key, _)| *key);
        let shuffled: Vec<Tick> = arrival.into_iter().map(|(_, t)| t).collect();
        let (sorted_bars, _) = build(interval, calendar, &ticks);
        let (shuffled_bars, stats) = build(interval, calendar, &shuffled);
        prop_assert_eq!(stats.stats().late_dropped, 0);
        prop_assert_eq!(sorted_bars.len(), shuffled_bars.len());
        for (a, b) in sorted_bars.values().zip(shuffled_bars.values()) {
            prop_assert_eq!((a.start, a.end, a.open, a.high, a.low, a.close, a.volume, a.trades, a.revision),
                            (b.start, b.end, b.open, b.high, b.low, b.close, b.volume, b.trades, b.revision));
            // Σ price × size is summed in another order: equal up to rounding.
            match (a.vwap(), b.vwap()) {
                (Some(x), Some(y)) => prop_assert!((x - y).abs() <= 1e-12 * x.abs()),
                (x, y) => prop_assert_eq!(x, y),
            }
        }
    }

    #[test]
    fn late_ticks_are_revisions_or_counted_drops_never_lost_silently(
        ticks in trades(),
        late in prop::collection::vec((0usize..400, 0i64..300 * MICROS_PER_SECOND), 1..20),
        interval in prop::sample::select(vec![Interval::M1, Interval::M5]),
    ) {
        // Re-send some trades later than their turn: each is applied as a revision, or
        // dropped and counted; the books always balance.
        let mut order: Vec<Tick> = ticks.clone();
        for (idx, delay) in &late {
            let t = ticks[idx % ticks.len()];
            let at = order.iter().position(|x| x.ts().micros() > t.ts().micros() + delay).unwrap_or(order.len());
            order.insert(at, t);
        }
        let (bars, builder) = build(interval, TradingCalendar::Utc24h, &order);
        let stats = builder.stats();
        let placed: u64 = bars.values().map(|b| b.trades).sum();
        prop_assert_eq!(placed + stats.late_dropped, order.len() as u64);
    }
}
