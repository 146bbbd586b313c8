-- dead_letters: the authenticated deliveries that could not be understood, kept whole with why
-- (the body as JSON, or as base64 when jsonb cannot hold it). GET /diagnostics/dead-letters.
CREATE TABLE dead_letters (
    position      bigint      NOT NULL,
    event_id      uuid        NOT NULL,
    received_at   timestamptz NOT NULL,
    reason        text        NOT NULL,
    message       text        NOT NULL,
    details       jsonb,
    headers       jsonb       NOT NULL,
    body          jsonb,
    body_base64   text,
    body_preview  text,
    CONSTRAINT dead_letters_pkey PRIMARY KEY (position)
);

CREATE INDEX dead_letters_reason_position_idx ON dead_letters (reason, position DESC);
