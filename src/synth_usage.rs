//! Telemetry at scale for `glassbox synth --usage-events N --sessions N`:
//! tool events, API responses, session summaries and both daily rollups,
//! generated with set-based SQL (every value a `hash(i, salt)` of the row
//! number), oldest first so zone maps on `occurred_at` stay tight.
//!
//! Events are spread evenly over the window; session `s` owns a contiguous run
//! of them, so each session has a start, an end and one user. Responses (one
//! per ~3 events) carry tokens and a cost priced like ingestion's table; a
//! small share use a model without a price, which the Telemetry page lists.

use anyhow::Context;
use duckdb::Connection;

use crate::repo::telemetry::rollup::{recount, Days};

/// Models of the generated responses and events, weighted; the last has no
/// price (cost 0) on purpose.
const MODELS: &[(&str, u32)] = &[
    ("claude-sonnet-4-5-20250929", 60),
    ("claude-opus-4-5-20251101", 25),
    ("claude-haiku-4-5-20251001", 13),
    ("glm-4.6", 2),
];

/// Prices per million tokens (input, output, cache write 5 m, cache read), as
/// the embedded table of `ingest::pricing` has them; the unknown model costs 0.
const PRICES: &[(f64, f64, f64, f64)] = &[
    (3.0, 15.0, 3.75, 0.30),
    (5.0, 25.0, 6.25, 0.50),
    (1.0, 5.0, 1.25, 0.10),
    (0.0, 0.0, 0.0, 0.0),
];

