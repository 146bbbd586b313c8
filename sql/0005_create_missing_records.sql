-- missing_records: one row per run id that received updates (webhooks, results) before or
-- without its RunCreated; resolved_at is set once the run is created. GET /diagnostics/missing-records.
CREATE TABLE missing_records (
    run_id             text        NOT NULL,
    first_seen         timestamptz NOT NULL,
    last_seen          timestamptz NOT NULL,
    first_position     bigint      NOT NULL,
    last_position      bigint      NOT NULL,
    attempts           integer     NOT NULL,
    event_types        text[]      NOT NULL,
    last_delivery      jsonb       NOT NULL,
    resolved_at        timestamptz,
    resolved_position  bigint,
    CONSTRAINT missing_records_pkey PRIMARY KEY (run_id),
    CONSTRAINT missing_records_attempts_check CHECK (attempts >= 1)
);

-- Listed newest first by when the run id was first seen (immutable: a stable keyset cursor).
CREATE UNIQUE INDEX missing_records_first_position_key ON missing_records (first_position DESC);
CREATE INDEX missing_records_unresolved_idx ON missing_records (first_position DESC)
    WHERE resolved_at IS NULL;
