//! `HistoryClient`: bars for a span from the history providers, in order of preference.
//!
//! TwelveData `time_series` serves every interval (1 h and 4 h through its 30 min bars, which
//! lie on tickflow's UTC grid where its own hour bars, starting at 09:30, do not); Alpha
//! Vantage `TIME_SERIES_DAILY` serves daily bars. Each provider has its own
//! [`RateLimiter`]: a request waits for the per-minute allowance; when a provider has no key,
//! does not serve the interval, has spent the day's allowance or fails, the next one is
//! asked.

use crate::domain::HistoryBar;
use crate::domain::gaps::{Chunk, RawBar, fill_chunk};
use crate::domain::{Interval, Symbol, TradingCalendar};
use crate::feeds::rate_limit::{RateLimiter, Wait};
use crate::feeds::{alphavantage, twelvedata};
use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, Instant};

/// A history provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    Twelvedata,
    Alphavantage,
}

impl ProviderKind {
    /// The provider's name, as stored in the `source` column.
    pub fn name(self) -> &'static str {
        match self {
            Self::Twelvedata => "twelvedata",
            Self::Alphavantage => "alphavantage",
        }
    }
}

/// Keys, endpoints, allowances and preference order of the history providers.
#[derive(Debug, Clone, clap::Args)]
pub struct ProviderSettings {
    /// History providers to ask, in order of preference (comma-separated).
    #[arg(
        long = "history-providers",
        env = "TICKFLOW_HISTORY_PROVIDERS",
        value_delimiter = ',',
        default_value = "twelvedata,alphavantage"
    )]
    pub order: Vec<ProviderKind>,
    /// TwelveData API key (REST history and the `twelvedata` live feed).
    #[arg(long, env = "TWELVEDATA_API_KEY", hide_env_values = true)]
    pub twelvedata_api_key: Option<String>,
    /// TwelveData REST base URL.
    #[arg(long, env = "TWELVEDATA_URL", default_value = twelvedata::DEFAULT_REST_URL)]
    pub twelvedata_url: String,
    /// TwelveData requests per minute (8 on the free plan).
    #[arg(long, env = "TWELVEDATA_PER_MINUTE", default_value_t = 8)]
    pub twelvedata_per_minute: usize,
    /// Most values TwelveData returns per request (its `outputsize` cap, 5000).
    #[arg(long, env = "TWELVEDATA_OUTPUTSIZE", default_value_t = 5000)]
    pub twelvedata_outputsize: usize,
    /// TwelveData requests (credits) per UTC day (800 on the free plan).
    #[arg(long, env = "TWELVEDATA_PER_DAY", default_value_t = 800)]
    pub twelvedata_per_day: u32,
    /// Alpha Vantage API key (daily history).
    #[arg(long, env = "ALPHA_VANTAGE_API_KEY", hide_env_values = true)]
    pub alphavantage_api_key: Option<String>,
    /// Alpha Vantage base URL.
    #[arg(
        long,
        env = "ALPHA_VANTAGE_URL",
        default_value = alphavantage::DEFAULT_URL
    )]
    pub alphavantage_url: String,
    /// Alpha Vantage requests per UTC day (25 on the free plan).
    #[arg(long, env = "ALPHA_VANTAGE_PER_DAY", default_value_t = 25)]
    pub alphavantage_per_day: u32,
    /// Length of a per-minute allowance window (a minute; tests shorten it).
    #[arg(long, env = "TICKFLOW_RATE_WINDOW", default_value = "60s", value_parser = humantime::parse_duration, hide = true)]
    pub rate_window: Duration,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            order: vec![ProviderKind::Twelvedata, ProviderKind::Alphavantage],
            twelvedata_api_key: None,
            twelvedata_url: twelvedata::DEFAULT_REST_URL.to_owned(),
            twelvedata_per_minute: 8,
            twelvedata_outputsize: 5000,
            twelvedata_per_day: 800,
            alphavantage_api_key: None,
            alphavantage_url: alphavantage::DEFAULT_URL.to_owned(),
            alphavantage_per_day: 25,
            rate_window: Duration::from_secs(60),
        }
    }
}