fn sql_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| format!("'{}'", s.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn weighted<T: AsRef<str>>(items: &[(T, u32)]) -> String {
    let mut out = Vec::new();
    for (v, w) in items {
        for _ in 0..*w {
            out.push(v.as_ref().to_string());
        }
    }
    sql_list(&out)
}

/// Fills the telemetry tables: `events` tool events in `sessions` sessions
/// (at least one; 0 picks one per ~150 events) for `people` (user id, email)
/// over the last `days` days. Returns (events, sessions, responses).
pub fn make_usage(
    conn: &Connection,
    people: &[(String, String)],
    events: u64,
    sessions: u64,
    days: u32,
) -> anyhow::Result<(u64, u64, u64)> {
    if (events == 0 && sessions == 0) || people.is_empty() {
        return Ok((0, 0, 0));
    }
    let sessions = if sessions == 0 {
        (events / 150).max(1)
    } else {
        sessions
    };
    let events = events.max(sessions);
    let started = std::time::Instant::now();
    let ids = sql_list(&people.iter().map(|p| p.0.clone()).collect::<Vec<_>>());
    let emails = sql_list(&people.iter().map(|p| p.1.clone()).collect::<Vec<_>>());
    let n_people = people.len();
    let window_us = days as f64 * 86_400_000_000.0;
    let step_us = window_us / events as f64;
    let per_session = events as f64 / sessions as f64;
    // (tool, weight); NULL stands for a slash command (no tool name).
    let tools = weighted(&[
        ("Bash", 22),
        ("Read", 20),
        ("Edit", 12),
        ("Grep", 9),
        ("Glob", 6),
        ("Write", 5),
        ("TodoWrite", 5),
        ("WebFetch", 2),
        ("Skill", 6),
        ("Task", 4),
        ("mcp__github__create_issue", 2),
        ("mcp__warehouse__query", 4),
        ("mcp__slack__post_message", 1),
        ("-", 2),
    ]);
    let models = weighted(MODELS);
    let model_names = sql_list(&MODELS.iter().map(|m| m.0.to_string()).collect::<Vec<_>>());
    let n_models_w: u32 = MODELS.iter().map(|m| m.1).sum();
    // A list literal in a per-row expression is built again for every row
    // (with 100 strings, most of the insert's time): each list is set once
    // as a variable and indexed through getvariable(). Likewise the steps
    // below are DOUBLEs: a literal like 51.84 is a DECIMAL, and DECIMAL
    // products cost ~0.6 s per million rows.
    conn.execute_batch(&format!(
        "SET VARIABLE synth_tools = {tools};
         SET VARIABLE synth_ids = {ids};
         SET VARIABLE synth_emails = {emails};
         SET VARIABLE synth_models = {models};
         SET VARIABLE synth_model_names = {model_names};
         SET VARIABLE synth_skills = ['analytics:weekly-report', 'sql-helpers:optimize', 'pdf', 'xlsx', 'viz-pack:chart'];
         SET VARIABLE synth_agents = ['general-purpose', 'analytics:explorer', 'code-reviewer'];
         SET VARIABLE synth_commands = ['review', 'analytics:weekly', 'compact', 'sql-helpers:explain'];
         SET VARIABLE synth_skill_refs = ['analytics', 'sql-helpers', '', '', 'viz-pack'];
         SET VARIABLE synth_command_refs = ['', 'analytics', '', 'sql-helpers'];"
    ))?;
    // Sessions first (a few hundred thousand rows), joined to their events:
    // the per-session strings are built once, not once per event. The join's
    // probe side keeps range()'s order, so the insert needs no sort (the test
    // below checks the events are in time order).
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE synth_sessions AS
         SELECT s, user_id, username, session_id, model,
                username || '/' || session_id || '.jsonl' AS session_file,
                '/work/' || split_part(username, '@', 1) AS cwd
         FROM (SELECT s,
                 getvariable('synth_ids')[1 + (hash(s, 'u') % {n_people})::INTEGER] AS user_id,
                 getvariable('synth_emails')[1 + (hash(s, 'u') % {n_people})::INTEGER] AS username,
                 md5(s::VARCHAR || '-session') AS session_id,
                 getvariable('synth_models')[1 + (hash(s, 'm') % {n_models_w})::INTEGER] AS model
               FROM range({sessions}) t(s));"
    ))
    .context("while generating sessions")?;
    let session_cols = "ss.user_id, ss.username, ss.session_id, ss.model, ss.session_file, ss.cwd";

    // The row numbers come from a table, not from `range()` in the insert:
    // DuckDB runs a `range()` source on one thread, a table scan on every
    // core (the inserts took 1.6–2× as long). The parallel join keeps time
    // order within each thread's share, not across: at 50 M events the table
    // holds two time-ordered runs, so every row group but the one where they
    // meet still spans minutes, which is what the zone maps need.
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE synth_rows AS SELECT range AS i FROM range({events})"
    ))?;
    // Events: row i belongs to session floor(i / per_session).
    conn.execute_batch(&format!(
        "INSERT INTO usage_events
         WITH base AS (
           SELECT i, s, {session_cols},
                  (now()::TIMESTAMP - INTERVAL {days} DAY)
                    + to_microseconds(CAST(i * {step_us}::DOUBLE AS BIGINT)) AS ts,
                  getvariable('synth_tools')[1 + (hash(i, 't') % 100)::INTEGER] AS t,
                  hash(i, 'x') % 1000 AS x
           FROM (SELECT i, CAST(floor(i / {per_session}::DOUBLE) AS BIGINT) AS s FROM synth_rows) b
           JOIN synth_sessions ss USING (s)
         )
         SELECT lower(hex(hash(i, 'id1')) || hex(hash(i, 'id2'))), session_id, session_file,
                username, NULL, NULL,
                CASE WHEN t = '-' THEN 'slash_command' WHEN t = 'Task' THEN 'subagent'
                     WHEN t LIKE 'mcp\\_\\_%' ESCAPE '\\' THEN 'mcp_call' ELSE 'tool_use' END,
                CASE WHEN t = '-' THEN NULL ELSE t END,
                CASE WHEN t = 'Skill' THEN getvariable('synth_skills')[1 + (x % 5)::INTEGER] END,
                CASE WHEN t = 'Task' THEN getvariable('synth_agents')[1 + (x % 3)::INTEGER] END,
                CASE WHEN t = '-' THEN getvariable('synth_commands')[1 + (x % 4)::INTEGER] END,
                CASE WHEN t = 'Bash' THEN x < 90 WHEN t LIKE 'mcp%' THEN x < 70 ELSE x < 25 END,
                CASE WHEN t = 'Skill' AND x % 5 IN (0, 1, 4) THEN 'curated'
                     WHEN t = 'Task' AND x % 3 = 1 THEN 'curated'
                     WHEN t = '-' AND x % 4 IN (1, 3) THEN 'curated'
                     WHEN t LIKE 'mcp\\_\\_slack%' ESCAPE '\\' THEN 'flea'
                     ELSE 'builtin' END,
                CASE WHEN t = 'Skill' AND x % 5 IN (0, 1, 4) THEN getvariable('synth_skill_refs')[1 + (x % 5)::INTEGER]
                     WHEN t = 'Task' AND x % 3 = 1 THEN 'analytics'
                     WHEN t = '-' AND x % 4 IN (1, 3) THEN getvariable('synth_command_refs')[1 + (x % 4)::INTEGER]
                     ELSE NULL END,
                model, cwd, ts, 1, now()::TIMESTAMP, NULL, user_id
         FROM base;",
    ))
    .context("while generating usage events")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "synth: usage events written"
    );
    // Responses: one per three events of a session, same model as the session.
    let prices_case = |col: usize| {
        let arms: Vec<String> = PRICES
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let v = match col {
                    0 => p.0,
                    1 => p.1,
                    2 => p.2,
                    _ => p.3,
                };
                format!("WHEN {} THEN {v}", k + 1)
            })
            .collect();
        format!(
            "CASE list_position(getvariable('synth_model_names'), model) {} ELSE 0 END",
            arms.join(" ")
        )
    };
    let (pi, po, pw, pr) = (
        prices_case(0),
        prices_case(1),
        prices_case(2),
        prices_case(3),
    );
    conn.execute_batch(&format!(
        "INSERT INTO usage_responses
         WITH r AS (
           SELECT i, {session_cols}, (now()::TIMESTAMP - INTERVAL {days} DAY)
                    + to_microseconds(CAST(i * 3 * {step_us}::DOUBLE AS BIGINT)) AS ts,
                  (50 + hash(i, 'in') % 4000)::BIGINT AS input,
                  (20 + hash(i, 'out') % 1500)::BIGINT AS output,
                  (hash(i, 'cw') % 6000)::BIGINT AS cw,
                  (hash(i, 'cr') % 60000)::BIGINT AS cr
           FROM (SELECT i, CAST(floor(i * 3 / {per_session}::DOUBLE) AS BIGINT) AS s FROM synth_rows WHERE i < {responses}) b
           JOIN synth_sessions ss USING (s)
         )
         SELECT username, user_id, session_file,
                'msg_' || lower(hex(hash(i, 'm'))), 'req_' || lower(hex(hash(i, 'r'))), ts, model,
                input, output, cw, cr, cw, 0,
                (input * ({pi}) + output * ({po}) + cw * ({pw}) + cr * ({pr})) / 1e6,
                false, true
         FROM r;",
        responses = events.div_ceil(3)
    ))
    .context("while generating responses")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "synth: responses written"
    );
    conn.execute_batch(
        "INSERT INTO usage_session_summary
           (session_file, session_id, username, started_at, ended_at, active_seconds, wall_seconds,
            user_messages, assistant_messages, tool_calls, tool_errors, skill_invocations,
            subagent_dispatches, mcp_calls, slash_commands, distinct_tools, distinct_skills,
            primary_model, processor_version, extracted_at, uploaded_at, input_tokens, output_tokens,
            cache_read_tokens, cache_creation_tokens, user_id, cost_usd, malformed_lines, lines, bytes)
         SELECT e.session_file, e.session_id, e.username, min(e.occurred_at), max(e.occurred_at),
                least(date_diff('second', min(e.occurred_at), max(e.occurred_at)), 7200)::DOUBLE,
                date_diff('second', min(e.occurred_at), max(e.occurred_at))::DOUBLE,
                greatest(1, count(*) // 8)::INTEGER, (count(*) // 3 + 1)::INTEGER,
                count(*) FILTER (WHERE e.tool_name IS NOT NULL)::INTEGER,
                count(*) FILTER (WHERE e.is_error)::INTEGER,
                count(*) FILTER (WHERE e.tool_name = 'Skill')::INTEGER,
                count(*) FILTER (WHERE e.event_type = 'subagent')::INTEGER,
                count(*) FILTER (WHERE e.event_type = 'mcp_call')::INTEGER,
                count(*) FILTER (WHERE e.event_type = 'slash_command')::INTEGER,
                0, 0, any_value(e.model), 1, now()::TIMESTAMP, max(e.occurred_at), 0, 0, 0, 0,
                any_value(e.user_id), 0, 0, (count(*) * 4)::INTEGER, (count(*) * 2400)::BIGINT
         FROM usage_events e GROUP BY e.session_file, e.session_id, e.username;
         UPDATE usage_session_summary AS s SET
            input_tokens = t.i, output_tokens = t.o, cache_creation_tokens = t.cc,
            cache_read_tokens = t.cr, cost_usd = t.cost
         FROM (SELECT session_file, sum(input_tokens) AS i, sum(output_tokens) AS o,
                      sum(cache_creation_tokens) AS cc, sum(cache_read_tokens) AS cr, sum(cost_usd) AS cost
               FROM usage_responses GROUP BY session_file) AS t
         WHERE s.session_file = t.session_file;
         INSERT INTO usage_tokens_daily
         SELECT CAST(first_ts AS DATE), username, model, sum(input_tokens), sum(output_tokens),
                sum(cache_creation_tokens), sum(cache_read_tokens), sum(cost_usd)
         FROM usage_responses WHERE counted GROUP BY ALL;
         DROP TABLE synth_sessions; DROP TABLE synth_rows;",
    )
    .context("while writing summaries and rollups")?;
    recount(conn, Days::All).context("while writing the events' daily rollups")?;
    // Distinct counts read the rollups just made rather than the events: a
    // DISTINCT over 50 M rows grouped by session or day costs 8–12 s each,
    // the same counts over the per-session rollup rows ~2 s. (Skills are not
    // in the rollups; the ~6 % of events that name one are counted directly.)
    conn.execute_batch(
        "UPDATE usage_session_summary AS s SET distinct_tools = t.n
         FROM (SELECT session_key, count(DISTINCT tool_name)::INTEGER AS n
               FROM usage_event_sessions_daily GROUP BY session_key) AS t
         WHERE md5_number_lower(s.session_id) = t.session_key;
         UPDATE usage_session_summary AS s SET distinct_skills = t.n
         FROM (SELECT session_id, count(DISTINCT skill_name)::INTEGER AS n
               FROM usage_events WHERE skill_name IS NOT NULL GROUP BY session_id) AS t
         WHERE s.session_id = t.session_id;
         INSERT INTO usage_tool_daily
         SELECT e.day, e.tool_name, e.source, e.invocations, e.errors, e.users, s.sessions
         FROM (SELECT day, tool_name, source, sum(events) AS invocations,
                      coalesce(sum(events) FILTER (WHERE is_error), 0) AS errors,
                      count(DISTINCT username) AS users
               FROM usage_events_daily WHERE tool_name IS NOT NULL GROUP BY ALL) AS e
         JOIN (SELECT day, tool_name, source, count(DISTINCT session_key) AS sessions
               FROM usage_event_sessions_daily WHERE tool_name IS NOT NULL GROUP BY ALL) AS s
           USING (day, tool_name, source);",
    )
    .context("while writing the distinct counts")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "synth: summaries and rollups written"
    );
    let responses: i64 =
        conn.query_row("SELECT count(*) FROM usage_responses", [], |r| r.get(0))?;
    Ok((events, sessions, responses as u64))
}

