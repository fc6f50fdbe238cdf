-- Bar indicators, keyed like the bars they belong to (bar START), values as JSONB with
-- every published name (null while warming up).
CREATE TABLE IF NOT EXISTS intraday_analytics (
    symbol           TEXT             NOT NULL,
    "timestamp"      TIMESTAMPTZ      NOT NULL,
    interval_minutes INTEGER          NOT NULL,
    price            DOUBLE PRECISION NOT NULL,
    indicators       JSONB            NOT NULL,
    updated_at       TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, interval_minutes, "timestamp")
);

CREATE TABLE IF NOT EXISTS daily_analytics (
    symbol      TEXT             NOT NULL,
    "timestamp" DATE             NOT NULL,
    price       DOUBLE PRECISION NOT NULL,
    indicators  JSONB            NOT NULL,
    updated_at  TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, "timestamp")
);