/// Why one provider gave nothing for a chunk.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchError {
    /// No API key configured.
    NoKey,
    /// The provider has no bars of this interval.
    Unsupported,
    /// Today's allowance is spent.
    SpentToday,
    /// The answer held as many values as a request may return: ask for less.
    Truncated,
    /// The provider answered with an error or could not be reached.
    Failed(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoKey => f.write_str("no API key"),
            Self::Unsupported => f.write_str("interval not served"),
            Self::SpentToday => f.write_str("daily allowance spent"),
            Self::Truncated => f.write_str("answer possibly truncated"),
            Self::Failed(e) => f.write_str(e),
        }
    }
}

/// Every provider failed for a chunk.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("no provider could serve the span: {}", .0.iter().map(|(p, e)| format!("{}: {e}", p.name())).collect::<Vec<_>>().join("; "))]
pub struct AllFailed(pub Vec<(ProviderKind, FetchError)>);

impl AllFailed {
    /// Whether asking for a smaller span would help.
    pub fn truncated(&self) -> bool {
        self.0.iter().any(|(_, e)| *e == FetchError::Truncated)
    }

    /// Whether waiting for tomorrow's allowance would help.
    pub fn only_spent_today(&self) -> bool {
        self.0.iter().any(|(_, e)| *e == FetchError::SpentToday)
            && self.0.iter().all(|(_, e)| {
                matches!(
                    e,
                    FetchError::SpentToday | FetchError::NoKey | FetchError::Unsupported
                )
            })
    }
}

struct Provider {
    kind: ProviderKind,
    base_url: String,
    key: Option<String>,
    limiter: RefCell<RateLimiter>,
}

/// The history providers. Not `Send` (awc): use it on the actix runtime.
pub struct HistoryClient {
    providers: Vec<Provider>,
    http: awc::Client,
    outputsize: usize,
}

/// A throttle answer is retried this many times before the next provider is asked.
const THROTTLE_RETRIES: usize = 5;

impl HistoryClient {
    /// The providers of `settings`, in its order.
    pub fn new(settings: &ProviderSettings) -> Self {
        let providers = settings
            .order
            .iter()
            .map(|kind| {
                let (base_url, key, limiter) = match kind {
                    ProviderKind::Twelvedata => (
                        &settings.twelvedata_url,
                        &settings.twelvedata_api_key,
                        RateLimiter::new(
                            settings.twelvedata_per_minute,
                            settings.rate_window,
                            settings.twelvedata_per_day,
                        ),
                    ),
                    ProviderKind::Alphavantage => (
                        &settings.alphavantage_url,
                        &settings.alphavantage_api_key,
                        // Alpha Vantage also refuses more than 5 a minute.
                        RateLimiter::new(5, settings.rate_window, settings.alphavantage_per_day),
                    ),
                };
                Provider {
                    kind: *kind,
                    base_url: base_url.trim_end_matches('/').to_owned(),
                    key: key.clone().filter(|k| !k.trim().is_empty()),
                    limiter: RefCell::new(limiter),
                }
            })
            .collect();
        Self {
            providers,
            outputsize: settings.twelvedata_outputsize.max(2),
            http: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
        }
    }

    /// The most slots of `interval` one request may ask for, over the providers that serve
    /// it (TwelveData returns at most `outputsize` values; keep a 4 % margin, and a full
    /// answer is refused as possibly truncated).
    pub fn max_slots(&self, interval: Interval) -> usize {
        self.providers
            .iter()
            .filter(|p| serves(p.kind, interval))
            .map(|p| match p.kind {
                ProviderKind::Twelvedata => {
                    (self.outputsize * 24 / 25 / td_interval(interval).1).max(1)
                }
                ProviderKind::Alphavantage => 5_000,
            })
            .min()
            .unwrap_or(1)
    }

