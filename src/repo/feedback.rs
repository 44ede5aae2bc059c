//! `feedback_reports`: the inbox's storage. Duplicates are reports sharing a
//! fingerprint; a report's history is its audit rows (`resource = feedback:<id>`).

use chrono::NaiveDateTime;
use duckdb::types::Value as DbValue;
use duckdb::{params, params_from_iter, Connection, OptionalExt};
use serde::Serialize;
use serde_json::Value;

use super::sql::{text, ts_value, Where};
use crate::feedback::NewReport;

/// One report, as lists and the detail page show it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub id: String,
    #[serde(serialize_with = "crate::isotime::ser")]
    pub created_at: NaiveDateTime,
    pub reporter_user: Option<String>,
    /// The reporter's email (or their id when the user is gone).
    pub reporter: String,
    pub message: String,
    /// The message's first line, cut (lists, notifications).
    pub summary: String,
    pub session_file: Option<String>,
    pub fingerprint: String,
    pub status: String,
    pub assignee: Option<String>,
    /// The assignee's email.
    pub assignee_label: Option<String>,
    pub tags: Vec<String>,
    pub resolution: Option<String>,
    #[serde(serialize_with = "crate::isotime::ser_opt")]
    pub resolved_at: Option<NaiveDateTime>,
    pub resolved_by: Option<String>,
    /// Other reports with the same fingerprint.
    pub duplicates: i64,
}

/// A report with its excerpt and environment (the detail page).
#[derive(Debug, Clone, Serialize)]
pub struct ReportDetail {
    #[serde(flatten)]
    pub report: Report,
    pub session_excerpt: Option<String>,
    pub environment: serde_json::Map<String, Value>,
    /// The transcript directory of the reporter (their email), for the link
    /// to the Sessions viewer.
    pub reporter_email: Option<String>,
}

const SELECT: &str = "SELECT f.id, f.created_at, f.reporter_user,
        coalesce(u.email, f.reporter_user, 'unknown'), f.message, f.session_file,
        coalesce(f.fingerprint, ''), f.status, f.assignee, a.email,
        coalesce(CAST(f.tags AS VARCHAR), '[]'), f.resolution, f.resolved_at, f.resolved_by,
        (SELECT count(*) FROM feedback_reports d
          WHERE d.fingerprint = f.fingerprint AND d.id <> f.id) AS duplicates,
        f.session_excerpt, coalesce(CAST(f.environment AS VARCHAR), '{}'), u.email
    FROM feedback_reports f
    LEFT JOIN users u ON u.id = f.reporter_user
    LEFT JOIN users a ON a.id = f.assignee";

fn report_from_row(r: &duckdb::Row<'_>) -> duckdb::Result<Report> {
    let tags: String = r.get(10)?;
    let message: String = r.get(4)?;
    Ok(Report {
        summary: crate::feedback::first_line(&message, 120),
        id: r.get(0)?,
        created_at: r.get(1)?,
        reporter_user: r.get(2)?,
        reporter: r.get(3)?,
        message,
        session_file: r.get(5)?,
        fingerprint: r.get(6)?,
        status: r.get(7)?,
        assignee: r.get(8)?,
        assignee_label: r.get(9)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        resolution: r.get(11)?,
        resolved_at: r.get(12)?,
        resolved_by: r.get(13)?,
        duplicates: r.get(14)?,
    })
}

fn detail_from_row(r: &duckdb::Row<'_>) -> duckdb::Result<ReportDetail> {
    let env: String = r.get(16)?;
    Ok(ReportDetail {
        report: report_from_row(r)?,
        session_excerpt: r.get(15)?,
        environment: serde_json::from_str(&env).unwrap_or_default(),
        reporter_email: r.get(17)?,
    })
}

/// Stores a report; returns how many earlier reports share its fingerprint.
pub fn insert(
    conn: &Connection,
    id: &str,
    reporter: &str,
    report: &NewReport,
    at: Option<NaiveDateTime>,
) -> anyhow::Result<i64> {
    let fp = report.fingerprint();
    let env = report
        .environment
        .as_ref()
        .map(|m| Value::Object(m.clone()).to_string());
    conn.execute(
        "INSERT INTO feedback_reports (id, created_at, reporter_user, message, session_excerpt,
            session_file, environment, fingerprint, status, tags)
         VALUES (?, coalesce(?, now()::TIMESTAMP), ?, ?, ?, ?, ?, ?, 'open', '[]')",
        params![
            id,
            at,
            reporter,
            report.message,
            report.session_excerpt,
            report.session_file,
            env,
            fp
        ],
    )?;
    Ok(conn.query_row(
        "SELECT count(*) FROM feedback_reports WHERE fingerprint = ? AND id <> ?",
        params![fp, id],
        |r| r.get(0),
    )?)
}

