//! Fault injection for tests (the `fault-injection` feature, never in release builds): a
//! test arms a number of panics for a symbol, and the bar-builder stage panics on that
//! symbol's next trades, as a bug in the maths would.

use crate::domain::Symbol;
use std::collections::HashMap;
use std::sync::Mutex;

static ARMED: Mutex<Option<HashMap<Symbol, u32>>> = Mutex::new(None);

/// Makes the next `times` batches of `symbol` panic in the bar builder.
pub fn arm_panics(symbol: Symbol, times: u32) {
    // unwrap: nothing panics while holding the lock.
    ARMED
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(symbol, times);
}

/// Panics if a panic is armed for `symbol` (and counts it off).
pub fn maybe_panic(symbol: Symbol) {
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
