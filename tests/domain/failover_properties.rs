//! Properties of failover between instances: two instances of one group share the raw
//! topic's partitions, which move between them (rebalances) and to the survivor of a
//! kill, while trades arrive keyed right, unkeyed and mis-keyed. Each instance runs the
//! pipeline's plain parts as the consumer actor (`actors::consumer`) composes them:
//! routing (a trade whose home partition another instance reads is forwarded there),
//! alignment, feeds, the handover of a revocation (`pipeline::routing::handover`), dedupe
//! (`pipeline::applied`), and checkpoints and commits together. Whatever the moves, kills,
//! commits and read orders, the bars stored (a bar replaced only by one with at least as
//! many trades, as the store does) equal a brute-force aggregation of every trade, once.
//!
//! Before the handover replayed the partitions holding a moving symbol's trades back, and
//! before dispatch refused to start a symbol whose home is read elsewhere, this failed in a
//! few cases of every few hundred (a stray supervisor on the instance that lost the home
//! applied trades the owner never saw: stored once, missing from the bar — the defect seen
//! with kill -9 failovers); the shrunk cases are kept in `tests/proptest-regressions/`.
//!
//! Lateness is unbounded here (every late trade revises its bar): what is checked is that
//! no trade is lost or doubled across instances, not the documented lateness limit.

use crate::routing_properties::{Bars, Key, PARTITIONS, brute_force, logs_of, trades};
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};
use tickflow::domain::time::MICROS_PER_SECOND;
use tickflow::domain::{BarBuilder, BarBuilderConfig, BarEvent, Interval, Symbol, TradingCalendar};
use tickflow::kafka::partitioner::home_partition;
use tickflow::output::{Seq, TickRecord};
use tickflow::pipeline::{Aligner, Applied, Feeds, routing};

/// A symbol's state: what it applied, and its bars.
type State = (Applied, BarBuilder);

fn fresh_state() -> State {
    (
        Applied::new(),
        BarBuilder::new(
            Interval::M1,
            TradingCalendar::Utc24h,
            BarBuilderConfig {
                grace_micros: 2 * MICROS_PER_SECOND,
                allowed_lateness_micros: 400 * 86_400 * MICROS_PER_SECOND,
            },
        ),
    )
}

/// What outlives an instance: the broker's logs and commits, the database's checkpoints and
/// bars.
struct Shared {
    /// Per partition, its messages: `at` is the position, `seq` the trade's identity (its
    /// origin when it was forwarded).
    logs: Vec<Vec<TickRecord>>,
    committed: Vec<usize>,
    checkpoints: HashMap<Symbol, State>,
    stored: Bars,
}

impl Shared {
    fn store(&mut self, events: &mut Vec<BarEvent>) {
        for e in events.drain(..) {
            let b = e.bar();
            let row = (b.open, b.high, b.low, b.close, b.volume, b.trades);
            let key = (b.symbol.to_string(), b.start.micros());
            // As the store: a bar is replaced only by one with at least as many trades.
            if self.stored.get(&key).is_none_or(|old| old.5 <= row.5) {
                self.stored.insert(key, row);
            }
        }
    }
}

/// One `tickflow serve`: what it loses when killed.
struct Instance {
    owned: BTreeSet<i32>,
    /// Next position to read, per owned partition.
    cursor: HashMap<i32, usize>,
    aligner: Aligner,
    feeds: Feeds,
    running: HashMap<Symbol, State>,
    /// Released, not yet dispatched.
    groups: HashMap<Symbol, Vec<TickRecord>>,
}

impl Instance {
    fn new() -> Self {
        Self {
            owned: BTreeSet::new(),
            cursor: HashMap::new(),
            aligner: Aligner::new(),
            feeds: Feeds::new(),
            running: HashMap::new(),
            groups: HashMap::new(),
        }
    }

    fn owns_home(&self, symbol: Symbol) -> bool {
        self.owned.contains(&home_partition(symbol, PARTITIONS))
    }

