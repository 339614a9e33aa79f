-- payrouter schema, SQLite dialect. Times are INTEGER microseconds since the
-- Unix epoch (UTC): exact, compact and sortable, unlike SQLite's text dates.

CREATE TABLE payments (
    id                  TEXT    NOT NULL PRIMARY KEY,
    merchant_id         TEXT    NOT NULL,
    reference           TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    amount              INTEGER NOT NULL,
    currency            TEXT    NOT NULL,
    method              TEXT    NOT NULL,
    provider            TEXT    NOT NULL,
    provider_payment_id TEXT    NOT NULL,
    amount_captured     INTEGER NOT NULL,
    amount_refunded     INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    resolve_at          INTEGER,
    expires_at          INTEGER,
    data                TEXT    NOT NULL -- JSON: the rest of the aggregate
);
-- The store maps a violation of this index (and only this one) to
-- store.ErrDuplicateReference. Empty references are not constrained.
CREATE UNIQUE INDEX payments_merchant_reference_key ON payments (merchant_id, reference) WHERE reference <> '';
CREATE INDEX payments_merchant_created ON payments (merchant_id, created_at DESC, id DESC);
CREATE INDEX payments_created ON payments (created_at, id);
CREATE INDEX payments_resolve_at ON payments (resolve_at) WHERE resolve_at IS NOT NULL;

CREATE TABLE attempts (
    payment_id          TEXT    NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    idx                 INTEGER NOT NULL, -- position in Payment.Attempts
    n                   INTEGER NOT NULL,
    provider            TEXT    NOT NULL,
    provider_payment_id TEXT    NOT NULL,
    idempotency_key     TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    error_class         TEXT    NOT NULL,
    error_code          TEXT    NOT NULL,
    error_message       TEXT    NOT NULL,
    expected_fee        INTEGER NOT NULL,
    latency_ms          INTEGER NOT NULL,
    started_at          INTEGER NOT NULL,
    PRIMARY KEY (payment_id, idx)
);
CREATE INDEX attempts_provider_payment ON attempts (provider, provider_payment_id);
CREATE INDEX attempts_provider_key ON attempts (provider, idempotency_key);

CREATE TABLE refunds (
    payment_id         TEXT    NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    idx                INTEGER NOT NULL, -- position in Payment.Refunds
    id                 TEXT    NOT NULL,
    amount             INTEGER NOT NULL,
    reason             TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    provider_refund_id TEXT    NOT NULL,
    failure_code       TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    PRIMARY KEY (payment_id, idx)
);

-- Writes are serialized, so seq = MAX(seq)+1 is assigned in commit order.
CREATE TABLE events (
    seq         INTEGER NOT NULL PRIMARY KEY,
    id          TEXT    NOT NULL,
    merchant_id TEXT    NOT NULL,
    payment_id  TEXT    NOT NULL REFERENCES payments (id),
    type        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    data        TEXT    NOT NULL
);
CREATE INDEX events_merchant_seq ON events (merchant_id, seq);

CREATE TABLE idempotency (
    merchant_id  TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    payment_id   TEXT    NOT NULL DEFAULT '',
    status       INTEGER NOT NULL DEFAULT 0,
    body         BLOB,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE inbox (
    id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    provider     TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    headers      TEXT    NOT NULL,
    body         BLOB,
    parsed       BLOB,
    received_at  INTEGER NOT NULL,
    outcome      TEXT    NOT NULL DEFAULT '',
    note         TEXT    NOT NULL DEFAULT '',
    processed_at INTEGER,
    UNIQUE (provider, event_id)
);
CREATE INDEX inbox_pending ON inbox (id) WHERE outcome = '';

CREATE TABLE anomalies (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    payment_id TEXT    NOT NULL,
    provider   TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
