//! Reads of the Telemetry page and its APIs (SPEC §5, §11; reference §1.3):
//! KPIs with the previous window, facets, group-by buckets, raw events and the
//! summary, over `usage_events`, with tokens and cost from `usage_tokens_daily`
//! (day-aligned windows) or the counted rows of `usage_responses`.
//!
//! One [`TelemetryFilter`] builds every condition, so the KPI total, the sum
//! of any group-by's buckets (a NULL bucket included) and the export's row
//! count are the same number for the same filter.

use chrono::{NaiveDateTime, NaiveTime};
use duckdb::types::Value as DbValue;
use duckdb::{params_from_iter, Connection};
use serde::Serialize;

use crate::repo::sql::{time_range, Where};

mod daily;
mod export;
pub mod rollup;
mod summary;

pub use daily::*;
pub use export::{export, export_count};
pub use summary::*;

fn text(s: &str) -> DbValue {
    DbValue::Text(s.to_string())
}

/// Whose rows an analyst may see (SPEC §1): rows whose `user_id` is theirs,
/// or, for rows derived from transcripts, whose `username` is their email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub user_id: String,
    pub email: String,
}

/// Every filter of the Telemetry page and APIs. `None` means "not filtered".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelemetryFilter {
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    pub username: Option<String>,
    pub tool_name: Option<String>,
    /// curated | flea | builtin (validated by the caller).
    pub source: Option<String>,
    pub event_type: Option<String>,
    pub only_errors: bool,
    /// Case-insensitive substring of tool, skill, subagent type or command name.
    pub q: Option<String>,
    pub model: Option<String>,
    pub session_id: Option<String>,
    /// Set for `/me`: only this person's rows.
    pub scope: Option<Scope>,
}

/// The sources a tool event can have (Agnes's export accepts exactly these).
pub const SOURCES: [&str; 3] = ["curated", "flea", "builtin"];
pub const EVENT_TYPES: [&str; 4] = ["tool_use", "subagent", "mcp_call", "slash_command"];

impl TelemetryFilter {
    /// Every condition over `usage_events`.
    pub fn where_clause(&self) -> Where {
        let mut w = time_range("occurred_at", self.since, self.until);
        w.extend(self.dims_where());
        w
    }

