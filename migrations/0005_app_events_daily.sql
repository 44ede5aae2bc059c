-- Daily counts of the usage API's events by type and user, kept by the
-- intake writer in the same transaction as the rows, so the 30-day summary
-- reads a few thousand rows instead of scanning tens of millions (SPEC §10).
-- user_id '' stands for events without a user.

CREATE TABLE app_events_daily (
    day DATE NOT NULL,
    event_type VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    events BIGINT NOT NULL,
    last_at TIMESTAMP NOT NULL,
    PRIMARY KEY (day, event_type, user_id)
);

INSERT INTO app_events_daily
SELECT created_at::DATE, event_type, coalesce(user_id, ''), count(*), max(created_at)
FROM app_events GROUP BY ALL;
