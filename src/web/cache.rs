//! `ResponseCache`: recent answers of the read routes, reused while the table they were read
//! from has not changed, bounded in bytes.
//!
//! Dashboards poll the same few URLs many times a second; each answer is a database query
//! and tens of kilobytes of JSON. An answer is kept with the [`crate::store::Generations`]
//! count of its table at the time it was read, and reused only while that count is unchanged
//! (no write through this process since) and for at most `ttl` (writes by other instances,
//! and routes whose default window ends "now").
//!
//! The key is the route and its *validated* parameters (see `dispatch::dispatch`), so unknown
//! parameters never reach it (they are refused first) and spellings of one request
//! (`limit=05`, reordered parameters) share one entry. Whatever clients send, the cache holds
//! at most `max_bytes`, counting keys, bodies, headers and a fixed overhead per entry:
//! expired entries go on every insert (entries expire in insertion order, so that is a pop
//! from the front of a queue), then the oldest until the new one fits.
//!
//! Written by hand: the cache crates either bound entries only eventually (moka's
//! housekeeping) or have no expiry (quick_cache), and this one also checks write
//! generations; the whole policy is the queue below.

use crate::metrics::Metrics;
use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;
use prometheus::IntGauge;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest body kept: a bigger answer is served but not kept.
pub const MAX_BODY: usize = 1 << 20;
/// Default bound of the whole cache (`--api-cache-bytes`).
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;
/// Bytes counted per entry on top of its key, body and headers: the entry itself, its map
/// slot, the key's reference count and its queue record.
const ENTRY_OVERHEAD: usize = 192;
/// Bytes counted for a queue record whose entry was replaced (until it leaves the queue).
const RECORD_OVERHEAD: usize = 32;

/// A kept answer: a `200` with these headers and body.
#[derive(Debug, Clone)]
pub struct Kept {
    pub content_type: Option<HeaderValue>,
    /// `Content-Disposition` of CSV answers.
    pub disposition: Option<HeaderValue>,
    pub body: Bytes,
}

impl Kept {
    fn cost(&self, key: &str) -> usize {
        let header = |h: &Option<HeaderValue>| h.as_ref().map_or(0, HeaderValue::len);
        ENTRY_OVERHEAD
            + key.len()
            + self.body.len()
            + header(&self.content_type)
            + header(&self.disposition)
    }
}

struct Entry {
    /// Which queue record is this entry's (older records of the key are stale).
    stamp: u64,
    generation: u64,
    at: Instant,
    kept: Kept,
    cost: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Arc<str>, Entry>,
    /// One record per insert, oldest first.
    order: VecDeque<(Arc<str>, u64)>,
    /// Bytes counted for every entry and every stale record.
    bytes: usize,
    next_stamp: u64,
}

impl Inner {
    /// Removes the oldest queue record (and its entry, when the record is the entry's).
    fn pop_oldest(&mut self) -> bool {
        let Some((key, stamp)) = self.order.pop_front() else {
            return false;
        };
        match self.entries.get(&key) {
            Some(e) if e.stamp == stamp => {
                self.bytes -= e.cost;
                self.entries.remove(&key);
            }
            _ => self.bytes -= RECORD_OVERHEAD,
        }
        true
    }

    /// Whether the oldest record belongs to an expired entry or is stale.
    fn oldest_is_dead(&self, ttl: Duration) -> bool {
        self.order.front().is_some_and(|(key, stamp)| {
            self.entries
                .get(key)
                .is_none_or(|e| e.stamp != *stamp || e.at.elapsed() >= ttl)
        })
    }
}

/// The cache; `ttl` zero disables it. Shared by every worker thread (one lock; every
/// critical section is a few map and queue operations, no await inside).
pub struct ResponseCache {
    ttl: Duration,
    max_bytes: usize,
    inner: Mutex<Inner>,
    bytes_gauge: IntGauge,
    entries_gauge: IntGauge,
}

impl ResponseCache {
    /// A cache keeping answers for at most `ttl`, in at most `max_bytes`, reporting its size
    /// to `metrics` (`api_cache_bytes`, `api_cache_entries`).
    pub fn new(ttl: Duration, max_bytes: usize, metrics: &Metrics) -> Self {
        Self {
            ttl,
            max_bytes,
            inner: Mutex::default(),
            bytes_gauge: metrics.api_cache_bytes.clone(),
            entries_gauge: metrics.api_cache_entries.clone(),
        }
    }

