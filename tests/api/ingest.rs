//! Ingest of the hand-shaped fixtures: every figure of EXPECTED.json that
//! glassbox stores is read back from the database after a real run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use duckdb::Connection;
use glassbox::db::{Db, DbOptions};
use glassbox::ingest::pricing::Prices;
use glassbox::ingest::runner::{self, Processors, RunOptions};
use serde_json::Value;

const USER_DIR: &str = "fixture.user";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sessions")
}

/// A data dir with the fixtures copied under one user directory.
pub fn fixture_corpus() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("user_sessions");
    let user = sessions.join(USER_DIR);
    std::fs::create_dir_all(&user).unwrap();
    for f in std::fs::read_dir(fixtures().join(USER_DIR)).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), user.join(f.file_name())).unwrap();
    }
    (dir, sessions)
}

fn ingest(db: &Db, sessions: &Path, processors: Processors) -> runner::RunReport {
    let mut conn = db.connect().unwrap();
    runner::run(
        &mut conn,
        &RunOptions {
            session_dir: sessions,
            prices: &Prices::default(),
            retention_days: 0,
            processors,
            threads: 2,
        },
    )
    .unwrap()
}

fn i(c: &Connection, sql: &str, p: &str) -> i64 {
    c.query_row(sql, [p], |r| r.get::<_, Option<i64>>(0))
        .unwrap()
        .unwrap_or(0)
}

fn ms(c: &Connection, sql: &str, p: &str) -> Option<String> {
    c.query_row(sql, [p], |r| r.get::<_, Option<String>>(0))
        .unwrap()
}

