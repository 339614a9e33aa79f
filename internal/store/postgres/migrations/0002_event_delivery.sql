-- Event consumers and merchant webhook delivery (issue 4).

-- cursors: the last event seq each stream consumer has handled (the webhook
-- dispatcher, each Redis stream), so a restart resumes without skipping.
CREATE TABLE cursors (
    name       text        NOT NULL PRIMARY KEY,
    seq        bigint      NOT NULL,
    updated_at timestamptz NOT NULL
);

-- deliveries: one row per event sent to a merchant's webhook_url.
CREATE TABLE deliveries (
    seq          bigint      NOT NULL PRIMARY KEY REFERENCES events (seq),
    merchant_id  text        NOT NULL,
    status       text        NOT NULL, -- pending | delivered | dead
    attempts     integer     NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL,
    last_status  integer     NOT NULL DEFAULT 0,
    last_error   text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    delivered_at timestamptz,
    version      bigint      NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_due ON deliveries (next_at, seq) WHERE status = 'pending';
CREATE INDEX deliveries_merchant ON deliveries (merchant_id, seq);