    /// The conditions other than the window, over `usage_events`.
    pub fn dims_where(&self) -> Where {
        let mut w = Where::default();
        if let Some(s) = &self.scope {
            w.and(
                "(user_id = ? OR username = ?)",
                [text(&s.user_id), text(&s.email)],
            );
        }
        for (col, v) in [
            ("username", &self.username),
            ("tool_name", &self.tool_name),
            ("source", &self.source),
            ("event_type", &self.event_type),
            ("model", &self.model),
            ("session_id", &self.session_id),
        ] {
            if let Some(v) = v {
                w.and(format!("{col} = ?"), [text(v)]);
            }
        }
        if self.only_errors {
            w.and("is_error", []);
        }
        if let Some(q) = &self.q {
            let q = q.to_lowercase();
            w.and(
                "(contains(lower(tool_name), ?) OR contains(lower(skill_name), ?)
                  OR contains(lower(subagent_type), ?) OR contains(lower(command_name), ?))",
                [text(&q), text(&q), text(&q), text(&q)],
            );
        }
        w
    }

    /// Tokens and cost honour the window, user, model and session only
    /// (SPEC §11): they belong to API responses, not to tool events.
    ///
    /// A SQL source of rows `day, model, input_tokens, output_tokens,
    /// cache_creation_tokens, cache_read_tokens, cost_usd` and its values:
    /// the window's whole UTC days from `usage_tokens_daily`, the part-days
    /// at its ends (and any session filter) from the counted responses.
    fn token_source(&self) -> (String, Vec<DbValue>) {
        const COLS: &str =
            "model, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd";
        let mut parts = Vec::new();
        let mut args = Vec::new();
        let mut raw = |since: Option<NaiveDateTime>, until: Option<NaiveDateTime>| {
            let w = self.response_where(since, until);
            parts.push(format!(
                "SELECT CAST(first_ts AS DATE) AS day, {COLS} FROM usage_responses WHERE {}",
                w.sql()
            ));
            args.extend(w.args().iter().cloned());
        };
        if self.session_id.is_some() {
            raw(self.since, self.until);
            return (parts.join(" UNION ALL "), args);
        }
        let start_of = |d: chrono::NaiveDate| d.and_time(NaiveTime::MIN);
        // The whole days: from the first midnight at or after `since` to the
        // last midnight at or before `until`.
        let first = self.since.map(|s| {
            if s.time() == NaiveTime::MIN {
                s.date()
            } else {
                s.date() + chrono::Duration::days(1)
            }
        });
        let after = self.until.map(|u| u.date());
        if matches!((first, after), (Some(f), Some(a)) if f >= a) {
            raw(self.since, self.until);
            return (parts.join(" UNION ALL "), args);
        }
        if let (Some(s), Some(f)) = (self.since, first) {
            if s < start_of(f) {
                raw(Some(s), Some(start_of(f)));
            }
        }
        if let (Some(u), Some(a)) = (self.until, after) {
            if start_of(a) < u {
                raw(Some(start_of(a)), Some(u));
            }
        }
        let mut w = Where::default();
        if let Some(f) = first {
            w.and("day >= ?", [DbValue::Date32(days(start_of(f)))]);
        }
        if let Some(a) = after {
            w.and("day < ?", [DbValue::Date32(days(start_of(a)))]);
        }
        if let Some(s) = &self.scope {
            // The rollup keeps only the username, which is the email
            // for transcript rows (SPEC §3).
            w.and("username = ?", [text(&s.email)]);
        }
        self.token_dims(&mut w);
        parts.push(format!(
            "SELECT day, {COLS} FROM usage_tokens_daily WHERE {}",
            w.sql()
        ));
        args.extend(w.args().iter().cloned());
        (parts.join(" UNION ALL "), args)
    }

    /// The counted responses of [since, until) and the filter.
    fn response_where(&self, since: Option<NaiveDateTime>, until: Option<NaiveDateTime>) -> Where {
        let mut w = time_range("first_ts", since, until);
        w.and("counted", []);
        if let Some(s) = &self.scope {
            w.and(
                "(user_id = ? OR username = ?)",
                [text(&s.user_id), text(&s.email)],
            );
        }
        if let Some(v) = &self.session_id {
            w.and(
                "session_file IN (SELECT session_file FROM usage_session_summary WHERE session_id = ?)",
                [text(v)],
            );
        }
        self.token_dims(&mut w);
        w
    }

    fn token_dims(&self, w: &mut Where) {
        if let Some(v) = &self.username {
            w.and("username = ?", [text(v)]);
        }
        if let Some(v) = &self.model {
            w.and("model = ?", [text(v)]);
        }
    }

    /// The same filter over the window of the same length just before.
    pub fn previous(&self, now: NaiveDateTime) -> Option<TelemetryFilter> {
        let since = self.since?;
        let until = self.until.unwrap_or(now);
        let len = until - since;
        Some(TelemetryFilter {
            since: Some(since - len),
            until: Some(since),
            ..self.clone()
        })
    }
}

fn days(t: NaiveDateTime) -> i32 {
    (t.date() - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn ratio(n: i64, d: i64) -> f64 {
    if d == 0 {
        0.0
    } else {
        round4(n as f64 / d as f64)
    }
}

/// Token counts and cost of API responses.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tokens {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    pub total_tokens: i64,
    pub cost_usd: f64,
}

/// The KPI figures of one window (Agnes's keys, then tokens and cost).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Kpis {
    pub events_total: i64,
    pub distinct_users: i64,
    pub distinct_tools: i64,
    pub errors: i64,
    pub error_rate: f64,
    #[serde(flatten)]
    pub tokens: Tokens,
}

