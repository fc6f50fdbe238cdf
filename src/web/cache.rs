//! `ResponseCache`: recent answers of the read API, reused while the table they were read
//! from has not changed.
//!
//! Dashboards poll the same few URLs many times a second; each answer is a database query
//! and tens of kilobytes of JSON. An answer is kept with the [`Generations`] count of its
//! table at the time it was read, and reused only while that count is unchanged (no write
//! through this process since) and for at most `ttl` (writes by other instances, and routes
//! whose default window ends "now"). Only complete `200` answers up to 1 MiB are kept, at
//! most `MAX_ENTRIES` of them.

use crate::store::{Generations, TableKind};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::web::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; when full, expired ones go, then the oldest.
const MAX_ENTRIES: usize = 4096;
/// Largest body kept.
const MAX_BODY: u64 = 1 << 20;

struct Entry {
    generation: u64,
    at: Instant,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

/// The cache; `ttl` zero disables it.
pub struct ResponseCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

/// The table a read route answers from, or `None` for routes not cached.
pub fn table_of(path: &str) -> Option<TableKind> {
    let rest = path.strip_prefix("/api/v2/")?;
    let (section, rest) = rest.split_once('/')?;
    Some(match (section, rest.split('/').next()?) {
        ("realtime", "analytics") => TableKind::Realtime,
        ("realtime", _) => TableKind::Ticks,
        ("intraday" | "historical", "prices") => TableKind::Bars,
        ("intraday" | "historical", "analytics") => TableKind::Analytics,
        _ => return None,
    })
}

impl ResponseCache {
    /// A cache keeping answers for at most `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// Whether it keeps anything.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The answer kept for `key`, if still current at `generation`.
    pub fn get(&self, key: &str, generation: u64) -> Option<(Option<HeaderValue>, Bytes)> {
        // unwrap: no code panics while holding the lock.
        let entries = self.entries.lock().unwrap();
        let e = entries.get(key)?;
        (e.generation == generation && e.at.elapsed() < self.ttl)
            .then(|| (e.content_type.clone(), e.body.clone()))
    }

    /// Keeps an answer read at `generation`.
    pub fn put(
        &self,
        key: String,
        generation: u64,
        content_type: Option<HeaderValue>,
        body: Bytes,
    ) {
        // unwrap: see `get`.
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, e| e.at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.at)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key,
            Entry {
                generation,
                at: Instant::now(),
                content_type,
                body,
            },
        );
    }
}

/// What the cache can do for a request.
pub enum Lookup {
    /// The kept answer.
    Hit(ServiceResponse),
    /// Not kept: call the route, then [`keep`] its answer under `key`.
    Miss {
        req: ServiceRequest,
        key: String,
        generation: u64,
    },
    /// Not a cached route.
    Pass(ServiceRequest),
}

/// Looks `req` up.
pub fn lookup(cache: &ResponseCache, generations: &Generations, req: ServiceRequest) -> Lookup {
    let kind = (cache.enabled() && req.method() == actix_web::http::Method::GET)
        .then(|| table_of(req.path()))
        .flatten();
    let Some(kind) = kind else {
        return Lookup::Pass(req);
    };
    let key = format!("{}?{}", req.path(), req.query_string());
    // The generation is read before the data: a write racing the read leaves the entry
    // stale-marked, never a stale entry marked current.
    let generation = generations.get(kind);
    match cache.get(&key, generation) {
        Some((content_type, body)) => {
            let mut res = actix_web::HttpResponse::Ok();
            if let Some(ct) = content_type {
                res.insert_header((CONTENT_TYPE, ct));
            }
            let (http_req, _) = req.into_parts();
            Lookup::Hit(ServiceResponse::new(http_req, res.body(body)))
        }
        None => Lookup::Miss {
            req,
            key,
            generation,
        },
    }
}

/// Keeps `res` when it is a complete `200` answer small enough, and returns it.
pub fn keep(
    cache: &ResponseCache,
    key: String,
    generation: u64,
    res: ServiceResponse,
) -> ServiceResponse {
    if res.status() != actix_web::http::StatusCode::OK
        || !matches!(res.response().body().size(), BodySize::Sized(n) if n <= MAX_BODY)
    {
        return res;
    }
    let (http_req, res) = res.into_parts();
    let content_type = res.headers().get(CONTENT_TYPE).cloned();
    let (res, body) = res.into_parts();
    match body.try_into_bytes() {
        Ok(bytes) => {
            cache.put(key, generation, content_type, bytes.clone());
            ServiceResponse::new(http_req, res.set_body(BoxBody::new(bytes)))
        }
        // Not an in-memory body after all: pass it on untouched.
        Err(body) => ServiceResponse::new(http_req, res.set_body(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_their_tables() {
        assert_eq!(
            table_of("/api/v2/intraday/prices/AAPL"),
            Some(TableKind::Bars)
        );
        assert_eq!(
            table_of("/api/v2/historical/analytics/AAPL/last/5"),
            Some(TableKind::Analytics)
        );
        assert_eq!(
            table_of("/api/v2/realtime/analytics/AAPL"),
            Some(TableKind::Realtime)
        );
        assert_eq!(table_of("/api/v2/realtime/symbols"), Some(TableKind::Ticks));
        assert_eq!(table_of("/health"), None);
        assert_eq!(table_of("/api/v2/other/x"), None);
    }

    #[test]
    fn entries_expire_with_a_new_generation_or_the_ttl() {
        let c = ResponseCache::new(Duration::from_millis(50));
        c.put("k".into(), 7, None, Bytes::from_static(b"x"));
        assert!(c.get("k", 7).is_some());
        assert!(c.get("k", 8).is_none(), "written since");
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.get("k", 7).is_none(), "too old");
        assert!(!ResponseCache::new(Duration::ZERO).enabled());
    }
}
