-- Reconciliation runs (issue 16): one provider and period per run; the
-- same period again is the same run. Numbered 0016 to stay clear of the
-- other wave-2 branches' migrations.
CREATE TABLE recon_runs (
    id           text        NOT NULL PRIMARY KEY,
    provider     text        NOT NULL,
    from_at      timestamptz NOT NULL,
    to_at        timestamptz NOT NULL,
    settle_after bigint  NOT NULL,
    status       text        NOT NULL,
    error        text        NOT NULL,
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    summary      text        NOT NULL
);
CREATE UNIQUE INDEX recon_runs_period_key ON recon_runs (provider, from_at, to_at);
CREATE INDEX recon_runs_created ON recon_runs (created_at);

CREATE TABLE recon_lines (
    run_id   text        NOT NULL REFERENCES recon_runs (id),
    n        bigint  NOT NULL,
    class    text        NOT NULL,
    state    text        NOT NULL,
    note     text        NOT NULL,
    acted_by text        NOT NULL,
    acted_at timestamptz,
    data     text        NOT NULL,
    PRIMARY KEY (run_id, n)
);
CREATE INDEX recon_lines_open ON recon_lines (class, state);