pub fn kpis(conn: &Connection, f: &TelemetryFilter) -> anyhow::Result<Kpis> {
    let src = rollup::rows(f);
    let (events, users, tools, errors): (i64, i64, i64, i64) = conn.query_row(
        &format!(
            "SELECT coalesce(sum(n), 0)::BIGINT, count(DISTINCT username), count(DISTINCT tool_name),
                    coalesce(sum(n) FILTER (WHERE is_error), 0)::BIGINT
             FROM ({}) e",
            src.sql
        ),
        params_from_iter(src.args.iter()),
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    Ok(Kpis {
        events_total: events,
        distinct_users: users,
        distinct_tools: tools,
        errors,
        error_rate: ratio(errors, events),
        tokens: tokens(conn, f)?,
    })
}

/// Tokens and cost of the filter's window, user, model and session.
pub fn tokens(conn: &Connection, f: &TelemetryFilter) -> anyhow::Result<Tokens> {
    let (src, args) = f.token_source();
    let (i, o, cc, cr, cost): (i64, i64, i64, i64, f64) = conn.query_row(
        &format!(
            "SELECT coalesce(sum(input_tokens), 0)::BIGINT, coalesce(sum(output_tokens), 0)::BIGINT,
                    coalesce(sum(cache_creation_tokens), 0)::BIGINT, coalesce(sum(cache_read_tokens), 0)::BIGINT,
                    coalesce(sum(cost_usd), 0)::DOUBLE
             FROM ({src}) t"
        ),
        params_from_iter(args.iter()),
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    Ok(Tokens {
        input_tokens: i,
        output_tokens: o,
        cache_creation_tokens: cc,
        cache_read_tokens: cr,
        total_tokens: i + o + cc + cr,
        cost_usd: (cost * 1e6).round() / 1e6,
    })
}

/// The KPIs of the filter and of the window of the same length before it.
pub fn kpis_with_previous(
    conn: &Connection,
    f: &TelemetryFilter,
    now: NaiveDateTime,
) -> anyhow::Result<(Kpis, Option<Kpis>)> {
    let current = kpis(conn, f)?;
    let previous = match f.previous(now) {
        Some(p) => Some(kpis(conn, &p)?),
        None => None,
    };
    Ok((current, previous))
}

/// One facet value and its events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FacetValue {
    pub value: String,
    pub count: i64,
}

/// Facet lists (Agnes's four, then models).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facets {
    pub users: Vec<FacetValue>,
    pub tools: Vec<FacetValue>,
    pub sources: Vec<FacetValue>,
    pub event_types: Vec<FacetValue>,
    pub models: Vec<FacetValue>,
}

/// Facet limits (reference §1.3; models like sources).
pub const FACET_LIMITS: [(&str, usize); 5] = [
    ("username", 50),
    ("tool_name", 50),
    ("source", 20),
    ("event_type", 20),
    ("model", 20),
];

/// The values of each facet column in the filter's window (one GROUPING SETS
/// scan), most events first; NULL values are left out (nothing to select).
pub fn facets(conn: &Connection, f: &TelemetryFilter) -> anyhow::Result<Facets> {
    let src = rollup::rows(f);
    let cols: Vec<&str> = FACET_LIMITS.iter().map(|(c, _)| *c).collect();
    let sets = cols
        .iter()
        .map(|c| format!("({c})"))
        .collect::<Vec<_>>()
        .join(", ");
    // GROUPING(col) = 0 marks the set grouped by col.
    let which = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("WHEN GROUPING({c}) = 0 THEN {i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let coalesced = cols
        .iter()
        .map(|c| format!("{c}::VARCHAR"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT CASE {which} END AS facet, coalesce({coalesced}) AS value, sum(n)::BIGINT AS n
         FROM ({}) e
         GROUP BY GROUPING SETS ({sets})
         HAVING value IS NOT NULL
         ORDER BY facet, n DESC, value",
        src.sql
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(src.args.iter()), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut lists: Vec<Vec<FacetValue>> = vec![Vec::new(); cols.len()];
    for row in rows {
        let (i, value, count) = row?;
        let i = i as usize;
        if let Some(list) = lists.get_mut(i) {
            if list.len() < FACET_LIMITS[i].1 {
                list.push(FacetValue { value, count });
            }
        }
    }
    let mut it = lists.into_iter();
    let mut next = || it.next().unwrap_or_default();
    Ok(Facets {
        users: next(),
        tools: next(),
        sources: next(),
        event_types: next(),
        models: next(),
    })
}

/// What `query` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    Username,
    ToolName,
    Source,
    RefId,
    Model,
    SessionId,
}

impl GroupBy {
    pub const ALL: [GroupBy; 7] = [
        GroupBy::Day,
        GroupBy::Username,
        GroupBy::ToolName,
        GroupBy::Source,
        GroupBy::RefId,
        GroupBy::Model,
        GroupBy::SessionId,
    ];
    pub const NAMES: [&'static str; 7] = [
        "day",
        "username",
        "tool_name",
        "source",
        "ref_id",
        "model",
        "session_id",
    ];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(s: &str) -> Option<GroupBy> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
    }

    fn expr(self) -> &'static str {
        match self {
            // Grouped as a DATE (cheap) and written as YYYY-MM-DD after.
            GroupBy::Day => "day",
            GroupBy::Username => "username",
            GroupBy::ToolName => "tool_name",
            GroupBy::Source => "source",
            GroupBy::RefId => "ref_id",
            GroupBy::Model => "model",
            GroupBy::SessionId => "session_id",
        }
    }
}

