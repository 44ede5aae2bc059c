//! Demo and scale data: realistic users, audit rows and sync runs, generated
//! relative to now with set-based SQL (10 M audit rows in seconds).
//!
//! Everything is deterministic given the row number (DuckDB `hash(i, salt)`
//! picks values), so two runs differ only by the clock.

use std::path::Path;

use anyhow::Context;
use duckdb::{params, Connection};

use crate::accounts::{self, CreateUser};
use crate::audit::{result_class_sql, source_sql};
use crate::auth::{password, Role};
use crate::db::Db;
use crate::repo::users::{self, NewUser};

pub const DEMO_ADMIN_EMAIL: &str = "admin@example.com";
pub const DEMO_ANALYST_EMAIL: &str = "alice.novak@example.com";
pub const DEMO_PASSWORD: &str = "glassbox-demo";

const MARKER: &str = ".glassbox-generated";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirKind {
    Demo,
    Synth,
}

impl DirKind {
    fn as_str(self) -> &'static str {
        match self {
            DirKind::Demo => "demo",
            DirKind::Synth => "synth",
        }
    }
}

/// Makes `dir` ready for fresh generated data. A dir holding only our own
/// earlier output (it has the marker) is emptied; an empty or missing dir is
/// used; anything else is refused, so no real data is ever overwritten.
pub fn prepare_dir(dir: &Path, kind: DirKind) -> anyhow::Result<()> {
    if dir.exists() {
        let marker = dir.join(MARKER);
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("while reading {}", dir.display()))?;
        if marker.exists() {
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if path.is_dir() && !path.is_symlink() {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
            }
        } else if entries.next().is_some() {
            anyhow::bail!(
                "--data-dir: {} holds files that `glassbox {}` did not make; pick an empty or new directory",
                dir.display(),
                kind.as_str()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    std::fs::write(dir.join(MARKER), kind.as_str())?;
    Ok(())
}

/// People of the demo: (first last, role). Local-parts match the corpus
/// generator's usernames, so demo transcripts map onto these users.
const PEOPLE: &[(&str, Role)] = &[
    ("Alice Novak", Role::Analyst),
    ("Bruno Silva", Role::Analyst),
    ("Chen Wang", Role::Analyst),
    ("Dana Kowalski", Role::Admin),
    ("Emil Berg", Role::Analyst),
    ("Farah Haddad", Role::Analyst),
    ("Gustav Lindqvist", Role::Analyst),
    ("Hana Sato", Role::Admin),
    ("Ivan Petrov", Role::Analyst),
    ("Jonas Meyer", Role::Analyst),
    ("Keiko Tanaka", Role::Analyst),
];

fn email_of(name: &str) -> String {
    format!("{}@example.com", name.to_lowercase().replace(' ', "."))
}

/// Creates the demo users (one shared password hash: argon2 is slow on purpose)
/// and returns their ids, people first.
pub(crate) fn make_users(conn: &Connection, extra: usize) -> anyhow::Result<Vec<String>> {
    let hash = password::hash(DEMO_PASSWORD)?;
    let mut ids = Vec::new();
    let admin = accounts::create_user(
        conn,
        CreateUser {
            email: DEMO_ADMIN_EMAIL.into(),
            name: Some("Demo Admin".into()),
            password: None,
            role: Role::Admin,
        },
    )?;
    users::update(
        conn,
        &admin.id,
        &users::UserPatch {
            password_hash: Some(hash.clone()),
            ..Default::default()
        },
        None,
    )?;
    ids.push(admin.id);
    let mut people: Vec<(String, Role)> = PEOPLE.iter().map(|(n, r)| (n.to_string(), *r)).collect();
    for i in 0..extra {
        people.push((format!("Synthetic User{i:04}"), Role::Analyst));
    }
    for (name, role) in &people {
        let id = uuid::Uuid::new_v4().to_string();
        users::insert(
            conn,
            &NewUser {
                id: &id,
                email: &email_of(name),
                name: Some(name),
                role: *role,
                password_hash: Some(&hash),
            },
        )?;
        ids.push(id);
    }
    let bot = accounts::create_user(
        conn,
        CreateUser {
            email: "ingest-bot@example.com".into(),
            name: Some("Ingest bot".into()),
            password: None,
            role: Role::Service,
        },
    )?;
    ids.push(bot.id);
    Ok(ids)
}

/// Audit rows spread over the last `days` days, oldest first (the table stays in
/// time order, which keeps zone maps tight), with varied actions, results,
/// sources, durations and correlation ids.
pub(crate) fn make_audit(
    conn: &Connection,
    user_ids: &[String],
    rows: u64,
    days: u32,
) -> anyhow::Result<()> {
    if rows == 0 {
        return Ok(());
    }
    let users_list = format!(
        "[{}]",
        user_ids
            .iter()
            .map(|u| format!("'{}'", u.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // (action, weight). Scheduler actions carry no user and no client kind.
    let actions = [
        ("table.read", 30),
        ("query.run", 25),
        ("auth.login", 6),
        ("data.download", 5),
        ("session.upload", 6),
        ("knowledge_item.update", 3),
        ("sync.trigger", 2),
        ("token.create", 1),
        ("user.update", 1),
        ("marketplace.install", 1),
        ("activity.read", 4),
        ("run_session_processor:usage", 6),
        ("run_session_processor:failure_scan", 6),
        ("maintenance.prune", 1),
        ("marketplace.sync_all", 3),
    ];
    let mut weighted = Vec::new();
    for (a, w) in actions {
        for _ in 0..w {
            weighted.push(format!("'{a}'"));
        }
    }
    let action_list = format!("[{}]", weighted.join(", "));
    let tables = "['orders', 'customers', 'invoices', 'events', 'sessions', 'products', 'payments', 'refunds', 'leads', 'campaigns']";
    let sql = format!(
        "INSERT INTO audit_log
         WITH base AS (
           SELECT i,
                  (now()::TIMESTAMP - INTERVAL {days} DAY)
                    + to_microseconds(CAST(i * {step_us} + (hash(i, 'j') % {jitter_us}) AS BIGINT)) AS ts,
                  {action_list}[1 + (hash(i, 'a') % {n_actions})::INTEGER] AS action,
                  hash(i, 'r') % 1000 AS r,
                  hash(i, 'k') % 100 AS k
           FROM range({rows}) t(i)
         ), shaped AS (
           SELECT *,
             (action LIKE 'run\\_%' ESCAPE '\\' OR action LIKE 'maintenance.%' OR action = 'marketplace.sync_all') AS sched
           FROM base
         ), rowsx AS (
           SELECT *,
             CASE WHEN sched THEN NULL
                  ELSE {users_list}[1 + (hash(i, 'u') % {n_users})::INTEGER] END AS user_id,
             CASE WHEN sched THEN NULL
                  WHEN action = 'session.upload' THEN 'cli'
                  WHEN k < 55 THEN 'web' WHEN k < 85 THEN 'cli' WHEN k < 95 THEN 'agent' ELSE 'external' END AS client_kind,
             CASE WHEN r < 880 THEN 'success'
                  WHEN r < 940 THEN 'error.' || ['400', '500', '404', '409', 'timeout'][1 + (hash(i, 'e') % 5)::INTEGER]
                  WHEN r < 975 THEN (CASE WHEN action = 'auth.login' THEN 'invalid_password' ELSE 'denied' END)
                  WHEN r < 990 THEN NULL ELSE 'partial' END AS result,
             {tables}[1 + (hash(i, 't') % 10)::INTEGER] AS tbl
           FROM shaped
         )
         , final AS (
         SELECT
           format('{{:08x}}-{{:04x}}-7{{:03x}}-{{:04x}}-{{:012x}}',
                  (epoch_ms(ts) // 65536)::BIGINT, (epoch_ms(ts) % 65536)::BIGINT,
                  (i % 4096)::BIGINT, (32768 + (i // 4096) % 16384)::BIGINT, (hash(i, 'id') % 281474976710656)::BIGINT) AS id,
           ts,
           user_id,
           action,
           CASE WHEN action IN ('table.read', 'query.run', 'data.download', 'sync.trigger') THEN 'table:' || tbl
                WHEN action = 'knowledge_item.update' THEN 'knowledge_item:ki-' || (hash(i, 'ki') % 300)::VARCHAR
                WHEN action = 'token.create' THEN 'token:' || (hash(i, 'tok') % 100000)::VARCHAR
                WHEN action = 'user.update' THEN 'user:' || {users_list}[1 + (hash(i, 'uu') % {n_users})::INTEGER]
                WHEN action LIKE 'marketplace.%' THEN 'marketplace:' || ['analytics-kit', 'sql-helpers', 'viz-pack'][1 + (hash(i, 'm') % 3)::INTEGER]
                WHEN action = 'session.upload' THEN 'session:' || (hash(i, 's') % 100000)::VARCHAR || '.jsonl'
                ELSE NULL END AS resource,
           CASE WHEN action = 'query.run' THEN json_object('sql', 'SELECT * FROM ' || tbl || ' WHERE id = ' || (hash(i, 'q') % 9999)::VARCHAR, 'rows', (hash(i, 'n') % 5000)::INTEGER)
                WHEN action IN ('table.read', 'data.download') THEN json_object('table', tbl, 'rows', (hash(i, 'n') % 100000)::INTEGER)
                WHEN action = 'session.upload' THEN json_object('filename', (hash(i, 's') % 100000)::VARCHAR || '.jsonl', 'bytes', (hash(i, 'b') % 5000000)::INTEGER)
                WHEN action LIKE 'run\\_%' ESCAPE '\\' THEN json_object('files', (hash(i, 'f') % 40)::INTEGER, 'events', (hash(i, 'ev') % 4000)::INTEGER)
                WHEN action = 'user.update' THEN json_object('role', 'analyst')
                ELSE json_object() END AS params,
           result,
           CASE WHEN k < 80 OR sched THEN (3 + pow((hash(i, 'd') % 1000) / 1000.0, 4) * (CASE WHEN sched THEN 60000 ELSE 4000 END))::INTEGER ELSE NULL END AS duration_ms,
           CASE WHEN action = 'user.update' THEN json_object('role', 'viewer') ELSE NULL END AS params_before,
           CASE WHEN sched THEN NULL ELSE '10.' || (hash(i, 'ip1') % 4)::VARCHAR || '.' || (hash(i, 'ip2') % 250)::VARCHAR || '.' || (1 + hash(i, 'ip3') % 250)::VARCHAR END AS client_ip,
           client_kind,
           'req-' || (i // 3)::VARCHAR AS correlation_id,
           NULL AS event_id,
           ({rc})::result_class AS result_class,
           ({src})::audit_source AS source
         FROM rowsx)
         SELECT *, {prefix}, md5_number_lower(user_id) FROM final",
        // Jitter stays below the step, so row order is time order and the
        // insert needs no sort (range() output keeps its order).
        step_us = (days as f64 * 86_400_000_000.0 / rows as f64).max(1.0),
        jitter_us = ((days as f64 * 86_400_000_000.0 / rows as f64) as u64).max(1),
        n_actions = weighted.len(),
        n_users = user_ids.len(),
        rc = result_class_sql("result"),
        prefix = crate::audit::resource_prefix_sql("resource"),
        src = source_sql("client_kind", "action", "user_id"),
    );
    conn.execute_batch(&sql)
        .context("while generating audit rows")?;
    Ok(())
}

/// Sync runs of ten tables every ~6 hours over `days`, about 5 % failing.
fn make_sync_history(conn: &Connection, days: u32) -> anyhow::Result<()> {
    let runs = days as i64 * 4 * 10;
    conn.execute(
        "INSERT INTO sync_history
         SELECT format('sync-{:06d}', i), ['orders', 'customers', 'invoices', 'events', 'sessions', 'products', 'payments', 'refunds', 'leads', 'campaigns'][1 + (i % 10)::INTEGER],
                now()::TIMESTAMP - INTERVAL (? * 24) HOUR + to_microseconds(CAST(i * 6 * 3600000000.0 / 10 AS BIGINT)),
                (hash(i, 'rows') % 2000000)::BIGINT, (200 + hash(i, 'dur') % 90000)::INTEGER,
                CASE WHEN hash(i, 'st') % 100 < 5 THEN 'error' ELSE 'ok' END,
                CASE WHEN hash(i, 'st') % 100 < 5 THEN 'upstream timeout after 90 s' ELSE NULL END
         FROM range(?) t(i)",
        params![days as i64, runs],
    )?;
    Ok(())
}

/// The demo: a dozen people of both roles and a service account, 30 days of
/// audit rows and sync runs, and a month of transcripts ending now, copied
/// under each person's email local-part and ingested. Returns a summary.
pub fn demo(
    db: &Db,
    session_dir: &Path,
    prices: &crate::ingest::pricing::Prices,
) -> anyhow::Result<String> {
    let mut conn = db.connect()?;
    let ids = make_users(&conn, 0)?;
    let audit_rows = 60_000;
    make_audit(&conn, &ids, audit_rows, 30)?;
    make_sync_history(&conn, 30)?;
    let reports = crate::feedback::demo::seed(&conn, &ids, chrono::Utc::now().naive_utc())?;
    crate::repo::audit::rollup::rebuild(&mut conn, chrono::Utc::now().naive_utc())?;
    let people: Vec<String> = PEOPLE
        .iter()
        .map(|(n, _)| {
            email_of(n)
                .split('@')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let spec = crate::synth_transcripts::DemoCorpusSpec::demo(people, chrono::Utc::now());
    let corpus = crate::synth_transcripts::generate(session_dir, &spec)
        .context("while writing demo transcripts")?;
    let report = crate::ingest::runner::run(
        &mut conn,
        &crate::ingest::runner::RunOptions {
            session_dir,
            batch_bytes: 256 << 20,
            one_batch_backfill: true,
            prices,
            retention_days: 0,
            processors: crate::ingest::runner::Processors::ALL,
            threads: 2,
        },
    )?;
    Ok(format!(
        "{} users, {audit_rows} audit rows over 30 days, sync runs, {reports} feedback reports, {} transcripts ({:.0} MB, {} tool events, {} findings)",
        ids.len(),
        corpus.files,
        corpus.bytes as f64 / 1e6,
        report.events,
        report.findings
    ))
}

/// Scale data for benchmarks: `audit_rows` rows over `days`, 200 users.
pub fn scale(db: &Db, audit_rows: u64, days: u32) -> anyhow::Result<String> {
    anyhow::ensure!(days >= 1, "--days: must be at least 1");
    let mut conn = db.connect()?;
    let ids = make_users(&conn, 188)?;
    make_audit(&conn, &ids, audit_rows, days)?;
    make_sync_history(&conn, days)?;
    crate::repo::audit::rollup::rebuild(&mut conn, chrono::Utc::now().naive_utc())?;
    conn.execute_batch("CHECKPOINT")?;
    Ok(format!(
        "{} users, {audit_rows} audit rows over {days} days",
        ids.len()
    ))
}

/// `n` usage API events (`app_events`) over the last `days` days in time
/// order, as the writer would have stored them, from the users already in
/// the database; set-based SQL, so tens of millions take seconds.
pub fn app_events(db: &Db, n: u64, days: u32) -> anyhow::Result<String> {
    anyhow::ensure!(days >= 1, "--days: must be at least 1");
    if n == 0 {
        return Ok(String::new());
    }
    let conn = db.connect()?;
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM users ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(!ids.is_empty(), "app events need users to belong to");
    // A literal list: a list column joined to every row would be copied per row.
    let users_list = format!(
        "[{}]",
        ids.iter()
            .map(|u| format!("'{}'", u.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let step_us = (days as u64 * 86_400_000_000 / n).max(1);
    // (event type, weight) of a platform where most activity is NL→SQL.
    let types = [
        ("sql_generation", 35),
        ("sql_execution", 33),
        ("dashboard_publish", 4),
        ("spreadsheet_formula", 10),
        ("ui.page_view", 15),
        ("policy.hit", 3),
    ];
    let weighted: Vec<String> = types
        .iter()
        .flat_map(|(t, w)| std::iter::repeat_n(format!("'{t}'"), *w))
        .collect();
    let sql = format!(
        "INSERT INTO app_events
         WITH base AS (
           SELECT i,
                  (now()::TIMESTAMP - INTERVAL {days} DAY) + to_microseconds(CAST(i * {step_us} AS BIGINT)) AS ts,
                  [{types}][1 + (hash(i, 't') % {n_types})::INTEGER] AS event_type,
                  {users_list}[1 + (hash(i, 'u') % {n_users})::INTEGER] AS user_id
           FROM range({n}) r(i)
         )
         SELECT format('{{:08x}}-{{:04x}}-7{{:03x}}-{{:04x}}-{{:012x}}',
                       (epoch_ms(ts) // 65536)::BIGINT, (epoch_ms(ts) % 65536)::BIGINT,
                       (i % 4096)::BIGINT, (32768 + (i // 4096) % 16384)::BIGINT,
                       (hash(i, 'id') % 281474976710656)::BIGINT),
                user_id,
                event_type,
                CASE event_type
                  WHEN 'sql_generation' THEN json_object('question', 'question ' || (hash(i, 'q') % 5000)::VARCHAR)
                  WHEN 'sql_execution' THEN json_object('rows', (hash(i, 'n') % 10000)::VARCHAR)
                  WHEN 'dashboard_publish' THEN json_object('dashboard_id', 'dash-' || (hash(i, 'd') % 200)::VARCHAR,
                                                            'adapter', ['metabase', 'superset', 'looker'][1 + (hash(i, 'a') % 3)::INTEGER])
                  WHEN 'spreadsheet_formula' THEN json_object('project_id', 'p-' || (hash(i, 'p') % 50)::VARCHAR)
                  ELSE json_object() END::VARCHAR,
                ['sql-service', 'dashboards', 'spreadsheets', 'web'][1 + (hash(i, 's') % 4)::INTEGER],
                ts
         FROM base",
        types = weighted.join(", "),
        n_types = weighted.len(),
        n_users = ids.len(),
    );
    conn.execute_batch(&sql)?;
    crate::repo::app_events::rebuild_daily(&conn)?;
    conn.execute_batch("CHECKPOINT")?;
    Ok(format!("{n} app events over {days} days"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_audit_rows_are_classified_like_the_rust_rules_and_in_time_order() {
        let db = Db::open_in_memory().unwrap();
        let conn = db.connect().unwrap();
        let ids = make_users(&conn, 0).unwrap();
        make_audit(&conn, &ids, 5_000, 30).unwrap();
        let mut stmt = conn
            .prepare("SELECT result, client_kind, action, user_id, result_class::VARCHAR, source::VARCHAR FROM audit_log")
            .unwrap();
        #[allow(clippy::type_complexity)]
        let rows: Vec<(
            Option<String>,
            Option<String>,
            String,
            Option<String>,
            String,
            String,
        )> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 5_000);
        for (result, kind, action, user, rc, src) in &rows {
            assert_eq!(rc, crate::audit::classify_result(result.as_deref()));
            assert_eq!(
                src,
                crate::audit::classify_source(kind.as_deref(), action, user.as_deref())
            );
        }
        let distinct: i64 = conn
            .query_row(
                "SELECT count(DISTINCT source) + count(DISTINCT result_class) FROM audit_log",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(distinct >= 8, "varied sources and classes, got {distinct}");
        let (ordered, span_days): (bool, i64) = conn
            .query_row(
                "SELECT bool_and(ts >= prev), date_diff('day', min(ts), max(ts)) FROM
                   (SELECT timestamp AS ts, lag(timestamp, 1, timestamp) OVER (ORDER BY rowid) AS prev FROM audit_log)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(ordered);
        assert!((29..=30).contains(&span_days));
    }

    #[test]
    fn a_dir_with_foreign_files_is_refused_and_our_own_output_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious.txt"), "x").unwrap();
        assert!(prepare_dir(dir.path(), DirKind::Demo)
            .unwrap_err()
            .to_string()
            .contains("did not make"));
        assert!(dir.path().join("precious.txt").exists());
        let ours = dir.path().join("demo");
        prepare_dir(&ours, DirKind::Demo).unwrap();
        std::fs::write(ours.join("glassbox.duckdb"), "old").unwrap();
        prepare_dir(&ours, DirKind::Synth).unwrap();
        assert!(!ours.join("glassbox.duckdb").exists());
    }

    #[test]
    fn generated_app_events_are_valid_time_ordered_and_belong_to_users() {
        let db = Db::open_in_memory().unwrap();
        let conn = db.connect().unwrap();
        make_users(&conn, 3).unwrap();
        app_events(&db, 2_000, 30).unwrap();
        let (n, orphans, bad_types, disorder): (i64, i64, i64, i64) = conn
            .query_row(
                "SELECT count(*),
                        count(*) FILTER (WHERE user_id NOT IN (SELECT id FROM users)),
                        count(*) FILTER (WHERE NOT regexp_full_match(event_type, '[a-z0-9_.:-]{1,64}')),
                        (SELECT count(*) FROM (SELECT created_at < lag(created_at) OVER (ORDER BY id) AS back FROM app_events) WHERE back)
                 FROM app_events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!((n, orphans, bad_types, disorder), (2_000, 0, 0, 0));
        let rows: i64 = conn
            .query_row(
                "SELECT count(*) FROM app_events WHERE event_type = 'sql_execution' AND TRY_CAST(json_extract_string(metadata, '$.rows') AS BIGINT) IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(rows > 0);
    }
}