    /// The bars of `chunk` from the first provider that answers, and that provider.
    ///
    /// # Errors
    /// [`AllFailed`] with each provider's reason.
    pub async fn fetch(
        &self,
        symbol: Symbol,
        interval: Interval,
        calendar: &TradingCalendar,
        chunk: &Chunk,
    ) -> Result<(ProviderKind, Vec<HistoryBar>), AllFailed> {
        let mut failures = Vec::new();
        for p in &self.providers {
            match self.fetch_from(p, symbol, interval, calendar, chunk).await {
                Ok(raw) => return Ok((p.kind, fill_chunk(symbol, interval, chunk, raw))),
                Err(e) => {
                    tracing::warn!(provider = p.kind.name(), %symbol, interval = interval.as_str(), error = %format!("{e:#}"), "history provider failed; trying the next");
                    failures.push((p.kind, e));
                }
            }
        }
        Err(AllFailed(failures))
    }

    async fn fetch_from(
        &self,
        p: &Provider,
        symbol: Symbol,
        interval: Interval,
        calendar: &TradingCalendar,
        chunk: &Chunk,
    ) -> Result<Vec<RawBar>, FetchError> {
        let Some(key) = &p.key else {
            return Err(FetchError::NoKey);
        };
        if !serves(p.kind, interval) {
            return Err(FetchError::Unsupported);
        }
        let mut transport_errors = 0;
        let mut throttles = 0;
        loop {
            // Wait for the allowance (a RefCell borrow never spans an await).
            loop {
                let today = chrono::Utc::now().date_naive();
                let verdict = p.limiter.borrow_mut().try_acquire(Instant::now(), today);
                match verdict {
                    Ok(()) => break,
                    Err(Wait::For(d)) => tokio::time::sleep(d).await,
                    Err(Wait::NextDay) => return Err(FetchError::SpentToday),
                }
            }
            let answer = match p.kind {
                ProviderKind::Twelvedata => {
                    self.twelvedata(p, key, symbol, interval, calendar, chunk)
                        .await
                }
                ProviderKind::Alphavantage => {
                    self.alphavantage(p, key, symbol, calendar, chunk).await
                }
            };
            match answer {
                Answer::Bars(bars) => return Ok(bars),
                Answer::Throttled { daily: true, .. } => {
                    p.limiter.borrow_mut().exhausted_today();
                    return Err(FetchError::SpentToday);
                }
                Answer::Throttled {
                    daily: false,
                    message,
                } => {
                    throttles += 1;
                    if throttles > THROTTLE_RETRIES {
                        return Err(FetchError::Failed(format!("still throttled: {message}")));
                    }
                    tracing::info!(
                        provider = p.kind.name(),
                        message,
                        "provider throttled; waiting for the next window"
                    );
                    p.limiter.borrow_mut().throttled(Instant::now());
                }
                Answer::Transport(e) => {
                    transport_errors += 1;
                    if transport_errors >= 3 {
                        return Err(FetchError::Failed(e));
                    }
                    tokio::time::sleep(Duration::from_millis(500 * transport_errors)).await;
                }
                Answer::Refused(e) => return Err(FetchError::Failed(e)),
                Answer::Truncated => return Err(FetchError::Truncated),
            }
        }
    }

    async fn get(&self, url: &str, query: Vec<(&str, &str)>) -> Result<(u16, String), String> {
        let mut resp = self
            .http
            .get(url)
            .query(&query)
            .map_err(|e| format!("bad query: {e}"))?
            .send()
            .await
            .map_err(|e| format!("request to {url} failed: {e}"))?;
        let body = resp
            .body()
            .limit(64 << 20)
            .await
            .map_err(|e| format!("reading {url}: {e}"))?;
        Ok((
            resp.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        ))
    }