    /// Whether it keeps anything.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.max_bytes > 0
    }

    /// The answer kept for `key`, if still current at `generation`.
    pub fn get(&self, key: &str, generation: u64) -> Option<Kept> {
        // unwrap: no code panics while holding the lock.
        let inner = self.inner.lock().unwrap();
        let e = inner.entries.get(key)?;
        (e.generation == generation && e.at.elapsed() < self.ttl).then(|| e.kept.clone())
    }

    /// Keeps an answer read at `generation`, unless it alone exceeds the bound.
    pub fn put(&self, key: &str, generation: u64, kept: Kept) {
        let cost = kept.cost(key);
        if !self.enabled() || kept.body.len() > MAX_BODY || cost > self.max_bytes {
            return;
        }
        // unwrap: see `get`.
        let mut inner = self.inner.lock().unwrap();
        while inner.oldest_is_dead(self.ttl) {
            inner.pop_oldest();
        }
        let stamp = inner.next_stamp;
        inner.next_stamp += 1;
        let key: Arc<str> = match inner.entries.remove_entry(key) {
            Some((k, old)) => {
                // Its queue record stays behind, stale, until it reaches the front.
                inner.bytes -= old.cost - RECORD_OVERHEAD;
                k
            }
            None => Arc::from(key),
        };
        inner.order.push_back((key.clone(), stamp));
        inner.bytes += cost;
        inner.entries.insert(
            key,
            Entry {
                stamp,
                generation,
                at: Instant::now(),
                kept,
                cost,
            },
        );
        while inner.bytes > self.max_bytes && inner.pop_oldest() {}
        self.bytes_gauge.set(inner.bytes as i64);
        self.entries_gauge.set(inner.entries.len() as i64);
    }

    /// Bytes counted and entries held.
    pub fn size(&self) -> (usize, usize) {
        // unwrap: see `get`.
        let inner = self.inner.lock().unwrap();
        (inner.bytes, inner.entries.len())
    }
}

/// Parses a byte count: `67108864`, `64MiB`, `64M`, `512KiB`, `1GiB` (binary units, case-
/// insensitive, an optional `B`).
///
/// # Errors
/// A message naming the text when it is not such a count.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{text:?} is not a byte count (e.g. 64MiB)")),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{text:?} is not a byte count (e.g. 64MiB)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(len: usize) -> Kept {
        Kept {
            content_type: Some(HeaderValue::from_static("application/json")),
            disposition: None,
            body: Bytes::from(vec![b'x'; len]),
        }
    }

    fn cache(ttl_ms: u64, max_bytes: usize) -> ResponseCache {
        ResponseCache::new(Duration::from_millis(ttl_ms), max_bytes, &Metrics::new())
    }

    #[test]
    fn entries_expire_with_a_new_generation_or_the_ttl() {
        let c = cache(50, 1 << 20);
        c.put("k", 7, kept(1));
        assert!(c.get("k", 7).is_some());
        assert!(c.get("k", 8).is_none(), "written since");
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.get("k", 7).is_none(), "too old");
        assert!(!cache(0, 1 << 20).enabled());
    }

    #[test]
    fn the_byte_count_never_exceeds_the_bound_and_the_oldest_go_first() {
        let bound = 64 * 1024;
        let c = cache(60_000, bound);
        for i in 0..5_000 {
            c.put(&format!("/route?limit={i}"), 0, kept(1000 + i % 700));
            assert!(c.size().0 <= bound, "after {i}: {:?}", c.size());
        }
        let (bytes, entries) = c.size();
        assert!(
            entries > 10 && bytes > bound / 2,
            "{bytes} bytes, {entries}"
        );
        assert!(c.get("/route?limit=4999", 0).is_some(), "the newest stays");
        assert!(c.get("/route?limit=0", 0).is_none(), "the oldest went");
    }

    #[test]
    fn replacing_one_key_over_and_over_stays_bounded() {
        let bound = 16 * 1024;
        let c = cache(60_000, bound);
        for g in 0..10_000 {
            c.put("/hot", g, kept(500));
            assert!(c.size().0 <= bound);
        }
        assert_eq!(c.size().1, 1);
        assert!(c.get("/hot", 9_999).is_some());
    }

    #[test]
    fn expired_entries_are_dropped_on_insert() {
        let c = cache(20, 1 << 20);
        for i in 0..100 {
            c.put(&format!("/a{i}"), 0, kept(100));
        }
        std::thread::sleep(Duration::from_millis(30));
        c.put("/b", 0, kept(100));
        assert_eq!(c.size().1, 1, "only the new entry is left");
        assert_eq!(c.size().0, kept(100).cost("/b"));
    }

    #[test]
    fn an_answer_bigger_than_the_bound_or_the_body_limit_is_not_kept() {
        let c = cache(60_000, 4096);
        c.put("/big", 0, kept(5000));
        assert_eq!(c.size(), (0, 0));
        let c = cache(60_000, 8 << 20);
        c.put("/huge", 0, kept(MAX_BODY + 1));
        assert_eq!(c.size(), (0, 0));
    }

    #[test]
    fn byte_counts_parse_with_binary_units() {
        assert_eq!(parse_bytes("67108864"), Ok(64 << 20));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("1GB"), Ok(1 << 30));
        assert_eq!(parse_bytes("0"), Ok(0));
        for bad in ["", "MiB", "-1", "1.5MiB", "12TB", "99999999999999999999G"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?}");
        }
    }
}
