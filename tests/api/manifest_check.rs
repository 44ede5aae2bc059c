//! Compares what ingest stored with a corpus manifest (`MANIFEST.json` of the
//! generator, or the fixtures' `EXPECTED.json`): every per-file figure
//! glassbox stores, findings by type, and the daily per-model tokens.
//! Shared by the fixture test and `examples/oracle_check.rs`.

use std::cell::RefCell;
use std::collections::BTreeMap;

use duckdb::Connection;
use serde_json::Value;

fn int(c: &Connection, sql: &str, file: &str) -> i64 {
    c.query_row(sql, [file], |r| r.get::<_, Option<i64>>(0))
        .unwrap()
        .unwrap_or(0)
}

fn text(c: &Connection, sql: &str, file: &str) -> Option<String> {
    c.query_row(sql, [file], |r| r.get::<_, Option<String>>(0))
        .unwrap()
}

fn counts(c: &Connection, sql: &str, file: &str) -> BTreeMap<String, i64> {
    let mut stmt = c.prepare(sql).unwrap();
    stmt.query_map([file], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn object_counts(v: &Value) -> BTreeMap<String, i64> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// Every difference, as readable lines; empty when all figures match.
/// `session_file` maps a manifest entry to the stored `session_file`.
pub fn compare(
    c: &Connection,
    manifest: &Value,
    session_file: impl Fn(&Value) -> String,
) -> Vec<String> {
    let failures = RefCell::new(Vec::<String>::new());
    for f in manifest["files"].as_array().unwrap() {
        let file = session_file(f);
        let check = |what: &str, got: i64, want: i64| {
            if got != want {
                failures
                    .borrow_mut()
                    .push(format!("{file} {what}: got {got}, expected {want}"));
            }
        };
        let s =
            |col: &str| format!("SELECT {col} FROM usage_session_summary WHERE session_file = ?");
        if int(
            c,
            "SELECT count(*) FROM usage_session_summary WHERE session_file = ?",
            &file,
        ) != 1
        {
            failures
                .borrow_mut()
                .push(format!("{file}: no session summary"));
            continue;
        }
        for key in [
            "lines",
            "bytes",
            "malformed_lines",
            "tool_calls",
            "tool_errors",
            "subagent_dispatches",
            "mcp_calls",
            "skill_invocations",
            "slash_commands",
        ] {
            check(key, int(c, &s(key), &file), f[key].as_i64().unwrap());
        }
        for (col, key) in [
            ("input_tokens", "input"),
            ("output_tokens", "output"),
            ("cache_creation_tokens", "cache_creation"),
            ("cache_read_tokens", "cache_read"),
        ] {
            check(
                col,
                int(c, &s(col), &file),
                f["tokens"][key].as_i64().unwrap(),
            );
        }
        // Seconds compared to the millisecond.
        for (col, key) in [
            ("wall_seconds", "wall_seconds"),
            ("active_seconds", "active_seconds"),
        ] {
            let got = int(
                c,
                &s(&format!("CAST(round({col} * 1000) AS BIGINT)")),
                &file,
            );
            check(col, got, (f[key].as_f64().unwrap() * 1000.0).round() as i64);
        }
        for col in ["started_at", "ended_at"] {
            let got = text(c, &s(&format!("epoch_ms({col})::VARCHAR")), &file);
            let want = f[col]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis().to_string());
            if got != want {
                failures.borrow_mut().push(format!(
                    "{file} {col}: got {got:?} ms, expected {want:?} ({})",
                    f[col]
                ));
            }
        }
        let primary = text(c, &s("primary_model"), &file);
        if primary.as_deref() != f["primary_model"].as_str() {
            failures.borrow_mut().push(format!(
                "{file} primary_model: got {primary:?}, expected {}",
                f["primary_model"]
            ));
        }
        check(
            "assistant_responses",
            int(
                c,
                "SELECT count(*) FROM usage_responses WHERE session_file = ? AND counted",
                &file,
            ),
            f["assistant_responses"].as_i64().unwrap(),
        );
        let finding = |t: &str| {
            format!("SELECT count(*) FROM session_findings WHERE session_file = ? AND finding_type = '{t}'")
        };
        let (errors, rejections, denials) = (
            f["tool_errors"].as_i64().unwrap(),
            f["user_rejections"].as_i64().unwrap(),
            f["permission_denials"].as_i64().unwrap(),
        );
        check(
            "user_rejection findings",
            int(c, &finding("user_rejection"), &file),
            rejections,
        );
        check(
            "permission_denied findings",
            int(c, &finding("permission_denied"), &file),
            denials,
        );
        check(
            "tool_error findings",
            int(c, &finding("tool_error"), &file),
            errors - rejections - denials,
        );
        check(
            "loop findings",
            int(c, &finding("loop"), &file),
            f["loops"].as_i64().unwrap(),
        );
        check(
            "abrupt_end findings",
            int(c, &finding("abrupt_end"), &file),
            f["abrupt_end"].as_bool().unwrap() as i64,
        );
        let tools = counts(
            c,
            "SELECT tool_name, count(*) FROM usage_events WHERE session_file = ? AND tool_name IS NOT NULL GROUP BY 1",
            &file,
        );
        if tools != object_counts(&f["tools"]) {
            failures.borrow_mut().push(format!(
                "{file} tools: got {tools:?}, expected {}",
                f["tools"]
            ));
        }
        let slash = counts(
            c,
            "SELECT '/' || command_name, count(*) FROM usage_events WHERE session_file = ? AND event_type = 'slash_command' GROUP BY 1",
            &file,
        );
        if slash != object_counts(&f["slash_command_names"]) {
            failures.borrow_mut().push(format!(
                "{file} slash commands: got {slash:?}, expected {}",
                f["slash_command_names"]
            ));
        }
        for (model, t) in f["tokens_by_model"].as_object().unwrap() {
            let got = c
                .query_row(
                    "SELECT sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens), sum(cache_read_tokens)
                     FROM usage_responses WHERE session_file = ? AND model = ? AND counted",
                    [&file, model],
                    |r| Ok([r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?]),
                )
                .unwrap();
            let want =
                ["input", "output", "cache_creation", "cache_read"].map(|k| t[k].as_i64().unwrap());
            if got != want {
                failures.borrow_mut().push(format!(
                    "{file} tokens of {model}: got {got:?}, expected {want:?}"
                ));
            }
        }
    }
    // Daily per-model tokens, over all users.
    let mut stmt = c
        .prepare(
            "SELECT strftime(day, '%Y-%m-%d'), model, sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens),
                    sum(cache_read_tokens) FROM usage_tokens_daily GROUP BY ALL",
        )
        .unwrap();
    let stored: BTreeMap<(String, String), [i64; 4]> = stmt
        .query_map([], |r| {
            Ok((
                (r.get(0)?, r.get(1)?),
                [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut expected = BTreeMap::new();
    for (day, models) in manifest["daily"].as_object().unwrap() {
        for (model, t) in models.as_object().unwrap() {
            let want =
                ["input", "output", "cache_creation", "cache_read"].map(|k| t[k].as_i64().unwrap());
            expected.insert((day.clone(), model.clone()), want);
        }
    }
    if stored != expected {
        for (k, v) in &expected {
            if stored.get(k) != Some(v) {
                failures.borrow_mut().push(format!(
                    "daily {k:?}: got {:?}, expected {v:?}",
                    stored.get(k)
                ));
            }
        }
        for k in stored.keys().filter(|k| !expected.contains_key(*k)) {
            failures
                .borrow_mut()
                .push(format!("daily {k:?}: stored but not expected"));
        }
    }
    failures.into_inner()
}