#[test]
fn every_stored_figure_of_the_fixtures_matches_expected() {
    let (dir, sessions) = fixture_corpus();
    let db = Db::open(&dir.path().join("glassbox.duckdb"), &DbOptions::default()).unwrap();
    let report = ingest(&db, &sessions, Processors::ALL);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("EXPECTED.json")).unwrap())
            .unwrap();
    assert_eq!(report.files_seen, 17);
    assert_eq!(report.files_changed, 17);
    assert_eq!(report.files_failed, 0);
    assert_eq!(report.lines, expected["totals"]["lines"].as_u64().unwrap());
    assert_eq!(report.bytes, expected["totals"]["bytes"].as_u64().unwrap());
    let c = db.connect().unwrap();
    let failures = std::cell::RefCell::new(Vec::<String>::new());
    for f in expected["files"].as_array().unwrap() {
        let file = format!("{USER_DIR}/{}", f["path"].as_str().unwrap());
        let check = |what: &str, got: i64, want: i64| {
            if got != want {
                failures
                    .borrow_mut()
                    .push(format!("{file} {what}: got {got}, expected {want}"));
            }
        };
        let s =
            |col: &str| format!("SELECT {col} FROM usage_session_summary WHERE session_file = ?");
        for (col, key) in [
            ("lines", "lines"),
            ("bytes", "bytes"),
            ("malformed_lines", "malformed_lines"),
            ("tool_calls", "tool_calls"),
            ("tool_errors", "tool_errors"),
            ("subagent_dispatches", "subagent_dispatches"),
            ("mcp_calls", "mcp_calls"),
            ("skill_invocations", "skill_invocations"),
            ("slash_commands", "slash_commands"),
            ("input_tokens", ""),
        ] {
            let want = if key.is_empty() {
                f["tokens"]["input"].as_i64().unwrap()
            } else {
                f[key].as_i64().unwrap()
            };
            check(col, i(&c, &s(col), &file), want);
        }
        check(
            "output_tokens",
            i(&c, &s("output_tokens"), &file),
            f["tokens"]["output"].as_i64().unwrap(),
        );
        check(
            "cache_creation_tokens",
            i(&c, &s("cache_creation_tokens"), &file),
            f["tokens"]["cache_creation"].as_i64().unwrap(),
        );
        check(
            "cache_read_tokens",
            i(&c, &s("cache_read_tokens"), &file),
            f["tokens"]["cache_read"].as_i64().unwrap(),
        );
        // Seconds to the millisecond.
        check(
            "wall_ms",
            i(&c, &s("CAST(round(wall_seconds * 1000) AS BIGINT)"), &file),
            (f["wall_seconds"].as_f64().unwrap() * 1000.0).round() as i64,
        );
        check(
            "active_ms",
            i(
                &c,
                &s("CAST(round(active_seconds * 1000) AS BIGINT)"),
                &file,
            ),
            (f["active_seconds"].as_f64().unwrap() * 1000.0).round() as i64,
        );
        for (col, key) in [("started_at", "started_at"), ("ended_at", "ended_at")] {
            let got = ms(
                &c,
                &s(&format!("strftime({col}, '%Y-%m-%dT%H:%M:%S.%g') || 'Z'")),
                &file,
            );
            let want = f[key].as_str().map(|t| t.to_string());
            if got != want {
                failures
                    .borrow_mut()
                    .push(format!("{file} {col}: got {got:?}, expected {want:?}"));
            }
        }
        let primary = ms(&c, &s("primary_model"), &file);
        if primary.as_deref() != f["primary_model"].as_str() {
            failures
                .borrow_mut()
                .push(format!("{file} primary_model: got {primary:?}"));
        }
        check(
            "responses",
            i(
                &c,
                "SELECT count(*) FROM usage_responses WHERE session_file = ? AND counted",
                &file,
            ),
            f["assistant_responses"].as_i64().unwrap(),
        );
        // Findings by type.
        let finding = |t: &str| {
            format!("SELECT count(*) FROM session_findings WHERE session_file = ? AND finding_type = '{t}'")
        };
        check(
            "user_rejection findings",
            i(&c, &finding("user_rejection"), &file),
            f["user_rejections"].as_i64().unwrap(),
        );
        check(
            "permission_denied findings",
            i(&c, &finding("permission_denied"), &file),
            f["permission_denials"].as_i64().unwrap(),
        );
        check(
            "loop findings",
            i(&c, &finding("loop"), &file),
            f["loops"].as_i64().unwrap(),
        );
        check(
            "abrupt_end findings",
            i(&c, &finding("abrupt_end"), &file),
            f["abrupt_end"].as_bool().unwrap() as i64,
        );
        let errors_not_rejection_or_denial = f["tool_errors"].as_i64().unwrap()
            - f["user_rejections"].as_i64().unwrap()
            - f["permission_denials"].as_i64().unwrap();
        check(
            "tool_error findings",
            i(&c, &finding("tool_error"), &file),
            errors_not_rejection_or_denial,
        );
        // Tools and slash commands, from the event rows.
        let mut stmt = c
            .prepare("SELECT tool_name, count(*) FROM usage_events WHERE session_file = ? AND tool_name IS NOT NULL GROUP BY 1")
            .unwrap();
        let tools: BTreeMap<String, i64> = stmt
            .query_map([&file], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let want_tools: BTreeMap<String, i64> = f["tools"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
            .collect();
        if tools != want_tools {
            failures.borrow_mut().push(format!(
                "{file} tools: got {tools:?}, expected {want_tools:?}"
            ));
        }
        let mut stmt = c
            .prepare("SELECT '/' || command_name, count(*) FROM usage_events WHERE session_file = ? AND event_type = 'slash_command' GROUP BY 1")
            .unwrap();
        let slash: BTreeMap<String, i64> = stmt
            .query_map([&file], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let want_slash: BTreeMap<String, i64> = f["slash_command_names"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
            .collect();
        if slash != want_slash {
            failures.borrow_mut().push(format!(
                "{file} slash commands: got {slash:?}, expected {want_slash:?}"
            ));
        }
        // Tokens by model.
        for (model, t) in f["tokens_by_model"].as_object().unwrap() {
            let got = c
                .query_row(
                    "SELECT sum(input_tokens), sum(output_tokens) FROM usage_responses WHERE session_file = ? AND model = ? AND counted",
                    [&file, model],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                )
                .unwrap();
            if got != (t["input"].as_i64().unwrap(), t["output"].as_i64().unwrap()) {
                failures
                    .borrow_mut()
                    .push(format!("{file} tokens of {model}: got {got:?}"));
            }
        }
    }
    // The daily per-model rollup.
    for (day, models) in expected["daily"].as_object().unwrap() {
        for (model, t) in models.as_object().unwrap() {
            let got = c
                .query_row(
                    "SELECT input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens FROM usage_tokens_daily
                     WHERE day = CAST(? AS DATE) AND model = ?",
                    [day, model],
                    |r| Ok([r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?]),
                )
                .unwrap();
            let want =
                ["input", "output", "cache_creation", "cache_read"].map(|k| t[k].as_i64().unwrap());
            if got != want {
                failures.borrow_mut().push(format!(
                    "daily {day} {model}: got {got:?}, expected {want:?}"
                ));
            }
        }
    }
    let failures = failures.into_inner();
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn an_unchanged_corpus_is_not_read_again_and_a_grown_file_is_replaced_not_added() {
    let (dir, sessions) = fixture_corpus();
    let db = Db::open(&dir.path().join("glassbox.duckdb"), &DbOptions::default()).unwrap();
    let first = ingest(&db, &sessions, Processors::ALL);
    let c = db.connect().unwrap();
    let events = i(&c, "SELECT count(*) FROM usage_events WHERE ? = 'x'", "x");
    let again = ingest(&db, &sessions, Processors::ALL);
    assert_eq!(again.files_changed, 0);
    assert_eq!(again.bytes, 0);
    assert_eq!(
        i(&c, "SELECT count(*) FROM usage_events WHERE ? = 'x'", "x"),
        events
    );
    // Append a Bash call to one file: only it is parsed, and its rows replaced.
    let path = sessions.join(USER_DIR).join("simple_bash.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(r#"{"type":"assistant","isSidechain":false,"sessionId":"s","timestamp":"2026-09-01T09:30:00.000Z","requestId":"req_new","message":{"id":"msg_new","model":"claude-opus-4-7","role":"assistant","content":[{"type":"tool_use","id":"toolu_new","name":"Bash","input":{"command":"ls"}}],"usage":{"input_tokens":1,"output_tokens":2,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}"#);
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    let grown = ingest(&db, &sessions, Processors::ALL);
    assert_eq!(grown.files_changed, 1);
    assert_eq!(
        i(&c, "SELECT count(*) FROM usage_events WHERE ? = 'x'", "x"),
        events + 1
    );
    assert_eq!(
        i(
            &c,
            "SELECT tool_calls FROM usage_session_summary WHERE session_file = ?",
            "fixture.user/simple_bash.jsonl"
        ),
        2
    );
    assert!(first.events > 0);
}

#[test]
fn a_processor_version_bump_reprocesses_and_pending_rollups_survive_a_crash() {
    let (dir, sessions) = fixture_corpus();
    let db = Db::open(&dir.path().join("glassbox.duckdb"), &DbOptions::default()).unwrap();
    ingest(&db, &sessions, Processors::ALL);
    let c = db.connect().unwrap();
    let daily = i(
        &c,
        "SELECT sum(output_tokens) FROM usage_tokens_daily WHERE ? = 'x'",
        "x",
    );
    // Simulate a crash after files were written but before the rebuild: the
    // rollups are gone and the work is still owed.
    c.execute_batch(
        "DELETE FROM usage_tokens_daily; DELETE FROM usage_tool_daily;
         INSERT INTO ingest_pending VALUES ('user', 'fixture.user'), ('day', '2026-09-01');
         UPDATE session_processor_state SET processor_version = 0 WHERE processor_name = 'failure_scan';",
    )
    .unwrap();
    let report = ingest(&db, &sessions, Processors::ALL);
    assert_eq!(
        report.files_changed, 17,
        "the failure_scan version changed for every file"
    );
    assert_eq!(
        i(
            &c,
            "SELECT sum(output_tokens) FROM usage_tokens_daily WHERE ? = 'x'",
            "x"
        ),
        daily
    );
    assert!(
        i(
            &c,
            "SELECT count(*) FROM usage_tool_daily WHERE ? = 'x'",
            "x"
        ) > 0
    );
    assert_eq!(
        i(&c, "SELECT count(*) FROM ingest_pending WHERE ? = 'x'", "x"),
        0
    );
}

#[test]
fn a_response_copied_into_two_files_of_one_user_counts_once() {
    let (dir, sessions) = fixture_corpus();
    let user = sessions.join(USER_DIR);
    std::fs::copy(
        user.join("simple_bash.jsonl"),
        user.join("zz_copy_of_simple_bash.jsonl"),
    )
    .unwrap();
    let db = Db::open(&dir.path().join("glassbox.duckdb"), &DbOptions::default()).unwrap();
    ingest(&db, &sessions, Processors::ALL);
    let c = db.connect().unwrap();
    let (orig, copy) = (
        i(
            &c,
            "SELECT output_tokens FROM usage_session_summary WHERE session_file = ?",
            "fixture.user/simple_bash.jsonl",
        ),
        i(
            &c,
            "SELECT output_tokens FROM usage_session_summary WHERE session_file = ?",
            "fixture.user/zz_copy_of_simple_bash.jsonl",
        ),
    );
    assert!(orig > 0);
    assert_eq!(
        copy, 0,
        "ties go to the earliest timestamp, then the smallest session_file"
    );
    let day = i(
        &c,
        "SELECT output_tokens FROM usage_tokens_daily WHERE day = CAST(? AS DATE)",
        "2026-09-01",
    );
    assert_eq!(day, orig);
}

#[test]
fn garbage_binary_and_empty_files_are_skipped_and_the_others_still_processed() {
    let (dir, sessions) = fixture_corpus();
    let user = sessions.join(USER_DIR);
    std::fs::write(user.join("empty.jsonl"), b"").unwrap();
    std::fs::write(
        user.join("binary.jsonl"),
        (0..=255u8).cycle().take(100_000).collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::write(
        user.join("garbage.jsonl"),
        "not json\n{broken\n[1,2]\n\"str\"\n",
    )
    .unwrap();
    let big_line = format!("{{\"type\":\"user\",\"timestamp\":\"2026-09-01T10:00:00Z\",\"message\":{{\"role\":\"user\",\"content\":\"{}\"}}}}\n", "x".repeat(5 * 1024 * 1024));
    std::fs::write(user.join("one_big_line.jsonl"), big_line).unwrap();
    std::fs::create_dir_all(user.join("nested")).unwrap();
    std::fs::write(user.join("nested/ignored.jsonl"), "{}\n").unwrap();
    let db = Db::open(&dir.path().join("glassbox.duckdb"), &DbOptions::default()).unwrap();
    let report = ingest(&db, &sessions, Processors::ALL);
    assert_eq!(report.files_seen, 21, "nested folders are ignored");
    assert_eq!(report.files_failed, 0);
    let c = db.connect().unwrap();
    assert_eq!(
        i(
            &c,
            "SELECT count(*) FROM usage_session_summary WHERE ? = 'x'",
            "x"
        ),
        21
    );
    assert_eq!(
        i(
            &c,
            "SELECT malformed_lines FROM usage_session_summary WHERE session_file = ?",
            "fixture.user/garbage.jsonl"
        ),
        4
    );
    assert_eq!(
        i(
            &c,
            "SELECT lines FROM usage_session_summary WHERE session_file = ?",
            "fixture.user/one_big_line.jsonl"
        ),
        1
    );
    assert_eq!(
        i(
            &c,
            "SELECT count(*) FROM usage_session_summary WHERE session_file = ? AND tool_calls > 0",
            "fixture.user/simple_bash.jsonl"
        ),
        1
    );
}