pub fn get(conn: &Connection, id: &str) -> anyhow::Result<Option<ReportDetail>> {
    Ok(conn
        .query_row(
            &format!("{SELECT} WHERE f.id = ?"),
            params![id],
            detail_from_row,
        )
        .optional()?)
}

/// The inbox's filters (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<String>,
    pub tag: Option<String>,
    /// A user id, or `none` for unassigned reports.
    pub assignee: Option<String>,
    pub reporter: Option<String>,
    /// Words in the message (case-insensitive substring).
    pub q: Option<String>,
}

impl Filter {
    fn to_where(&self) -> Where {
        let mut w = Where::default();
        if let Some(s) = &self.status {
            w.and("f.status = ?", [text(s)]);
        }
        if let Some(t) = &self.tag {
            w.and(
                "list_contains(CAST(coalesce(f.tags, '[]') AS VARCHAR[]), ?)",
                [text(t)],
            );
        }
        match self.assignee.as_deref() {
            Some("none") => w.and("f.assignee IS NULL", []),
            Some(a) => w.and("f.assignee = ?", [text(a)]),
            None => {}
        }
        if let Some(r) = &self.reporter {
            w.and("f.reporter_user = ?", [text(r)]);
        }
        if let Some(q) = &self.q {
            w.and("f.message ILIKE '%' || ? || '%'", [text(q)]);
        }
        w
    }
}

/// Orders the inbox offers (column, direction).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Order {
    Newest,
    Oldest,
    Duplicates,
    Status,
}

impl Order {
    fn sql(self, desc: bool) -> String {
        let dir = if desc { "DESC" } else { "ASC" };
        match self {
            Order::Newest | Order::Oldest => format!("f.created_at {dir}, f.id {dir}"),
            Order::Duplicates => format!("duplicates {dir}, f.created_at DESC, f.id DESC"),
            Order::Status => format!(
                "list_position(['open','triaged','resolved','wontfix'], f.status) {dir}, f.created_at DESC, f.id DESC"
            ),
        }
    }
}

/// One page of the inbox and the count of all matching reports.
pub fn list(
    conn: &Connection,
    f: &Filter,
    order: Order,
    desc: bool,
    limit: usize,
    offset: usize,
) -> anyhow::Result<(Vec<Report>, i64)> {
    let w = f.to_where();
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM feedback_reports f WHERE {}", w.sql()),
        params_from_iter(w.args()),
        |r| r.get(0),
    )?;
    let mut args: Vec<DbValue> = w.args().to_vec();
    args.push(DbValue::BigInt(limit as i64));
    args.push(DbValue::BigInt(offset as i64));
    let mut stmt = conn.prepare(&format!(
        "{SELECT} WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
        w.sql(),
        order.sql(desc)
    ))?;
    let rows = stmt
        .query_map(params_from_iter(args), report_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}

/// The other reports with this report's fingerprint, newest first.
pub fn duplicates_of(conn: &Connection, id: &str) -> anyhow::Result<Vec<Report>> {
    let mut stmt = conn.prepare(&format!(
        "{SELECT} WHERE f.id <> ? AND f.fingerprint =
            (SELECT fingerprint FROM feedback_reports WHERE id = ?)
         ORDER BY f.created_at DESC, f.id DESC LIMIT 100"
    ))?;
    let rows = stmt
        .query_map(params![id, id], report_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A count by value, for facets and the top tags.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Bucket {
    pub value: String,
    pub label: String,
    pub count: i64,
}

/// The values of each facet over all reports (not narrowed by the filters, so
/// picking one value does not hide the others).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Facets {
    pub statuses: Vec<Bucket>,
    pub tags: Vec<Bucket>,
    pub assignees: Vec<Bucket>,
    pub reporters: Vec<Bucket>,
}

fn buckets(conn: &Connection, sql: &str) -> anyhow::Result<Vec<Bucket>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Bucket {
                value: r.get(0)?,
                label: r.get(1)?,
                count: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn facets(conn: &Connection) -> anyhow::Result<Facets> {
    Ok(Facets {
        statuses: buckets(
            conn,
            "SELECT status, status, count(*) FROM feedback_reports GROUP BY status
             ORDER BY list_position(['open','triaged','resolved','wontfix'], status)",
        )?,
        tags: tag_counts(conn, 50)?,
        assignees: buckets(
            conn,
            "SELECT coalesce(f.assignee, 'none'), coalesce(u.email, f.assignee, 'Unassigned'), count(*)
             FROM feedback_reports f LEFT JOIN users u ON u.id = f.assignee
             GROUP BY ALL ORDER BY 3 DESC, 2 LIMIT 50",
        )?,
        reporters: buckets(
            conn,
            "SELECT f.reporter_user, coalesce(u.email, f.reporter_user), count(*)
             FROM feedback_reports f LEFT JOIN users u ON u.id = f.reporter_user
             WHERE f.reporter_user IS NOT NULL
             GROUP BY ALL ORDER BY 3 DESC, 2 LIMIT 50",
        )?,
    })
}

fn tag_counts(conn: &Connection, top: usize) -> anyhow::Result<Vec<Bucket>> {
    buckets(
        conn,
        &format!(
            "SELECT tag, tag, count(*) FROM (
                SELECT unnest(CAST(coalesce(tags, '[]') AS VARCHAR[])) AS tag FROM feedback_reports)
             GROUP BY tag ORDER BY 3 DESC, 1 LIMIT {top}"
        ),
    )
}

/// The inbox's headline numbers.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Kpis {
    pub open: i64,
    pub new_this_week: i64,
    /// Median hours from report to resolution (resolved and won't fix), over
    /// reports closed in the last 90 days.
    pub median_hours_to_resolve: Option<f64>,
    pub top_tags: Vec<Bucket>,
}

