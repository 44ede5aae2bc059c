//! The Sessions pages' reads: `usage_session_summary` (one row per
//! transcript, written by ingestion) with `session_findings` and
//! `session_uploads`. One typed filter serves the list, the KPIs, the facets
//! and the heatmap, so their totals agree by construction; the window is on
//! `started_at` or on the first upload (`anchor`), everywhere.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use duckdb::types::Value as DbValue;
use duckdb::{params_from_iter, Connection};
use serde::Serialize;

use super::sql::{time_range, Where};

/// Which time the window applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    Started,
    /// Agnes's default: the first upload, else the start.
    #[default]
    Uploaded,
}

impl Anchor {
    pub const NAMES: &'static [&'static str] = &["started", "uploaded"];

    pub fn parse(s: &str) -> Option<Anchor> {
        match s {
            "started" => Some(Anchor::Started),
            "uploaded" => Some(Anchor::Uploaded),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Anchor::Started => "started",
            Anchor::Uploaded => "uploaded",
        }
    }

    /// The SQL time of a summary row for this anchor.
    pub fn column(self) -> &'static str {
        match self {
            Anchor::Started => "started_at",
            Anchor::Uploaded => "coalesce(uploaded_at, started_at)",
        }
    }
}

/// The finding types of SPEC §3, in the order the heatmap shows them.
pub const FINDING_TYPES: &[&str] = &[
    "tool_error",
    "permission_denied",
    "user_rejection",
    "loop",
    "abrupt_end",
];

/// A person whose own sessions are the only ones visible (analysts, SPEC §1):
/// rows whose `user_id` is theirs or whose `username` is their email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub user_id: String,
    pub email: String,
}

/// Every filter of the Sessions list. `None`/`false` = not filtered.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    pub anchor: Anchor,
    /// Exact `username` (the user's email after directory mapping).
    pub username: Option<String>,
    /// Exact `primary_model`.
    pub model: Option<String>,
    pub only_errors: bool,
    /// Sessions with at least one finding of this type.
    pub finding_type: Option<String>,
    /// Sessions with at least one finding of any type.
    pub has_findings: bool,
    /// Case-insensitive substring of the session id, file or username.
    pub q: Option<String>,
    pub min_tokens: Option<i64>,
    pub max_tokens: Option<i64>,
    pub min_cost: Option<f64>,
    pub max_cost: Option<f64>,
    pub owner: Option<Owner>,
}

/// A filter dimension that a facet leaves out of its own counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    User,
    Model,
    FindingType,
}

/// Total tokens of a summary row.
pub const TOKENS_SQL: &str = "(coalesce(input_tokens, 0) + coalesce(output_tokens, 0) + coalesce(cache_read_tokens, 0) + coalesce(cache_creation_tokens, 0))";

fn text(s: &str) -> DbValue {
    DbValue::Text(s.to_string())
}

impl SessionFilter {
    /// The window before this one, of the same length (for KPI deltas);
    /// `None` when the window is open-ended at the start.
    pub fn previous(&self, now: NaiveDateTime) -> Option<SessionFilter> {
        let since = self.since?;
        let until = self.until.unwrap_or(now);
        let mut p = self.clone();
        p.since = Some(since - (until - since));
        p.until = Some(since);
        Some(p)
    }

    pub fn where_clause(&self) -> Where {
        self.where_without(None)
    }

