//! Ask's system prompt: the rules and the schema of the telemetry tables.

use std::fmt::Write;

/// What the column names do not say.
const NOTES: &[(&str, &str)] = &[
    ("usage_events", "one row per tool call found in a Claude Code transcript (metadata only). event_type: tool_use | subagent | mcp_call | slash_command; source: builtin | curated; ref_id: the plugin/namespace of a curated skill or agent; is_error: the call's result was an error; username: the user's email; occurred_at: UTC"),
    ("usage_responses", "one row per assistant API response; a response copied into two files has two rows and only the copy with counted = true counts: filter WHERE counted for totals. Tokens and cost_usd per response"),
    ("usage_session_summary", "one row per transcript file (session): started_at/ended_at (UTC), active_seconds, wall_seconds, tool_calls, tool_errors, primary_model, tokens and cost"),
    ("usage_tool_daily", "rollup: per UTC day, tool_name and source: invocations, error_count, distinct users and sessions. Prefer it for daily tool counts"),
    ("usage_tokens_daily", "rollup: per UTC day, username and model: token totals and cost_usd. Prefer it for token and cost questions"),
    ("session_findings", "automatic findings per session file: finding_type tool_error | permission_denied | user_rejection | loop | abrupt_end; severity error | warning | info; excerpt"),
];

/// The system prompt for `tables` with their `columns` (table, column, type).
pub fn system_prompt(tables: &[&str], columns: &[(String, String, String)]) -> String {
    let mut p = String::from(
        "You translate natural-language questions into DuckDB SELECT statements over a telemetry schema \
         of Claude Code usage.\n\nRules:\n\
         1. Exactly one statement: a SELECT (WITH … SELECT and UNION are fine). No semicolons.\n\
         2. Read only the tables listed below, by their plain names (no schema prefix). \
         No table functions (read_csv, range, …), no files, no other tables, no WITH RECURSIVE.\n\
         3. Never write: no INSERT, UPDATE, DELETE, CREATE, COPY, ATTACH, PRAGMA or SET.\n\
         4. Use ordinary DuckDB scalar, aggregate and window functions: now() - INTERVAL 7 DAY, \
         date_trunc('day', ts), strftime(ts, '%Y-%m-%d'), count(*) FILTER (WHERE …), QUALIFY.\n\
         5. Prefer the daily rollups for daily counts, tokens and cost; use usage_events for detail.\n\
         6. Add LIMIT 100 unless the question asks for everything; at most 1000 rows are shown.\n\
         7. Answer with the `answer` tool: sql, and a rationale of one or two sentences.\n\nTables:\n",
    );
    for table in tables {
        let cols: Vec<String> = columns
            .iter()
            .filter(|(t, _, _)| t == table)
            .map(|(_, c, ty)| format!("{c} {ty}"))
            .collect();
        let _ = writeln!(p, "- {table}({})", cols.join(", "));
        if let Some((_, note)) = NOTES.iter().find(|(t, _)| t == table) {
            let _ = writeln!(p, "  {note}.");
        }
    }
    p
}
