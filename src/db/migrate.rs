//! Numbered schema migrations from `migrations/`, applied in order at start-up,
//! each in its own transaction and recorded in `schema_migrations`.

use anyhow::Context;
use duckdb::Connection;

/// Every migration, in order. The number is the version it brings the schema to.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "core", include_str!("../../migrations/0001_core.sql")),
    (
        2,
        "telemetry",
        include_str!("../../migrations/0002_telemetry.sql"),
    ),
    (
        3,
        "feedback_app_events",
        include_str!("../../migrations/0003_feedback_app_events.sql"),
    ),
    (
        4,
        "audit_rollups",
        include_str!("../../migrations/0004_audit_rollups.sql"),
    ),
    (
        5,
        "app_events_daily",
        include_str!("../../migrations/0005_app_events_daily.sql"),
    ),
    (
        6,
        "usage_events_daily",
        include_str!("../../migrations/0006_usage_events_daily.sql"),
    ),
    (
        7,
        "usage_session_counts",
        include_str!("../../migrations/0007_usage_session_counts.sql"),
    ),
];

/// The newest schema version this binary knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// The version the database is at (0 for an empty one).
pub fn current_version(conn: &Connection) -> anyhow::Result<i32> {
    ensure_table(conn)?;
    let v: Option<i32> = conn.query_row("SELECT max(version) FROM schema_migrations", [], |r| {
        r.get(0)
    })?;
    Ok(v.unwrap_or(0))
}

fn ensure_table(conn: &Connection) -> anyhow::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name VARCHAR NOT NULL,
            applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );",
    )?;
    Ok(())
}

/// Applies pending migrations up to `target` (all when `None`). Returns how many ran.
pub fn apply(conn: &Connection, target: Option<i32>) -> anyhow::Result<usize> {
    let current = current_version(conn)?;
    if current > latest_version() {
        anyhow::bail!(
            "the database is at schema version {current}, newer than this glassbox ({}); upgrade glassbox",
            latest_version()
        );
    }
    let target = target.unwrap_or_else(latest_version);
    let mut ran = 0;
    for (version, name, sql) in MIGRATIONS {
        if *version <= current || *version > target {
            continue;
        }
        conn.execute_batch("BEGIN TRANSACTION")?;
        let result = conn
            .execute_batch(sql)
            .and_then(|_| {
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                    duckdb::params![version, name],
                )
            })
            .with_context(|| format!("migration {version:04}_{name} failed"));
        match result {
            Ok(_) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        tracing::info!(version, name, "applied migration");
        ran += 1;
    }
    if ran > 0 {
        // Move the schema out of the WAL at once. DuckDB 1.5.6 cannot replay a
        // WAL holding this DDL after a crash ("GetDefaultDatabase with no
        // default database set"): a process killed before its first
        // checkpoint would leave a database that no longer opens.
        conn.execute_batch("CHECKPOINT")?;
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        Connection::open_in_memory().unwrap()
    }

    #[test]
    fn applying_twice_changes_nothing() {
        let c = conn();
        assert_eq!(apply(&c, None).unwrap(), MIGRATIONS.len());
        assert_eq!(apply(&c, None).unwrap(), 0);
        assert_eq!(current_version(&c).unwrap(), latest_version());
        let n: i64 = c
            .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_database_made_at_each_earlier_version_upgrades_and_keeps_its_rows() {
        for start in 0..latest_version() {
            let c = conn();
            apply(&c, Some(start)).unwrap();
            assert_eq!(current_version(&c).unwrap(), start);
            if start >= 1 {
                c.execute_batch(
                    "INSERT INTO users (id, email, role) VALUES ('u1', 'kept@example.com', 'admin');
                     INSERT INTO audit_log (id, user_id, action, result_class, source)
                       VALUES ('a1', 'u1', 'auth.login', 'success', 'web');",
                )
                .unwrap();
            }
            apply(&c, None).unwrap();
            assert_eq!(
                current_version(&c).unwrap(),
                latest_version(),
                "from version {start}"
            );
            if start >= 1 {
                let email: String = c
                    .query_row("SELECT email FROM users WHERE id = 'u1'", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(email, "kept@example.com");
                let n: i64 = c
                    .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(n, 1);
            }
        }
    }

    #[test]
    fn a_newer_database_is_refused_with_a_clear_message() {
        let c = conn();
        apply(&c, None).unwrap();
        c.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')",
            [],
        )
        .unwrap();
        let err = apply(&c, None).unwrap_err().to_string();
        assert!(err.contains("newer than this glassbox"), "{err}");
    }
}
