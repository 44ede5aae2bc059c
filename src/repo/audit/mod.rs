//! The `audit_log` table: single rows from glassbox itself, producer batches,
//! and every read of the Audit log (timeline, KPIs, facets, health inputs,
//! export). Filters use the write-time ENUM columns `result_class` and
//! `source`; user input only ever travels as bound parameters.

use std::collections::HashSet;

use chrono::{Duration, NaiveDateTime};
use duckdb::types::Value as DbValue;
use duckdb::{params, params_from_iter, Connection};
use serde::Serialize;
use serde_json::Value;

use crate::audit::AuditEvent;

pub mod rollup;
mod stats;

pub use stats::*;

/// Appends one event as a row, columns in table order, with its write-time
/// classifications. The id is a UUIDv7, so ids sort in time order and break
/// timestamp ties in the cursor.
fn append_event(
    app: &mut duckdb::Appender<'_>,
    e: &AuditEvent,
    fallback: NaiveDateTime,
) -> anyhow::Result<String> {
    let id = uuid::Uuid::now_v7().to_string();
    app.append_row(params![
        id,
        e.timestamp.unwrap_or(fallback),
        // An empty user id means none (the rollups rely on it).
        e.user_id.as_deref().filter(|u| !u.is_empty()),
        e.action,
        e.resource,
        e.params.as_ref().map(|p| p.to_string()),
        e.result,
        e.duration_ms,
        e.params_before.as_ref().map(|p| p.to_string()),
        e.client_ip,
        e.client_kind,
        e.correlation_id,
        e.event_id,
        e.result_class(),
        e.source(),
        e.resource_prefix(),
        e.user_id
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(crate::audit::user_key),
    ])?;
    Ok(id)
}

/// Writes one row; returns its id.
pub fn log(conn: &Connection, e: &AuditEvent) -> anyhow::Result<String> {
    match e.timestamp {
        // Stamped now: always after the rollups' coverage.
        None => {
            let mut app = conn.appender("audit_log")?;
            let id = append_event(&mut app, e, now())?;
            app.flush()?;
            Ok(id)
        }
        Some(ts) => {
            let _guard = rollup::may_land_below(ts, now()).then(rollup::maintenance);
            conn.execute_batch("BEGIN")?;
            let written = (|| {
                let mut app = conn.appender("audit_log")?;
                let id = append_event(&mut app, e, ts)?;
                app.flush()?;
                drop(app);
                rollup::absorb(conn, ts, ts)?;
                Ok(id)
            })();
            match written {
                Ok(id) => {
                    conn.execute_batch("COMMIT")?;
                    Ok(id)
                }
                Err(err) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(err)
                }
            }
        }
    }
}

/// Deletes rows older than `horizon` (AUDIT_RETENTION_DAYS) and their
/// rollups; returns how many rows.
pub fn prune(conn: &mut Connection, horizon: chrono::NaiveDateTime) -> anyhow::Result<i64> {
    let _guard = rollup::maintenance();
    let tx = conn.transaction()?;
    let n = tx.execute(
        "DELETE FROM audit_log WHERE timestamp < ?",
        params![horizon],
    )? as i64;
    rollup::after_prune(&tx, horizon)?;
    tx.commit()?;
    Ok(n)
}

/// (user_id, resource, result) of one row.
pub type ActionRow = (Option<String>, Option<String>, Option<String>);

