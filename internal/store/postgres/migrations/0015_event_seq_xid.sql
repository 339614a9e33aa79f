-- Event seqs are no longer drawn from event_seq under a global advisory
-- lock (which serialized every event-writing transaction of every instance
-- from its event insert to its commit). A new event's seq is
--   base + 1024 * (its transaction's id, xid8) + (its index in the transaction),
-- so seq order is transaction-id order, and readers of "seq > after" only
-- see events below base + 1024 * pg_snapshot_xmin(pg_current_snapshot()):
-- every transaction with a smaller id has finished, and every transaction
-- still running or yet to start has a larger one, so no event can later
-- appear below what a reader has seen (see postgres.go). base lifts the new
-- numbers above every seq drawn before this migration.
CREATE TABLE event_seq_base (
    base bigint NOT NULL
);
INSERT INTO event_seq_base (base) SELECT COALESCE(MAX(seq), 0) + 1 FROM events;