    async fn twelvedata(
        &self,
        p: &Provider,
        key: &str,
        symbol: Symbol,
        interval: Interval,
        calendar: &TradingCalendar,
        chunk: &Chunk,
    ) -> Answer {
        let tz = calendar.tz();
        let local = |t: crate::domain::Timestamp| {
            t.to_datetime()
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        let (name, _) = td_interval(interval);
        let (start, end) = (local(chunk.start), local(chunk.end));
        let url = format!("{}/time_series", p.base_url);
        let outputsize = self.outputsize.to_string();
        let query = [
            ("symbol", symbol.as_str()),
            ("interval", name),
            ("start_date", start.as_str()),
            ("end_date", end.as_str()),
            ("order", "ASC"),
            ("outputsize", outputsize.as_str()),
            ("apikey", key),
        ];
        let (status, body) = match self.get(&url, query.to_vec()).await {
            Ok(r) => r,
            Err(e) => return Answer::Transport(e),
        };
        if status == 429 {
            return Answer::Throttled {
                daily: false,
                message: format!("HTTP 429: {body:.200}"),
            };
        }
        if status >= 500 {
            return Answer::Transport(format!("HTTP {status}: {body:.200}"));
        }
        match twelvedata::parse_time_series(&body) {
            Ok(twelvedata::SeriesResponse::Bars { tz, rows }) => {
                if rows.len() >= self.outputsize {
                    return Answer::Truncated;
                }
                match twelvedata::to_raw_bars(&rows, tz, calendar, interval.is_daily()) {
                    Ok(bars) => Answer::Bars(bars),
                    Err(e) => Answer::Refused(e.to_string()),
                }
            }
            Ok(twelvedata::SeriesResponse::NoData) => Answer::Bars(Vec::new()),
            Ok(twelvedata::SeriesResponse::Throttled { daily, message }) => {
                Answer::Throttled { daily, message }
            }
            Ok(twelvedata::SeriesResponse::Error { code, message }) => {
                Answer::Refused(format!("TwelveData error {code}: {message}"))
            }
            Err(e) => Answer::Refused(e.to_string()),
        }
    }

    async fn alphavantage(
        &self,
        p: &Provider,
        key: &str,
        symbol: Symbol,
        calendar: &TradingCalendar,
        chunk: &Chunk,
    ) -> Answer {
        // `compact` (the last 100 sessions) is free; `full` only when the span needs it.
        let recent = chrono::Utc::now() - chrono::Duration::days(140);
        let size = if chunk.start.to_datetime() > recent {
            "compact"
        } else {
            "full"
        };
        let url = format!("{}/query", p.base_url);
        let query = [
            ("function", "TIME_SERIES_DAILY"),
            ("symbol", symbol.as_str()),
            ("outputsize", size),
            ("datatype", "csv"),
            ("apikey", key),
        ];
        let (status, body) = match self.get(&url, query.to_vec()).await {
            Ok(r) => r,
            Err(e) => return Answer::Transport(e),
        };
        if status >= 500 {
            return Answer::Transport(format!("HTTP {status}: {body:.200}"));
        }
        match alphavantage::parse_daily(&body) {
            Ok(alphavantage::DailyResponse::Bars(days)) => Answer::Bars(
                days.iter()
                    .filter_map(|d| {
                        calendar.session_on(d.date).map(|s| RawBar {
                            start: s.start,
                            open: d.open,
                            high: d.high,
                            low: d.low,
                            close: d.close,
                            volume: d.volume,
                        })
                    })
                    .collect(),
            ),
            Ok(alphavantage::DailyResponse::Throttled { daily, message }) => {
                Answer::Throttled { daily, message }
            }
            Ok(alphavantage::DailyResponse::Error(message)) => {
                Answer::Refused(format!("Alpha Vantage error: {message}"))
            }
            Err(e) => Answer::Refused(e.to_string()),
        }
    }
}

enum Answer {
    Bars(Vec<RawBar>),
    Throttled {
        daily: bool,
        message: String,
    },
    Transport(String),
    Refused(String),
    /// As many values as allowed: extended hours or a long span filled the answer.
    Truncated,
}

fn serves(kind: ProviderKind, interval: Interval) -> bool {
    match kind {
        ProviderKind::Twelvedata => true,
        ProviderKind::Alphavantage => interval.is_daily(),
    }
}

/// TwelveData's interval name for `interval`, and how many of its bars make one of ours.
fn td_interval(interval: Interval) -> (&'static str, usize) {
    match interval {
        Interval::M1 => ("1min", 1),
        Interval::M5 => ("5min", 1),
        Interval::M15 => ("15min", 1),
        Interval::M30 => ("30min", 1),
        Interval::H1 => ("30min", 2),
        Interval::H4 => ("30min", 8),
        Interval::D1 => ("1day", 1),
    }
}