/// Sort keys of the grouped query.
pub const BUCKET_SORTS: [&str; 5] = [
    "bucket",
    "invocations",
    "distinct_users",
    "distinct_sessions",
    "errors",
];

/// Sortable columns of raw events.
pub const EVENT_SORTS: [&str; 8] = [
    "occurred_at",
    "username",
    "tool_name",
    "event_type",
    "source",
    "model",
    "session_id",
    "is_error",
];

/// A validated `col:dir` sort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub column: &'static str,
    pub desc: bool,
}

impl Sort {
    /// Parses `col`, `col:asc` or `col:desc` against `allowed`.
    pub fn parse(s: &str, allowed: &[&'static str]) -> Option<Sort> {
        let (col, dir) = match s.split_once(':') {
            Some((c, d)) => (c, d),
            None => (s, "desc"),
        };
        let column = allowed.iter().find(|c| **c == col)?;
        let desc = match dir {
            "desc" => true,
            "asc" => false,
            _ => return None,
        };
        Some(Sort { column, desc })
    }

    fn dir(&self) -> &'static str {
        if self.desc {
            "DESC"
        } else {
            "ASC"
        }
    }
}

/// One bucket; `bucket` is `None` for the NULL bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub bucket: Option<String>,
    pub invocations: i64,
    pub distinct_users: i64,
    pub distinct_sessions: i64,
    pub errors: i64,
}

/// A page of buckets and how many there are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Buckets {
    pub rows: Vec<Bucket>,
    /// Distinct buckets, the NULL bucket included.
    pub total: i64,
}

