-- The ops control plane (issue 14): rule versions, audit log, forced-open
-- breakers (when no Redis is configured) and anomaly resolutions.
CREATE TABLE rule_versions (
    version      INTEGER NOT NULL PRIMARY KEY,
    state        TEXT    NOT NULL,
    yaml         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    activated_at INTEGER,
    shadow       INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX rule_versions_one_active ON rule_versions (state) WHERE state = 'active';
CREATE TABLE audit_log (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    object     TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    before     TEXT    NOT NULL,
    after      TEXT    NOT NULL
);
CREATE TABLE breaker_overrides (
    provider TEXT    NOT NULL,
    method   TEXT    NOT NULL,
    reason   TEXT    NOT NULL,
    actor    TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (provider, method)
);
CREATE TABLE anomaly_resolutions (
    anomaly_id  INTEGER NOT NULL PRIMARY KEY REFERENCES anomalies (id),
    note        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    resolved_at INTEGER NOT NULL
);
