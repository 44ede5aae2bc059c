use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::db::Db;
use crate::sqlguard::{self, tests::LEGIT};

const LIMITS: Limits = Limits {
    rows: 1000,
    timeout: Duration::from_secs(1),
};

fn guarded(sql: &str, allowed: &[&str]) -> Guarded {
    sqlguard::check(sql, allowed).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn ask(conn: &Connection, sql: &str) -> Result<QueryRows, RunError> {
    run(conn, &guarded(sql, TELEMETRY_RELATIONS), &[], LIMITS)
}

#[test]
fn every_legitimate_query_of_the_guard_table_runs_on_duckdb() {
    let db = Db::open_in_memory().unwrap();
    let conn = db.connect().unwrap();
    let mut failed = Vec::new();
    for sql in LEGIT {
        let g = guarded(sql, TELEMETRY_RELATIONS);
        if let Err(e) = run(&conn, &g, &[], LIMITS) {
            failed.push(format!("{sql}\n  ran as {}\n  {e}", g.sql));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn results_are_cut_at_the_limit_and_say_so() {
    let db = Db::open_in_memory().unwrap();
    let conn = db.connect().unwrap();
    conn.execute_batch(
        "INSERT INTO usage_tool_daily (day, tool_name, source, invocations)
         SELECT DATE '2026-01-01' + i::INTEGER, 'Bash', 'builtin', i FROM range(1500) t(i)",
    )
    .unwrap();
    let all = ask(
        &conn,
        "SELECT invocations FROM usage_tool_daily ORDER BY invocations",
    )
    .unwrap();
    assert_eq!(all.rows.len(), 1000);
    assert!(all.truncated);
    assert_eq!(
        all.rows[999],
        vec![json!(999)],
        "the order of the query is kept"
    );
    let five = run(
        &conn,
        &guarded(
            "SELECT invocations FROM usage_tool_daily",
            TELEMETRY_RELATIONS,
        ),
        &[],
        Limits { rows: 5, ..LIMITS },
    )
    .unwrap();
    assert_eq!((five.rows.len(), five.truncated), (5, true));
    let exact = ask(&conn, "SELECT invocations FROM usage_tool_daily LIMIT 1000").unwrap();
    assert_eq!((exact.rows.len(), exact.truncated), (1000, false));
}

#[test]
fn an_endless_cross_join_is_interrupted_by_the_timeout() {
    let db = Db::open_in_memory().unwrap();
    let conn = db.connect().unwrap();
    let started = Instant::now();
    let err = ask(
        &conn,
        "WITH t(x) AS (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10))
         SELECT sum(a.x * b.x + c.x - d.x * e.x + f.x) FROM t a, t b, t c, t d, t e, t f, t g, t h, t i, t j, t k, t l, t m",
    )
    .unwrap_err();
    assert!(matches!(err, RunError::TimedOut(_)), "{err}");
    assert!(err.to_string().contains("stopped"), "{err}");
    // Not a timing assertion: a query of 10^13 rows would take hours.
    assert!(started.elapsed() < Duration::from_secs(60));
    // The connection is usable afterwards.
    assert!(ask(&conn, "SELECT 1 AS one").is_ok());
}

#[test]
fn a_huge_string_building_query_is_interrupted_by_the_timeout() {
    let db = Db::open_in_memory().unwrap();
    let conn = db.connect().unwrap();
    let err = ask(
        &conn,
        "WITH t(x) AS (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10))
         SELECT count(DISTINCT md5(repeat(a.x::VARCHAR, 1000) || b.x || c.x || d.x || e.x || f.x || g.x || h.x || i.x))
         FROM t a, t b, t c, t d, t e, t f, t g, t h, t i",
    )
    .unwrap_err();
    assert!(matches!(err, RunError::TimedOut(_)), "{err}");
}

#[test]
fn an_execution_error_is_reported_as_a_failure_not_a_timeout() {
    let db = Db::open_in_memory().unwrap();
    let conn = db.connect().unwrap();
    let err = ask(&conn, "SELECT no_such_column FROM usage_events").unwrap_err();
    assert!(matches!(err, RunError::Failed(_)), "{err}");
    assert!(err.to_string().contains("no_such_column"), "{err}");
}

#[test]
fn the_internal_views_show_a_person_only_their_rows_and_admins_all() {
    let db = Db::open_in_memory().unwrap();
    let conn = db.connect().unwrap();
    conn.execute_batch(
        "INSERT INTO usage_events (id, session_id, session_file, username, event_type, source, occurred_at, processor_version, user_id)
         VALUES ('e1', 's', 'u1/a.jsonl', 'ann@example.com', 'tool_use', 'builtin', TIMESTAMP '2026-01-01', 1, 'u1'),
                ('e2', 's', 'ann/b.jsonl', 'ann@example.com', 'tool_use', 'builtin', TIMESTAMP '2026-01-01', 1, NULL),
                ('e3', 's', 'u2/c.jsonl', 'bob@example.com', 'tool_use', 'builtin', TIMESTAMP '2026-01-01', 1, 'u2')",
    )
    .unwrap();
    let ann = Viewer::Person {
        user_id: "u1".into(),
        email: "ann@example.com".into(),
    };
    let sql = guarded(
        "SELECT id FROM agnes_telemetry ORDER BY id",
        INTERNAL_RELATIONS,
    );
    let mine = run(&conn, &sql, &internal_views(&ann), LIMITS).unwrap();
    assert_eq!(mine.rows, vec![vec![json!("e1")], vec![json!("e2")]]);
    let all = run(&conn, &sql, &internal_views(&Viewer::Admin), LIMITS).unwrap();
    assert_eq!(all.rows.len(), 3);
    // A quote in an identity cannot break out of the literal.
    let odd = Viewer::Person {
        user_id: "x' OR '1'='1".into(),
        email: "o'hara@example.com".into(),
    };
    let none = run(&conn, &sql, &internal_views(&odd), LIMITS).unwrap();
    assert!(none.rows.is_empty());
    // The views were the call's own: nothing is left on the connection.
    let left: i64 = conn
        .query_row(
            "SELECT count(*) FROM duckdb_views() WHERE view_name LIKE 'agnes_%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn values_become_json_of_the_natural_kind() {
    let db = Db::open_in_memory().unwrap();
    let conn = db.connect().unwrap();
    let r = ask(
        &conn,
        "SELECT 1 AS i, sum(2) AS huge, 1.5::DECIMAL(4, 2) AS dec, 0.25 AS dbl, 'x' AS s, true AS b, NULL AS n,
                TIMESTAMP '2026-09-01 10:00:00.123' AS ts, DATE '2026-09-01' AS d, [1, 2] AS l, {'a': 1} AS st",
    )
    .unwrap();
    assert_eq!(
        r.columns,
        ["i", "huge", "dec", "dbl", "s", "b", "n", "ts", "d", "l", "st"]
    );
    assert_eq!(
        r.rows[0],
        vec![
            json!(1),
            json!(2),
            json!(1.5),
            json!(0.25),
            json!("x"),
            json!(true),
            json!(null),
            json!("2026-09-01T10:00:00.123000Z"),
            json!("2026-09-01"),
            json!([1, 2]),
            json!({"a": 1}),
        ]
    );
}

#[test]
fn literals_printed_back_read_the_same_in_duckdb() {
    // A backslash escapes nothing in either parser, so a quote cannot be
    // smuggled out of a literal; E'' strings do not parse and are refused.
    let db = Db::open_in_memory().unwrap();
    let conn = db.connect().unwrap();
    let r = ask(
        &conn,
        r#"SELECT 'a\' AS a, 'b' AS b, $$c'd$$ AS c, 1 AS "e""f""#,
    )
    .unwrap();
    assert_eq!(r.columns, ["a", "b", "c", "e\"f"]);
    assert_eq!(
        r.rows[0],
        vec![json!("a\\"), json!("b"), json!("c'd"), json!(1)]
    );
    assert!(sqlguard::check(
        r"SELECT E'x\' AS a, (SELECT 1 FROM users) --'",
        TELEMETRY_RELATIONS
    )
    .is_err());
}