/// Rows of one action, newest first (used by tests and the users pages).
pub fn recent_actions(
    conn: &Connection,
    action: &str,
    limit: i64,
) -> anyhow::Result<Vec<ActionRow>> {
    let mut stmt = conn.prepare(
        "SELECT user_id, resource, result FROM audit_log WHERE action = ? ORDER BY timestamp DESC, id DESC LIMIT ?",
    )?;
    let rows = stmt
        .query_map(params![action, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The action of the Audit log's own reads (SPEC §4), hidden unless asked for.
pub const SELF_READ_ACTION: &str = "activity.read";
/// `q` without `since` looks back this far, so a search never scans everything.
pub const Q_DEFAULT_DAYS: i64 = 7;
/// Facet buckets are cut here (reference §1.2).
pub const FACET_LIMIT: i64 = 50;

/// Every filter of the Audit log. `None` (or, for `action_in`, `None`) means
/// "not filtered". `Default` includes self-reads, like Agnes's repository; the
/// APIs hide them unless asked.
///
/// Serialized (the APIs' `filter` echo), it gives the conditions other than
/// the window, under their parameter names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditFilter {
    #[serde(skip)]
    pub since: Option<NaiveDateTime>,
    #[serde(skip)]
    pub until: Option<NaiveDateTime>,
    pub user_id: Option<String>,
    pub action: Option<String>,
    pub action_prefix: Option<String>,
    #[serde(skip)]
    pub action_in: Option<Vec<String>>,
    pub resource: Option<String>,
    pub resource_prefix: Option<String>,
    /// A raw SQL `LIKE` pattern: the caller supplies the wildcards.
    pub result_pattern: Option<String>,
    /// One of [`crate::audit::RESULT_CLASSES`] (validated by the caller).
    pub result_class: Option<String>,
    /// One of [`crate::audit::SOURCES`] (validated by the caller).
    pub source: Option<String>,
    pub correlation_id: Option<String>,
    /// Case-insensitive substring of the params JSON.
    pub q: Option<String>,
    pub include_self_reads: bool,
    pub min_duration_ms: Option<i64>,
}

impl Default for AuditFilter {
    fn default() -> Self {
        AuditFilter {
            since: None,
            until: None,
            user_id: None,
            action: None,
            action_prefix: None,
            action_in: None,
            resource: None,
            resource_prefix: None,
            result_pattern: None,
            result_class: None,
            source: None,
            correlation_id: None,
            q: None,
            include_self_reads: true,
            min_duration_ms: None,
        }
    }
}

fn text(s: &str) -> DbValue {
    DbValue::Text(s.to_string())
}

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

pub use crate::repo::sql::{time_range, ts_value, Where};

impl AuditFilter {
    /// The lower bound actually applied: `since`, or 7 days back when only `q`
    /// would otherwise scan the whole table.
    pub fn effective_since(&self) -> Option<NaiveDateTime> {
        self.since.or_else(|| {
            self.q
                .as_ref()
                .map(|_| now() - Duration::days(Q_DEFAULT_DAYS))
        })
    }

    /// Every condition of the filter over `audit_log`.
    pub fn where_clause(&self) -> Where {
        let mut w = time_range("timestamp", self.effective_since(), self.until);
        w.extend(self.dims_where());
        w
    }

    /// The conditions other than the time window.
    pub fn dims_where(&self) -> Where {
        let mut w = Where::default();
        if let Some(v) = &self.user_id {
            // By key alone: merely reading user_id for every row of a month
            // costs ~130 ms even behind the key filter. Two ids share a key
            // with probability ~n²/2⁶⁵ (3e-8 for a million users).
            w.and(
                "user_key = ?",
                [DbValue::UBigInt(crate::audit::user_key(v))],
            );
        }
        self.common_dims(&mut w);
        if let Some(v) = &self.resource {
            w.and("resource = ?", [text(v)]);
        }
        if let Some(v) = &self.resource_prefix {
            w.and("starts_with(resource, ?)", [text(v)]);
        }
        if let Some(v) = &self.result_pattern {
            w.and("result LIKE ?", [text(v)]);
        }
        if let Some(v) = &self.correlation_id {
            w.and("correlation_id = ?", [text(v)]);
        }
        if let Some(v) = &self.q {
            w.and(
                "contains(lower(CAST(params AS VARCHAR)), lower(?))",
                [text(v)],
            );
        }
        if let Some(v) = self.min_duration_ms {
            w.and("duration_ms >= ?", [DbValue::BigInt(v)]);
        }
        w
    }

    /// The conditions on columns `audit_log` and both rollup tables share, by
    /// the same names and types: action, result class, source, self-reads.
    fn common_dims(&self, w: &mut Where) {
        if let Some(v) = &self.action {
            w.and("action = ?", [text(v)]);
        }
        if let Some(v) = &self.action_prefix {
            w.and("starts_with(action, ?)", [text(v)]);
        }
        if let Some(list) = &self.action_in {
            if list.is_empty() {
                w.and("FALSE", []);
            } else {
                let marks = vec!["?"; list.len()].join(", ");
                w.and(format!("action IN ({marks})"), list.iter().map(|a| text(a)));
            }
        }
        if let Some(v) = &self.result_class {
            w.and("result_class = CAST(? AS result_class)", [text(v)]);
        }
        if let Some(v) = &self.source {
            w.and("source = CAST(? AS audit_source)", [text(v)]);
        }
        if !self.include_self_reads {
            w.and("action <> ?", [text(SELF_READ_ACTION)]);
        }
    }
}

/// Where the next page starts: the last row's (timestamp, id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cursor {
    #[serde(serialize_with = "crate::isotime::ser")]
    pub ts: NaiveDateTime,
    pub id: String,
}

/// One timeline row: every `audit_log` column plus the user's email and name.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: String,
    #[serde(serialize_with = "crate::isotime::ser")]
    pub timestamp: NaiveDateTime,
    pub user_id: Option<String>,
    pub action: String,
    pub resource: Option<String>,
    pub params: Option<Value>,
    pub result: Option<String>,
    pub duration_ms: Option<i64>,
    pub params_before: Option<Value>,
    pub client_ip: Option<String>,
    pub client_kind: Option<String>,
    pub correlation_id: Option<String>,
    pub event_id: Option<String>,
    pub result_class: String,
    pub source: String,
    pub resource_prefix: Option<String>,
    pub user_email: Option<String>,
    pub user_name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    pub next_cursor: Option<Cursor>,
}

fn json_col(s: Option<String>) -> Option<Value> {
    s.map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)))
}

/// The `audit_log` columns of an [`AuditRow`], in its field order (JSON as text).
const ROW_COLUMNS: &str =
    "id, timestamp, user_id, action, resource, CAST(params AS VARCHAR) AS params, result,
           duration_ms, CAST(params_before AS VARCHAR) AS params_before, client_ip, client_kind,
           correlation_id, event_id, CAST(result_class AS VARCHAR) AS result_class,
           CAST(source AS VARCHAR) AS source, resource_prefix";

/// One row selected as [`ROW_COLUMNS`] followed by the user's email and name.
fn row_from(r: &duckdb::Row<'_>) -> duckdb::Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        timestamp: r.get(1)?,
        user_id: r.get(2)?,
        action: r.get(3)?,
        resource: r.get(4)?,
        params: json_col(r.get(5)?),
        result: r.get(6)?,
        duration_ms: r.get(7)?,
        params_before: json_col(r.get(8)?),
        client_ip: r.get(9)?,
        client_kind: r.get(10)?,
        correlation_id: r.get(11)?,
        event_id: r.get(12)?,
        result_class: r.get(13)?,
        source: r.get(14)?,
        resource_prefix: r.get(15)?,
        user_email: r.get(16)?,
        user_name: r.get(17)?,
    })
}

/// One row by id, with the user's email and name.
pub fn by_id(conn: &Connection, id: &str) -> anyhow::Result<Option<AuditRow>> {
    let sql = format!(
        "WITH one AS (SELECT {ROW_COLUMNS} FROM audit_log WHERE id = ?)
         SELECT one.*, u.email, u.name FROM one LEFT JOIN users u ON u.id = one.user_id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query_map([id], row_from)?;
    Ok(rows.next().transpose()?)
}

/// The columns the timeline can be sorted by besides time (a whitelist: the
/// SQL of each is fixed here, never taken from the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Action,
    User,
    Result,
    Source,
    Duration,
    Resource,
}

