//! A symbol's processing failing (fault injection): it restarts from its checkpoint or is
//! rebuilt from the partition, the trades it keeps failing on go to the DLQ, and the other
//! symbols run on; bars still equal the SQL aggregation of the stored trades.

use super::wait_until_consumed;
use crate::helpers::*;
use crate::oracle::*;
use std::time::Duration;
use tickflow::kafka::topics;
use tickflow::kafka::wire::DeadLetter;

// Fault injection is process-wide and tests run in parallel: each fault test breaks a
// symbol no other test trades.
const CRASH_ONCE: [&str; 3] = ["AAPL", "CRASH", "BTC-USD"];
const FLAKY_ONCE: [&str; 3] = ["AAPL", "FLAKY", "BTC-USD"];

#[actix_rt::test]
async fn a_panicking_symbol_restarts_from_its_checkpoint_while_the_others_run_on() {
    // A commit (and so a checkpoint) passes before the panic.
    one_panic_changes_nothing(&CRASH_ONCE, 11, "panics", None).await;
}

#[actix_rt::test]
async fn a_symbol_failing_after_uncommitted_progress_rebuilds_through_every_tick() {
    // No commit (so no checkpoint) during the run: the failed symbol's state must be
    // rebuilt from the partition's start, not from the failing batch alone.
    one_panic_changes_nothing(
        &FLAKY_ONCE,
        13,
        "uncommitted",
        Some(Duration::from_secs(3600)),
    )
    .await;
}

/// Publishes half the trades of `symbols`, breaks the bar builder of `symbols[1]` (whose
/// trades straddle the halves) once, publishes the rest: every trade is stored once,
/// nothing is dead-lettered, and every bar equals the SQL aggregation of the stored trades.
async fn one_panic_changes_nothing(
    symbols: &[&str],
    seed: u64,
    group: &str,
    commit_interval: Option<Duration>,
) {
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let ticks = trades(symbols, seed);
    let producer = producer(kafka.bootstrap_servers());
    let half = ticks.len() / 2;
    publish(&producer, &ticks[..half]);
    let mut s = settings(kafka.bootstrap_servers(), Some(&db.url), group);
    if let Some(every) = commit_interval {
        s.commit_interval = every;
    }
    let app = spawn_app(s).await;
    let client = db.client().await;
    assert_eq!(
        wait_for_ticks(&client, half as i64, Duration::from_secs(60)).await,
        half as i64
    );
    if commit_interval.is_none() {
        // Let a commit (and so a checkpoint) pass.
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let broken = tickflow::domain::Symbol::parse(symbols[1]).unwrap();
    tickflow::fault::arm_panics(broken, 1);
    publish(&producer, &ticks[half..]);
    assert_eq!(
        wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(60)).await,
        ticks.len() as i64,
        "every trade stored once, the failed batch included"
    );
    wait_until_consumed(&app.metrics, ticks.len() as u64).await;
    // The replay reaches the end of the partition again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(app.metrics.symbol_restarts.get() >= 1, "{broken} restarted");
    assert_eq!(
        app.metrics
            .dlq_messages
            .with_label_values(&["processing_failed"])
            .get(),
        0,
        "a panic that does not recur loses nothing to the DLQ"
    );
    app.shutdown().await;
    assert_bars_and_realtime_exact(&client, symbols, &ticks).await;
}

