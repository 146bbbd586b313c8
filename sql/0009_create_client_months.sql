-- client_months: client_reports rolled up per client and calendar month (month = its first day),
-- kept by the run_records projection in the same batch, so /reports/clients sums months, not days.
CREATE TABLE client_months (
    client_id       text             NOT NULL,
    month           date             NOT NULL,
    runs            integer          NOT NULL DEFAULT 0,
    status_counts   jsonb            NOT NULL DEFAULT '{}'::jsonb,
    duration_count  integer          NOT NULL DEFAULT 0,
    duration_sum    double precision NOT NULL DEFAULT 0,
    duration_hist   integer[]        NOT NULL,
    metrics         jsonb            NOT NULL DEFAULT '{}'::jsonb,
    usage_usd       double precision NOT NULL DEFAULT 0,
    last_run_at     timestamptz,
    last_run_id     text,
    CONSTRAINT client_months_pkey PRIMARY KEY (client_id, month),
    CONSTRAINT client_months_month_check CHECK (month = date_trunc('month', month)::date)
);

-- What the projection has already counted per day, summed per month, so that the runner can go
-- on adding deltas from its checkpoint (the same sums a rebuild arrives at).
INSERT INTO client_months (client_id, month, runs, status_counts, duration_count, duration_sum,
                           duration_hist, metrics, usage_usd, last_run_at, last_run_id)
SELECT d.client_id, d.month, d.runs, coalesce(s.counts, '{}'::jsonb), d.duration_count,
       d.duration_sum, h.hist, coalesce(m.sums, '{}'::jsonb), d.usage_usd,
       l.last_run_at, l.last_run_id
  FROM (SELECT client_id, date_trunc('month', day)::date AS month, sum(runs)::int AS runs,
               sum(duration_count)::int AS duration_count, sum(duration_sum) AS duration_sum,
               sum(usage_usd) AS usage_usd
          FROM client_reports GROUP BY 1, 2) AS d
 CROSS JOIN LATERAL (
       SELECT jsonb_object_agg(key, total) AS counts FROM (
           SELECT e.key, sum(e.value::int) AS total
             FROM client_reports r, jsonb_each_text(r.status_counts) AS e
            WHERE r.client_id = d.client_id AND date_trunc('month', r.day)::date = d.month
            GROUP BY e.key HAVING sum(e.value::int) <> 0) AS t) AS s
 CROSS JOIN LATERAL (
       SELECT array_agg(total ORDER BY bucket) AS hist FROM (
           SELECT b.bucket, sum(b.n)::int AS total
             FROM client_reports r, unnest(r.duration_hist) WITH ORDINALITY AS b(n, bucket)
            WHERE r.client_id = d.client_id AND date_trunc('month', r.day)::date = d.month
            GROUP BY b.bucket) AS t) AS h
 CROSS JOIN LATERAL (
       SELECT jsonb_object_agg(key, total) AS sums FROM (
           SELECT e.key, sum(e.value::float8) AS total
             FROM client_reports r, jsonb_each_text(r.metrics) AS e
            WHERE r.client_id = d.client_id AND date_trunc('month', r.day)::date = d.month
            GROUP BY e.key HAVING sum(e.value::float8) <> 0) AS t) AS m
  LEFT JOIN LATERAL (
       SELECT r.last_run_at, r.last_run_id
         FROM client_reports r
        WHERE r.client_id = d.client_id AND date_trunc('month', r.day)::date = d.month
          AND r.last_run_at IS NOT NULL
        ORDER BY r.last_run_at DESC, r.last_run_id DESC
        LIMIT 1) AS l ON true;
