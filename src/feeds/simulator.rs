//! `Simulator`: a market of random trades for a set of symbols, published to the raw topic
//! like any other producer would. Each symbol follows a geometric Brownian motion in event
//! time (its own annual volatility, between [`MIN_VOLATILITY`] and [`MAX_VOLATILITY`]),
//! switches between quiet spells, normal trading and bursts, trades round lots with a fat
//! tail, and resumes from its last stored price when the store has one. Event time is the
//! wall clock.

use crate::domain::{Source, Symbol, Tick, Timestamp};
use crate::kafka::backlog::BacklogMonitor;
use crate::kafka::producer::{Producer, Record};
use crate::kafka::{topics, wire};
use crate::metrics::Metrics;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Duration;

/// How often the simulator wakes up to emit the trades due.
const STEP: Duration = Duration::from_millis(20);
/// The range of the symbols' annual volatilities (US large caps trade at 20–60 %).
pub const MIN_VOLATILITY: f64 = 0.20;
pub const MAX_VOLATILITY: f64 = 0.60;
/// Seconds in a year of event time (the volatility's unit).
const YEAR_SECS: f64 = 365.25 * 86_400.0;
/// Trading regimes: (relative activity, chance per step of switching to it).
const REGIMES: [(f64, f64); 3] = [(5.0, 0.002), (0.1, 0.002), (1.0, 0.006)];

/// The long-run mean of the activity: regimes are entered with fixed chances whatever the
/// current one, so each is held for a share of the time proportional to its chance.
fn mean_activity() -> f64 {
    let total: f64 = REGIMES.iter().map(|(_, p)| p).sum();
    REGIMES.iter().map(|(a, p)| a * p / total).sum()
}

/// One symbol's market.
struct SimSymbol {
    symbol: Symbol,
    price: f64,
    /// Annual volatility of the log price.
    volatility: f64,
    /// Relative activity: 0.1 quiet, 1 normal, 5 burst.
    activity: f64,
    /// Event time of its last trade (µs).
    last_ts: i64,
}

/// A simulated feed.
pub struct Simulator {
    symbols: Vec<SimSymbol>,
    /// Trades per second over all symbols, on average.
    rate: f64,
    rng: SmallRng,
}

impl Simulator {
    /// A market of `symbols` trading `rate` times a second in total, each symbol starting at
    /// `start(symbol)` (its last stored price) or, when `None`, at a random price.
    pub fn new(
        symbols: &[Symbol],
        rate: f64,
        seed: u64,
        start: impl Fn(Symbol) -> Option<f64>,
    ) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        Self {
            symbols: symbols
                .iter()
                .map(|s| SimSymbol {
                    symbol: *s,
                    price: start(*s)
                        .filter(|p| p.is_finite() && *p > 0.0)
                        .unwrap_or_else(|| rng.random_range(20.0..500.0)),
                    volatility: rng.random_range(MIN_VOLATILITY..MAX_VOLATILITY),
                    activity: 1.0,
                    last_ts: 0,
                })
                .collect(),
            rate,
            rng,
        }
    }

    /// A standard normal draw (Box–Muller: two uniforms, one normal).
    fn normal(&mut self) -> f64 {
        let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// The trades of the next `dt` of simulated time ending at `now`.
    pub fn step(&mut self, now: Timestamp, dt: Duration, out: &mut Vec<Tick>) {
        let per_symbol = self.rate / self.symbols.len().max(1) as f64 / mean_activity();
        for i in 0..self.symbols.len() {
            // Regime switches: rare, so quiet spells and bursts last seconds.
            let r: f64 = self.rng.random();
            let mut threshold = 0.0;
            for (activity, chance) in REGIMES {
                threshold += chance;
                if r < threshold {
                    self.symbols[i].activity = activity;
                    break;
                }
            }
            let expected = per_symbol * self.symbols[i].activity * dt.as_secs_f64();
            let mut count = expected.floor() as u32;
            if self.rng.random::<f64>() < expected.fract() {
                count += 1;
            }
            for _ in 0..count {
                let z = self.normal();
                let s = &mut self.symbols[i];
                // Strictly increasing per symbol, so trade order is unambiguous.
                let ts = now.micros().max(s.last_ts + 1);
                let elapsed = if s.last_ts == 0 {
                    0.0
                } else {
                    (ts - s.last_ts) as f64 / 1e6
                };
                s.last_ts = ts;
                // Geometric Brownian motion over the event time since its last trade.
                let sigma = s.volatility * (elapsed / YEAR_SECS).sqrt();
                s.price *= (sigma * z - sigma * sigma / 2.0).exp();
                let cents = ((s.price * 100.0).round() / 100.0).max(0.01);
                let size = if self.rng.random::<f64>() < 0.05 {
                    f64::from(self.rng.random_range(10..200u32)) * 100.0
                } else {
                    f64::from(self.rng.random_range(1..=5u32)) * 100.0
                };
                let s = &self.symbols[i];
                if let Ok(t) = Tick::new(
                    s.symbol,
                    Timestamp::from_micros(ts),
                    cents,
                    size,
                    Source::new("sim"),
                ) {
                    out.push(t);
                }
            }
        }
    }
}

