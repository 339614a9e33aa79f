-- Event consumers and merchant webhook delivery (issue 4).

-- cursors: the last event seq each stream consumer has handled (the webhook
-- dispatcher, each Redis stream), so a restart resumes without skipping.
CREATE TABLE cursors (
    name       TEXT    NOT NULL PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- deliveries: one row per event sent to a merchant's webhook_url.
CREATE TABLE deliveries (
    seq          INTEGER NOT NULL PRIMARY KEY REFERENCES events (seq),
    merchant_id  TEXT    NOT NULL,
    status       TEXT    NOT NULL, -- pending | delivered | dead
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    last_status  INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    delivered_at INTEGER,
    version      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_due ON deliveries (next_at, seq) WHERE status = 'pending';
CREATE INDEX deliveries_merchant ON deliveries (merchant_id, seq);