/// `glassbox synth --usage-events N --sessions N`: telemetry for the people
/// already in the data dir (every user but service accounts).
pub fn scale(db: &crate::db::Db, events: u64, sessions: u64, days: u32) -> anyhow::Result<String> {
    if events == 0 && sessions == 0 {
        return Ok(String::new());
    }
    let conn = db.connect()?;
    let mut stmt =
        conn.prepare("SELECT id, email FROM users WHERE role <> 'service' ORDER BY email")?;
    let people = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<(String, String)>, _>>()?;
    let (events, sessions, responses) = make_usage(&conn, &people, events, sessions, days)?;
    let started = std::time::Instant::now();
    conn.execute_batch("CHECKPOINT")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "synth: checkpoint"
    );
    Ok(format!(
        ", {events} usage events in {sessions} sessions with {responses} responses over {days} days"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn synthetic_usage_is_consistent_with_its_rollups_and_summaries() {
        let db = Db::open_in_memory().unwrap();
        let c = db.connect().unwrap();
        let people = vec![
            ("u1".to_string(), "ann@example.com".to_string()),
            ("u2".to_string(), "bob@example.com".to_string()),
            ("u3".to_string(), "cy@example.com".to_string()),
        ];
        let (events, sessions, responses) = make_usage(&c, &people, 9_000, 40, 10).unwrap();
        assert_eq!((events, sessions), (9_000, 40));
        assert_eq!(responses, 3_000);
        let q = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(q("SELECT count(*) FROM usage_events"), 9_000);
        assert_eq!(q("SELECT count(*) FROM usage_session_summary"), 40);
        assert_eq!(
            q("SELECT sum(tool_calls + slash_commands) FROM usage_session_summary"),
            9_000
        );
        assert_eq!(
            q("SELECT sum(invocations) FROM usage_tool_daily"),
            q("SELECT count(*) FROM usage_events WHERE tool_name IS NOT NULL")
        );
        // The distinct counts taken from the rollups are those of the events.
        assert_eq!(
            q("SELECT count(*) FROM (
                 (SELECT day, tool_name, source, invocations, error_count, distinct_users, distinct_sessions FROM usage_tool_daily)
                 EXCEPT
                 (SELECT CAST(occurred_at AS DATE), tool_name, source, count(*), count(*) FILTER (WHERE is_error),
                         count(DISTINCT username), count(DISTINCT session_id)
                  FROM usage_events WHERE tool_name IS NOT NULL GROUP BY ALL))"),
            0
        );
        assert_eq!(
            q("SELECT count(*) FROM usage_session_summary s
               JOIN (SELECT session_id, count(DISTINCT tool_name) AS t, count(DISTINCT skill_name) AS k
                     FROM usage_events GROUP BY session_id) e USING (session_id)
               WHERE s.distinct_tools = e.t AND s.distinct_skills = e.k"),
            40
        );
        assert_eq!(
            q("SELECT sum(output_tokens) FROM usage_tokens_daily"),
            q("SELECT sum(output_tokens) FROM usage_responses")
        );
        // Every response's file is a session's file; times in order and in the window.
        assert_eq!(
            q("SELECT count(*) FROM usage_responses WHERE session_file NOT IN (SELECT session_file FROM usage_session_summary)"),
            0
        );
        assert_eq!(
            q("SELECT count(*) FROM (SELECT occurred_at < lag(occurred_at) OVER (ORDER BY rowid) AS back FROM usage_events) WHERE back"),
            0
        );
        assert!(q("SELECT count(DISTINCT event_type) FROM usage_events") == 4);
        assert!(
            q("SELECT count(*) FROM usage_responses WHERE model = 'glm-4.6' AND cost_usd = 0") > 0
        );
        assert!(
            q("SELECT count(*) FROM usage_events WHERE source = 'curated' AND ref_id IS NULL") == 0
        );
    }
}
