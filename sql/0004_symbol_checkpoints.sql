-- A symbol's pipeline state (open bars, indicator and metric windows) after the tick at
-- seq, written in the same transaction as the outputs it accounts for.
CREATE TABLE IF NOT EXISTS symbol_checkpoints (
    symbol     TEXT        PRIMARY KEY,
    seq        BIGINT      NOT NULL,
    state      BYTEA       NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