pub fn kpis(conn: &Connection, now: NaiveDateTime) -> anyhow::Result<Kpis> {
    let week_ago = now - chrono::Duration::days(7);
    let quarter_ago = now - chrono::Duration::days(90);
    let (open, new_this_week, median): (i64, i64, Option<f64>) = conn.query_row(
        "SELECT count(*) FILTER (WHERE status IN ('open', 'triaged')),
                count(*) FILTER (WHERE created_at >= ?),
                median(epoch(resolved_at - created_at) / 3600.0)
                    FILTER (WHERE status IN ('resolved', 'wontfix') AND resolved_at >= ?)
         FROM feedback_reports",
        params_from_iter([ts_value(&week_ago), ts_value(&quarter_ago)]),
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(Kpis {
        open,
        new_this_week,
        median_hours_to_resolve: median,
        top_tags: tag_counts(conn, 3)?,
    })
}

/// A change an admin makes to a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Assign(String),
    Tags(Vec<String>),
    /// Closes (resolved or wontfix) with an optional text.
    Close {
        status: &'static str,
        resolution: Option<String>,
        by: String,
    },
    Reopen,
}

/// Applies a change; false when there is no such report.
pub fn apply(conn: &Connection, id: &str, change: &Change) -> anyhow::Result<bool> {
    let n = match change {
        Change::Assign(user) => conn.execute(
            // Assigning moves an open report to triaged.
            "UPDATE feedback_reports SET assignee = ?,
                status = CASE WHEN status = 'open' THEN 'triaged' ELSE status END
             WHERE id = ?",
            params![user, id],
        )?,
        Change::Tags(tags) => conn.execute(
            "UPDATE feedback_reports SET tags = ? WHERE id = ?",
            params![serde_json::to_string(tags)?, id],
        )?,
        Change::Close {
            status,
            resolution,
            by,
        } => conn.execute(
            "UPDATE feedback_reports SET status = ?, resolution = ?, resolved_by = ?,
                resolved_at = now()::TIMESTAMP WHERE id = ?",
            params![status, resolution, by, id],
        )?,
        Change::Reopen => conn.execute(
            "UPDATE feedback_reports SET status = 'open', resolution = NULL, resolved_by = NULL,
                resolved_at = NULL WHERE id = ?",
            params![id],
        )?,
    };
    Ok(n > 0)
}

/// Sets a report's state directly (the demo's reports in every status).
pub fn set_state(
    conn: &Connection,
    id: &str,
    status: &str,
    assignee: Option<&str>,
    tags: &[&str],
    resolution: Option<&str>,
    resolved_at: Option<NaiveDateTime>,
) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE feedback_reports SET status = ?, assignee = ?, tags = ?, resolution = ?,
            resolved_at = ?, resolved_by = CASE WHEN ? IS NULL THEN NULL ELSE assignee END
         WHERE id = ?",
        params![
            status,
            assignee,
            serde_json::to_string(tags)?,
            resolution,
            resolved_at,
            resolved_at,
            id
        ],
    )?;
    Ok(())
}

/// The Telegram chats of active admins who linked one.
pub fn admin_chats(conn: &Connection) -> anyhow::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT telegram_chat_id FROM users
         WHERE role = 'admin' AND active AND coalesce(telegram_chat_id, '') <> ''
         ORDER BY id",
    )?;
    let rows = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(rows)
}

