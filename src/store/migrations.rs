//! The ordered, idempotent migration set in `sql/`, compiled into the binary.

use anyhow::Context;
use tokio_postgres::Client;

/// `(version, name, sql)` in the order they apply.
const MIGRATIONS: [(i32, &str, &str); 10] = [
    (
        1,
        "tick_tables",
        include_str!("../../sql/0001_tick_tables.sql"),
    ),
    (
        2,
        "bar_tables",
        include_str!("../../sql/0002_bar_tables.sql"),
    ),
    (
        3,
        "analytics_tables",
        include_str!("../../sql/0003_analytics_tables.sql"),
    ),
    (
        4,
        "symbol_checkpoints",
        include_str!("../../sql/0004_symbol_checkpoints.sql"),
    ),
    (5, "timescale", include_str!("../../sql/0005_timescale.sql")),
    (
        6,
        "backfill_coverage",
        include_str!("../../sql/0006_backfill_coverage.sql"),
    ),
    (
        7,
        "broker_epochs",
        include_str!("../../sql/0007_broker_epochs.sql"),
    ),
    (
        8,
        "timescale_policy_schedules",
        include_str!("../../sql/0008_timescale_policy_schedules.sql"),
    ),
    (
        9,
        "checkpoint_fence",
        include_str!("../../sql/0009_checkpoint_fence.sql"),
    ),
    (
        10,
        "forward_key",
        include_str!("../../sql/0010_forward_key.sql"),
    ),
];

/// Arbitrary constant: instances starting together serialise their migrations on it.
const MIGRATION_LOCK: i64 = 0x7469_636b_666c_6f77;

/// Applies every migration not applied yet, each in its own transaction, under an advisory
/// lock so that several instances starting at once do not race. Returns the versions applied.
///
/// # Errors
/// When a statement fails (that migration is rolled back; later ones do not run).
pub async fn migrate(client: &mut Client) -> anyhow::Result<Vec<i32>> {
    // Under the lock too: two `CREATE TABLE IF NOT EXISTS` at once can both try to create
    // it (PostgreSQL then refuses one with a duplicate-type error).
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tickflow_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .context("cannot create tickflow_migrations")?;
    tx.commit().await?;
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let done = tx
            .query_opt(
                "SELECT 1 FROM tickflow_migrations WHERE version = $1",
                &[&version],
            )
            .await?
            .is_some();
        if !done {
            tx.batch_execute(sql)
                .await
                .with_context(|| format!("migration {version:04}_{name} failed"))?;
            tx.execute(
                "INSERT INTO tickflow_migrations (version, name) VALUES ($1, $2)",
                &[&version, &name],
            )
            .await?;
            applied.push(version);
        }
        tx.commit().await?;
    }
    Ok(applied)
}
