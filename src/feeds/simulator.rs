//! `Simulator`: a market of random-walk trades for a set of symbols, published to the raw
//! topic like any other producer would. Each symbol switches between quiet spells, normal
//! trading and bursts; sizes are round lots with a fat tail; event time is the wall clock.

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

/// One symbol's market.
struct SimSymbol {
    symbol: Symbol,
    price: f64,
    /// Relative activity: 0.1 quiet, 1 normal, 5 burst.
    activity: f64,
    last_ts: i64,
}

/// A simulated feed.
pub struct Simulator {
    symbols: Vec<SimSymbol>,
    /// Trades per second over all symbols (on average).
    rate: f64,
    rng: SmallRng,
}

impl Simulator {
    /// A market of `symbols` trading `rate` times a second in total.
    pub fn new(symbols: &[Symbol], rate: f64, seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        Self {
            symbols: symbols
                .iter()
                .map(|s| SimSymbol {
                    symbol: *s,
                    price: rng.random_range(20.0..500.0),
                    activity: 1.0,
                    last_ts: 0,
                })
                .collect(),
            rate,
            rng,
        }
    }

    /// The trades of the next `dt` of simulated time ending at `now`.
    pub fn step(&mut self, now: Timestamp, dt: Duration, out: &mut Vec<Tick>) {
        let n = self.symbols.len().max(1) as f64;
        for s in &mut self.symbols {
            // Regime switches: rare, so quiet spells and bursts last seconds.
            let r: f64 = self.rng.random();
            if r < 0.002 {
                s.activity = 5.0;
            } else if r < 0.004 {
                s.activity = 0.1;
            } else if r < 0.010 {
                s.activity = 1.0;
            }
            let expected = self.rate / n * s.activity * dt.as_secs_f64();
            let mut count = expected.floor() as u32;
            if self.rng.random::<f64>() < expected.fract() {
                count += 1;
            }
            for _ in 0..count {
                let shock: f64 = self.rng.random_range(-1.0..1.0);
                s.price = (s.price * (1.0 + shock * 4e-4)).max(0.01);
                let cents = (s.price * 100.0).round() / 100.0;
                let size = if self.rng.random::<f64>() < 0.05 {
                    f64::from(self.rng.random_range(10..200u32)) * 100.0
                } else {
                    f64::from(self.rng.random_range(1..=5u32)) * 100.0
                };
                // Strictly increasing per symbol, so trade order is unambiguous.
                s.last_ts = now.micros().max(s.last_ts + 1);
                if let Ok(t) = Tick::new(
                    s.symbol,
                    Timestamp::from_micros(s.last_ts),
                    cents.max(0.01),
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
        let waited = backlog.wait_for_room().await;
        if !waited.is_zero() {
            metrics.feed_waits.inc();
            metrics.feed_wait_seconds.inc_by(waited.as_secs_f64());
            tracing::info!(waited = ?waited, "simulator waited for the pipeline to catch up");
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
                    tracing::warn!(error = %e, "simulator cannot publish");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emits_about_the_configured_rate_with_increasing_times() {
        let syms: Vec<Symbol> = ["AAPL", "MSFT"]
            .iter()
            .map(|s| Symbol::parse(s).unwrap())
            .collect();
        let mut sim = Simulator::new(&syms, 100.0, 7);
        let mut out = Vec::new();
        for i in 0..500 {
            sim.step(
                Timestamp::from_millis(1_700_000_000_000 + i * 20),
                STEP,
                &mut out,
            );
        }
        // 10 s at 100/s, regimes vary the rate: expect hundreds, not zero or tens of thousands.
        assert!((200..5_000).contains(&out.len()), "{}", out.len());
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
}
