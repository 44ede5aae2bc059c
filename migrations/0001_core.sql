-- People, credentials, browser sessions, the audit log and its companions.
-- Columns follow Agnes's DDL; the large append-only audit_log has no primary key
-- and no secondary index (SPEC §2: keys made bulk inserts 4.5x slower).

CREATE TYPE result_class AS ENUM ('success', 'error', 'denied', 'none', 'other');
CREATE TYPE audit_source AS ENUM ('web', 'cli', 'agent', 'scheduler', 'external', 'system', 'other');

CREATE TABLE users (
    id VARCHAR PRIMARY KEY,
    email VARCHAR UNIQUE NOT NULL,
    name VARCHAR,
    password_hash VARCHAR,
    setup_token VARCHAR,
    setup_token_created TIMESTAMP,
    reset_token VARCHAR,
    reset_token_created TIMESTAMP,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    deactivated_at TIMESTAMP,
    deactivated_by VARCHAR,
    created_at TIMESTAMP DEFAULT current_timestamp,
    updated_at TIMESTAMP,
    onboarded BOOLEAN NOT NULL DEFAULT FALSE,
    last_pull_at TIMESTAMP,
    slack_user_id VARCHAR,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    role VARCHAR NOT NULL DEFAULT 'analyst' CHECK (role IN ('admin', 'analyst', 'service'))
);

-- Only the jti (id) and a hash of the whole token are stored, never the token.
CREATE TABLE personal_access_tokens (
    id VARCHAR PRIMARY KEY,
    user_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL DEFAULT 'pat' CHECK (kind IN ('pat', 'login')),
    token_hash VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    created_by VARCHAR,
    expires_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP,
    revoked_by VARCHAR
);

-- tower-sessions records (a restart keeps people signed in).
CREATE TABLE web_sessions (
    id VARCHAR PRIMARY KEY,
    data VARCHAR NOT NULL,
    expiry_date TIMESTAMP NOT NULL
);

CREATE TABLE audit_log (
    id VARCHAR NOT NULL,
    timestamp TIMESTAMP NOT NULL DEFAULT current_timestamp,
    user_id VARCHAR,
    action VARCHAR NOT NULL,
    resource VARCHAR,
    params JSON,
    result VARCHAR,
    duration_ms INTEGER,
    params_before JSON,
    client_ip VARCHAR,
    client_kind VARCHAR,
    correlation_id VARCHAR,
    -- glassbox additions: producer idempotency id and write-time classifications.
    event_id VARCHAR,
    result_class result_class NOT NULL,
    source audit_source NOT NULL,
    -- The resource up to and including its first ':' (`table:`), for the
    -- resource facet: computing it per row made 30-day facets twice as slow.
    resource_prefix VARCHAR
);

CREATE TABLE sync_history (
    id VARCHAR PRIMARY KEY,
    table_id VARCHAR NOT NULL,
    synced_at TIMESTAMP NOT NULL,
    rows BIGINT,
    duration_ms INTEGER,
    status VARCHAR,
    error TEXT
);

CREATE TABLE user_observability_views (
    id VARCHAR PRIMARY KEY,
    user_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    query_json JSON NOT NULL,
    created_at TIMESTAMP DEFAULT current_timestamp,
    UNIQUE (user_id, name)
);
