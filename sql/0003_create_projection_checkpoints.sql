-- Where each projection has got to in the log, and what its runner last reported.
-- The checkpoint advances in the same transaction as the projection's rows (never ahead, never behind).
CREATE TABLE projection_checkpoints (
    name              text        NOT NULL,
    position          bigint      NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    runner            text,
    last_error        text,
    last_error_at     timestamptz,
    failing_position  bigint,
    CONSTRAINT projection_checkpoints_pkey PRIMARY KEY (name),
    CONSTRAINT projection_checkpoints_position_check CHECK (position >= 0)
);
