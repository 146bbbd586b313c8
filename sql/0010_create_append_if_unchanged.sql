-- The group committer's fast path (eventstore/batching.py): write a batch planned from a read
-- taken *before* the ordering lock, in one round trip, holding the lock only inside the server.
--
-- The caller read the versions of the streams it writes and found none of the event ids; it
-- planned each row's version from that. Under the lock, each statement below takes a fresh
-- snapshot (READ COMMITTED, volatile function), so the check sees every batch committed before
-- the lock was granted. When a stream has moved on or an id has been stored meanwhile, nothing
-- is written and no row is returned: the caller plans again under the lock (the slow path).
-- Otherwise the plan is exactly the one the slow path would make, and the rows are inserted.
-- The lock is released at the commit that ends the caller's statement, so positions are still
-- taken by one transaction at a time and become visible in that order.
CREATE FUNCTION eventstore_append_if_unchanged(
    p_lock_key   bigint,
    p_channel    text,
    p_streams    text[],
    p_bases      integer[],
    p_stream_ids text[],
    p_versions   integer[],
    p_event_ids  uuid[],
    p_types      text[],
    p_data       jsonb[],
    p_metadata   jsonb[]
) RETURNS TABLE (event_id uuid, event_position bigint)
LANGUAGE plpgsql
-- PL/pgSQL keeps a generic plan per session; one made while `events` was small is a sequential
-- scan for the id check forever after (seen: 8 ms a call, under the lock, at 30k events).
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock_key);
    IF EXISTS (
        SELECT 1
          FROM unnest(p_streams, p_bases) AS s(stream_id, base)
         WHERE coalesce((SELECT max(e.version) FROM events AS e
                          WHERE e.stream_id = s.stream_id), 0) <> s.base
    ) OR EXISTS (SELECT 1 FROM events AS e WHERE e.event_id = ANY(p_event_ids)) THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH inserted AS (
        INSERT INTO events (stream_id, version, event_id, event_type, data, metadata)
        SELECT * FROM unnest(p_stream_ids, p_versions, p_event_ids, p_types, p_data, p_metadata)
        RETURNING events.position, events.event_id
    ), notified AS (
        SELECT pg_notify(p_channel, max(inserted.position)::text) FROM inserted
    )
    SELECT inserted.event_id, inserted.position FROM inserted, notified;
END;
$$;
