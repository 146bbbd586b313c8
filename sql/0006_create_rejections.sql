-- rejections: every UpdateRejected (stale, invalid_transition, missing_run_record,
-- duplicate_creation) with its run, command and a small summary of what was received.
CREATE TABLE rejections (
    position       bigint      NOT NULL,
    run_id         text        NOT NULL,
    reason         text        NOT NULL,
    command        text        NOT NULL,
    status_before  text,
    message        text        NOT NULL,
    received       jsonb       NOT NULL,
    rejected_at    timestamptz NOT NULL,
    CONSTRAINT rejections_pkey PRIMARY KEY (position)
);

-- GET /diagnostics/rejections?reason=&run_id= lists newest first with a position cursor.
CREATE INDEX rejections_run_position_idx ON rejections (run_id, position DESC);
CREATE INDEX rejections_reason_position_idx ON rejections (reason, position DESC);
