-- Trades and per-trade realtime metrics.
-- DOUBLE PRECISION, not NUMERIC(12,4): values are computed as f64 and must come back
-- bit-identical (indicator parity), NUMERIC(12,4) truncated sub-cent prices (FX, crypto)
-- and Yahoo's float32 prices, and the API returns JSON numbers, not strings.
-- A trade's identity is (symbol, timestamp, seq), seq = its raw-topic partition and offset:
-- a redelivered message is stored once, distinct trades sharing a timestamp are all kept.
CREATE TABLE IF NOT EXISTS realtime_prices (
    symbol      TEXT             NOT NULL,
    "timestamp" TIMESTAMPTZ      NOT NULL,
    seq         BIGINT           NOT NULL,
    price       DOUBLE PRECISION NOT NULL CHECK (price > 0),
    volume      DOUBLE PRECISION NOT NULL CHECK (volume >= 0),
    source      TEXT             NOT NULL,
    inserted_at TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, "timestamp", seq)
);

CREATE TABLE IF NOT EXISTS realtime_analytics (
    symbol            TEXT             NOT NULL,
    "timestamp"       TIMESTAMPTZ      NOT NULL,
    seq               BIGINT           NOT NULL,
    price             DOUBLE PRECISION NOT NULL,
    price_velocity_10 DOUBLE PRECISION,
    price_velocity_50 DOUBLE PRECISION,
    tick_ratio        DOUBLE PRECISION,
    tick_vwap_20      DOUBLE PRECISION,
    volume_momentum   DOUBLE PRECISION,
    bb_bandwidth      DOUBLE PRECISION,
    bb_position       DOUBLE PRECISION,
    tick_rsi_14       DOUBLE PRECISION,
    created_at        TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, "timestamp", seq)
);