/// Links (or, with `None`, unlinks) a user's Telegram chat.
pub fn set_chat(conn: &Connection, user_id: &str, chat: Option<&str>) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE users SET telegram_chat_id = ? WHERE id = ?",
        params![chat, user_id],
    )?;
    Ok(())
}

pub fn chat_of(conn: &Connection, user_id: &str) -> anyhow::Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT telegram_chat_id FROM users WHERE id = ?",
            params![user_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

/// One action in a report's history (its audit rows).
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    #[serde(serialize_with = "crate::isotime::ser")]
    pub timestamp: NaiveDateTime,
    pub action: String,
    pub user: String,
    pub params: Value,
    pub result: Option<String>,
}

/// The audit rows of `feedback:<id>`, oldest first.
pub fn history(conn: &Connection, id: &str) -> anyhow::Result<Vec<HistoryEntry>> {
    let mut stmt = conn.prepare(
        "SELECT l.timestamp, l.action, coalesce(u.email, l.user_id, 'system'),
                coalesce(CAST(l.params AS VARCHAR), '{}'), l.result
         FROM audit_log l LEFT JOIN users u ON u.id = l.user_id
         WHERE l.resource = ? ORDER BY l.timestamp, l.id",
    )?;
    let rows = stmt
        .query_map(params![format!("feedback:{id}")], |r| {
            let p: String = r.get(3)?;
            Ok(HistoryEntry {
                timestamp: r.get(0)?,
                action: r.get(1)?,
                user: r.get(2)?,
                params: serde_json::from_str(&p).unwrap_or(Value::Null),
                result: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        crate::db::migrate::apply(&c, None).unwrap();
        c
    }

    fn report(msg: &str) -> NewReport {
        NewReport::validate(msg.into(), None, None, None).unwrap()
    }

    #[test]
    fn a_duplicate_is_counted_and_listed_and_a_near_miss_is_not() {
        let c = conn();
        assert_eq!(
            insert(&c, "a", "u1", &report("Query fails"), None).unwrap(),
            0
        );
        assert_eq!(
            insert(&c, "b", "u2", &report("  query   FAILS "), None).unwrap(),
            1
        );
        assert_eq!(
            insert(&c, "c", "u2", &report("query fails."), None).unwrap(),
            0
        );
        let dups: Vec<String> = duplicates_of(&c, "a")
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(dups, vec!["b"]);
        assert_eq!(get(&c, "b").unwrap().unwrap().report.duplicates, 1);
        assert_eq!(get(&c, "c").unwrap().unwrap().report.duplicates, 0);
    }

    #[test]
    fn changes_move_status_tags_and_assignee_and_filters_find_them() {
        let c = conn();
        insert(&c, "a", "u1", &report("one"), None).unwrap();
        insert(&c, "b", "u1", &report("two"), None).unwrap();
        assert!(apply(&c, "a", &Change::Assign("admin".into())).unwrap());
        assert!(apply(&c, "a", &Change::Tags(vec!["cli".into(), "query".into()])).unwrap());
        assert!(!apply(&c, "zz", &Change::Reopen).unwrap());
        let a = get(&c, "a").unwrap().unwrap().report;
        assert_eq!((a.status.as_str(), a.tags.len()), ("triaged", 2));
        let by_tag = Filter {
            tag: Some("query".into()),
            ..Filter::default()
        };
        let (rows, total) = list(&c, &by_tag, Order::Newest, true, 10, 0).unwrap();
        assert_eq!((rows[0].id.as_str(), total), ("a", 1));
        let unassigned = Filter {
            assignee: Some("none".into()),
            ..Filter::default()
        };
        assert_eq!(
            list(&c, &unassigned, Order::Newest, true, 10, 0).unwrap().1,
            1
        );
        apply(
            &c,
            "a",
            &Change::Close {
                status: "resolved",
                resolution: Some("fixed".into()),
                by: "admin".into(),
            },
        )
        .unwrap();
        let k = kpis(&c, chrono::Utc::now().naive_utc()).unwrap();
        assert_eq!((k.open, k.new_this_week), (1, 2));
        assert!(k.median_hours_to_resolve.is_some());
        assert_eq!(k.top_tags.len(), 2);
        apply(&c, "a", &Change::Reopen).unwrap();
        let a = get(&c, "a").unwrap().unwrap().report;
        assert_eq!((a.status.as_str(), a.resolved_at), ("open", None));
        let f = facets(&c).unwrap();
        assert_eq!(f.statuses[0].count, 2);
    }
}
