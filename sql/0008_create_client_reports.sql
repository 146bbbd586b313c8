-- client_reports: per client and per day (the run's creation day, UTC), the runs by current
-- status, durations (sum, count and a log histogram for p95), metric and cost totals, last run.
CREATE TABLE client_reports (
    client_id       text             NOT NULL,
    day             date             NOT NULL,
    runs            integer          NOT NULL DEFAULT 0,
    status_counts   jsonb            NOT NULL DEFAULT '{}'::jsonb,
    duration_count  integer          NOT NULL DEFAULT 0,
    duration_sum    double precision NOT NULL DEFAULT 0,
    duration_hist   integer[]        NOT NULL,
    metrics         jsonb            NOT NULL DEFAULT '{}'::jsonb,
    usage_usd       double precision NOT NULL DEFAULT 0,
    last_run_at     timestamptz,
    last_run_id     text,
    CONSTRAINT client_reports_pkey PRIMARY KEY (client_id, day)
);

CREATE INDEX client_reports_day_idx ON client_reports (day, client_id);
