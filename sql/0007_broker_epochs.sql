-- Which broker (log) each stored trade was read from. A trade's seq is its position in that
-- log; a new broker (tickflow's embedded one, at every start) counts positions from 0 again,
-- so a checkpoint's offsets and the trades stored after it are matched within one epoch
-- (see kafka::epoch): after a crash on the embedded broker, the trades stored after a
-- symbol's last checkpoint are read back from here.
CREATE TABLE IF NOT EXISTS broker_epochs (
    number     SERIAL      PRIMARY KEY,
    id         TEXT        NOT NULL UNIQUE,
    first_seen TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE realtime_prices ADD COLUMN IF NOT EXISTS epoch INTEGER NOT NULL DEFAULT 0;