    /// Reads up to `n` messages of `p`: processed here, or forwarded to their home.
    fn read(&mut self, p: i32, n: usize, shared: &mut Shared) {
        let Some(cursor) = self.cursor.get_mut(&p) else {
            return;
        };
        for _ in 0..n {
            let Some(r) = shared.logs[p as usize].get(*cursor).copied() else {
                break;
            };
            *cursor += 1;
            self.aligner.saw_message(p);
            let home = home_partition(r.tick.symbol(), PARTITIONS);
            if self.owned.contains(&home) {
                self.aligner.push(r);
            } else {
                let log = &mut shared.logs[home as usize];
                let at = Seq {
                    partition: home,
                    offset: log.len() as i64,
                };
                log.push(TickRecord::new(r.tick, r.seq, at));
            }
        }
        if *cursor == shared.logs[p as usize].len() {
            self.aligner.reached_end(p);
        }
    }

    fn release(&mut self) {
        let (feeds, groups) = (&mut self.feeds, &mut self.groups);
        self.aligner.release(|r| {
            feeds.fed(r.tick.symbol(), r.at.partition);
            groups.entry(r.tick.symbol()).or_default().push(r);
        });
    }

    /// Hands the released trades to their symbols (restored from their checkpoint when not
    /// running); never starts a symbol whose home is read elsewhere.
    fn dispatch(&mut self, shared: &mut Shared) {
        let mut misrouted = BTreeSet::new();
        let mut events = Vec::new();
        let groups: Vec<(Symbol, Vec<TickRecord>)> = self.groups.drain().collect();
        for (symbol, ticks) in groups {
            if !self.owns_home(symbol) {
                misrouted.extend(ticks.iter().map(|r| r.at.partition));
                continue;
            }
            let (applied, builder) = self.running.entry(symbol).or_insert_with(|| {
                shared
                    .checkpoints
                    .get(&symbol)
                    .cloned()
                    .unwrap_or_else(fresh_state)
            });
            for r in ticks {
                if applied.is_new(r.seq) {
                    applied.record(r.seq);
                    builder.on_trade(&r.tick, Some(r.seq.as_i64()), r.tick.ts(), &mut events);
                }
            }
        }
        shared.store(&mut events);
        for p in misrouted {
            self.replay(p, shared);
        }
    }

    /// Reads `p` again from the last commit.
    fn replay(&mut self, p: i32, shared: &Shared) {
        if !self.owned.contains(&p) {
            return;
        }
        self.cursor.insert(p, shared.committed[p as usize]);
        self.aligner.rewind(p);
        for ticks in self.groups.values_mut() {
            ticks.retain(|r| r.at.partition != p);
        }
    }

    /// Checkpoints every symbol fed since the last commit, then commits what was read and
    /// released.
    fn commit(&mut self, shared: &mut Shared) {
        self.release();
        self.dispatch(shared);
        for symbol in self.feeds.symbols() {
            if let Some(state) = self.running.get(&symbol) {
                shared.checkpoints.insert(symbol, state.clone());
            }
        }
        for &p in &self.owned {
            let read = self.cursor[&p];
            let held = self.aligner.oldest_held(p).map_or(read, |o| o as usize);
            shared.committed[p as usize] = read.min(held);
        }
        self.feeds.clear();
    }

    /// Retires the symbols homed on `parts` and replays what fed them (`routing::handover`).
    fn retire_homed_on(&mut self, parts: &[i32], shared: &Shared) {
        let running: Vec<Symbol> = self.running.keys().copied().collect();
        let handover =
            routing::handover(parts, PARTITIONS, &running, &mut self.feeds, &self.aligner);
        for symbol in &handover.retire {
            self.running.remove(symbol);
        }
        self.groups
            .retain(|s, _| !parts.contains(&home_partition(*s, PARTITIONS)));
        for p in handover.replay {
            self.replay(p, shared);
        }
    }

    fn revoke(&mut self, parts: &[i32], shared: &Shared) {
        self.retire_homed_on(parts, shared);
        for &p in parts {
            self.aligner.revoke(p);
            self.owned.remove(&p);
            self.cursor.remove(&p);
            for ticks in self.groups.values_mut() {
                ticks.retain(|r| r.at.partition != p);
            }
        }
    }

