-- Session ingestion: tool events, API responses, per-session summaries, rollups,
-- processor state, upload times and failure findings. The large tables
-- (usage_events, usage_responses) have no keys: a transcript's rows are replaced
-- by deleting on session_file and appending, in one transaction.

CREATE TABLE usage_events (
    id VARCHAR NOT NULL,
    session_id VARCHAR NOT NULL,
    session_file VARCHAR NOT NULL,
    username VARCHAR NOT NULL,
    event_uuid VARCHAR,
    parent_uuid VARCHAR,
    event_type VARCHAR NOT NULL,
    tool_name VARCHAR,
    skill_name VARCHAR,
    subagent_type VARCHAR,
    command_name VARCHAR,
    is_error BOOLEAN DEFAULT FALSE,
    source VARCHAR NOT NULL,
    ref_id VARCHAR,
    model VARCHAR,
    cwd VARCHAR,
    occurred_at TIMESTAMP NOT NULL,
    processor_version INTEGER NOT NULL,
    extracted_at TIMESTAMP DEFAULT current_timestamp,
    friction_tags JSON,
    user_id VARCHAR
);

-- One row per assistant API response found in a file (a response repeated in
-- two files has two rows; counted stays true only on the winning copy).
CREATE TABLE usage_responses (
    username VARCHAR NOT NULL,
    user_id VARCHAR,
    session_file VARCHAR NOT NULL,
    message_id VARCHAR NOT NULL,
    request_id VARCHAR NOT NULL,
    first_ts TIMESTAMP NOT NULL,
    model VARCHAR NOT NULL,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cache_creation_tokens BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens BIGINT NOT NULL DEFAULT 0,
    cache_creation_5m_tokens BIGINT NOT NULL DEFAULT 0,
    cache_creation_1h_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE NOT NULL DEFAULT 0,
    is_sidechain BOOLEAN NOT NULL DEFAULT FALSE,
    counted BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE usage_session_summary (
    session_file VARCHAR PRIMARY KEY,
    session_id VARCHAR NOT NULL,
    username VARCHAR NOT NULL,
    started_at TIMESTAMP,
    ended_at TIMESTAMP,
    active_seconds DOUBLE,
    wall_seconds DOUBLE,
    user_messages INTEGER DEFAULT 0,
    assistant_messages INTEGER DEFAULT 0,
    tool_calls INTEGER DEFAULT 0,
    tool_errors INTEGER DEFAULT 0,
    skill_invocations INTEGER DEFAULT 0,
    subagent_dispatches INTEGER DEFAULT 0,
    mcp_calls INTEGER DEFAULT 0,
    slash_commands INTEGER DEFAULT 0,
    distinct_tools INTEGER DEFAULT 0,
    distinct_skills INTEGER DEFAULT 0,
    primary_model VARCHAR,
    processor_version INTEGER NOT NULL,
    extracted_at TIMESTAMP DEFAULT current_timestamp,
    uploaded_at TIMESTAMP,
    input_tokens BIGINT DEFAULT 0,
    output_tokens BIGINT DEFAULT 0,
    cache_read_tokens BIGINT DEFAULT 0,
    cache_creation_tokens BIGINT DEFAULT 0,
    user_id VARCHAR,
    cost_usd DOUBLE DEFAULT 0,
    malformed_lines INTEGER DEFAULT 0,
    lines INTEGER DEFAULT 0,
    bytes BIGINT DEFAULT 0
);

-- The rollups are rebuilt by delete + insert for the touched days or users, so
-- they carry no key (deleting and re-inserting one ART key in a transaction is
-- what broke Agnes on DuckDB 1.5.4).
CREATE TABLE usage_tool_daily (
    day DATE NOT NULL,
    tool_name VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    invocations INTEGER DEFAULT 0,
    error_count INTEGER DEFAULT 0,
    distinct_users INTEGER DEFAULT 0,
    distinct_sessions INTEGER DEFAULT 0
);

CREATE TABLE usage_tokens_daily (
    day DATE NOT NULL,
    username VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cache_creation_tokens BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE NOT NULL DEFAULT 0
);

CREATE TABLE session_processor_state (
    processor_name VARCHAR NOT NULL,
    session_file VARCHAR NOT NULL,
    username VARCHAR NOT NULL,
    processed_at TIMESTAMP DEFAULT current_timestamp,
    items_extracted INTEGER DEFAULT 0,
    file_hash VARCHAR,
    file_size BIGINT,
    file_mtime_ns BIGINT,
    processor_version INTEGER,
    PRIMARY KEY (processor_name, session_file)
);

-- Survives reprocess: when a transcript first and last arrived.
CREATE TABLE session_uploads (
    session_file VARCHAR PRIMARY KEY,
    user_id VARCHAR,
    first_uploaded_at TIMESTAMP NOT NULL,
    last_uploaded_at TIMESTAMP NOT NULL,
    bytes BIGINT NOT NULL
);

-- No key: a file's findings are replaced by delete + append like its events.
CREATE TABLE session_findings (
    id VARCHAR NOT NULL,
    session_file VARCHAR NOT NULL,
    username VARCHAR NOT NULL,
    finding_type VARCHAR NOT NULL CHECK (finding_type IN ('tool_error', 'permission_denied', 'user_rejection', 'loop', 'abrupt_end')),
    turn_index INTEGER,
    severity VARCHAR NOT NULL DEFAULT 'info',
    excerpt TEXT,
    detected_at TIMESTAMP DEFAULT current_timestamp
);

-- Rollup work owed by files already written: written in the same transaction as
-- a file's rows and consumed by the rebuild, so a crash between the two loses
-- nothing (the next run rebuilds).
CREATE TABLE ingest_pending (
    kind VARCHAR NOT NULL CHECK (kind IN ('user', 'day')),
    key VARCHAR NOT NULL
);

-- Staging for batched upserts: ingest appends a batch's summaries and state
-- rows here and upserts them with one INSERT … SELECT … ON CONFLICT inside the
-- same transaction (row-by-row upserts cost milliseconds each). Always empty
-- outside a write transaction.
CREATE TABLE ingest_stage_summary AS SELECT * FROM usage_session_summary LIMIT 0;
CREATE TABLE ingest_stage_state AS SELECT * FROM session_processor_state LIMIT 0;
