-- Daily rollups of usage_events for the Telemetry page's wide windows (SPEC
-- §10: 50 M events over 30 days, every fragment < 50 ms on 7 days). They
-- mirror usage_events exactly (src/repo/telemetry/rollup.rs keeps them so:
-- ingest's rebuild re-counts touched days, prune and reprocess follow the
-- rows they delete, synth counts what it wrote) and carry per-hour detail,
-- so a window that starts or ends inside a day still reads whole hours from
-- them and only the minutes before the first whole hour from usage_events.
--
-- Columns keep usage_events' NULLs: the group-by's NULL bucket (slash
-- commands have no tool_name) must stay distinct from any real value.

-- Events per day and per combination of the page's filter and group-by
-- columns; hours[h + 1] = the events of UTC hour h of that day.
CREATE TABLE usage_events_daily (
    day DATE NOT NULL,
    username VARCHAR NOT NULL,
    tool_name VARCHAR,
    source VARCHAR NOT NULL,
    event_type VARCHAR NOT NULL,
    model VARCHAR,
    ref_id VARCHAR,
    is_error BOOLEAN,
    events BIGINT NOT NULL,
    hours BIGINT[] NOT NULL
);

-- The sessions behind each combination, for the group-by's distinct-session
-- counts. session_key = md5_number_lower(session_id): a 64-bit key hashes
-- and counts several times faster than the 32-character id; two sessions
-- share a key with probability ~n^2/2^65. Bit h of hours = the session had
-- such an event in UTC hour h.
CREATE TABLE usage_event_sessions_daily (
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

INSERT INTO usage_events_daily
SELECT CAST(occurred_at AS DATE) AS day, username, tool_name, source, event_type, model, ref_id, is_error,
       count(*), list_transform(range(24), h -> coalesce(histogram(hour(occurred_at))[h], 0))
FROM usage_events GROUP BY ALL ORDER BY day;

INSERT INTO usage_event_sessions_daily
SELECT CAST(occurred_at AS DATE) AS day, md5_number_lower(session_id), username, tool_name, source,
       event_type, model, ref_id, is_error, bit_or(1 << hour(occurred_at))
FROM usage_events GROUP BY ALL ORDER BY day;
