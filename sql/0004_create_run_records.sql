-- run_records: one row per created run, its current record as the state machine folds it.
-- Served by GET /runs and GET /runs/{run_id}; rebuilt from the log by `projections rebuild`.
CREATE TABLE run_records (
    run_id           text        NOT NULL,
    client_id        text        NOT NULL,
    actor_id         text,
    task_id          text,
    requested_by     text,
    input            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status           text        NOT NULL,
    apify_status     text,
    status_message   text,
    created_at       timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    duration_s       double precision,
    dataset_id       text,
    usage_usd        double precision,
    resurrect_count  integer     NOT NULL DEFAULT 0,
    metrics          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    event_count      integer     NOT NULL,
    version          integer     NOT NULL,
    last_position    bigint      NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT run_records_pkey PRIMARY KEY (run_id)
);

-- GET /runs?client_id=&status= lists newest first with a (created_at, run_id) cursor.
CREATE INDEX run_records_client_created_idx ON run_records (client_id, created_at DESC, run_id DESC);
CREATE INDEX run_records_created_idx ON run_records (created_at DESC, run_id DESC);
CREATE INDEX run_records_status_created_idx ON run_records (status, created_at DESC, run_id DESC);
