//! Fault injection for tests (the `fault-injection` feature: never in `cargo build
//! --release`; the benches get it, as they get dev-dependencies, and pay one relaxed load
//! per check while nothing is armed): a
//! test arms a number of panics for a symbol, and the bar-builder stage panics on that
//! symbol's next trades, as a bug in the maths would; or poisons one trade, which the
//! bar-builder stage then panics on every time it sees it.

use crate::domain::{Symbol, Tick, Timestamp};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether any fault was ever armed: until one is, every check is one relaxed load (the
/// benches are built with this feature too, as dev-dependencies are).
static IN_USE: AtomicBool = AtomicBool::new(false);

fn in_use() -> bool {
    IN_USE.load(Ordering::Relaxed)
}

static ARMED: Mutex<Option<HashMap<Symbol, u32>>> = Mutex::new(None);
static POISONED: Mutex<Vec<(Symbol, Timestamp)>> = Mutex::new(Vec::new());

/// Makes every batch holding `symbol`'s trade at `ts` panic in the bar builder (`false`
/// takes the poison away).
pub fn poison(symbol: Symbol, ts: Timestamp, on: bool) {
    IN_USE.store(true, Ordering::Relaxed);
    // unwrap: nothing panics while holding the lock.
    let mut poisoned = POISONED.lock().unwrap();
    poisoned.retain(|p| *p != (symbol, ts));
    if on {
        poisoned.push((symbol, ts));
    }
}

/// Panics if `tick` is poisoned.
pub fn check_poison(tick: &Tick) {
    if !in_use() {
        return;
    }
    // unwrap: see `poison`.
    let hit = POISONED
        .lock()
        .unwrap()
        .contains(&(tick.symbol(), tick.ts()));
    assert!(!hit, "injected fault: poisoned trade of {}", tick.symbol());
}

/// Makes the next `times` batches of `symbol` panic in the bar builder.
pub fn arm_panics(symbol: Symbol, times: u32) {
    IN_USE.store(true, Ordering::Relaxed);
    // unwrap: nothing panics while holding the lock.
    ARMED
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(symbol, times);
}

/// Panics if a panic is armed for `symbol` (and counts it off).
pub fn maybe_panic(symbol: Symbol) {
    if !in_use() {
        return;
    }
    let fire = {
        // unwrap: see `arm_panics`.
        let mut armed = ARMED.lock().unwrap();
        match armed.as_mut().and_then(|m| m.get_mut(&symbol)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    };
    assert!(!fire, "injected fault for {symbol}");
}

static CLOCK_FAULTS: Mutex<Vec<Symbol>> = Mutex::new(Vec::new());

/// Makes the next idle-clock advance of `symbol` fail (no caller waits on it).
pub fn arm_clock_fault(symbol: Symbol) {
    IN_USE.store(true, Ordering::Relaxed);
    // unwrap: nothing panics while holding the lock.
    CLOCK_FAULTS.lock().unwrap().push(symbol);
}

/// Whether a clock fault is still armed for `symbol`.
pub fn clock_fault_armed(symbol: Symbol) -> bool {
    // unwrap: see `arm_clock_fault`.
    CLOCK_FAULTS.lock().unwrap().contains(&symbol)
}

/// Takes an armed clock fault for `symbol`.
pub fn take_clock_fault(symbol: Symbol) -> bool {
    if !in_use() {
        return false;
    }
    // unwrap: see `arm_clock_fault`.
    let mut armed = CLOCK_FAULTS.lock().unwrap();
    let found = armed.iter().position(|s| *s == symbol);
    found.map(|i| armed.remove(i)).is_some()
}
