//! `Backfiller`: finds the bars missing from the store against the exchange calendar and
//! fills them from the history providers.
//!
//! Planning reads the store (bars present, spans already asked); fetching goes through
//! [`HistoryClient`] (preference order, fallback, rate limits); the bars go to
//! `market.prices.history` keyed by symbol, each chunk followed by its coverage marker, and
//! the bar-ingest consumer stores both in one transaction. So a backfill takes the same
//! path as live bars, is exactly-once (upserts keyed by bar start, never adding volumes),
//! and resumes after an interruption: chunks already stored are no longer gaps.
//!
//! - [`Backfiller`] (here): plans (gaps from the store, `domain::gaps`) and fetches
//!   (`feeds::history`), publishing to `market.prices.history`.
//! - [`ingest`]: the consumer that stores what arrives on `market.prices.history`.
//! - [`analytics`]: the indicators of stored history series.
//! - [`periodic`]: `serve --backfill-every`.

pub mod analytics;
pub mod ingest;
pub mod periodic;

pub use analytics::analytics_for_history;

use crate::domain::Coverage;
use crate::domain::gaps::{Chunk, expected_slots, missing_chunks};
use crate::domain::{Interval, Symbol, TradingCalendar};
use crate::feeds::history::HistoryClient;
use crate::kafka::producer::{Producer, Record};
use crate::kafka::topics;
use crate::kafka::wire;
use crate::store::Store;
use chrono::NaiveDate;
use indicatif::ProgressBar;
use std::time::Duration;

/// One symbol and interval over local dates `from..=to` of its calendar.
#[derive(Debug, Clone)]
pub struct Job {
    pub symbol: Symbol,
    pub interval: Interval,
    pub calendar: TradingCalendar,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Job {
    /// The first local date whose `interval` bars the `retention` keeps (as of now), when
    /// it is after `from`: earlier bars would be deleted within a minute of being stored.
    pub fn retained_from(&self, retention: &crate::store::Retention) -> Option<NaiveDate> {
        let now = crate::domain::Timestamp::from_datetime(&chrono::Utc::now());
        let cutoff = retention.bars_cutoff(self.interval, now)?;
        let first = cutoff
            .to_datetime()
            .with_timezone(&self.calendar.tz())
            .date_naive()
            .succ_opt()?;
        (first > self.from).then_some(first)
    }
}

/// What a backfill did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    /// Chunks the gaps made.
    pub chunks: usize,
    /// Chunks fetched and published.
    pub published: Vec<Chunk>,
    /// Bars published.
    pub bars: u64,
    /// Chunks no provider served, with the reasons.
    pub failed: Vec<String>,
}

/// Plans and runs backfills.
pub struct Backfiller {
    client: HistoryClient,
    store: Store,
    producer: Producer,
}

impl Backfiller {
    /// A backfiller reading gaps from `store` and publishing through `producer`.
    pub fn new(client: HistoryClient, store: Store, producer: Producer) -> Self {
        Self {
            client,
            store,
            producer,
        }
    }

    /// The missing chunks of `job`.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn plan(&self, job: &Job) -> anyhow::Result<Vec<Chunk>> {
        // Only bars that have ended: a span asked for too early would count as covered.
        let now = crate::domain::Timestamp::from_datetime(&chrono::Utc::now());
        let mut slots = expected_slots(&job.calendar, job.interval, job.from, job.to);
        slots.retain(|s| s.end <= now);
        let (Some(first), Some(last)) = (slots.first(), slots.last()) else {
            return Ok(Vec::new());
        };
        let present = self
            .store
            .bar_starts(job.symbol, job.interval, first.start, last.end)
            .await?;
        let covered = self
            .store
            .coverage(job.symbol, job.interval, first.start, last.end)
            .await?;
        Ok(missing_chunks(
            &slots,
            &present,
            &covered,
            self.client.max_slots(job.interval),
        ))
    }

    /// Fills `job`'s gaps, ticking `progress` once per chunk.
    ///
    /// When every provider has spent its daily allowance, waits for the next UTC day.
    ///
    /// # Errors
    /// When the store cannot be read or Kafka refuses the bars.
    pub async fn run(&self, job: &Job, progress: &ProgressBar) -> anyhow::Result<Report> {
        let chunks = self.plan(job).await?;
        let mut report = Report {
            chunks: chunks.len(),
            ..Report::default()
        };
        progress.set_length(chunks.len() as u64);
        progress.set_position(0);
        let key = job.symbol.as_str();
        let mut queue: std::collections::VecDeque<Chunk> = chunks.into();
        while let Some(chunk) = queue.pop_front() {
            loop {
                match self
                    .client
                    .fetch(job.symbol, job.interval, &job.calendar, &chunk)
                    .await
                {
                    Ok((provider, bars)) => {
                        for bar in &bars {
                            let payload = wire::encode_history_bar(bar, provider.name());
                            self.producer
                                .send(Record::keyed(topics::HISTORY, key, &payload))
                                .await?;
                        }
                        let coverage = Coverage {
                            symbol: job.symbol,
                            interval: job.interval,
                            start: chunk.start,
                            end: chunk.end,
                            provider: provider.name().to_owned(),
                            bars: bars.len() as u64,
                        };
                        let payload = wire::encode_coverage(&coverage);
                        self.producer
                            .send(Record::keyed(topics::HISTORY, key, &payload))
                            .await?;
                        report.bars += bars.len() as u64;
                        report.published.push(chunk);
                        break;
                    }
                    Err(all) if all.truncated() && chunk.slots.len() > 1 => {
                        // More values than one answer holds (extended hours, an overnight
                        // span): ask for each half instead.
                        let (first, second) = chunk.slots.split_at(chunk.slots.len() / 2);
                        for half in [second, first] {
                            queue.push_front(Chunk::of(half));
                        }
                        report.chunks += 2;
                        progress.inc_length(2);
                        break;
                    }
                    Err(all) if all.only_spent_today() => {
                        let wait = until_next_utc_day();
                        progress.set_message(format!(
                            "daily allowances spent; waiting {} for the next UTC day (interrupt and resume any time)",
                            humantime::format_duration(Duration::from_secs(wait.as_secs()))
                        ));
                        tokio::time::sleep(wait).await;
                    }
                    Err(all) => {
                        report
                            .failed
                            .push(format!("{} .. {}: {all}", chunk.start, chunk.end));
                        break;
                    }
                }
            }
            progress.inc(1);
            progress.set_message(format!("{} bars", report.bars));
        }
        self.producer
            .flush()
            .await
            .map_err(|e| anyhow::anyhow!("backfill messages not delivered: {e}"))?;
        Ok(report)
    }

    /// Whether every chunk of `published` is now recorded as covered in the store (the
    /// bar-ingest consumer has stored it).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn stored(&self, job: &Job, published: &[Chunk]) -> anyhow::Result<bool> {
        let (Some(first), Some(last)) = (published.first(), published.last()) else {
            return Ok(true);
        };
        let covered = self
            .store
            .coverage(job.symbol, job.interval, first.start, last.end)
            .await?;
        Ok(published
            .iter()
            .all(|c| covered.iter().any(|(s, e)| *s <= c.start && c.end <= *e)))
    }
}

fn until_next_utc_day() -> Duration {
    let now = chrono::Utc::now();
    let tomorrow = now.date_naive().succ_opt().unwrap_or(now.date_naive());
    let midnight = tomorrow.and_time(chrono::NaiveTime::MIN).and_utc();
    (midnight - now).to_std().unwrap_or_default() + Duration::from_secs(60)
}
