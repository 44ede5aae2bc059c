//! Ingest of the hand-shaped fixtures: every figure of EXPECTED.json that
//! glassbox stores is read back from the database after a real run.

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
    ingest_in_batches(db, sessions, processors, 256 << 20)
}

fn ingest_in_batches(
    db: &Db,
    sessions: &Path,
    processors: Processors,
    batch_bytes: i64,
) -> runner::RunReport {
    let mut conn = db.connect().unwrap();
    runner::run(
        &mut conn,
        &RunOptions {
            session_dir: sessions,
            batch_bytes,
            // Below the default, batches are what the test is about.
            one_batch_backfill: batch_bytes >= 256 << 20,
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
    let failures = crate::manifest_check::compare(&c, &expected, |f| {
        format!("{USER_DIR}/{}", f["path"].as_str().unwrap())
    });
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
    let rollup_rows = i(
        &c,
        "SELECT count(*) FROM usage_events_daily WHERE ? = 'x'",
        "x",
    );
    assert!(rollup_rows > 0);
    assert_eq!(
        glassbox::repo::telemetry::rollup::mismatches(&c).unwrap(),
        0
    );
    let grown = ingest(&db, &sessions, Processors::ALL);
    assert_eq!(grown.files_changed, 1);
    // The Telemetry page's rollups follow the replaced rows exactly.
    assert_eq!(
        glassbox::repo::telemetry::rollup::mismatches(&c).unwrap(),
        0
    );
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

#[test]
fn one_file_per_transaction_gives_the_same_figures() {
    let (dir, sessions) = fixture_corpus();
    let db = Db::open(&dir.path().join("glassbox.duckdb"), &DbOptions::default()).unwrap();
    let report = ingest_in_batches(&db, &sessions, Processors::ALL, 1);
    assert_eq!(report.files_changed, 17);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("EXPECTED.json")).unwrap())
            .unwrap();
    let failures = crate::manifest_check::compare(&db.connect().unwrap(), &expected, |f| {
        format!("{USER_DIR}/{}", f["path"].as_str().unwrap())
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let staged = db
        .connect()
        .unwrap()
        .query_row("SELECT (SELECT count(*) FROM ingest_stage_summary) + (SELECT count(*) FROM ingest_stage_state)", [], |r| r.get::<_, i64>(0))
        .unwrap();
    assert_eq!(staged, 0, "staging tables are empty outside a write");
}

/// (input, output, cache creation, cache read tokens, cost) of a session.
fn figures(c: &Connection, session_file: &str) -> (i64, i64, i64, i64, f64) {
    c.query_row(
        "SELECT input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd
         FROM usage_session_summary WHERE session_file = ?",
        [session_file],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .unwrap()
}

fn run_with_retention(db: &Db, sessions: &Path, retention_days: u32) {
    let mut conn = db.connect().unwrap();
    runner::run(
        &mut conn,
        &RunOptions {
            session_dir: sessions,
            batch_bytes: 256 << 20,
            one_batch_backfill: true,
            prices: &Prices::default(),
            retention_days,
            processors: Processors::ALL,
            threads: 2,
        },
    )
    .unwrap();
}

#[test]
fn after_a_prune_old_sessions_keep_their_tokens_and_cost_through_rebuilds_and_reprocess() {
    let (dir, sessions) = fixture_corpus();
    let db = Db::open(&dir.path().join("glassbox.duckdb"), &DbOptions::default()).unwrap();
    ingest(&db, &sessions, Processors::ALL);
    let c = db.connect().unwrap();
    // The fixtures are from September 2026: a horizon after them prunes them all.
    let after_fixtures = chrono::NaiveDate::from_ymd_opt(2026, 10, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let now = chrono::Utc::now().naive_utc();
    assert!(
        now > after_fixtures,
        "the test needs a clock after the fixtures"
    );
    let days = (now - after_fixtures).num_days().max(1) as u32;
    let horizon = now - chrono::Duration::days(days as i64);
    let (old, touched): (String, String) = c
        .query_row(
            "SELECT arg_max(session_file, input_tokens + output_tokens), arg_min(session_file, input_tokens + output_tokens)
             FROM usage_session_summary WHERE cost_usd > 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_ne!(old, touched);
    let before = figures(&c, &old);
    assert!(before.0 + before.1 > 0 && before.4 > 0.0, "{before:?}");
    let summaries = i(
        &c,
        "SELECT count(*) FROM usage_session_summary WHERE ? <> ''",
        "x",
    );

    let mut conn = db.connect().unwrap();
    let (_, responses, _) = glassbox::repo::usage::prune(&mut conn, horizon, false).unwrap();
    assert!(responses > 0);
    // Another file of the same user changes: the user's figures are rebuilt.
    let touched_path = sessions.join(&touched);
    let mut text = std::fs::read_to_string(&touched_path).unwrap();
    text.push_str("\n{\"type\":\"summary\",\"summary\":\"touched\"}\n");
    std::fs::write(&touched_path, text).unwrap();
    run_with_retention(&db, &sessions, days);
    assert_eq!(figures(&c, &old), before, "an old session is not worn down");

    // A reprocess with the old file gone from disk keeps its summary too.
    glassbox::repo::usage::reprocess(&mut conn, Some(horizon), false).unwrap();
    std::fs::remove_file(sessions.join(&old)).unwrap();
    run_with_retention(&db, &sessions, days);
    assert_eq!(figures(&c, &old), before);
    assert_eq!(
        i(
            &c,
            "SELECT count(*) FROM usage_session_summary WHERE ? <> ''",
            "x"
        ),
        summaries
    );
}