    fn where_without(&self, skip: Option<Dim>) -> Where {
        let mut w = time_range(self.anchor.column(), self.since, self.until);
        if let Some(o) = &self.owner {
            w.and(
                "(user_id = ? OR username = ?)",
                [text(&o.user_id), text(&o.email)],
            );
        }
        if let (Some(u), false) = (&self.username, skip == Some(Dim::User)) {
            w.and("username = ?", [text(u)]);
        }
        if let (Some(m), false) = (&self.model, skip == Some(Dim::Model)) {
            w.and("primary_model = ?", [text(m)]);
        }
        if self.only_errors {
            w.and("tool_errors > 0", []);
        }
        if let (Some(t), false) = (&self.finding_type, skip == Some(Dim::FindingType)) {
            w.and(
                "session_file IN (SELECT session_file FROM session_findings WHERE finding_type = ?)",
                [text(t)],
            );
        }
        if self.has_findings {
            w.and(
                "session_file IN (SELECT session_file FROM session_findings)",
                [],
            );
        }
        if let Some(q) = &self.q {
            w.and(
                "(contains(lower(session_id), ?) OR contains(lower(session_file), ?) OR contains(lower(username), ?))",
                [text(&q.to_lowercase()), text(&q.to_lowercase()), text(&q.to_lowercase())],
            );
        }
        if let Some(n) = self.min_tokens {
            w.and(format!("{TOKENS_SQL} >= ?"), [DbValue::BigInt(n)]);
        }
        if let Some(n) = self.max_tokens {
            w.and(format!("{TOKENS_SQL} <= ?"), [DbValue::BigInt(n)]);
        }
        if let Some(c) = self.min_cost {
            w.and("coalesce(cost_usd, 0) >= ?", [DbValue::Double(c)]);
        }
        if let Some(c) = self.max_cost {
            w.and("coalesce(cost_usd, 0) <= ?", [DbValue::Double(c)]);
        }
        w
    }
}

/// Sort keys of the list (Agnes's, then glassbox's), each with its SQL.
pub const SORT_KEYS: &[(&str, &str)] = &[
    ("started_at", "started_at"),
    ("uploaded_at", "coalesce(uploaded_at, started_at)"),
    ("ended_at", "ended_at"),
    ("tool_calls", "tool_calls"),
    ("tool_errors", "tool_errors"),
    ("active_seconds", "active_seconds"),
    ("wall_seconds", "wall_seconds"),
    ("username", "username"),
    ("primary_model", "primary_model"),
    ("model", "primary_model"),
    ("user_messages", "user_messages"),
    ("tokens", TOKENS_SQL),
    ("cost", "coalesce(cost_usd, 0)"),
    ("cost_usd", "coalesce(cost_usd, 0)"),
    (
        "findings",
        "(SELECT count(*) FROM session_findings f WHERE f.session_file = s.session_file)",
    ),
    ("session_file", "session_file"),
];

/// `key:asc|desc`, as Agnes parses it: an unknown key sorts by `started_at`,
/// anything but `asc` is descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSort {
    pub key: &'static str,
    pub desc: bool,
}

impl Default for SessionSort {
    fn default() -> Self {
        SessionSort {
            key: "started_at",
            desc: true,
        }
    }
}

impl SessionSort {
    pub fn parse(s: &str) -> SessionSort {
        let (key, dir) = s.split_once(':').unwrap_or((s, "desc"));
        let key = SORT_KEYS
            .iter()
            .find(|(k, _)| *k == key.trim())
            .map(|(k, _)| *k)
            .unwrap_or("started_at");
        SessionSort {
            key,
            desc: !dir.trim().eq_ignore_ascii_case("asc"),
        }
    }

    fn sql(&self) -> String {
        let col = SORT_KEYS
            .iter()
            .find(|(k, _)| *k == self.key)
            .map(|(_, c)| *c)
            .unwrap_or("started_at");
        let dir = if self.desc { "DESC" } else { "ASC" };
        format!("{col} {dir} NULLS LAST, session_file {dir}")
    }

    pub fn as_param(&self) -> String {
        format!("{}:{}", self.key, if self.desc { "desc" } else { "asc" })
    }
}

