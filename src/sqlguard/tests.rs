//! The guard's two tables: hostile statements that must be refused (with the
//! reason they are refused for, where one reason is expected) and legitimate
//! analytic queries that must pass. No database is involved: refusal happens
//! before DuckDB sees anything. `repo::query_source` runs the legitimate ones
//! on a real database, so "passes the guard" also means "runs".

use super::*;

/// The relations Ask may read (SPEC §5).
pub(crate) const TELEMETRY: &[&str] = &[
    "usage_events",
    "usage_responses",
    "usage_session_summary",
    "usage_tool_daily",
    "usage_tokens_daily",
    "session_findings",
];

/// The relations of the internal data source (SPEC §8).
pub(crate) const AGNES: &[&str] = &["agnes_sessions", "agnes_telemetry", "agnes_audit"];

/// (SQL, a fragment the reason must contain; "" = any reason). Checked against
/// the telemetry allowlist.
const HOSTILE: &[(&str, &str)] = &[
    // Stacked statements and newline batches.
    ("SELECT 1; SELECT 2", "exactly one statement"),
    ("SELECT * FROM usage_events; DROP TABLE usage_events", "exactly one statement"),
    ("SELECT 1;\nDELETE FROM usage_events", "exactly one statement"),
    ("SELECT 1\n;\nINSERT INTO usage_events SELECT * FROM usage_events", "exactly one statement"),
    ("SELECT 1 /* ; */ ; DROP TABLE users", "exactly one statement"),
    ("SELECT 1; -- only a comment\nATTACH '/tmp/x.duckdb'", ""),
    // Statements that are not queries.
    ("DROP TABLE usage_events", "only a query"),
    ("DELETE FROM usage_events", "only a query"),
    ("/* SELECT */ DELETE FROM usage_events", "only a query"),
    ("UPDATE usage_events SET is_error = true", "only a query"),
    ("INSERT INTO usage_events SELECT * FROM usage_events", "only a query"),
    ("INSERT INTO audit_log (id) VALUES ('x')", "only a query"),
    ("CREATE TABLE x AS SELECT * FROM usage_events", "only a query"),
    ("CREATE VIEW v AS SELECT 1", "only a query"),
    ("CREATE MACRO m(x) AS x", ""),
    ("ALTER TABLE usage_events ADD COLUMN x INTEGER", "only a query"),
    ("TRUNCATE usage_events", "only a query"),
    ("COPY usage_events TO '/tmp/x.csv'", ""),
    ("COPY (SELECT * FROM usage_events) TO '/tmp/x.parquet' (FORMAT parquet)", ""),
    ("COPY usage_events FROM '/etc/passwd'", ""),
    ("ATTACH '/tmp/other.duckdb' AS other", ""),
    ("ATTACH ':memory:' AS m", ""),
    ("DETACH other", ""),
    ("PRAGMA database_list", ""),
    ("PRAGMA table_info('audit_log')", ""),
    ("SET enable_external_access = true", ""),
    ("SET GLOBAL lock_configuration = false", ""),
    ("RESET ALL", ""),
    ("INSTALL httpfs", ""),
    ("LOAD httpfs", ""),
    ("EXPORT DATABASE '/tmp/dump'", ""),
    ("IMPORT DATABASE '/tmp/dump'", ""),
    ("CHECKPOINT", ""),
    ("VACUUM", ""),
    ("CALL pragma_version()", ""),
    ("CALL duckdb_settings()", ""),
    ("EXPLAIN SELECT * FROM usage_events", ""),
    ("EXPLAIN ANALYZE SELECT * FROM usage_events", ""),
    ("BEGIN TRANSACTION", ""),
    ("USE memory", ""),
    ("DESCRIBE usage_events", ""),
    ("SHOW TABLES", ""),
    ("SUMMARIZE usage_events", ""),
    ("PREPARE p AS SELECT 1", ""),
    // Writable CTEs and SELECT INTO.
    ("WITH x AS (DELETE FROM usage_events RETURNING *) SELECT * FROM x", ""),
    ("WITH x AS (INSERT INTO audit_log SELECT * FROM audit_log RETURNING id) SELECT * FROM x", ""),
    ("WITH x AS (UPDATE usage_events SET is_error = false RETURNING *) SELECT count(*) FROM x", ""),
    ("SELECT * INTO stolen FROM usage_events", ""),
    // Table functions, file readers, string-literal relations.
    ("SELECT * FROM read_csv('/etc/passwd')", "table functions"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "table functions"),
    ("SELECT * FROM read_text('/etc/passwd')", "table functions"),
    ("SELECT * FROM read_blob('/etc/passwd')", "table functions"),
    ("SELECT * FROM read_parquet('/tmp/x.parquet')", "table functions"),
    ("SELECT * FROM read_json('/tmp/x.json')", "table functions"),
    ("SELECT * FROM read_json_auto('/tmp/x.json')", "table functions"),
    ("SELECT * FROM parquet_scan('x.parquet')", "table functions"),
    ("SELECT * FROM glob('/**')", "table functions"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "table functions"),
    ("SELECT * FROM 'data.csv'", ""),
    ("SELECT * FROM '/etc/passwd'", ""),
    ("SELECT * FROM \"data.csv\"", "not allowed"),
    ("SELECT * FROM duckdb_tables()", "table functions"),
    ("SELECT * FROM duckdb_settings()", "table functions"),
    ("SELECT * FROM duckdb_secrets()", "table functions"),
    ("SELECT * FROM duckdb_functions()", "table functions"),
    ("SELECT * FROM pragma_table_info('audit_log')", "table functions"),
    ("SELECT * FROM pragma_database_list", "not allowed"),
    ("SELECT * FROM duckdb_tables", "not allowed"),
    ("SELECT * FROM information_schema.tables", "without a schema"),
    ("SELECT * FROM information_schema.columns", "without a schema"),
    ("SELECT * FROM pg_catalog.pg_tables", "without a schema"),
    ("SELECT * FROM sqlite_master", "not allowed"),
    ("SELECT * FROM range(1000000000)", "table functions"),
    ("SELECT * FROM generate_series(1, 10)", "table functions"),
    ("SELECT * FROM query('SELECT * FROM audit_log')", "table functions"),
    ("SELECT * FROM query_table('audit_log')", "table functions"),
    ("SELECT * FROM unnest([1, 2, 3])", ""),
    ("SELECT * FROM usage_events, read_csv('/etc/passwd')", "table functions"),
    ("SELECT * FROM usage_events JOIN read_text('/etc/passwd') ON true", "table functions"),
    ("SELECT * FROM usage_events WHERE id IN (SELECT content FROM read_text('/etc/passwd'))", "table functions"),
    ("SELECT (SELECT content FROM read_text('/etc/passwd'))", "table functions"),
    ("SELECT * FROM usage_events WHERE EXISTS (SELECT 1 FROM glob('/*'))", "table functions"),
    ("SELECT * FROM usage_events, LATERAL (SELECT * FROM read_csv('/etc/passwd'))", "table functions"),
    ("SELECT * FROM usage_events UNION ALL SELECT * FROM read_csv('/etc/passwd')", "table functions"),
    ("WITH f AS (SELECT * FROM read_text('/etc/passwd')) SELECT * FROM f", "table functions"),
    // Functions off the allowlist, however they are written.
    ("SELECT current_setting('memory_limit')", "allowlist"),
    ("SELECT getenv('HOME')", "allowlist"),
    ("SELECT getvariable('x')", "allowlist"),
    ("SELECT json_execute_serialized_sql('x')", "allowlist"),
    ("SELECT read_text('/etc/passwd')", "allowlist"),
    ("SELECT nextval('seq')", "allowlist"),
    ("SELECT setseed(0.5)", "allowlist"),
    ("SELECT version()", "allowlist"),
    ("SELECT pg_sleep(100)", "allowlist"),
    ("SELECT count(*) FROM usage_events WHERE tool_name = http_get('http://x')", "allowlist"),
    ("SELECT system('ls')", "allowlist"),
    ("SELECT main.sum(1)", "plain name"),
    ("SELECT \"read_text\"('/etc/passwd')", "allowlist"),
    ("SELECT READ_TEXT('/etc/passwd')", "allowlist"),
    ("SELECT sum(x) FROM (SELECT duckdb_secrets() AS x)", "allowlist"),
    // Other tables, qualified and quoted names.
    ("SELECT * FROM audit_log", "not allowed"),
    ("SELECT * FROM users", "not allowed"),
    ("SELECT * FROM personal_access_tokens", "not allowed"),
    ("SELECT * FROM main.usage_events", "without a schema"),
    ("SELECT * FROM memory.main.usage_events", "without a schema"),
    ("SELECT * FROM system.main.duckdb_tables", "without a schema"),
    ("SELECT * FROM temp.main.x", "without a schema"),
    ("SELECT * FROM \"main\".\"usage_events\"", "without a schema"),
    ("SELECT * FROM \"users\"", "not allowed"),
    ("SELECT * FROM USERS", "not allowed"),
    ("SELECT * FROM \"us\"\"ers\"", "not allowed"),
    ("SELECT * FROM usage_events JOIN users ON users.id = usage_events.user_id", "not allowed"),
    ("SELECT * FROM usage_events WHERE user_id IN (SELECT id FROM users)", "not allowed"),
    ("SELECT (SELECT password_hash FROM users LIMIT 1)", "not allowed"),
    ("SELECT * FROM usage_events WHERE username = ANY (SELECT email FROM users)", ""),
    ("SELECT ARRAY(SELECT email FROM users)", ""),
    ("SELECT * FROM (usage_events JOIN users USING (user_id))", "not allowed"),
    ("SELECT * FROM usage_events e, LATERAL (SELECT * FROM users WHERE id = e.user_id)", "not allowed"),
    ("SELECT * FROM usage_events, (SELECT * FROM users) AS x", "not allowed"),
    ("SELECT tool_name FROM usage_events INTERSECT SELECT email FROM users", "not allowed"),
    ("SELECT tool_name FROM usage_events EXCEPT (SELECT email FROM users)", "not allowed"),
    ("SELECT 1 UNION SELECT 2 UNION SELECT count(*) FROM users", "not allowed"),
    ("SELECT list_transform([1], x -> (SELECT count(*) FROM users))", "not allowed"),
    ("SELECT sum(1) OVER (PARTITION BY (SELECT max(id) FROM users)) FROM usage_events", "not allowed"),
    ("SELECT * FROM usage_events ORDER BY (SELECT count(*) FROM users)", "not allowed"),
    ("SELECT tool_name FROM usage_events GROUP BY ALL HAVING count(*) > (SELECT count(*) FROM users)", "not allowed"),
    ("SELECT * FROM usage_events QUALIFY row_number() OVER () < (SELECT count(*) FROM users)", "not allowed"),
    ("SELECT * FROM usage_events LIMIT (SELECT count(*) FROM users)", "not allowed"),
    ("SELECT count(*) FILTER (WHERE id IN (SELECT id FROM users)) FROM usage_events", "not allowed"),
    ("SELECT CASE WHEN true THEN (SELECT 1 FROM users) END", "not allowed"),
    ("TABLE users", ""),
    // CTE scope: a CTE hides a name only after its definition, and only inside its query.
    ("WITH u AS (SELECT * FROM users) SELECT * FROM u", "not allowed"),
    ("WITH a AS (SELECT * FROM users), users AS (SELECT 1) SELECT * FROM a", "not allowed"),
    ("WITH users AS (SELECT * FROM users) SELECT * FROM users", "not allowed"),
    ("SELECT * FROM (WITH users AS (SELECT 1) SELECT 1) AS x, users", "not allowed"),
    ("SELECT (WITH users AS (SELECT 1) SELECT 1), (SELECT count(*) FROM users)", "not allowed"),
    // Comments and quotes hiding names.
    ("SELECT * FROM/**/users", "not allowed"),
    ("SELECT * FROM usage_events --\n UNION SELECT * FROM users", "not allowed"),
    ("SELECT * FROM usage_events /* nested /* comment */ */ , users", "not allowed"),
    ("SELECT '/*' AS a FROM users -- */ usage_events", "not allowed"),
    ("SELECT $$ ; $$ AS a FROM users", "not allowed"),
    // Unicode look-alikes.
    ("SELECT * FROM us\u{0430}ge_events", "not allowed"),
    ("SELECT r\u{0435}ad_text('/etc/passwd')", "allowlist"),
    ("SELECT * FROM \"usage_events\u{200b}\"", "not allowed"),
    ("SELECT * FROM \u{ff55}\u{ff53}\u{ff45}\u{ff52}\u{ff53}", ""),
    ("SELECT * FROM \"usage_\u{212a}vents\"", "not allowed"),
    // Endless recursion.
    ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t", "RECURSIVE"),
    ("WITH RECURSIVE t AS (SELECT 1 AS n UNION ALL SELECT n FROM t) SELECT * FROM t", "RECURSIVE"),
    // Other dialects' clauses.
    ("SELECT * FROM usage_events FOR UPDATE", ""),
    ("SELECT TOP 5 * FROM usage_events", ""),
    // Nothing at all.
    ("", "empty"),
    ("   \n ", "empty"),
    (";", ""),
    ("-- just a comment", ""),
];

