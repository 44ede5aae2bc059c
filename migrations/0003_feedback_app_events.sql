-- Feedback inbox (seeds/004 §5.7), the usage-monitoring API's events (SPEC §9)
-- and the hourly audit rollup that keeps 30-day KPIs and facets cheap.

CREATE TABLE feedback_reports (
    id VARCHAR PRIMARY KEY,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    reporter_user VARCHAR,
    message TEXT NOT NULL,
    session_excerpt TEXT,
    session_file VARCHAR,
    environment JSON,
    fingerprint VARCHAR,
    status VARCHAR NOT NULL DEFAULT 'open',
    assignee VARCHAR,
    tags JSON,
    resolution TEXT,
    resolved_at TIMESTAMP,
    resolved_by VARCHAR
);

CREATE TABLE app_events (
    id VARCHAR NOT NULL,
    user_id VARCHAR,
    event_type VARCHAR NOT NULL,
    metadata JSON,
    source VARCHAR,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE audit_hourly (
    hour TIMESTAMP NOT NULL,
    user_id VARCHAR,
    action VARCHAR NOT NULL,
    result_class result_class NOT NULL,
    source audit_source NOT NULL,
    events BIGINT NOT NULL,
    with_duration BIGINT NOT NULL
);

-- Telegram chat linked to an admin for feedback notifications.
ALTER TABLE users ADD COLUMN telegram_chat_id VARCHAR;