/// One summary row in Agnes's 19 columns plus `session_dir`, and glassbox's
/// tokens, cost and findings. Numbers are never null; `active_seconds` and
/// `wall_seconds` are whole seconds (rounded down) or null when unknown.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    pub session_file: String,
    pub session_id: String,
    pub username: String,
    #[serde(serialize_with = "crate::isotime::ser_opt")]
    pub started_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::isotime::ser_opt")]
    pub ended_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::isotime::ser_opt")]
    pub uploaded_at: Option<NaiveDateTime>,
    pub active_seconds: Option<i64>,
    pub wall_seconds: Option<i64>,
    pub user_messages: i64,
    pub assistant_messages: i64,
    pub tool_calls: i64,
    pub tool_errors: i64,
    pub skill_invocations: i64,
    pub subagent_dispatches: i64,
    pub mcp_calls: i64,
    pub slash_commands: i64,
    pub distinct_tools: i64,
    pub distinct_skills: i64,
    pub primary_model: Option<String>,
    pub session_dir: String,
    pub user_id: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub total_tokens: i64,
    pub cost_usd: f64,
    pub bytes: i64,
    pub findings: i64,
    /// Finding type → count, for this session.
    pub finding_types: std::collections::BTreeMap<String, i64>,
}

impl SessionRow {
    /// The file name after the user directory.
    pub fn file_name(&self) -> &str {
        self.session_file
            .rsplit_once('/')
            .map(|(_, f)| f)
            .unwrap_or(&self.session_file)
    }
}

const ROW_COLUMNS: &str = "session_file, session_id, username, started_at, ended_at, uploaded_at,
    CAST(floor(active_seconds) AS BIGINT), CAST(floor(wall_seconds) AS BIGINT),
    coalesce(user_messages, 0), coalesce(assistant_messages, 0), coalesce(tool_calls, 0),
    coalesce(tool_errors, 0), coalesce(skill_invocations, 0), coalesce(subagent_dispatches, 0),
    coalesce(mcp_calls, 0), coalesce(slash_commands, 0), coalesce(distinct_tools, 0),
    coalesce(distinct_skills, 0), primary_model, user_id,
    coalesce(input_tokens, 0), coalesce(output_tokens, 0), coalesce(cache_read_tokens, 0),
    coalesce(cache_creation_tokens, 0), coalesce(cost_usd, 0), coalesce(bytes, 0)";

fn read_row(r: &duckdb::Row<'_>) -> duckdb::Result<SessionRow> {
    let session_file: String = r.get(0)?;
    let (i, o, cr, cc): (i64, i64, i64, i64) = (r.get(20)?, r.get(21)?, r.get(22)?, r.get(23)?);
    Ok(SessionRow {
        session_dir: session_file
            .split_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default(),
        session_file,
        session_id: r.get(1)?,
        username: r.get(2)?,
        started_at: r.get(3)?,
        ended_at: r.get(4)?,
        uploaded_at: r.get(5)?,
        active_seconds: r.get(6)?,
        wall_seconds: r.get(7)?,
        user_messages: r.get(8)?,
        assistant_messages: r.get(9)?,
        tool_calls: r.get(10)?,
        tool_errors: r.get(11)?,
        skill_invocations: r.get(12)?,
        subagent_dispatches: r.get(13)?,
        mcp_calls: r.get(14)?,
        slash_commands: r.get(15)?,
        distinct_tools: r.get(16)?,
        distinct_skills: r.get(17)?,
        primary_model: r.get(18)?,
        user_id: r.get(19)?,
        input_tokens: i,
        output_tokens: o,
        cache_read_tokens: cr,
        cache_creation_tokens: cc,
        total_tokens: i + o + cr + cc,
        cost_usd: r.get(24)?,
        bytes: r.get(25)?,
        findings: 0,
        finding_types: Default::default(),
    })
}