/// Legitimate analytic questions over the telemetry tables.
pub(crate) const LEGIT: &[&str] = &[
    "SELECT tool_name, count(*) AS n FROM usage_events GROUP BY tool_name ORDER BY n DESC LIMIT 10",
    "SELECT username, count(*) FILTER (WHERE is_error) AS errors, count(*) AS calls FROM usage_events GROUP BY username",
    "SELECT date_trunc('day', occurred_at) AS day, count(*) FROM usage_events WHERE occurred_at >= now() - INTERVAL 7 DAY GROUP BY 1 ORDER BY 1",
    "SELECT CAST(occurred_at AS DATE) AS d, count(DISTINCT session_id) FROM usage_events GROUP BY ALL ORDER BY d",
    "WITH per_user AS (SELECT username, count(*) AS n FROM usage_events GROUP BY username) SELECT * FROM per_user WHERE n > 10",
    "WITH a AS (SELECT * FROM usage_tool_daily), b AS (SELECT tool_name, sum(invocations) AS total FROM a GROUP BY tool_name) SELECT * FROM b ORDER BY total DESC",
    "SELECT username, tool_name, count(*) AS n, rank() OVER (PARTITION BY username ORDER BY count(*) DESC) AS r FROM usage_events GROUP BY username, tool_name QUALIFY r <= 3",
    "SELECT session_file, started_at, lag(started_at) OVER (PARTITION BY username ORDER BY started_at) AS prev FROM usage_session_summary",
    "SELECT day, sum(cost_usd) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS cost_7d FROM usage_tokens_daily",
    "SELECT model, sum(input_tokens + output_tokens) AS tokens, round(sum(cost_usd), 2) AS cost FROM usage_responses WHERE counted GROUP BY model",
    "SELECT CASE WHEN tool_errors = 0 THEN 'clean' WHEN tool_errors < 5 THEN 'some' ELSE 'many' END AS bucket, count(*) FROM usage_session_summary GROUP BY 1",
    "SELECT finding_type, severity, count(*) FROM session_findings GROUP BY ROLLUP (finding_type, severity)",
    "SELECT extract(hour FROM occurred_at) AS h, count(*) FROM usage_events GROUP BY h ORDER BY h",
    "SELECT strftime(occurred_at, '%Y-%m') AS month, count(*) FROM usage_events GROUP BY month",
    "SELECT dayname(started_at) AS weekday, avg(active_seconds) FROM usage_session_summary GROUP BY weekday",
    "SELECT username FROM usage_session_summary WHERE session_file IN (SELECT session_file FROM session_findings WHERE finding_type = 'loop')",
    "SELECT * FROM usage_session_summary s WHERE EXISTS (SELECT 1 FROM session_findings f WHERE f.session_file = s.session_file)",
    "SELECT s.username, (SELECT count(*) FROM session_findings f WHERE f.username = s.username) AS findings FROM usage_session_summary s",
    "SELECT e.tool_name, s.primary_model FROM usage_events e JOIN usage_session_summary s ON s.session_file = e.session_file LIMIT 50",
    "SELECT e.tool_name FROM usage_events e LEFT JOIN session_findings f USING (session_file) WHERE f.id IS NULL",
    "SELECT tool_name FROM usage_events UNION SELECT tool_name FROM usage_tool_daily",
    "SELECT username FROM usage_events EXCEPT SELECT username FROM usage_responses",
    "SELECT quantile_cont(active_seconds, 0.95) AS p95, median(active_seconds) AS p50 FROM usage_session_summary",
    "SELECT coalesce(skill_name, subagent_type, command_name, tool_name) AS what, count(*) FROM usage_events GROUP BY 1",
    "SELECT username, string_agg(DISTINCT model, ', ') AS models FROM usage_responses GROUP BY username",
    "SELECT date_diff('minute', started_at, ended_at) AS minutes FROM usage_session_summary WHERE started_at IS NOT NULL",
    "SELECT tool_name, count(*) FROM usage_events WHERE tool_name ILIKE 'mcp__%' OR tool_name LIKE 'Bash%' GROUP BY tool_name",
    "SELECT regexp_extract(tool_name, 'mcp__([a-z]+)__', 1) AS server, count(*) FROM usage_events WHERE event_type = 'mcp_call' GROUP BY server",
    "SELECT username, arg_max(model, first_ts) AS latest_model FROM usage_responses GROUP BY username",
    "SELECT tool_name, sum(error_count)::DOUBLE / nullif(sum(invocations), 0) AS error_rate FROM usage_tool_daily GROUP BY tool_name HAVING sum(invocations) > 0",
    "SELECT * FROM usage_events ORDER BY occurred_at DESC LIMIT 20 OFFSET 10",
    "SELECT t.* FROM (SELECT username, count(*) AS n FROM usage_events GROUP BY username) AS t WHERE t.n > 1",
    "SELECT json_extract_string(friction_tags, '$[0]') AS tag, count(*) FROM usage_events GROUP BY tag",
    "SELECT * FROM usage_tokens_daily WHERE day BETWEEN DATE '2026-01-01' AND current_date",
    "WITH daily AS (SELECT day, sum(cost_usd) AS cost FROM usage_tokens_daily GROUP BY day) SELECT day, cost, avg(cost) OVER w AS avg7 FROM daily WINDOW w AS (ORDER BY day ROWS 6 PRECEDING)",
    "SELECT ntile(4) OVER (ORDER BY tool_calls) AS quartile, session_file FROM usage_session_summary",
    "WITH usage_events AS (SELECT * FROM usage_events WHERE is_error) SELECT count(*) FROM usage_events",
    "SELECT greatest(input_tokens, output_tokens) AS g, least(1, 2) AS l, abs(-1) AS a, length(model) AS n FROM usage_responses",
    "SELECT count(*) FROM usage_events WHERE occurred_at > now() - INTERVAL '30 days' AND NOT is_error",
    "SELECT list_transform([1, 2, 3], x -> x * 2) AS doubled",
    "SELECT upper(username) AS u, count(*) FROM usage_events GROUP BY u HAVING count(*) > 1",
    "SELECT time_bucket(INTERVAL '1 hour', occurred_at) AS hour, count(*) FROM usage_events GROUP BY hour",
    "SELECT \"tool_name\", COUNT(*) FROM \"Usage_Events\" GROUP BY \"tool_name\";",
    "SELECT * FROM (SELECT username, event_type FROM usage_events) PIVOT (count(*) FOR event_type IN ('tool_use', 'mcp_call'))",
    "SELECT username, count(*) AS sessions, sum(tool_errors) AS errors FROM usage_session_summary WHERE started_at >= current_date - 30 GROUP BY username ORDER BY errors DESC NULLS LAST",
];