#[actix_rt::test]
async fn a_trade_the_pipeline_keeps_failing_on_is_the_only_one_dead_lettered() {
    // A bug that trips on one particular trade: the symbol fails, its partition is replayed,
    // it fails again on the same ticks, they go one by one, and only that trade goes to the
    // DLQ; everything else of the symbol is stored and in its bars.
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let symbols = ["AAPL", "PSN", "BTC-USD"];
    let ticks = trades(&symbols, 31);
    let poisoned = tickflow::domain::Symbol::parse("PSN").unwrap();
    let own: Vec<_> = ticks.iter().filter(|t| t.symbol() == poisoned).collect();
    // A trade in the second half whose time no other trade of the symbol shares.
    let bad = **own[own.len() / 2..]
        .iter()
        .find(|t| own.iter().filter(|u| u.ts() == t.ts()).count() == 1)
        .unwrap();
    tickflow::fault::poison(poisoned, bad.ts(), true);
    publish(&producer(kafka.bootstrap_servers()), &ticks);
    let app = spawn_app(settings(
        kafka.bootstrap_servers(),
        Some(&db.url),
        "poisoned-trade",
    ))
    .await;
    let client = db.client().await;
    let want = ticks.len() as i64 - 1;
    assert_eq!(
        wait_for_ticks(&client, want, Duration::from_secs(60)).await,
        want,
        "every other trade stored"
    );
    wait_until_consumed(&app.metrics, ticks.len() as u64).await;
    // The last replay reaches the end of the partition again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarts = app.metrics.symbol_restarts.get();
    app.shutdown().await;
    tickflow::fault::poison(poisoned, bad.ts(), false);
    // Failed in a batch, again in the replay, then on the trade itself.
    assert!(restarts >= 3, "{restarts} restarts");
    let letters: Vec<DeadLetter> = read_topic(
        kafka.bootstrap_servers(),
        topics::DLQ,
        Duration::from_secs(2),
    )
    .iter()
    .map(|(_, p)| serde_json::from_slice(p).expect("one dead-letter format"))
    .collect();
    assert_eq!(letters.len(), 1, "only the poisoned trade is dead-lettered");
    let letter = &letters[0];
    assert_eq!(letter.reason, "processing_failed");
    assert!(letter.error.contains("poisoned trade"), "{}", letter.error);
    let dead = tickflow::kafka::wire::parse_raw_tick(letter.payload.as_bytes()).unwrap();
    assert_eq!(
        (dead.symbol(), dead.ts(), dead.price()),
        (poisoned, bad.ts(), bad.price())
    );
    let kept: Vec<_> = ticks
        .iter()
        .filter(|t| !(t.symbol() == poisoned && t.ts() == bad.ts()))
        .copied()
        .collect();
    assert_bars_and_realtime_exact(&client, &symbols, &kept).await;
}

#[actix_rt::test]
async fn a_symbol_whose_idle_clock_fails_is_replayed_not_left_with_a_gap() {
    // The idle clock fails with no caller waiting: the supervisor goes back to its
    // checkpoint (none: nothing is committed before the fault), and its next batch must
    // make the consumer replay the partition instead of landing on a state that lacks
    // every tick before it.
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    // The middle symbol's trades straddle the halves.
    let symbols = ["AAPL", "CLKF", "BTC-USD"];
    let ticks = trades(&symbols, 41);
    let producer = producer(kafka.bootstrap_servers());
    let half = ticks.len() / 2;
    publish(&producer, &ticks[..half]);
    let mut s = settings(kafka.bootstrap_servers(), Some(&db.url), "clock-fault");
    s.commit_interval = Duration::from_secs(3600);
    let app = spawn_app(s).await;
    let client = db.client().await;
    assert_eq!(
        wait_for_ticks(&client, half as i64, Duration::from_secs(60)).await,
        half as i64
    );
    let broken = tickflow::domain::Symbol::parse("CLKF").unwrap();
    tickflow::fault::arm_clock_fault(broken);
    // The clock runs once the symbol is idle for the grace period.
    let start = std::time::Instant::now();
    while tickflow::fault::clock_fault_armed(broken) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the clock never ran"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    publish(&producer, &ticks[half..]);
    assert_eq!(
        wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(60)).await,
        ticks.len() as i64
    );
    wait_until_consumed(&app.metrics, ticks.len() as u64).await;
    // The replay reaches the end of the partition again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(app.metrics.symbol_restarts.get() >= 1, "{broken} restarted");
    app.shutdown().await;
    assert_bars_and_realtime_exact(&client, &symbols, &ticks).await;
}

