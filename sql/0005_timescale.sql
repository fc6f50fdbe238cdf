-- TimescaleDB, when the extension can be loaded: hypertables, compression and retention
-- policies (the reference README's table). Without it nothing here runs and tickflow's own
-- retention job deletes old rows instead. Every statement is idempotent (if_not_exists),
-- so the file can run again on TimescaleDB 2.x.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        RAISE NOTICE 'timescaledb not available: plain PostgreSQL tables, retention by tickflow';
        RETURN;
    END IF;
    -- Installed but not preloaded: CREATE EXTENSION would end the session with FATAL, which
    -- no EXCEPTION block catches, so it must not be tried. (tickflow logs this case.)
    IF current_setting('shared_preload_libraries') !~ '(^|[\s,"])timescaledb([\s,"]|$)' THEN
        RAISE NOTICE 'timescaledb is not in shared_preload_libraries: plain PostgreSQL tables';
        RETURN;
    END IF;
    BEGIN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'timescaledb cannot be loaded (%): plain PostgreSQL tables', SQLERRM;
        RETURN;
    END;

    EXECUTE $q$SELECT create_hypertable('realtime_prices', by_range('timestamp', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE)$q$;
    EXECUTE $q$SELECT create_hypertable('realtime_analytics', by_range('timestamp', INTERVAL '10 minutes'), if_not_exists => TRUE, migrate_data => TRUE)$q$;
    EXECUTE $q$SELECT create_hypertable('intraday_ohlcv', by_range('timestamp', INTERVAL '7 days'), if_not_exists => TRUE, migrate_data => TRUE)$q$;
    EXECUTE $q$SELECT create_hypertable('historical_ohlcv', by_range('timestamp', INTERVAL '1 year'), if_not_exists => TRUE, migrate_data => TRUE)$q$;
    EXECUTE $q$SELECT create_hypertable('intraday_analytics', by_range('timestamp', INTERVAL '7 days'), if_not_exists => TRUE, migrate_data => TRUE)$q$;
    EXECUTE $q$SELECT create_hypertable('daily_analytics', by_range('timestamp', INTERVAL '1 year'), if_not_exists => TRUE, migrate_data => TRUE)$q$;

    EXECUTE $q$ALTER TABLE intraday_ohlcv SET (timescaledb.compress, timescaledb.compress_segmentby = 'symbol, interval_minutes')$q$;
    EXECUTE $q$ALTER TABLE historical_ohlcv SET (timescaledb.compress, timescaledb.compress_segmentby = 'symbol')$q$;
    EXECUTE $q$ALTER TABLE intraday_analytics SET (timescaledb.compress, timescaledb.compress_segmentby = 'symbol, interval_minutes')$q$;
    EXECUTE $q$ALTER TABLE daily_analytics SET (timescaledb.compress, timescaledb.compress_segmentby = 'symbol')$q$;

    EXECUTE $q$SELECT add_compression_policy('intraday_ohlcv', INTERVAL '3 days', if_not_exists => TRUE)$q$;
    EXECUTE $q$SELECT add_compression_policy('historical_ohlcv', INTERVAL '7 days', if_not_exists => TRUE)$q$;
    EXECUTE $q$SELECT add_compression_policy('intraday_analytics', INTERVAL '7 days', if_not_exists => TRUE)$q$;
    EXECUTE $q$SELECT add_compression_policy('daily_analytics', INTERVAL '30 days', if_not_exists => TRUE)$q$;

    -- serve's --retain-* defaults; `tickflow serve` re-applies the configured periods at start.
    EXECUTE $q$SELECT add_retention_policy('realtime_prices', INTERVAL '5 days', if_not_exists => TRUE)$q$;
    EXECUTE $q$SELECT add_retention_policy('realtime_analytics', INTERVAL '1 hour', if_not_exists => TRUE)$q$;
    EXECUTE $q$SELECT add_retention_policy('intraday_ohlcv', INTERVAL '730 days', if_not_exists => TRUE)$q$;
    EXECUTE $q$SELECT add_retention_policy('intraday_analytics', INTERVAL '90 days', if_not_exists => TRUE)$q$;
END
$$;