impl SortKey {
    pub const ALL: [(&'static str, SortKey); 6] = [
        ("action", SortKey::Action),
        ("user", SortKey::User),
        ("result", SortKey::Result),
        ("source", SortKey::Source),
        ("duration", SortKey::Duration),
        ("resource", SortKey::Resource),
    ];

    pub fn parse(s: &str) -> Option<SortKey> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, k)| *k)
    }

    fn expr(self) -> &'static str {
        match self {
            SortKey::Action => "audit_log.action",
            SortKey::User => {
                "coalesce((SELECT users.email FROM users WHERE users.id = audit_log.user_id), audit_log.user_id)"
            }
            SortKey::Result => "audit_log.result",
            SortKey::Source => "CAST(audit_log.source AS VARCHAR)",
            SortKey::Duration => "audit_log.duration_ms",
            SortKey::Resource => "audit_log.resource",
        }
    }
}

/// An offset page of the filtered rows sorted by `key` (ties newest first;
/// NULLs last either way).
pub fn query_sorted(
    conn: &Connection,
    filter: &AuditFilter,
    key: SortKey,
    descending: bool,
    offset: usize,
    limit: usize,
) -> anyhow::Result<Vec<AuditRow>> {
    let w = filter.where_clause();
    let dir = if descending { "DESC" } else { "ASC" };
    // The page's ids first (narrow columns), then their full rows.
    let sql = format!(
        "WITH ids AS (
           SELECT id, timestamp, {} AS k FROM audit_log WHERE {}
           ORDER BY k {dir} NULLS LAST, timestamp DESC, id DESC LIMIT ? OFFSET ?),
         f AS (SELECT {ROW_COLUMNS} FROM audit_log WHERE id IN (SELECT id FROM ids))
         SELECT f.*, u.email, u.name FROM f JOIN ids ON ids.id = f.id
         LEFT JOIN users u ON u.id = f.user_id
         ORDER BY ids.k {dir} NULLS LAST, f.timestamp DESC, f.id DESC",
        key.expr(),
        w.sql()
    );
    let mut args = w.args().to_vec();
    args.push(DbValue::BigInt(limit as i64));
    args.push(DbValue::BigInt(offset as i64));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), row_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A page of rows, newest first, keyset-paged on (timestamp, id) so equal
/// timestamps neither repeat nor vanish between pages.
pub fn query(
    conn: &Connection,
    filter: &AuditFilter,
    cursor: Option<&Cursor>,
    limit: usize,
) -> anyhow::Result<AuditPage> {
    let mut w = filter.where_clause();
    if let Some(c) = cursor {
        w.and(
            "(timestamp < ? OR (timestamp = ? AND id < ?))",
            [ts_value(&c.ts), ts_value(&c.ts), text(&c.id)],
        );
    }
    // The oldest timestamp the page can reach, from the one narrow column:
    // bounded by it, the full-width scan below reads only the row groups that
    // can hold the page (zone maps), 2-3x faster than sorting every wide row
    // of the window (24 h on 10 M rows: 24 -> 8 ms).
    let lowest: Option<NaiveDateTime> = conn.query_row(
        &format!(
            "SELECT min(timestamp) FROM (
               SELECT timestamp FROM audit_log WHERE {} ORDER BY timestamp DESC LIMIT ?)",
            w.sql()
        ),
        params_from_iter(
            w.args()
                .iter()
                .cloned()
                .chain([DbValue::BigInt(limit as i64 + 1)]),
        ),
        |r| r.get(0),
    )?;
    let Some(lowest) = lowest else {
        return Ok(AuditPage {
            rows: Vec::new(),
            next_cursor: None,
        });
    };
    w.and("timestamp >= ?", [ts_value(&lowest)]);
    let sql = format!(
        "WITH page AS (
           SELECT {ROW_COLUMNS}
           FROM audit_log WHERE {} ORDER BY timestamp DESC, id DESC LIMIT ?)
         SELECT page.*, u.email, u.name FROM page LEFT JOIN users u ON u.id = page.user_id
         ORDER BY page.timestamp DESC, page.id DESC",
        w.sql()
    );
    let mut args = w.args().to_vec();
    args.push(DbValue::BigInt(limit as i64 + 1));
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt
        .query_map(params_from_iter(args.iter()), row_from)?
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| Cursor {
            ts: r.timestamp,
            id: r.id.clone(),
        })
    } else {
        None
    };
    Ok(AuditPage { rows, next_cursor })
}

/// The last run of one processor found in the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorRun {
    pub action: String,
    pub at: NaiveDateTime,
    pub result_class: String,
    pub result: Option<String>,
}

/// What the health pulse reads from the database.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthInputs {
    pub last_scheduler: Option<NaiveDateTime>,
    pub sync_ok: i64,
    pub sync_fail: i64,
    pub active_users_today: i64,
    pub uploads_24h: i64,
    pub ingested_24h: i64,
    pub processors: Vec<ProcessorRun>,
}

/// How far back the health pulse looks for scheduler and processor rows
/// before falling back to a full scan (which only a long-idle scheduler needs).
pub const HEALTH_LOOKBACK_DAYS: i64 = 7;