/// Fills `findings` and `finding_types` of a page of rows (one small query).
fn attach_findings(conn: &Connection, rows: &mut [SessionRow]) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; rows.len()].join(", ");
    let sql = format!(
        "SELECT session_file, finding_type, count(*) FROM session_findings
         WHERE session_file IN ({marks}) GROUP BY ALL"
    );
    let mut stmt = conn.prepare(&sql)?;
    let files: Vec<&str> = rows.iter().map(|r| r.session_file.as_str()).collect();
    let mut by_file: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for row in stmt.query_map(params_from_iter(files), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (f, t, n) = row?;
        by_file.entry(f).or_default().push((t, n));
    }
    for r in rows {
        if let Some(types) = by_file.remove(&r.session_file) {
            r.findings = types.iter().map(|(_, n)| n).sum();
            r.finding_types = types.into_iter().collect();
        }
    }
    Ok(())
}

/// One page of the list and the filter's total.
pub fn list(
    conn: &Connection,
    f: &SessionFilter,
    sort: &SessionSort,
    limit: i64,
    offset: i64,
) -> anyhow::Result<(Vec<SessionRow>, i64)> {
    let w = f.where_clause();
    let total: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM usage_session_summary WHERE {}",
            w.sql()
        ),
        params_from_iter(w.args()),
        |r| r.get(0),
    )?;
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM usage_session_summary s WHERE {} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        w.sql(),
        sort.sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt
        .query_map(params_from_iter(w.args()), read_row)?
        .collect::<Result<Vec<_>, _>>()?;
    attach_findings(conn, &mut rows)?;
    Ok((rows, total))
}

/// One session by its `session_file` (`<user dir>/<file>`).
pub fn by_file(conn: &Connection, session_file: &str) -> anyhow::Result<Option<SessionRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ROW_COLUMNS} FROM usage_session_summary s WHERE session_file = ?"
    ))?;
    let mut rows = stmt
        .query_map([session_file], read_row)?
        .collect::<Result<Vec<_>, _>>()?;
    attach_findings(conn, &mut rows)?;
    Ok(rows.pop())
}

/// The KPI figures of one window. Agnes's six fields first (never null).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Kpis {
    pub sessions_total: i64,
    pub distinct_users: i64,
    pub error_sessions: i64,
    pub tool_calls_total: i64,
    pub tool_errors_total: i64,
    /// errors / calls, rounded to 4 places; 0 without calls.
    pub tool_error_rate: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub total_tokens: i64,
    pub cost_usd: f64,
    pub sessions_with_findings: i64,
}

pub fn kpis(conn: &Connection, f: &SessionFilter) -> anyhow::Result<Kpis> {
    let w = f.where_clause();
    let sql = format!(
        "SELECT count(*), count(DISTINCT username), count(*) FILTER (WHERE tool_errors > 0),
                CAST(coalesce(sum(tool_calls), 0) AS BIGINT), CAST(coalesce(sum(tool_errors), 0) AS BIGINT),
                CAST(coalesce(sum(input_tokens), 0) AS BIGINT), CAST(coalesce(sum(output_tokens), 0) AS BIGINT),
                CAST(coalesce(sum(cache_read_tokens), 0) AS BIGINT), CAST(coalesce(sum(cache_creation_tokens), 0) AS BIGINT),
                coalesce(sum(cost_usd), 0)::DOUBLE,
                count(*) FILTER (WHERE session_file IN (SELECT session_file FROM session_findings))
         FROM usage_session_summary WHERE {}",
        w.sql()
    );
    let mut k = conn.query_row(&sql, params_from_iter(w.args()), |r| {
        Ok(Kpis {
            sessions_total: r.get(0)?,
            distinct_users: r.get(1)?,
            error_sessions: r.get(2)?,
            tool_calls_total: r.get(3)?,
            tool_errors_total: r.get(4)?,
            tool_error_rate: 0.0,
            input_tokens: r.get(5)?,
            output_tokens: r.get(6)?,
            cache_read_tokens: r.get(7)?,
            cache_creation_tokens: r.get(8)?,
            total_tokens: 0,
            cost_usd: r.get(9)?,
            sessions_with_findings: r.get(10)?,
        })
    })?;
    k.total_tokens =
        k.input_tokens + k.output_tokens + k.cache_read_tokens + k.cache_creation_tokens;
    if k.tool_calls_total > 0 {
        k.tool_error_rate =
            (k.tool_errors_total as f64 / k.tool_calls_total as f64 * 10_000.0).round() / 10_000.0;
    }
    Ok(k)
}