    /// Takes `parts` on from the commit; restores every symbol checkpointed on them.
    fn assign(&mut self, parts: &[i32], shared: &Shared) {
        self.retire_homed_on(parts, shared);
        for &p in parts {
            self.owned.insert(p);
            self.aligner.assign(p);
            self.cursor.insert(p, shared.committed[p as usize]);
        }
        for (symbol, state) in &shared.checkpoints {
            if parts.contains(&home_partition(*symbol, PARTITIONS)) {
                self.running.entry(*symbol).or_insert_with(|| state.clone());
            }
        }
    }
}

/// Runs two instances over the logs with moves, kills and commits from `seed`, then lets
/// instance 0 take everything and finish; returns the bars stored.
fn failover(logs: Vec<Vec<TickRecord>>, seed: u64) -> Bars {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut shared = Shared {
        committed: vec![0; logs.len()],
        logs,
        checkpoints: HashMap::new(),
        stored: Bars::new(),
    };
    let mut instances = [Instance::new(), Instance::new()];
    let all: Vec<i32> = (0..PARTITIONS).collect();
    let split = rng.random_range(0..=all.len());
    instances[0].assign(&all[..split], &shared);
    instances[1].assign(&all[split..], &shared);
    for _ in 0..rng.random_range(20..200) {
        let i = rng.random_range(0..2);
        let (me, other) = if i == 0 {
            let [a, b] = &mut instances;
            (a, b)
        } else {
            let [a, b] = &mut instances;
            (b, a)
        };
        match rng.random_range(0..100) {
            0..55 => {
                let owned: Vec<i32> = me.owned.iter().copied().collect();
                if owned.is_empty() {
                    continue;
                }
                let p = owned[rng.random_range(0..owned.len())];
                me.read(p, rng.random_range(1..30), &mut shared);
                me.release();
                if rng.random_bool(0.7) {
                    me.dispatch(&mut shared);
                }
            }
            55..80 => me.commit(&mut shared),
            80..95 => {
                // A rebalance moves one partition from `me` to `other`.
                let owned: Vec<i32> = me.owned.iter().copied().collect();
                if owned.is_empty() {
                    continue;
                }
                let p = [owned[rng.random_range(0..owned.len())]];
                me.revoke(&p, &shared);
                other.assign(&p, &shared);
            }
            _ => {
                // kill -9: `me` loses its memory, `other` takes its partitions.
                let lost: Vec<i32> = me.owned.iter().copied().collect();
                *me = Instance::new();
                other.assign(&lost, &shared);
            }
        }
    }
    // Instance 0 takes everything and reads to the end.
    let [first, second] = &mut instances;
    let moved: Vec<i32> = second.owned.iter().copied().collect();
    second.revoke(&moved, &shared);
    first.assign(&moved, &shared);
    loop {
        let behind: Vec<i32> = (0..PARTITIONS)
            .filter(|p| first.cursor[p] < shared.logs[*p as usize].len())
            .collect();
        if behind.is_empty() {
            break;
        }
        for p in behind {
            first.read(p, usize::MAX, &mut shared);
        }
        first.release();
        first.dispatch(&mut shared);
    }
    // Every partition's end reported (as librdkafka reports an assigned partition's end).
    for p in 0..PARTITIONS {
        first.aligner.reached_end(p);
    }
    first.release();
    first.dispatch(&mut shared);
    assert_eq!(first.aligner.held(), 0, "every trade released");
    let mut events = Vec::new();
    for (_, builder) in first.running.values_mut() {
        builder.flush(&mut events);
    }
    shared.store(&mut events);
    shared.stored
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Partitions moving between two instances, kills, commits at any point, and trades on
    /// any partition never lose or double a trade: the stored bars equal a brute-force
    /// aggregation of every trade, once.
    #[test]
    fn moves_and_kills_between_two_instances_never_lose_or_double_a_trade(
        trades in trades(),
        seed in any::<u64>(),
    ) {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0xfa11);
        // Half the trades unkeyed, on top of the keys drawn.
        let logs = logs_of(&trades, &mut rng, |key, rng| {
            if rng.random_bool(0.5) { Key::None } else { key }
        });
        let records: Vec<TickRecord> = logs.iter().flatten().copied().collect();
        prop_assert_eq!(failover(logs, seed), brute_force(&records));
    }
}
