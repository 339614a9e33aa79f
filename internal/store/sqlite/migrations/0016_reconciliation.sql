-- Reconciliation runs (issue 16): one provider and period per run; the
-- same period again is the same run. Numbered 0016 to stay clear of the
-- other wave-2 branches' migrations.
CREATE TABLE recon_runs (
    id           TEXT    NOT NULL PRIMARY KEY,
    provider     TEXT    NOT NULL,
    from_at      INTEGER NOT NULL,
    to_at        INTEGER NOT NULL,
    settle_after INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    error        TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    summary      TEXT    NOT NULL
);
CREATE UNIQUE INDEX recon_runs_period_key ON recon_runs (provider, from_at, to_at);
CREATE INDEX recon_runs_created ON recon_runs (created_at);

CREATE TABLE recon_lines (
    run_id   TEXT    NOT NULL REFERENCES recon_runs (id),
    n        INTEGER NOT NULL,
    class    TEXT    NOT NULL,
    state    TEXT    NOT NULL,
    note     TEXT    NOT NULL,
    acted_by TEXT    NOT NULL,
    acted_at INTEGER,
    data     TEXT    NOT NULL,
    PRIMARY KEY (run_id, n)
);
CREATE INDEX recon_lines_open ON recon_lines (class, state);
