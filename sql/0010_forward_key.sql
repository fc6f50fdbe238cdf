-- The secret that signs trades forwarded to their home partition (kafka::origin), one per
-- broker epoch, shared by the instances using this database; kept here, never on Kafka,
-- so that no producer can forge a forwarded trade's identity.
ALTER TABLE broker_epochs ADD COLUMN IF NOT EXISTS forward_key TEXT;
