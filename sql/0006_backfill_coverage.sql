-- Spans a backfill asked a provider for, written in the same transaction as the bars they
-- brought (possibly none: a holiday the calendar does not know, a halted symbol). A later
-- backfill skips them, so an interrupted backfill resumes where it stopped.
CREATE TABLE IF NOT EXISTS backfill_coverage (
    symbol           TEXT        NOT NULL,
    interval_minutes INTEGER     NOT NULL,
    range_start      TIMESTAMPTZ NOT NULL,
    range_end        TIMESTAMPTZ NOT NULL CHECK (range_end > range_start),
    provider         TEXT        NOT NULL,
    bars             BIGINT      NOT NULL,
    fetched_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, interval_minutes, range_start)
);
