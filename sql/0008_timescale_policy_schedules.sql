-- Each TimescaleDB policy runs at a pace that fits its period: a tenth of it, at least a
-- minute and at most a day (tickflow's `policy_schedule`, which `serve` uses when it sets
-- the retention periods). TimescaleDB's default (once a day for retention) let the 1-hour
-- realtime_analytics retention keep about 25 hours of rows. Runs again harmlessly.
DO $$
DECLARE
    job    record;
    period interval;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    FOR job IN
        SELECT job_id, proc_name, config FROM timescaledb_information.jobs
        WHERE proc_name IN ('policy_retention', 'policy_compression')
          AND hypertable_name IN ('realtime_prices', 'realtime_analytics', 'intraday_ohlcv',
                                  'historical_ohlcv', 'intraday_analytics', 'daily_analytics')
    LOOP
        period := (job.config ->> CASE job.proc_name WHEN 'policy_retention' THEN 'drop_after'
                                                      ELSE 'compress_after' END)::interval;
        PERFORM alter_job(job.job_id,
                          schedule_interval => LEAST(GREATEST(period / 10, INTERVAL '1 minute'), INTERVAL '1 day'),
                          next_start => now());
    END LOOP;
END
$$;