/// A facet bucket.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bucket {
    pub value: String,
    pub count: i64,
}

/// Agnes's `users` (50) and `models` (30), plus finding types; each counts
/// sessions under every filter but its own.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Facets {
    pub users: Vec<Bucket>,
    pub models: Vec<Bucket>,
    pub finding_types: Vec<Bucket>,
}

fn buckets(conn: &Connection, sql: &str, w: &Where) -> anyhow::Result<Vec<Bucket>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt
        .query_map(params_from_iter(w.args()), |r| {
            Ok(Bucket {
                value: r.get(0)?,
                count: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn facets(conn: &Connection, f: &SessionFilter) -> anyhow::Result<Facets> {
    let wu = f.where_without(Some(Dim::User));
    let wm = f.where_without(Some(Dim::Model));
    let wf = f.where_without(Some(Dim::FindingType));
    Ok(Facets {
        users: buckets(
            conn,
            &format!(
                "SELECT username, count(*) AS n FROM usage_session_summary WHERE {}
                 GROUP BY username ORDER BY n DESC, username LIMIT 50",
                wu.sql()
            ),
            &wu,
        )?,
        models: buckets(
            conn,
            &format!(
                "SELECT primary_model, count(*) AS n FROM usage_session_summary
                 WHERE {} AND primary_model IS NOT NULL
                 GROUP BY primary_model ORDER BY n DESC, primary_model LIMIT 30",
                wm.sql()
            ),
            &wm,
        )?,
        finding_types: buckets(
            conn,
            &format!(
                "SELECT finding_type, count(DISTINCT session_file) AS n FROM session_findings
                 WHERE session_file IN (SELECT session_file FROM usage_session_summary WHERE {})
                 GROUP BY finding_type ORDER BY n DESC, finding_type",
                wf.sql()
            ),
            &wf,
        )?,
    })
}

/// One heatmap cell: distinct sessions with a finding of `finding_type`
/// whose anchor time falls in the ISO week starting `week` (a Monday).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cell {
    pub finding_type: String,
    pub week: String,
    pub sessions: i64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Heatmap {
    pub weeks: Vec<String>,
    pub finding_types: Vec<String>,
    pub cells: Vec<Cell>,
    /// Distinct sessions across all cells (= the KPI's sessions with findings).
    pub sessions_with_findings: i64,
    pub max_cell: i64,
}

/// Finding type × week over the filtered sessions (the finding-type filter
/// is left out, so the map shows every type and its cells can set it).
pub fn heatmap(conn: &Connection, f: &SessionFilter) -> anyhow::Result<Heatmap> {
    let w = f.where_without(Some(Dim::FindingType));
    let anchor = f.anchor.column();
    let sql = format!(
        "WITH s AS (SELECT session_file, CAST(date_trunc('week', {anchor}) AS DATE) AS week
                    FROM usage_session_summary WHERE {} AND {anchor} IS NOT NULL),
              hits AS (SELECT DISTINCT s.session_file, s.week, x.finding_type
                       FROM s JOIN session_findings x USING (session_file))
         SELECT finding_type, strftime(week, '%Y-%m-%d'), count(*) FROM hits GROUP BY ALL
         UNION ALL
         SELECT NULL, NULL, count(DISTINCT session_file) FROM hits",
        w.sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut map = Heatmap::default();
    let mut weeks = std::collections::BTreeSet::new();
    let mut types = std::collections::BTreeSet::new();
    for row in stmt.query_map(params_from_iter(w.args()), |r| {
        Ok((
            r.get::<_, Option<String>>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        match row? {
            (Some(t), Some(week), n) => {
                weeks.insert(week.clone());
                types.insert(t.clone());
                map.max_cell = map.max_cell.max(n);
                map.cells.push(Cell {
                    finding_type: t,
                    week,
                    sessions: n,
                });
            }
            (_, _, n) => map.sessions_with_findings = n,
        }
    }
    map.weeks = weeks.into_iter().collect();
    map.finding_types = FINDING_TYPES
        .iter()
        .filter(|t| types.contains(**t))
        .map(|t| t.to_string())
        .chain(
            types
                .iter()
                .filter(|t| !FINDING_TYPES.contains(&t.as_str()))
                .cloned(),
        )
        .collect();
    map.cells
        .sort_by(|a, b| (&a.finding_type, &a.week).cmp(&(&b.finding_type, &b.week)));
    Ok(map)
}

/// A finding as the viewer marks it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FindingMark {
    pub line: u64,
    pub finding_type: String,
    pub severity: String,
    pub excerpt: Option<String>,
}

/// The findings of one file, by line; `None` when the failure scan has not
/// seen this version of the file (size differs), so the caller scans it.
pub fn findings_of(
    conn: &Connection,
    session_file: &str,
    size: u64,
) -> anyhow::Result<Option<Vec<FindingMark>>> {
    let scanned: Option<i64> = conn
        .query_row(
            "SELECT file_size FROM session_processor_state WHERE processor_name = 'failure_scan' AND session_file = ?",
            [session_file],
            |r| r.get(0),
        )
        .ok();
    if scanned != Some(size as i64) {
        return Ok(None);
    }
    let mut stmt = conn.prepare(
        "SELECT coalesce(turn_index, 0), finding_type, severity, excerpt FROM session_findings
         WHERE session_file = ? ORDER BY turn_index, finding_type",
    )?;
    let rows = stmt
        .query_map([session_file], |r| {
            Ok(FindingMark {
                line: r.get::<_, i64>(0)?.max(0) as u64,
                finding_type: r.get(1)?,
                severity: r.get(2)?,
                excerpt: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(rows))
}

/// The processed sessions of a person (`user_id` or `username` = email).
pub fn of_user(conn: &Connection, user_id: &str, email: &str) -> anyhow::Result<Vec<SessionRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ROW_COLUMNS} FROM usage_session_summary s WHERE user_id = ? OR username = ?
         ORDER BY started_at DESC NULLS LAST, session_file"
    ))?;
    let mut rows = stmt
        .query_map([user_id, email], read_row)?
        .collect::<Result<Vec<_>, _>>()?;
    attach_findings(conn, &mut rows)?;
    Ok(rows)
}

/// How long before now the default window of the Sessions list starts.
pub fn default_window() -> Duration {
    Duration::days(7)
}

/// A person's audit rows, newest first, and how many there are.
pub fn user_audit(
    conn: &Connection,
    user_id: &str,
    limit: i64,
    offset: i64,
) -> anyhow::Result<(Vec<super::audit::AuditRow>, i64)> {
    let filter = super::audit::AuditFilter {
        user_id: Some(user_id.to_string()),
        ..Default::default()
    };
    let page = super::audit::query(conn, &filter, None, (limit + offset) as usize)?;
    let rows = page.rows.into_iter().skip(offset as usize).collect();
    let total: i64 = conn.query_row(
        "SELECT count(*) FROM audit_log WHERE user_id = ?",
        [user_id],
        |r| r.get(0),
    )?;
    Ok((rows, total))
}

/// The audit trail of one session (uploads, views, downloads), newest first.
pub fn session_audit(
    conn: &Connection,
    session_file: &str,
    limit: usize,
) -> anyhow::Result<Vec<super::audit::AuditRow>> {
    let filter = super::audit::AuditFilter {
        resource: Some(format!("session:{session_file}")),
        ..Default::default()
    };
    Ok(super::audit::query(conn, &filter, None, limit)?.rows)
}
