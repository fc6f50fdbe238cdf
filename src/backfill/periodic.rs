//! `serve --backfill-every`: the feed's symbols and intervals backfilled at start and then
//! periodically, over the last `--backfill-days` local dates (never before the first day the
//! retention keeps).

use crate::backfill::{Backfiller, Job};
use crate::domain::{Interval, Symbol, TradingCalendar};
use crate::store::Retention;
use std::time::Duration;

/// Backfills each job's last `days` local dates now and every `every`.
pub async fn run(
    backfiller: Backfiller,
    jobs: Vec<(Symbol, Interval, TradingCalendar)>,
    days: u32,
    every: Duration,
    retention: Retention,
) {
    let mut timer = tokio::time::interval(every);
    loop {
        timer.tick().await;
        for (symbol, interval, calendar) in &jobs {
            let to = chrono::Utc::now()
                .with_timezone(&calendar.tz())
                .date_naive();
            let mut job = Job {
                symbol: *symbol,
                interval: *interval,
                calendar: *calendar,
                from: to - chrono::Duration::days(i64::from(days)),
                to,
            };
            if let Some(kept) = job.retained_from(&retention) {
                // What the retention deletes at once is not worth a provider's credits.
                tracing::warn!(%symbol, interval = interval.as_str(), from = %job.from, kept = %kept, "--backfill-days reaches past the intraday retention; backfilling from the first day kept");
                job.from = kept;
            }
            match backfiller
                .run(&job, &indicatif::ProgressBar::hidden())
                .await
            {
                Ok(r) if r.chunks == 0 => {}
                Ok(r) => {
                    tracing::info!(%symbol, interval = interval.as_str(), chunks = r.chunks, bars = r.bars, failed = r.failed.len(), "backfill done")
                }
                Err(e) => tracing::warn!(%symbol, error = %format!("{e:#}"), "backfill failed"),
            }
        }
    }
}