pub fn health_inputs(
    conn: &Connection,
    now: NaiveDateTime,
    processor_actions: &[&str],
) -> anyhow::Result<HealthInputs> {
    // The last day first (a running scheduler writes every hour), a week if
    // that found nothing: the week's scan costs three times as much.
    let lookbacks = [
        now - Duration::days(1),
        now - Duration::days(HEALTH_LOOKBACK_DAYS),
    ];
    let mut last_scheduler: Option<NaiveDateTime> = None;
    for since in lookbacks {
        last_scheduler = conn.query_row(
            "SELECT max(timestamp) FROM audit_log WHERE source = 'scheduler' AND timestamp >= ?",
            [ts_value(&since)],
            |r| r.get(0),
        )?;
        if last_scheduler.is_some() {
            break;
        }
    }
    if last_scheduler.is_none() {
        last_scheduler = conn.query_row(
            "SELECT max(timestamp) FROM audit_log WHERE source = 'scheduler'",
            [],
            |r| r.get(0),
        )?;
    }
    let (sync_ok, sync_fail) =
        crate::repo::sync_history::status_counts(conn, now - Duration::hours(24))?;
    let midnight = now.date().and_hms_opt(0, 0, 0).unwrap_or(now);
    let active_users_today: i64 = conn.query_row(
        "SELECT count(DISTINCT user_key) FROM audit_log WHERE timestamp >= ? AND user_key IS NOT NULL",
        [ts_value(&midnight)],
        |r| r.get(0),
    )?;
    // An upload counts as ingested once a summary or the usage processor's
    // state is at least as new as its last upload.
    let (uploads_24h, ingested_24h): (i64, i64) = conn.query_row(
        "SELECT count(*),
                count(*) FILTER (WHERE EXISTS (
                    SELECT 1 FROM usage_session_summary s WHERE s.session_file = up.session_file
                      AND (s.extracted_at IS NULL OR s.extracted_at >= up.last_uploaded_at))
                  OR EXISTS (
                    SELECT 1 FROM session_processor_state p WHERE p.processor_name = 'usage'
                      AND p.session_file = up.session_file AND p.processed_at >= up.last_uploaded_at))
         FROM session_uploads up WHERE up.last_uploaded_at >= ?",
        [ts_value(&(now - Duration::hours(24)))],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut processors = Vec::new();
    for since in lookbacks {
        if processors.len() == processor_actions.len() {
            break;
        }
        processors = last_runs(conn, since, processor_actions)?;
    }
    Ok(HealthInputs {
        last_scheduler,
        sync_ok,
        sync_fail,
        active_users_today,
        uploads_24h,
        ingested_24h,
        processors,
    })
}

/// The last run since `since` of each of `actions` that ran, by action.
fn last_runs(
    conn: &Connection,
    since: NaiveDateTime,
    actions: &[&str],
) -> anyhow::Result<Vec<ProcessorRun>> {
    if actions.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; actions.len()].join(", ");
    let sql = format!(
        "SELECT action, max(timestamp), arg_max(CAST(result_class AS VARCHAR), timestamp), arg_max(result, timestamp)
         FROM audit_log WHERE timestamp >= ? AND action IN ({marks}) GROUP BY action ORDER BY action"
    );
    let mut args = vec![ts_value(&since)];
    args.extend(actions.iter().map(|a| text(a)));
    let mut stmt = conn.prepare(&sql)?;
    let runs = stmt
        .query_map(params_from_iter(args.iter()), |r| {
            Ok(ProcessorRun {
                action: r.get(0)?,
                at: r.get(1)?,
                result_class: r.get(2)?,
                result: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(runs)
}

/// The event ids among `ids` already written with a timestamp at or after
/// `since` (producers' idempotency window).
pub fn existing_event_ids(
    conn: &Connection,
    ids: &[String],
    since: NaiveDateTime,
) -> anyhow::Result<HashSet<String>> {
    let mut found = HashSet::new();
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT DISTINCT event_id FROM audit_log WHERE timestamp >= ? AND event_id IN ({marks})"
        );
        let mut args = vec![ts_value(&since)];
        args.extend(chunk.iter().map(|s| text(s)));
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(0))?;
        for r in rows {
            found.insert(r?);
        }
    }
    Ok(found)
}

/// Appends producer events in one transaction: all rows or none.
pub fn insert_batch(conn: &mut Connection, events: &[AuditEvent]) -> anyhow::Result<Vec<String>> {
    let stamps = events.iter().filter_map(|e| e.timestamp);
    let oldest_newest = stamps.clone().min().zip(stamps.max());
    let _guard = oldest_newest
        .is_some_and(|(oldest, _)| rollup::may_land_below(oldest, now()))
        .then(rollup::maintenance);
    let tx = conn.transaction()?;
    let mut ids = Vec::with_capacity(events.len());
    {
        let mut app = tx.appender("audit_log")?;
        let fallback = now();
        for e in events {
            ids.push(append_event(&mut app, e, fallback)?);
        }
        app.flush()?;
    }
    if let Some((oldest, newest)) = oldest_newest {
        rollup::absorb(&tx, oldest, newest)?;
    }
    tx.commit()?;
    Ok(ids)
}

/// The export's columns: every `audit_log` column in table order (but the
/// internal `user_key`), then the user's email and name.
pub fn export_header(conn: &Connection) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = export_columns(conn)?.into_iter().map(|(n, _)| n).collect();
    names.push("user_email".into());
    names.push("user_name".into());
    Ok(names)
}

fn export_columns(conn: &Connection) -> anyhow::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT column_name, data_type FROM information_schema.columns
         WHERE table_name = 'audit_log' AND table_schema = 'main'
           AND column_name <> 'user_key' ORDER BY ordinal_position",
    )?;
    let cols = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(cols)
}

/// Streams the filtered rows oldest first into `sink`, every value as text
/// (timestamps ISO 8601 UTC, JSON as its text), columns named as in
/// [`export_header`]. DuckDB's streaming result keeps memory bounded
/// whatever the size. Returns the rows.
pub fn export(
    conn: &Connection,
    filter: &AuditFilter,
    sink: &mut dyn crate::repo::sql::BatchSink,
) -> anyhow::Result<u64> {
    let cols = export_columns(conn)?;
    let mut select: Vec<String> = cols
        .iter()
        .map(|(name, ty)| {
            let q = format!("a.\"{}\"", name.replace('"', "\"\""));
            if ty.starts_with("TIMESTAMP") {
                format!(
                    "strftime({q}, '%Y-%m-%dT%H:%M:%S.%fZ') AS {q_name}",
                    q_name = &q[2..]
                )
            } else {
                format!("CAST({q} AS VARCHAR) AS {q_name}", q_name = &q[2..])
            }
        })
        .collect();
    select.push("u.email AS user_email".into());
    select.push("u.name AS user_name".into());
    let w = filter.where_clause();
    // The filter's columns are unqualified; only audit_log has them, but
    // `id` is in users too, so the filter runs in a subquery.
    let sql = format!(
        "SELECT {} FROM (SELECT * FROM audit_log WHERE {}) a LEFT JOIN users u ON u.id = a.user_id
         ORDER BY a.timestamp, a.id",
        select.join(", "),
        w.sql()
    );
    crate::repo::sql::stream_query(conn, &sql, w.args(), sink)
}

