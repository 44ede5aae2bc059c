-- Distinct sessions for the Telemetry group-bys without a DISTINCT over a
-- million (tool, session) pairs a week (SPEC §10: every fragment < 50 ms on
-- 7 days). src/repo/telemetry/rollup.rs keeps these exact, like 0006's.
--
-- Almost every session lies within one UTC day and belongs to one person.
-- Such a session is counted once in every bucket it touches, so its buckets
-- can be counted ahead: usage_session_counts holds, per day, bucket column
-- (dim) and value, how many such sessions had the same 24-bit mask of
-- active hours (so a window starting at 14:00 still counts exactly those
-- active from 14:00 on). The few sessions that span days or people keep
-- their usage_event_sessions_daily rows in usage_sessions_spanning, a small
-- table that is counted with a DISTINCT, as before.

CREATE TABLE usage_sessions_spanning (
    day DATE NOT NULL,
    session_key UBIGINT NOT NULL,
    username VARCHAR NOT NULL,
    tool_name VARCHAR,
    source VARCHAR NOT NULL,
    event_type VARCHAR NOT NULL,
    model VARCHAR,
    ref_id VARCHAR,
    is_error BOOLEAN,
    hours INTEGER NOT NULL
);

-- dim is the usage_events column (username, tool_name, source, ref_id,
-- model); value keeps its NULL (the group-by's NULL bucket).
CREATE TABLE usage_session_counts (
    day DATE NOT NULL,
    dim VARCHAR NOT NULL,
    value VARCHAR,
    hours INTEGER NOT NULL,
    sessions BIGINT NOT NULL
);

-- Events per day and session, for the group-by by session: hours[h + 1] =
-- the session's events of UTC hour h that day; split by is_error so the
-- errors of a part-day are exact too.
CREATE TABLE usage_sessions_daily (
    day DATE NOT NULL,
    session_id VARCHAR NOT NULL,
    username VARCHAR NOT NULL,
    is_error BOOLEAN,
    events BIGINT NOT NULL,
    hours BIGINT[] NOT NULL
);

INSERT INTO usage_sessions_spanning
SELECT * FROM usage_event_sessions_daily
WHERE session_key IN (SELECT session_key FROM usage_event_sessions_daily
                      GROUP BY session_key HAVING count(DISTINCT (day, username)) > 1);

INSERT INTO usage_session_counts
SELECT day, dim, value, hours, count(*)::BIGINT
FROM (
    SELECT day, dim, value, session_key, bit_or(hours) AS hours
    FROM (
        SELECT day, session_key, hours,
               unnest(['username', 'tool_name', 'source', 'ref_id', 'model']) AS dim,
               unnest([username, tool_name, source, ref_id, model]) AS value
        FROM usage_event_sessions_daily
        WHERE session_key NOT IN (SELECT session_key FROM usage_sessions_spanning)
    )
    GROUP BY ALL
)
GROUP BY ALL ORDER BY day, dim;

INSERT INTO usage_sessions_daily
SELECT CAST(occurred_at AS DATE) AS day, session_id, username, is_error, count(*)::BIGINT,
       list_transform(range(24), h -> coalesce(histogram(hour(occurred_at))[h], 0))::BIGINT[]
FROM usage_events GROUP BY ALL ORDER BY day;
