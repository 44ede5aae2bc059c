//! The `sync_history` table: table sync runs reported by producers.

use chrono::NaiveDateTime;
use duckdb::{params, params_from_iter, Connection};
use serde::Serialize;

use super::sql::{text, time_range, ts_value};

/// One sync run, with the fields Agnes's CLI reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncRun {
    pub id: String,
    pub table_id: String,
    #[serde(serialize_with = "crate::isotime::ser")]
    pub synced_at: NaiveDateTime,
    pub rows: Option<i64>,
    pub duration_ms: Option<i64>,
    pub status: Option<String>,
    pub error: Option<String>,
}

/// Runs since `since` (and before `until`), newest first.
pub fn list(
    conn: &Connection,
    since: NaiveDateTime,
    until: Option<NaiveDateTime>,
    status: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<SyncRun>> {
    let mut w = time_range("synced_at", Some(since), until);
    if let Some(s) = status {
        w.and("status = ?", [text(s)]);
    }
    let sql = format!(
        "SELECT id, table_id, synced_at, rows, duration_ms, status, error FROM sync_history
         WHERE {} ORDER BY synced_at DESC, id DESC LIMIT {limit}",
        w.sql()
    );
    let args = w.args();
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), |r| {
            Ok(SyncRun {
                id: r.get(0)?,
                table_id: r.get(1)?,
                synced_at: r.get(2)?,
                rows: r.get(3)?,
                duration_ms: r.get(4)?,
                status: r.get(5)?,
                error: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// (ok, failed) runs since `since`: `ok` is status 'ok'; any other non-empty
/// status is a failure (reference §5).
pub fn status_counts(conn: &Connection, since: NaiveDateTime) -> anyhow::Result<(i64, i64)> {
    Ok(conn.query_row(
        "SELECT count(*) FILTER (WHERE status = 'ok'),
                count(*) FILTER (WHERE status <> 'ok' AND status <> '')
         FROM sync_history WHERE synced_at >= ?",
        [ts_value(&since)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// A run to record.
#[derive(Debug, Clone)]
pub struct NewSyncRun {
    pub table_id: String,
    pub synced_at: NaiveDateTime,
    pub rows: Option<i64>,
    pub duration_ms: Option<i64>,
    pub status: String,
    pub error: Option<String>,
}

/// Writes the runs in one transaction; returns their ids (UUIDv7).
pub fn insert(conn: &mut Connection, runs: &[NewSyncRun]) -> anyhow::Result<Vec<String>> {
    let tx = conn.transaction()?;
    let mut ids = Vec::with_capacity(runs.len());
    {
        let mut stmt = tx.prepare(
            "INSERT INTO sync_history (id, table_id, synced_at, rows, duration_ms, status, error)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )?;
        for r in runs {
            let id = uuid::Uuid::now_v7().to_string();
            stmt.execute(params![
                id,
                r.table_id,
                r.synced_at,
                r.rows,
                r.duration_ms,
                r.status,
                r.error
            ])?;
            ids.push(id);
        }
    }
    tx.commit()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use chrono::Duration;

    fn run(table: &str, at: NaiveDateTime, status: &str) -> NewSyncRun {
        NewSyncRun {
            table_id: table.into(),
            synced_at: at,
            rows: Some(10),
            duration_ms: Some(5),
            status: status.into(),
            error: (status != "ok").then(|| "boom".to_string()),
        }
    }

    #[test]
    fn runs_list_newest_first_within_the_window_with_status_and_limit() {
        let db = Db::open_in_memory().unwrap();
        let mut c = db.connect().unwrap();
        let now = chrono::Utc::now().naive_utc();
        insert(
            &mut c,
            &[
                run("orders", now - Duration::hours(1), "ok"),
                run("customers", now - Duration::hours(2), "error"),
                run("old", now - Duration::hours(30), "ok"),
            ],
        )
        .unwrap();
        let day = now - Duration::hours(24);
        let all = list(&c, day, None, None, 100).unwrap();
        let names: Vec<_> = all.iter().map(|r| r.table_id.as_str()).collect();
        assert_eq!(names, ["orders", "customers"]);
        assert_eq!(list(&c, day, None, None, 1).unwrap().len(), 1);
        let failed = list(&c, day, None, Some("error"), 100).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].error.as_deref(), Some("boom"));
        assert_eq!(status_counts(&c, day).unwrap(), (1, 1));
        assert_eq!(
            list(&c, now - Duration::hours(48), Some(day), None, 100)
                .unwrap()
                .len(),
            1
        );
    }
}