fn names(sqls: &[&str]) -> Vec<String> {
    sqls.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_hostile_statement_is_refused_with_a_reason() {
    assert!(
        HOSTILE.len() >= 80,
        "the table holds {} statements",
        HOSTILE.len()
    );
    let mut wrong = Vec::new();
    for (sql, needle) in HOSTILE {
        match check(sql, TELEMETRY) {
            Ok(g) => wrong.push(format!("PASSED: {sql:?} as {:?}", g.sql)),
            Err(Refused(reason)) => {
                if reason.trim().is_empty() || !reason.contains(needle) {
                    wrong.push(format!("{sql:?}: reason {reason:?} lacks {needle:?}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_legitimate_query_passes_and_names_what_it_reads() {
    assert!(LEGIT.len() >= 30, "the table holds {} queries", LEGIT.len());
    let mut wrong = Vec::new();
    for sql in LEGIT {
        match check(sql, TELEMETRY) {
            Ok(g) => {
                // Printed back, it is still a query the guard accepts.
                if let Err(e) = check(&g.sql, TELEMETRY) {
                    wrong.push(format!("{sql:?} printed as {:?} is refused: {e}", g.sql));
                }
            }
            Err(e) => wrong.push(format!("{sql:?}: {e}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_internal_source_allows_only_its_three_relations() {
    for sql in [
        "SELECT * FROM agnes_audit",
        "SELECT count(*) FROM agnes_telemetry t JOIN agnes_sessions s USING (session_file)",
        "WITH mine AS (SELECT * FROM agnes_audit WHERE action LIKE 'query.%') SELECT action, count(*) FROM mine GROUP BY action",
        "SELECT * FROM \"AGNES_AUDIT\"",
    ] {
        assert!(check(sql, AGNES).is_ok(), "{sql}");
    }
    for sql in [
        "SELECT * FROM usage_events",
        "SELECT * FROM audit_log",
        "SELECT * FROM usage_session_summary",
        "WITH agnes_audit AS (SELECT * FROM audit_log) SELECT * FROM agnes_audit",
        "SELECT * FROM agnes_audit WHERE user_id IN (SELECT user_id FROM audit_log)",
        "SELECT * FROM main.agnes_audit",
        "SELECT * FROM temp.agnes_audit",
    ] {
        assert!(check(sql, AGNES).is_err(), "{sql}");
    }
}

#[test]
fn the_relations_read_are_reported_once_in_lower_case() {
    let g = check(
        "WITH x AS (SELECT * FROM Usage_Events) SELECT * FROM x JOIN \"SESSION_FINDINGS\" f USING (session_file), usage_events",
        TELEMETRY,
    )
    .unwrap();
    assert_eq!(g.relations, names(&["session_findings", "usage_events"]));
}

#[test]
fn what_runs_is_the_checked_tree_without_comments() {
    // Whatever DuckDB would make of a comment, it never sees one: what runs
    // is the tree the walk checked, printed back.
    for sql in [
        "SELECT 1 AS a -- , (SELECT 1 FROM users)\n",
        "SELECT * FROM usage_events /* /* nested */ , users -- */",
        "SELECT * FROM usage_events /* , users */",
    ] {
        let g = check(sql, TELEMETRY).unwrap();
        assert!(
            !g.sql.contains("users") && !g.sql.contains("--") && !g.sql.contains("/*"),
            "{sql} ran as {}",
            g.sql
        );
    }
}

#[test]
fn the_function_allowlist_is_sorted_lower_case_and_has_no_readers() {
    let list = super::functions::allowed();
    assert!(list.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    assert!(list.iter().all(|f| *f == f.to_ascii_lowercase()));
    for f in list {
        assert!(
            !f.starts_with("read_")
                && !f.starts_with("duckdb_")
                && !f.starts_with("pragma_")
                && ![
                    "glob",
                    "getenv",
                    "current_setting",
                    "query",
                    "query_table",
                    "range",
                    "generate_series"
                ]
                .contains(f),
            "{f} must not be allowed"
        );
    }
}

#[test]
fn deep_nesting_and_huge_text_are_refused_without_exhausting_the_stack() {
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(check(&deep, TELEMETRY).is_err());
    let subqueries = format!(
        "SELECT * FROM {}usage_events{}",
        "(SELECT * FROM ".repeat(2000),
        ")".repeat(2000)
    );
    assert!(check(&subqueries, TELEMETRY).is_err());
    let huge = format!("SELECT 1 AS a{}", " ".repeat(MAX_SQL_CHARS));
    assert!(
        check(&huge, TELEMETRY).is_ok(),
        "trailing blanks are trimmed"
    );
    let huge = format!("SELECT '{}' AS a", "x".repeat(MAX_SQL_CHARS));
    assert!(check(&huge, TELEMETRY)
        .unwrap_err()
        .0
        .contains("longer than"));
}