#[actix_rt::test]
async fn a_failure_in_the_last_round_before_a_quiet_spell_is_recovered_at_once() {
    // Commits an hour apart and nothing more to read: only the consumer settling its round
    // in flight when idle notices that the last round failed and replays it.
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let symbols = ["AAPL", "QUIET"];
    let ticks = trades(&symbols, 51);
    let (last, before) = ticks.split_last().unwrap();
    let producer = producer(kafka.bootstrap_servers());
    publish(&producer, before);
    let mut s = settings(kafka.bootstrap_servers(), Some(&db.url), "quiet-spell");
    s.commit_interval = Duration::from_secs(3600);
    let app = spawn_app(s).await;
    let client = db.client().await;
    assert_eq!(
        wait_for_ticks(&client, before.len() as i64, Duration::from_secs(60)).await,
        before.len() as i64
    );
    tickflow::fault::arm_panics(last.symbol(), 1);
    publish(&producer, std::slice::from_ref(last));
    assert_eq!(
        wait_for_ticks(&client, ticks.len() as i64, Duration::from_secs(30)).await,
        ticks.len() as i64,
        "the failed last trade is replayed and stored"
    );
    assert!(app.metrics.symbol_restarts.get() >= 1);
    app.shutdown().await;
    assert_bars_and_realtime_exact(&client, &symbols, &ticks).await;
}

#[actix_rt::test]
async fn a_symbol_that_keeps_failing_goes_to_the_dlq_and_nothing_is_lost() {
    let kafka = broker(3);
    let db = TestDatabase::create().await;
    let ticks = trades(&["AAPL", "MSFT", "KFAIL"], 12);
    let failing = tickflow::domain::Symbol::parse("KFAIL").unwrap();
    let failing_total = ticks.iter().filter(|t| t.symbol() == failing).count() as i64;
    let app = spawn_app(settings(
        kafka.bootstrap_servers(),
        Some(&db.url),
        "always-panics",
    ))
    .await;
    tickflow::fault::arm_panics(failing, u32::MAX);
    publish(&producer(kafka.bootstrap_servers()), &ticks);
    let client = db.client().await;
    let others = (ticks.len() as i64) - failing_total;
    assert_eq!(
        wait_for_count(
            &client,
            "SELECT count(*) FROM realtime_prices WHERE symbol <> 'KFAIL'",
            others,
            Duration::from_secs(60)
        )
        .await,
        others,
        "the other symbols run on"
    );
    wait_until_consumed(&app.metrics, ticks.len() as u64).await;
    // Each failing batch is replayed once, then dead-lettered: wait until every KFAIL
    // trade is accounted for.
    let start = std::time::Instant::now();
    loop {
        let stored = stored_failing(&client).await;
        let dead = app
            .metrics
            .dlq_messages
            .with_label_values(&["processing_failed"])
            .get() as i64;
        if stored + dead >= failing_total || start.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.shutdown().await;
    tickflow::fault::arm_panics(failing, 0);
    let stored = stored_failing(&client).await;
    let dead: std::collections::BTreeSet<(i64, i64)> = read_topic(
        kafka.bootstrap_servers(),
        topics::DLQ,
        Duration::from_secs(2),
    )
    .iter()
    .map(|(_, p)| {
        let letter: DeadLetter = serde_json::from_slice(p).expect("one dead-letter format");
        assert_eq!(letter.reason, "processing_failed");
        assert!(letter.error.contains("injected fault"), "{}", letter.error);
        (i64::from(letter.partition), letter.offset)
    })
    .collect();
    assert_eq!(
        stored + dead.len() as i64,
        failing_total,
        "every KFAIL trade is stored or dead-lettered"
    );
    assert!(!dead.is_empty());
}

/// Trades of the always-failing symbol in `realtime_prices`.
async fn stored_failing(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM realtime_prices WHERE symbol = 'KFAIL'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}
