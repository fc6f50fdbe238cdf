-- What a checkpoint accounts for, beside its encoded state: the broker epoch and the last
-- offset applied per origin partition (`[[partition, offset], …]`). A write that would
-- replace a checkpoint with one that applied less of the same broker's log is refused: an
-- instance that lost its partitions while paused (a zombie) must not overwrite the newer
-- checkpoint of the instance that took them over.
ALTER TABLE symbol_checkpoints ADD COLUMN IF NOT EXISTS epoch TEXT;
ALTER TABLE symbol_checkpoints ADD COLUMN IF NOT EXISTS applied JSONB;
