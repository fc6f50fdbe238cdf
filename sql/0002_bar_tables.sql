-- Bars, keyed by their START time. An upsert replaces a bar only with a revision at least
-- as new, so redelivery is idempotent and volumes are never added up.
CREATE TABLE IF NOT EXISTS intraday_ohlcv (
    symbol           TEXT             NOT NULL,
    "timestamp"      TIMESTAMPTZ      NOT NULL,
    interval_minutes INTEGER          NOT NULL CHECK (interval_minutes > 0 AND interval_minutes < 1440),
    open             DOUBLE PRECISION NOT NULL,
    high             DOUBLE PRECISION NOT NULL,
    low              DOUBLE PRECISION NOT NULL,
    close            DOUBLE PRECISION NOT NULL,
    volume           DOUBLE PRECISION NOT NULL,
    num_samples      BIGINT           NOT NULL,
    vwap             DOUBLE PRECISION,
    revision         INTEGER          NOT NULL DEFAULT 0,
    source           TEXT             NOT NULL,
    bar_end          TIMESTAMPTZ      NOT NULL,
    updated_at       TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, interval_minutes, "timestamp")
);

-- One row per trading session; "timestamp" is the session's local date.
CREATE TABLE IF NOT EXISTS historical_ohlcv (
    symbol        TEXT             NOT NULL,
    "timestamp"   DATE             NOT NULL,
    open          DOUBLE PRECISION NOT NULL,
    high          DOUBLE PRECISION NOT NULL,
    low           DOUBLE PRECISION NOT NULL,
    close         DOUBLE PRECISION NOT NULL,
    volume        DOUBLE PRECISION NOT NULL,
    num_samples   BIGINT           NOT NULL,
    vwap          DOUBLE PRECISION,
    revision      INTEGER          NOT NULL DEFAULT 0,
    source        TEXT             NOT NULL,
    session_start TIMESTAMPTZ      NOT NULL,
    session_end   TIMESTAMPTZ      NOT NULL,
    updated_at    TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, "timestamp")
);