#[cfg(test)]
mod tests {
    /// Hands an export's rows, as text, to a closure one at a time; the
    /// closure answers `false` to stop.
    struct RowSink<F> {
        f: F,
        taken: u64,
    }

    impl<F> RowSink<F> {
        fn new(f: F) -> Self {
            RowSink { f, taken: 0 }
        }
    }

    impl<F: FnMut(&[Option<&str>]) -> anyhow::Result<bool>> crate::repo::sql::BatchSink for RowSink<F> {
        fn schema(&mut self, _: duckdb::arrow::datatypes::SchemaRef) -> anyhow::Result<()> {
            Ok(())
        }

        fn batch(&mut self, b: &duckdb::arrow::record_batch::RecordBatch) -> anyhow::Result<bool> {
            use duckdb::arrow::array::{Array, AsArray};
            for row in 0..b.num_rows() {
                let values: Vec<Option<&str>> = b
                    .columns()
                    .iter()
                    .map(|c| (!c.is_null(row)).then(|| c.as_string::<i32>().value(row)))
                    .collect();
                self.taken += 1;
                if !(self.f)(&values)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }

    #[test]
    fn the_histogram_p95_equals_quantile_disc() {
        let db = crate::db::Db::open_in_memory().unwrap();
        let c = db.connect().unwrap();
        for (n, modulo) in [
            (1, 7),
            (2, 5),
            (19, 3),
            (20, 1000),
            (1000, 37),
            (12345, 5000),
        ] {
            c.execute_batch("DELETE FROM audit_log").unwrap();
            c.execute_batch(&format!(
                "INSERT INTO audit_log (id, action, duration_ms, result_class, source)
                 SELECT i::VARCHAR, 'x', CASE WHEN i % 11 = 0 THEN NULL ELSE (hash(i) % {modulo})::INTEGER END, 'none', 'system'
                 FROM range({n}) t(i)"
            ))
            .unwrap();
            let want: Option<i64> = c
                .query_row(
                    "SELECT quantile_disc(duration_ms, 0.95) FROM audit_log",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let got = kpis(&c, &AuditFilter::default()).unwrap().p95_duration_ms;
            assert_eq!(got, want, "n={n} modulo={modulo}");
        }
    }

    use super::*;
    use crate::db::Db;

    #[test]
    fn the_user_key_is_duckdbs_md5_number_lower_and_every_writer_sets_it() {
        let db = Db::open_in_memory().unwrap();
        let c = db.connect().unwrap();
        for id in [
            "alice",
            "0a3d3b2e-6bb0-47b9-8fe8-4535ae9cf3c5",
            "Zoë 🚀",
            "x",
        ] {
            let want: u64 = c
                .query_row("SELECT md5_number_lower(?)", [id], |r| r.get(0))
                .unwrap();
            assert_eq!(crate::audit::user_key(id), want, "{id}");
            log(&c, &AuditEvent::new("a").user(id)).unwrap();
        }
        log(&c, &AuditEvent::new("no user")).unwrap();
        let wrong: i64 = c
            .query_row(
                "SELECT count(*) FROM audit_log WHERE user_key IS DISTINCT FROM md5_number_lower(user_id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(wrong, 0);
        let filtered = query(
            &c,
            &AuditFilter {
                user_id: Some("Zoë 🚀".into()),
                ..AuditFilter::default()
            },
            None,
            10,
        )
        .unwrap();
        assert_eq!(filtered.rows.len(), 1);
    }

    #[test]
    fn a_logged_row_carries_its_classifications_and_every_column() {
        let db = Db::open_in_memory().unwrap();
        let c = db.connect().unwrap();
        let mut e = AuditEvent::new("query.run")
            .user("u1")
            .resource("table:orders")
            .params(serde_json::json!({"sql": "select 1"}))
            .result("error.400")
            .client_kind("cli")
            .duration_ms(12);
        e.client_ip = Some("10.0.0.1".into());
        e.correlation_id = Some("corr-1".into());
        e.params_before = Some(serde_json::json!({"a": 1}));
        let id = log(&c, &e).unwrap();
        let row: (String, String, String, String, i64, String, String, String) = c
            .query_row(
                "SELECT id, result_class::VARCHAR, source::VARCHAR, client_ip, duration_ms, correlation_id,
                        params->>'sql', params_before::VARCHAR FROM audit_log",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
            )
            .unwrap();
        assert_eq!(row.0, id);
        assert_eq!(&row.1, "error");
        assert_eq!(&row.2, "cli");
        assert_eq!(&row.3, "10.0.0.1");
        assert_eq!(row.4, 12);
        assert_eq!(&row.5, "corr-1");
        assert_eq!(&row.6, "select 1");
        assert_eq!(&row.7, r#"{"a":1}"#);
    }

    use chrono::Duration;
    use serde_json::json;

    fn now() -> NaiveDateTime {
        chrono::Utc::now().naive_utc()
    }

    struct Seed<'a> {
        mins_ago: i64,
        user: Option<&'a str>,
        action: &'a str,
        resource: Option<&'a str>,
        params: Value,
        result: Option<&'a str>,
        kind: Option<&'a str>,
        duration: Option<i64>,
    }

    fn seed(c: &Connection, s: Seed<'_>) -> String {
        let mut e = AuditEvent::new(s.action);
        e.timestamp = Some(now() - Duration::minutes(s.mins_ago));
        e.user_id = s.user.map(str::to_string);
        e.resource = s.resource.map(str::to_string);
        e.params = Some(s.params);
        e.result = s.result.map(str::to_string);
        e.client_kind = s.kind.map(str::to_string);
        e.duration_ms = s.duration;
        log(c, &e).unwrap()
    }

    fn row<'a>(
        mins_ago: i64,
        user: Option<&'a str>,
        action: &'a str,
        result: Option<&'a str>,
        kind: Option<&'a str>,
    ) -> Seed<'a> {
        Seed {
            mins_ago,
            user,
            action,
            resource: None,
            params: json!({}),
            result,
            kind,
            duration: None,
        }
    }

    /// Agnes's KPI test seed plus a few rows for the other filters.
    fn seeded() -> (Db, Connection) {
        let db = Db::open_in_memory().unwrap();
        let c = db.connect().unwrap();
        c.execute(
            "INSERT INTO users (id, email, name, role) VALUES ('alice', 'alice@example.com', 'Alice A', 'analyst')",
            [],
        )
        .unwrap();
        seed(
            &c,
            Seed {
                resource: Some("table:orders"),
                params: json!({"table": "Orders"}),
                duration: Some(10),
                ..row(
                    50,
                    Some("alice"),
                    "table.read",
                    Some("success"),
                    Some("web"),
                )
            },
        );
        seed(
            &c,
            Seed {
                resource: Some("table:customers"),
                duration: Some(20),
                ..row(
                    40,
                    Some("alice"),
                    "table.read",
                    Some("success"),
                    Some("cli"),
                )
            },
        );
        seed(
            &c,
            Seed {
                resource: Some("table:orders"),
                params: json!({"sql": "SELECT * FROM Secret_Table"}),
                duration: Some(300),
                ..row(
                    30,
                    Some("alice"),
                    "query.run",
                    Some("error.400"),
                    Some("web"),
                )
            },
        );
        seed(
            &c,
            Seed {
                resource: Some("knowledge_item:ki-1"),
                ..row(20, Some("bob"), "query.run", Some("denied"), Some("cli"))
            },
        );
        seed(
            &c,
            Seed {
                duration: Some(40),
                ..row(
                    10,
                    Some("sched-user"),
                    "run_session_processor:usage",
                    Some("success"),
                    None,
                )
            },
        );
        seed(
            &c,
            row(
                5,
                Some("alice"),
                SELF_READ_ACTION,
                Some("success"),
                Some("web"),
            ),
        );
        seed(
            &c,
            row(
                60 * 24 * 3,
                Some("alice"),
                "auth.login",
                Some("success"),
                Some("web"),
            ),
        );
        (db, c)
    }

    fn actions(c: &Connection, f: &AuditFilter) -> Vec<String> {
        query(c, f, None, 200)
            .unwrap()
            .rows
            .into_iter()
            .map(|r| r.action)
            .collect()
    }

    fn day() -> AuditFilter {
        AuditFilter {
            since: Some(now() - Duration::hours(24)),
            ..AuditFilter::default()
        }
    }

    #[test]
    fn every_filter_narrows_the_timeline() {
        let (_db, c) = seeded();
        let n = |f: AuditFilter| actions(&c, &f).len();
        assert_eq!(
            n(day()),
            6,
            "the day, self-read included by the repository default"
        );
        assert_eq!(n(AuditFilter::default()), 7, "no window");
        assert_eq!(
            n(AuditFilter {
                include_self_reads: false,
                ..day()
            }),
            5
        );
        assert_eq!(
            n(AuditFilter {
                until: Some(now() - Duration::minutes(35)),
                ..day()
            }),
            2
        );
        assert_eq!(
            n(AuditFilter {
                user_id: Some("alice".into()),
                ..day()
            }),
            4
        );
        assert_eq!(
            n(AuditFilter {
                action: Some("query.run".into()),
                ..day()
            }),
            2
        );
        assert_eq!(
            n(AuditFilter {
                action: Some("query".into()),
                ..day()
            }),
            0,
            "exact"
        );
        assert_eq!(
            n(AuditFilter {
                action_prefix: Some("table.".into()),
                ..day()
            }),
            2
        );
        assert_eq!(
            n(AuditFilter {
                action_prefix: Some("run_".into()),
                ..day()
            }),
            1
        );
        assert_eq!(
            n(AuditFilter {
                action_prefix: Some("%".into()),
                ..day()
            }),
            0,
            "a prefix has no wildcards"
        );
        assert_eq!(
            n(AuditFilter {
                action_in: Some(vec!["table.read".into(), "query.run".into()]),
                ..day()
            }),
            4
        );
        assert_eq!(
            n(AuditFilter {
                action_in: Some(vec![]),
                ..day()
            }),
            0
        );
        assert_eq!(
            n(AuditFilter {
                resource: Some("table:orders".into()),
                ..day()
            }),
            2
        );
        assert_eq!(
            n(AuditFilter {
                resource_prefix: Some("table:".into()),
                ..day()
            }),
            3
        );
        assert_eq!(
            n(AuditFilter {
                result_pattern: Some("error%".into()),
                ..day()
            }),
            1
        );
        assert_eq!(
            n(AuditFilter {
                result_pattern: Some("succ".into()),
                ..day()
            }),
            0,
            "raw LIKE: no implied wildcard"
        );
        assert_eq!(
            n(AuditFilter {
                result_class: Some("success".into()),
                ..day()
            }),
            4
        );
        assert_eq!(
            n(AuditFilter {
                result_class: Some("denied".into()),
                ..day()
            }),
            1
        );
        assert_eq!(
            n(AuditFilter {
                source: Some("cli".into()),
                ..day()
            }),
            2
        );
        assert_eq!(
            n(AuditFilter {
                source: Some("scheduler".into()),
                ..day()
            }),
            1
        );
        assert_eq!(
            n(AuditFilter {
                min_duration_ms: Some(20),
                ..day()
            }),
            3
        );
        assert_eq!(
            n(AuditFilter {
                q: Some("secret_table".into()),
                ..day()
            }),
            1,
            "case-insensitive"
        );
        assert_eq!(
            n(AuditFilter {
                q: Some("ORDERS".into()),
                ..day()
            }),
            1
        );
        c.execute(
            "UPDATE audit_log SET correlation_id = 'req-1' WHERE action = 'query.run'",
            [],
        )
        .unwrap();
        assert_eq!(
            n(AuditFilter {
                correlation_id: Some("req-1".into()),
                ..day()
            }),
            2
        );
    }

    #[test]
    fn q_without_since_looks_back_seven_days_only() {
        let (_db, c) = seeded();
        c.execute(
            "UPDATE audit_log SET params = '{\"note\": \"needle\"}' WHERE action = 'auth.login'",
            [],
        )
        .unwrap();
        let q = AuditFilter {
            q: Some("needle".into()),
            ..AuditFilter::default()
        };
        assert_eq!(
            actions(&c, &q),
            ["auth.login"],
            "3 days ago is inside 7 days"
        );
        c.execute("UPDATE audit_log SET timestamp = timestamp - INTERVAL 5 DAY WHERE action = 'auth.login'", []).unwrap();
        assert!(actions(&c, &q).is_empty(), "8 days ago is outside");
        let old = AuditFilter {
            since: Some(now() - Duration::days(30)),
            ..q
        };
        assert_eq!(
            actions(&c, &old),
            ["auth.login"],
            "an explicit since reaches further"
        );
    }

    #[test]
    fn rows_come_newest_first_with_user_email_and_name() {
        let (_db, c) = seeded();
        let page = query(
            &c,
            &AuditFilter {
                include_self_reads: false,
                ..day()
            },
            None,
            50,
        )
        .unwrap();
        let got: Vec<_> = page.rows.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(
            got,
            [
                "run_session_processor:usage",
                "query.run",
                "query.run",
                "table.read",
                "table.read"
            ]
        );
        assert!(page.next_cursor.is_none());
        let err = &page.rows[2];
        assert_eq!(err.user_email.as_deref(), Some("alice@example.com"));
        assert_eq!(err.user_name.as_deref(), Some("Alice A"));
        assert_eq!(
            err.params,
            Some(json!({"sql": "SELECT * FROM Secret_Table"}))
        );
        assert_eq!(
            (err.result_class.as_str(), err.source.as_str()),
            ("error", "web")
        );
        assert_eq!(page.rows[0].source, "scheduler");
        assert_eq!(page.rows[1].user_email, None, "bob is not a user");
    }

    #[test]
    fn cursor_pages_of_two_are_stable_under_equal_timestamps() {
        let db = Db::open_in_memory().unwrap();
        let c = db.connect().unwrap();
        let t = now() - Duration::minutes(1);
        let mut ids = Vec::new();
        for i in 0..5 {
            let mut e = AuditEvent::new(format!("a{i}"));
            // Three rows share one timestamp: only the id orders them.
            e.timestamp = Some(if i < 3 { t } else { t + Duration::seconds(i) });
            ids.push(log(&c, &e).unwrap());
        }
        let f = day();
        let mut cursor = None;
        let mut sizes = Vec::new();
        let mut seen = Vec::new();
        loop {
            let page = query(&c, &f, cursor.as_ref(), 2).unwrap();
            sizes.push(page.rows.len());
            seen.extend(page.rows.iter().map(|r| r.id.clone()));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(sizes, [2, 2, 1]);
        ids.reverse();
        assert_eq!(seen, ids, "every row once, newest first, ties by id");
    }

    #[test]
    fn kpis_count_exactly_the_timeline_rows_for_the_same_filters() {
        let (_db, c) = seeded();
        let base = AuditFilter {
            include_self_reads: false,
            ..day()
        };
        let cases = [
            AuditFilter {
                user_id: Some("alice".into()),
                ..base.clone()
            },
            AuditFilter {
                result_class: Some("success".into()),
                ..base.clone()
            },
            AuditFilter {
                result_class: Some("denied".into()),
                ..base.clone()
            },
            AuditFilter {
                source: Some("cli".into()),
                ..base.clone()
            },
            AuditFilter {
                user_id: Some("alice".into()),
                source: Some("web".into()),
                ..base.clone()
            },
            base.clone(),
        ];
        for f in cases {
            let k = kpis(&c, &f).unwrap();
            assert_eq!(k.events_total as usize, actions(&c, &f).len(), "{f:?}");
        }
        let k = kpis(&c, &base).unwrap();
        assert_eq!(k.events_total, 5);
        assert_eq!(
            k.active_users, 2,
            "alice and bob; the scheduler is not a user"
        );
        assert_eq!(k.errors, 1);
        assert_eq!(k.error_rate, 0.2);
        assert_eq!(k.duration_coverage, 0.8);
        assert_eq!(k.p95_duration_ms, Some(300), "exact: the largest of four");
        let empty = kpis(
            &c,
            &AuditFilter {
                user_id: Some("nobody".into()),
                ..base.clone()
            },
        )
        .unwrap();
        assert_eq!(
            (empty.events_total, empty.error_rate, empty.p95_duration_ms),
            (0, 0.0, None)
        );
    }

    #[test]
    fn previous_kpis_cover_the_window_of_equal_length_before() {
        let (_db, c) = seeded();
        let f = AuditFilter {
            since: Some(now() - Duration::minutes(35)),
            include_self_reads: false,
            ..AuditFilter::default()
        };
        let (cur, prev) = kpis_with_previous(&c, &f).unwrap();
        assert_eq!(cur.events_total, 3, "30, 20 and 10 minutes ago");
        assert_eq!(prev.unwrap().events_total, 2, "50 and 40 minutes ago");
    }

    #[test]
    fn facets_group_the_window_by_each_dimension() {
        let (_db, c) = seeded();
        let f = facets(
            &c,
            &AuditFilter {
                user_id: Some("alice".into()),
                include_self_reads: false,
                ..day()
            },
        )
        .unwrap();
        let vals = |b: &[Bucket]| {
            b.iter()
                .map(|b| (b.value.clone(), b.count))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            vals(&f.actions),
            [("table.read".into(), 2), ("query.run".into(), 1)]
        );
        assert_eq!(
            vals(&f.result_classes),
            [("success".into(), 2), ("error".into(), 1)]
        );
        assert_eq!(vals(&f.resources), [("table:".into(), 3)]);
        assert_eq!(vals(&f.sources), [("web".into(), 2), ("cli".into(), 1)]);
        assert_eq!(
            f.users,
            [UserBucket {
                id: "alice".into(),
                label: "alice@example.com".into(),
                count: 3
            }]
        );
        let all = facets(
            &c,
            &AuditFilter {
                include_self_reads: false,
                ..day()
            },
        )
        .unwrap();
        assert_eq!(
            vals(&all.resources),
            [("table:".into(), 3), ("knowledge_item:".into(), 1)]
        );
        assert!(
            all.users.iter().any(|u| u.id == "bob" && u.label == "bob"),
            "unknown users show their id"
        );
        c.execute(
            "UPDATE audit_log SET result = NULL WHERE action = 'query.run' AND user_id = 'bob'",
            [],
        )
        .unwrap();
        let all = facets(
            &c,
            &AuditFilter {
                include_self_reads: false,
                ..day()
            },
        )
        .unwrap();
        assert!(all.results.contains(&Bucket {
            value: "—".into(),
            count: 1
        }));
    }

    #[test]
    fn a_producer_batch_is_appended_with_its_classifications_and_event_ids() {
        let db = Db::open_in_memory().unwrap();
        let mut c = db.connect().unwrap();
        let mut a = AuditEvent::new("table.read")
            .user("u1")
            .result("denied")
            .client_kind("agent");
        a.event_id = Some("ev-1".into());
        a.timestamp = Some(now() - Duration::hours(30));
        let b = AuditEvent::new("run_sync");
        let ids = insert_batch(&mut c, &[a, b]).unwrap();
        assert_eq!(ids.len(), 2);
        let got: Vec<(String, String)> = c
            .prepare("SELECT CAST(result_class AS VARCHAR), CAST(source AS VARCHAR) FROM audit_log ORDER BY action")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            got,
            [
                ("none".to_string(), "scheduler".to_string()),
                ("denied".into(), "agent".into())
            ]
        );
        let ask = vec!["ev-1".to_string(), "ev-2".to_string()];
        assert_eq!(
            existing_event_ids(&c, &ask, now() - Duration::hours(48)).unwrap(),
            HashSet::from(["ev-1".to_string()])
        );
        assert!(existing_event_ids(&c, &ask, now() - Duration::hours(24))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_export_streams_every_column_oldest_first() {
        let (_db, c) = seeded();
        let header = export_header(&c).unwrap();
        assert_eq!(
            header,
            [
                "id",
                "timestamp",
                "user_id",
                "action",
                "resource",
                "params",
                "result",
                "duration_ms",
                "params_before",
                "client_ip",
                "client_kind",
                "correlation_id",
                "event_id",
                "result_class",
                "source",
                "resource_prefix",
                "user_email",
                "user_name"
            ]
        );
        let mut rows: Vec<Vec<Option<String>>> = Vec::new();
        let f = AuditFilter {
            include_self_reads: false,
            ..day()
        };
        let n = export(
            &c,
            &f,
            &mut RowSink::new(|v: &[Option<&str>]| {
                rows.push(v.iter().map(|s| s.map(str::to_string)).collect());
                Ok(true)
            }),
        )
        .unwrap();
        assert_eq!(n, 5);
        assert_eq!(n as i64, kpis(&c, &f).unwrap().events_total);
        assert_eq!(rows[0][3].as_deref(), Some("table.read"), "oldest first");
        assert_eq!(rows[0][5].as_deref(), Some(r#"{"table":"Orders"}"#));
        assert_eq!(rows[0][15].as_deref(), Some("table:"));
        assert_eq!(rows[0][16].as_deref(), Some("alice@example.com"));
        let ts = rows[0][1].clone().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 27, "{ts}");
        assert_eq!(
            crate::isotime::parse(&ts).map(|t| crate::isotime::format(&t)),
            Some(ts)
        );
        let mut first = 0;
        let mut sink = RowSink::new(|_: &[Option<&str>]| {
            first += 1;
            Ok(false)
        });
        export(&c, &f, &mut sink).unwrap();
        let stopped = sink.taken;
        assert_eq!((stopped, first), (1, 1), "the sink can stop the stream");
    }

    #[test]
    fn health_inputs_read_scheduler_users_uploads_and_processors() {
        let (_db, c) = seeded();
        c.execute_batch(
            "INSERT INTO session_uploads VALUES
               ('u/a.jsonl', 'u', now()::TIMESTAMP - INTERVAL 2 HOUR, now()::TIMESTAMP - INTERVAL 2 HOUR, 10),
               ('u/b.jsonl', 'u', now()::TIMESTAMP - INTERVAL 2 HOUR, now()::TIMESTAMP - INTERVAL 2 HOUR, 10),
               ('u/c.jsonl', 'u', now()::TIMESTAMP - INTERVAL 2 HOUR, now()::TIMESTAMP - INTERVAL 2 HOUR, 10),
               ('u/old.jsonl', 'u', now()::TIMESTAMP - INTERVAL 30 HOUR, now()::TIMESTAMP - INTERVAL 30 HOUR, 10);
             INSERT INTO usage_session_summary (session_file, session_id, username, processor_version) VALUES
               ('u/a.jsonl', 'a', 'u', 1), ('u/b.jsonl', 'b', 'u', 1);",
        )
        .unwrap();
        seed(
            &c,
            row(0, Some("zed"), "auth.login", Some("success"), Some("web")),
        );
        let h = health_inputs(
            &c,
            now(),
            &[
                "run_session_processor:usage",
                "run_session_processor:failure_scan",
            ],
        )
        .unwrap();
        assert!(h
            .last_scheduler
            .is_some_and(|t| (now() - t).num_minutes() == 10));
        assert_eq!((h.uploads_24h, h.ingested_24h), (3, 2));
        assert_eq!(h.processors.len(), 1);
        assert_eq!(h.processors[0].result_class, "success");
        assert!(h.active_users_today >= 1);
        // A processor last seen three days ago is still found (the week's look).
        seed(
            &c,
            row(
                60 * 24 * 3,
                None,
                "run_session_processor:failure_scan",
                Some("error.timeout"),
                None,
            ),
        );
        let h = health_inputs(
            &c,
            now(),
            &[
                "run_session_processor:usage",
                "run_session_processor:failure_scan",
            ],
        )
        .unwrap();
        let found: Vec<_> = h
            .processors
            .iter()
            .map(|p| (p.action.as_str(), p.result_class.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("run_session_processor:failure_scan", "error"),
                ("run_session_processor:usage", "success")
            ]
        );
    }
}