pub fn group_by(
    conn: &Connection,
    f: &TelemetryFilter,
    by: GroupBy,
    sort: &Sort,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Buckets> {
    // Sessions by id: from their own rollup when it can answer the filter.
    let rows_src = if by == GroupBy::SessionId {
        rollup::session_rows(f).unwrap_or_else(|| rollup::raw_rows(f))
    } else {
        rollup::rows(f)
    };
    let expr = by.expr();
    // Distinct sessions: counted ahead, or from the sessions rollup joined
    // by bucket (NULL bucket included), or in the same pass over the rows.
    let sessions = if !rows_src.rolled || by == GroupBy::SessionId {
        None
    } else if let Some(c) = rollup::session_counts(f, by) {
        Some((
            format!(
                "SELECT bucket, sum(sessions)::BIGINT AS distinct_sessions FROM ({}) GROUP BY 1",
                c.sql
            ),
            c.args,
        ))
    } else {
        rollup::sessions(f).map(|s| {
            (
                format!(
                    "SELECT bucket, count(*) AS distinct_sessions
                     FROM (SELECT DISTINCT {expr} AS bucket, session_key FROM ({})) GROUP BY 1",
                    s.sql
                ),
                s.args,
            )
        })
    };
    let (buckets, args) = match sessions {
        Some((s0, s_args)) => {
            let mut args = rows_src.args.clone();
            args.extend(s_args);
            (
                format!(
                    "WITH b0 AS (SELECT {expr} AS bucket, sum(n)::BIGINT AS invocations,
                                   count(DISTINCT username) AS distinct_users,
                                   coalesce(sum(n) FILTER (WHERE is_error), 0)::BIGINT AS errors
                            FROM ({}) e GROUP BY 1),
                     s0 AS ({s0}),
                     b AS (SELECT b0.bucket, invocations, distinct_users,
                                  coalesce(s0.distinct_sessions, 0) AS distinct_sessions, errors
                           FROM b0 LEFT JOIN s0 ON b0.bucket IS NOT DISTINCT FROM s0.bucket)",
                    rows_src.sql
                ),
                args,
            )
        }
        None => {
            // A session's bucket holds one session (none for a NULL id).
            let distinct_sessions = if by == GroupBy::SessionId {
                "(session_id IS NOT NULL)::BIGINT"
            } else {
                "count(DISTINCT session_id)"
            };
            (
                format!(
                    "WITH b AS (
                       SELECT {expr} AS bucket, sum(n)::BIGINT AS invocations, count(DISTINCT username) AS distinct_users,
                              {distinct_sessions} AS distinct_sessions,
                              coalesce(sum(n) FILTER (WHERE is_error), 0)::BIGINT AS errors
                       FROM ({}) e GROUP BY 1)",
                    rows_src.sql
                ),
                rows_src.args.clone(),
            )
        }
    };
    // Ties (and the NULL bucket, last) in bucket order, so pages are stable.
    let sql = format!(
        "{buckets}
         SELECT CAST(bucket AS VARCHAR), invocations, distinct_users, distinct_sessions, errors, count(*) OVER () AS total
         FROM b ORDER BY {col} {dir} NULLS LAST, bucket ASC NULLS LAST
         LIMIT {limit} OFFSET {offset}",
        col = sort.column,
        dir = sort.dir(),
        limit = limit.max(0),
        offset = offset.max(0),
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut total = None;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), |r| {
            Ok((
                Bucket {
                    bucket: r.get(0)?,
                    invocations: r.get(1)?,
                    distinct_users: r.get(2)?,
                    distinct_sessions: r.get(3)?,
                    errors: r.get(4)?,
                },
                r.get::<_, i64>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let rows = rows
        .into_iter()
        .map(|(b, t)| {
            total = Some(t);
            b
        })
        .collect();
    let total = match total {
        Some(t) => t,
        None => conn.query_row(
            &format!(
                "SELECT count(DISTINCT {expr}) + (count(*) FILTER (WHERE {expr} IS NULL) > 0)::BIGINT
                 FROM ({}) e",
                rows_src.sql
            ),
            params_from_iter(rows_src.args.iter()),
            |r| r.get(0),
        )?,
    };
    Ok(Buckets { rows, total })
}

/// One raw event (Agnes's columns).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: String,
    #[serde(serialize_with = "crate::isotime::ser")]
    pub occurred_at: NaiveDateTime,
    pub username: String,
    pub source: String,
    pub ref_id: Option<String>,
    pub event_type: String,
    pub tool_name: Option<String>,
    pub skill_name: Option<String>,
    pub subagent_type: Option<String>,
    pub command_name: Option<String>,
    pub is_error: bool,
    pub session_id: String,
    pub model: Option<String>,
}

/// A page of raw events, sorted.
///
/// Newest first (the page's default) over a wide window would sort every
/// event of it (~70 ms over 12 M events): the page is first looked for in the
/// last hour, then 8, then 64 hours, each read ending where the window ends.
/// Every event before such a span is older than every event in it, so once
/// the span holds the whole page the page is the window's.
pub fn events(
    conn: &Connection,
    f: &TelemetryFilter,
    sort: &Sort,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<Event>> {
    if sort.column == "occurred_at" && sort.desc && limit > 0 {
        let end = f
            .until
            .unwrap_or_else(|| chrono::Utc::now().naive_utc() + chrono::Duration::minutes(1));
        for hours in [1, 8, 64] {
            let start = end - chrono::Duration::hours(hours);
            if f.since.is_some_and(|s| s >= start) {
                break;
            }
            let narrow = TelemetryFilter {
                since: Some(start),
                ..f.clone()
            };
            let page = events_page(conn, &narrow, sort, limit, offset)?;
            if page.len() as i64 == limit {
                return Ok(page);
            }
        }
    }
    events_page(conn, f, sort, limit, offset)
}

fn events_page(
    conn: &Connection,
    f: &TelemetryFilter,
    sort: &Sort,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<Event>> {
    let w = f.where_clause();
    let sql = format!(
        "SELECT id, occurred_at, username, source, ref_id, event_type, tool_name, skill_name,
                subagent_type, command_name, coalesce(is_error, false), session_id, model
         FROM usage_events WHERE {cond}
         ORDER BY {col} {dir} NULLS LAST, occurred_at DESC, id
         LIMIT {limit} OFFSET {offset}",
        cond = w.sql(),
        col = sort.column,
        dir = sort.dir(),
        limit = limit.max(0),
        offset = offset.max(0),
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(w.args().iter()), |r| {
            Ok(Event {
                id: r.get(0)?,
                occurred_at: r.get(1)?,
                username: r.get(2)?,
                source: r.get(3)?,
                ref_id: r.get(4)?,
                event_type: r.get(5)?,
                tool_name: r.get(6)?,
                skill_name: r.get(7)?,
                subagent_type: r.get(8)?,
                command_name: r.get(9)?,
                is_error: r.get(10)?,
                session_id: r.get(11)?,
                model: r.get(12)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The events of the filter (what raw mode pages through).
pub fn count(conn: &Connection, f: &TelemetryFilter) -> anyhow::Result<i64> {
    let src = rollup::rows(f);
    Ok(conn.query_row(
        &format!("SELECT coalesce(sum(n), 0)::BIGINT FROM ({}) e", src.sql),
        params_from_iter(src.args.iter()),
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests;