/// Runs `sim` forever, publishing to the raw topic keyed by symbol. While the pipeline is
/// further behind than the broker can safely keep (`backlog`), it waits: the simulated
/// market pauses rather than the broker dropping trades.
pub async fn run(
    mut sim: Simulator,
    producer: Producer,
    backlog: Arc<BacklogMonitor>,
    metrics: Metrics,
) {
    let mut timer = tokio::time::interval(STEP);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut ticks = Vec::new();
    loop {
        timer.tick().await;
        if backlog.over_limit() {
            // Counted as it starts: a wait through a long outage shows while it lasts.
            metrics.feed_waits.inc();
            tracing::info!("simulator waiting for the pipeline to catch up");
            let waited = backlog.wait_for_room().await;
            metrics.feed_wait_seconds.inc_by(waited.as_secs_f64());
            tracing::info!(waited = ?waited, "simulator resumed");
        }
        let now = Timestamp::from_datetime(&chrono::Utc::now());
        sim.step(now, STEP, &mut ticks);
        for t in ticks.drain(..) {
            let payload = wire::encode_raw_tick(&t);
            match producer
                .send(Record::keyed(topics::RAW, t.symbol().as_str(), &payload))
                .await
            {
                Ok(()) => metrics.feed_published.inc(),
                Err(e) => {
                    metrics.feed_errors.inc();
                    tracing::warn!(error = %format!("{e:#}"), "simulator cannot publish");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbols(names: &[&str]) -> Vec<Symbol> {
        names.iter().map(|s| Symbol::parse(s).unwrap()).collect()
    }

    /// Runs `sim` for `secs` of simulated time in steps; returns every trade.
    fn run_for(sim: &mut Simulator, secs: i64) -> Vec<Tick> {
        let mut out = Vec::new();
        let steps = secs * 1000 / STEP.as_millis() as i64;
        for i in 0..steps {
            sim.step(
                Timestamp::from_millis(1_700_000_000_000 + i * STEP.as_millis() as i64),
                STEP,
                &mut out,
            );
        }
        out
    }

    #[test]
    fn trades_at_the_rate_asked_with_increasing_times_per_symbol() {
        let syms = symbols(&["AAPL", "MSFT", "GOOG", "AMZN", "TSLA"]);
        let mut sim = Simulator::new(&syms, 50.0, 7, |_| None);
        let out = run_for(&mut sim, 3_600);
        let rate = out.len() as f64 / 3_600.0;
        assert!((45.0..55.0).contains(&rate), "{rate} trades/s for 50 asked");
        for s in &syms {
            let times: Vec<_> = out
                .iter()
                .filter(|t| t.symbol() == *s)
                .map(Tick::ts)
                .collect();
            assert!(times.windows(2).all(|w| w[0] < w[1]));
        }
        assert!(out.iter().all(|t| t.size() >= 100.0 && t.price() > 0.0));
    }

    #[test]
    fn volatility_is_that_of_a_real_stock() {
        // The annualised volatility of one-minute log returns over a simulated day.
        let syms = symbols(&["AAPL"]);
        let mut sim = Simulator::new(&syms, 20.0, 11, |_| Some(100.0));
        let out = run_for(&mut sim, 86_400);
        let mut closes = Vec::new();
        let mut minute = None;
        for t in &out {
            let m = t.ts().micros() / 60_000_000;
            if minute != Some(m) {
                closes.push(t.price());
                minute = Some(m);
            } else if let Some(last) = closes.last_mut() {
                *last = t.price();
            }
        }
        let returns: Vec<f64> = closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let n = returns.len() as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
        let annual = (var * 365.25 * 1_440.0).sqrt();
        assert!(
            (MIN_VOLATILITY * 0.7..MAX_VOLATILITY * 1.3).contains(&annual),
            "annualised volatility {annual}"
        );
    }

    #[test]
    fn a_symbol_resumes_from_its_last_stored_price() {
        let syms = symbols(&["AAPL", "NEW"]);
        let aapl = syms[0];
        let mut sim = Simulator::new(&syms, 50.0, 3, |s| (s == aapl).then_some(187.25));
        let out = run_for(&mut sim, 2);
        let first = out.iter().find(|t| t.symbol() == aapl).unwrap();
        assert!(
            (first.price() / 187.25 - 1.0).abs() < 0.01,
            "first trade {} far from the stored 187.25",
            first.price()
        );
    }
}
