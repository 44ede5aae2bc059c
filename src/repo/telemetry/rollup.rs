//! The daily rollups of `usage_events` (migration 0006) and the row sources
//! the Telemetry reads are written over.
//!
//! **Invariant.** `usage_events_daily` and `usage_event_sessions_daily` hold
//! exactly the counts of the `usage_events` rows of each day they have, and
//! every day with events has its rows. What keeps it true: ingest's rebuild
//! re-counts the days it touched in the same transaction as the rest of its
//! rollups ([`recount`] with the pending days), prune re-counts the days it
//! cut, reprocess empties them with the events, synth counts what it wrote.
//! Between an ingest batch's commit and its rebuild the newest events may
//! be missing from them for a moment, as from `usage_tool_daily`.
//!
//! **Reading.** [`rows`] gives one SQL source of weighted rows (`n` events
//! per row) for a filter: whole hours of the window from the rollup (each
//! row carries its day's 24 hourly counts in columns `h00` … `h23`, since
//! migration 0007, so a window starting at 14:37
//! reads hours 15–23 of its first day from the rollup), and the minutes
//! before the first whole hour and after the last from `usage_events`. A
//! filter the rollups cannot answer (a session, free text, an analyst's own
//! rows) reads `usage_events` with weight 1, through the same queries.
//! [`sessions`] is the same for the distinct sessions of a group-by.

use chrono::{Datelike, Duration, DurationRound, NaiveDate, NaiveDateTime, Timelike};
use duckdb::types::Value as DbValue;
use duckdb::Connection;

use super::{GroupBy, TelemetryFilter};
use crate::repo::sql::time_range;

/// The columns both rollups share with `usage_events` (what the page filters
/// and groups by, sessions aside).
const DIMS: &str = "username, tool_name, source, event_type, model, ref_id, is_error";

/// Days to re-count.
#[derive(Debug, Clone, Copy)]
pub enum Days {
    /// Every day (after a bulk write).
    All,
    /// The days in `pending_days` (ingest's rebuild).
    Pending,
    /// Every day before this one (after a prune up to a time inside it,
    /// which is re-counted too).
    Through(NaiveDate),
}

/// Replaces the rollups' rows of `days` by counts of the `usage_events`
/// rows of those days. Runs in the caller's transaction.
pub fn recount(conn: &Connection, days: Days) -> anyhow::Result<()> {
    let (rollup_cond, events_cond) = match days {
        Days::All => ("true".to_string(), "true".to_string()),
        Days::Pending => (
            "day IN (SELECT day FROM pending_days)".to_string(),
            "CAST(occurred_at AS DATE) IN (SELECT day FROM pending_days)".to_string(),
        ),
        Days::Through(d) => {
            let next = d + Duration::days(1);
            (
                format!("day < {}", date_literal(next)),
                format!("occurred_at < {}", date_literal(next)),
            )
        }
    };
    let pending = matches!(days, Days::Pending);
    if pending {
        // The sessions of the re-counted days before (and, below, after):
        // only they can start or stop spanning days.
        conn.execute_batch(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS touched_sessions (session_key UBIGINT);
             DELETE FROM touched_sessions;
             INSERT INTO touched_sessions SELECT DISTINCT session_key FROM usage_event_sessions_daily WHERE {rollup_cond};"
        ))?;
    }
    conn.execute_batch(&format!(
        "DELETE FROM usage_events_daily WHERE {rollup_cond};
         DELETE FROM usage_event_sessions_daily WHERE {rollup_cond};
         DELETE FROM usage_sessions_daily WHERE {rollup_cond};
         INSERT INTO usage_events_daily {} ORDER BY day;
         INSERT INTO usage_event_sessions_daily {} ORDER BY day;
         INSERT INTO usage_sessions_daily {} ORDER BY day;",
        count_events(&events_cond),
        count_sessions(&events_cond),
        count_session_events(&events_cond),
    ))?;
    // A prune can make a session stop spanning days anywhere: after any
    // bulk change the spanning list and the counts are redone whole.
    let counts_cond = if pending {
        conn.execute_batch(&format!(
            "INSERT INTO touched_sessions SELECT DISTINCT session_key FROM usage_event_sessions_daily WHERE {rollup_cond};
             DELETE FROM usage_sessions_spanning WHERE session_key IN (SELECT session_key FROM touched_sessions);
             INSERT INTO usage_sessions_spanning {};
             CREATE TEMP TABLE IF NOT EXISTS touched_days (day DATE);
             DELETE FROM touched_days;
             INSERT INTO touched_days SELECT day FROM pending_days
                 UNION SELECT day FROM usage_event_sessions_daily
                       WHERE session_key IN (SELECT session_key FROM touched_sessions);",
            count_spanning("session_key IN (SELECT session_key FROM touched_sessions)")
        ))?;
        "day IN (SELECT day FROM touched_days)"
    } else {
        conn.execute_batch(&format!(
            "DELETE FROM usage_sessions_spanning;
             INSERT INTO usage_sessions_spanning {};",
            count_spanning("true")
        ))?;
        "true"
    };
    conn.execute_batch(&format!(
        "DELETE FROM usage_session_counts WHERE {counts_cond};
         INSERT INTO usage_session_counts {} ORDER BY day, dim;",
        count_session_values(counts_cond)
    ))?;
    Ok(())
}

/// The `usage_events_daily` rows of the events `cond` selects.
fn count_events(cond: &str) -> String {
    format!(
        "SELECT CAST(occurred_at AS DATE) AS day, {DIMS}, count(*)::BIGINT AS events, {}
         FROM usage_events WHERE {cond} GROUP BY ALL",
        count_hours()
    )
}

/// The 24 hourly columns (`h00` … `h23`) of a day's rollup row.
fn hour_columns() -> String {
    (0..24)
        .map(|h| format!("h{h:02}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The events of each hour of the group, as the hourly columns.
fn count_hours() -> String {
    (0..24)
        .map(|h| format!("count(*) FILTER (WHERE hour(occurred_at) = {h})::INTEGER AS h{h:02}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `usage_event_sessions_daily` rows of the events `cond` selects.
/// The key is hashed after grouping: md5 costs ~0.5 µs a row, and there
/// are ~7 x more rows before than after.
fn count_sessions(cond: &str) -> String {
    format!(
        "SELECT day, md5_number_lower(session_id) AS session_key, {DIMS}, hours
         FROM (SELECT CAST(occurred_at AS DATE) AS day, session_id, {DIMS},
                      bit_or(1 << hour(occurred_at)) AS hours
               FROM usage_events WHERE {cond} GROUP BY ALL)"
    )
}

/// The `usage_sessions_daily` rows of the events `cond` selects.
fn count_session_events(cond: &str) -> String {
    format!(
        "SELECT CAST(occurred_at AS DATE) AS day, session_id, username, is_error, count(*)::BIGINT AS events, {}
         FROM usage_events WHERE {cond} GROUP BY ALL",
        count_hours()
    )
}

/// The columns `usage_session_counts` counts sessions by (its `dim`).
const SESSION_DIMS: [&str; 5] = ["username", "tool_name", "source", "ref_id", "model"];

/// The `usage_sessions_spanning` rows among the sessions `cond` selects
/// (over `usage_event_sessions_daily`): the rows of those on more than one
/// day, or of more than one person.
fn count_spanning(cond: &str) -> String {
    format!(
        "SELECT * FROM usage_event_sessions_daily
         WHERE session_key IN (SELECT session_key FROM usage_event_sessions_daily WHERE {cond}
                               GROUP BY session_key HAVING count(DISTINCT (day, username)) > 1)"
    )
}

/// The `usage_session_counts` rows of the days `cond` selects (over
/// `usage_event_sessions_daily`): sessions not spanning days, counted per
/// day, column, value and mask of active hours.
fn count_session_values(cond: &str) -> String {
    let names: Vec<String> = SESSION_DIMS.iter().map(|d| format!("'{d}'")).collect();
    format!(
        "SELECT day, dim, value, hours, count(*)::BIGINT AS sessions
         FROM (SELECT day, dim, value, session_key, bit_or(hours) AS hours
               FROM (SELECT day, session_key, hours, unnest([{}]) AS dim, unnest([{}]) AS value
                     FROM usage_event_sessions_daily
                     WHERE ({cond}) AND session_key NOT IN (SELECT session_key FROM usage_sessions_spanning))
               GROUP BY ALL)
         GROUP BY ALL",
        names.join(", "),
        SESSION_DIMS.join(", ")
    )
}

/// `DATE 'YYYY-MM-DD'` (from a date, never from outside text).
fn date_literal(d: NaiveDate) -> String {
    format!("DATE '{:04}-{:02}-{:02}'", d.year(), d.month(), d.day())
}

fn floor_hour(t: NaiveDateTime) -> NaiveDateTime {
    t.duration_trunc(Duration::hours(1)).unwrap_or(t)
}

fn ceil_hour(t: NaiveDateTime) -> NaiveDateTime {
    let f = floor_hour(t);
    if f == t {
        t
    } else {
        f + Duration::hours(1)
    }
}

/// A SQL source and the values bound to its `?`s, in order.
#[derive(Debug, Clone)]
pub struct Source {
    pub sql: String,
    pub args: Vec<DbValue>,
    /// Whether it reads the rollups (else `usage_events`, with `session_id`).
    pub rolled: bool,
}

#[cfg(test)]
thread_local! {
    /// Tests compare every read with and without the rollups.
    pub static FORCE_RAW: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The part of a window the rollups answer: whole hours [from, to).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Hours {
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
}

/// Rollup rows of some days, and which of their hours count.
#[derive(Debug, Clone, PartialEq)]
struct Piece {
    /// A condition on `day`.
    day: String,
    /// Hours [lo, hi) of the day; `None`: all of them.
    hours: Option<(u32, u32)>,
}

impl Piece {
    fn part(day: NaiveDate, lo: u32, hi: u32) -> Piece {
        Piece {
            day: format!("day = {}", date_literal(day)),
            hours: Some((lo, hi)),
        }
    }

    /// `events` restricted to the piece's hours, as SQL.
    fn events(&self) -> String {
        match self.hours {
            None => "events".to_string(),
            Some((lo, hi)) => format!(
                "({})",
                (lo..hi)
                    .map(|h| format!("h{h:02}"))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        }
    }

    /// A condition keeping sessions active in the piece's hours.
    fn active(&self) -> Option<String> {
        let (lo, hi) = self.hours?;
        let mask = ((1i64 << hi) - 1) & !((1i64 << lo) - 1);
        Some(format!("hours & {mask} <> 0"))
    }
}

impl Hours {
    /// `None` when the rollups cannot answer the filter, or the window holds
    /// no whole hour (its few minutes are cheaper read raw).
    fn of(f: &TelemetryFilter) -> Option<Hours> {
        #[cfg(test)]
        if FORCE_RAW.with(|r| r.get()) {
            return None;
        }
        if f.session_id.is_some() || f.q.is_some() || f.scope.is_some() {
            return None;
        }
        let h = Hours {
            from: f.since.map(ceil_hour),
            to: f.until.map(floor_hour),
        };
        match (h.from, h.to) {
            (Some(a), Some(b)) if a >= b => None,
            _ => Some(h),
        }
    }

    /// The rollup rows that hold the hours: whole days (every hour), and
    /// the first and last day when the window starts or ends inside them
    /// (hours [lo, hi) of that day). Whole days read `events`, not the
    /// 24 hourly columns.
    fn pieces(&self) -> Vec<Piece> {
        let mut out = Vec::new();
        let first_whole = self.from.map(|a| {
            if a.hour() == 0 {
                a.date()
            } else {
                a.date() + Duration::days(1)
            }
        });
        let after_whole = self.to.map(|b| b.date());
        let mut whole = Vec::new();
        if let Some(d) = first_whole {
            whole.push(format!("day >= {}", date_literal(d)));
        }
        if let Some(d) = after_whole {
            whole.push(format!("day < {}", date_literal(d)));
        }
        if !matches!((first_whole, after_whole), (Some(x), Some(y)) if x >= y) {
            out.push(Piece {
                day: if whole.is_empty() {
                    "TRUE".to_string()
                } else {
                    whole.join(" AND ")
                },
                hours: None,
            });
        }
        let from = self.from.filter(|a| a.hour() > 0);
        let to = self.to.filter(|b| b.hour() > 0);
        match (from, to) {
            (Some(a), Some(b)) if a.date() == b.date() => {
                out.push(Piece::part(a.date(), a.hour(), b.hour()))
            }
            _ => {
                if let Some(a) = from {
                    out.push(Piece::part(a.date(), a.hour(), 24));
                }
                if let Some(b) = to {
                    out.push(Piece::part(b.date(), 0, b.hour()));
                }
            }
        }
        out
    }

    /// The raw edges: [since, from) and [to, until), each when not empty,
    /// with its start (an edge lies within one hour, so within its start's
    /// day).
    fn edges(&self, f: &TelemetryFilter) -> Vec<(crate::repo::sql::Where, NaiveDateTime)> {
        let mut out = Vec::new();
        if let (Some(s), Some(a)) = (f.since, self.from) {
            if s < a {
                out.push((time_range("occurred_at", Some(s), Some(a)), s));
            }
        }
        if let Some(b) = self.to {
            if f.until.is_some_and(|u| b < u) {
                out.push((time_range("occurred_at", Some(b), f.until), b));
            }
        }
        out
    }
}

/// The filter's events as weighted rows: `day, username, tool_name, source,
/// event_type, model, ref_id, is_error, n` (and `session_id` when read from
/// `usage_events`), one row per `n` events.
pub fn rows(f: &TelemetryFilter) -> Source {
    match Hours::of(f) {
        Some(h) => weighted(f, &h, "usage_events_daily", DIMS),
        None => raw_rows(f),
    }
}

/// Like [`rows`], with columns `day, session_id, username, is_error, n`,
/// for the group-by by session: from `usage_sessions_daily`, which knows
/// no other column, so only for a window, a person and errors.
pub fn session_rows(f: &TelemetryFilter) -> Option<Source> {
    let h = Hours::of(f)?;
    if f.tool_name.is_some() || f.source.is_some() || f.event_type.is_some() || f.model.is_some() {
        return None;
    }
    Some(weighted(
        f,
        &h,
        "usage_sessions_daily",
        "session_id, username, is_error",
    ))
}

/// The hours of `h` from a rollup with `day`, `cols`, `events` and hourly
/// `h00` … `h23` columns, the raw edges from `usage_events`, as rows `day, cols, n`.
fn weighted(f: &TelemetryFilter, h: &Hours, table: &str, cols: &str) -> Source {
    let dims = f.dims_where();
    let mut parts = Vec::new();
    let mut args = Vec::new();
    for p in h.pieces() {
        parts.push(format!(
            "SELECT * FROM (SELECT day, {cols}, ({})::BIGINT AS n FROM {table} WHERE {} AND {})
             WHERE n > 0",
            p.events(),
            p.day,
            dims.sql()
        ));
        args.extend(dims.args().iter().cloned());
    }
    for (edge, _) in h.edges(f) {
        let mut w = edge;
        w.extend(f.dims_where());
        // At most an hour of events at each end: no need to group them.
        parts.push(format!(
            "SELECT CAST(occurred_at AS DATE) AS day, {cols}, 1 AS n FROM usage_events WHERE {}",
            w.sql()
        ));
        args.extend(w.args().iter().cloned());
    }
    Source {
        sql: parts.join(" UNION ALL "),
        args,
        rolled: true,
    }
}

/// [`rows`] read from `usage_events` whatever the filter.
pub fn raw_rows(f: &TelemetryFilter) -> Source {
    let w = f.where_clause();
    Source {
        sql: format!(
            "SELECT CAST(occurred_at AS DATE) AS day, {DIMS}, session_id, 1 AS n
             FROM usage_events WHERE {}",
            w.sql()
        ),
        args: w.args().to_vec(),
        rolled: false,
    }
}

/// The sessions behind the filter's events, for distinct-session counts:
/// `day, DIMS, session_key`, one row per session and combination at least.
/// Only for filters [`rows`] reads from the rollups.
pub fn sessions(f: &TelemetryFilter) -> Option<Source> {
    let h = Hours::of(f)?;
    let dims = f.dims_where();
    let mut parts = Vec::new();
    let mut args = Vec::new();
    for p in h.pieces() {
        let mut conds = vec![p.day.clone(), dims.sql()];
        conds.extend(p.active());
        parts.push(format!(
            "SELECT day, {DIMS}, session_key FROM usage_event_sessions_daily WHERE {}",
            conds.join(" AND ")
        ));
        args.extend(dims.args().iter().cloned());
    }
    for (edge, _) in h.edges(f) {
        let mut w = edge;
        w.extend(f.dims_where());
        parts.push(format!(
            "SELECT day, {DIMS}, md5_number_lower(session_id) AS session_key
             FROM (SELECT DISTINCT CAST(occurred_at AS DATE) AS day, {DIMS}, session_id
                   FROM usage_events WHERE {})",
            w.sql()
        ));
        args.extend(w.args().iter().cloned());
    }
    Some(Source {
        sql: parts.join(" UNION ALL "),
        args,
        rolled: true,
    })
}

/// The distinct sessions of each bucket of `by`, as rows `bucket, sessions`
/// to be summed per bucket, without a DISTINCT over every (bucket, session)
/// pair of the window: sessions within one day and person come counted
/// from `usage_session_counts`; the few spanning ones are de-duplicated
/// from `usage_event_sessions_daily`; a session of the raw edges counts
/// when the whole hours do not already hold it in that bucket. Only for a
/// window without other filters (else [`sessions`]) and not by session.
pub fn session_counts(f: &TelemetryFilter, by: GroupBy) -> Option<Source> {
    let h = Hours::of(f)?;
    if !f.dims_where().is_empty() {
        return None;
    }
    let (dim, counted) = match by {
        GroupBy::Day => ("username", "day"),
        GroupBy::Username => ("username", "value"),
        GroupBy::ToolName => ("tool_name", "value"),
        GroupBy::Source => ("source", "value"),
        GroupBy::RefId => ("ref_id", "value"),
        GroupBy::Model => ("model", "value"),
        GroupBy::SessionId => return None,
    };
    // The bucket's column in usage_event_sessions_daily (day or a DIM).
    let col = by.expr();
    let pieces = h.pieces();
    let mut parts = Vec::new();
    let mut in_hours = Vec::new();
    for p in &pieces {
        let mut conds = vec![p.day.clone()];
        conds.extend(p.active());
        in_hours.push(format!("({})", conds.join(" AND ")));
        parts.push(format!(
            "SELECT {counted} AS bucket, sessions FROM usage_session_counts WHERE dim = '{dim}' AND {}",
            conds.join(" AND ")
        ));
    }
    let in_hours = if in_hours.is_empty() {
        "FALSE".to_string()
    } else {
        in_hours.join(" OR ")
    };
    parts.push(format!(
        "SELECT bucket, count(*) AS sessions
         FROM (SELECT DISTINCT {col} AS bucket, session_key FROM usage_sessions_spanning
               WHERE {in_hours})
         GROUP BY 1"
    ));
    let mut args = Vec::new();
    let edges = h.edges(f);
    if !edges.is_empty() {
        let mut conds = Vec::new();
        let mut days = Vec::new();
        for (e, t) in edges {
            conds.push(format!("({})", e.sql()));
            args.extend(e.args().iter().cloned());
            days.push(date_literal(t.date()));
        }
        let expr = if by == GroupBy::Day {
            "CAST(occurred_at AS DATE)"
        } else {
            col
        };
        // md5 after DISTINCT: it costs ~0.5 µs a row (~20 ms for an hour
        // of raw events). An edge's session is already counted when the hours hold it in
        // the same bucket: a session of one day only on the edge's own day,
        // a spanning one anywhere. EXCEPT compares NULL buckets as equal.
        parts.push(format!(
            "SELECT bucket, count(*) AS sessions
             FROM (WITH edge AS MATERIALIZED (
                       SELECT bucket, md5_number_lower(session_id) AS session_key
                       FROM (SELECT DISTINCT {expr} AS bucket, session_id FROM usage_events WHERE {}))
                   SELECT bucket, session_key FROM edge
                   EXCEPT
                   SELECT {col}, session_key FROM usage_event_sessions_daily
                   WHERE day IN ({}) AND session_key IN (SELECT session_key FROM edge) AND ({in_hours})
                   EXCEPT
                   SELECT {col}, session_key FROM usage_sessions_spanning WHERE {in_hours})
             GROUP BY 1",
            conds.join(" OR "),
            days.join(", ")
        ));
    }
    Some(Source {
        sql: parts.join(" UNION ALL "),
        args,
        rolled: true,
    })
}

/// How far the rollups are from a fresh count of `usage_events` (the tests'
/// check of the invariant): the rows of each side missing from the other,
/// summed over both rollups; 0 when they agree.
pub fn mismatches(conn: &Connection) -> anyhow::Result<i64> {
    let q = |sql: String| -> anyhow::Result<i64> { Ok(conn.query_row(&sql, [], |r| r.get(0))?) };
    // The counts are checked against the stored spanning list, which is
    // itself checked against a fresh one.
    let pairs = [
        (
            count_events("true"),
            format!(
                "SELECT day, {DIMS}, events, {} FROM usage_events_daily",
                hour_columns()
            ),
        ),
        (
            count_sessions("true"),
            format!("SELECT day, session_key, {DIMS}, hours FROM usage_event_sessions_daily"),
        ),
        (
            count_session_events("true"),
            format!(
                "SELECT day, session_id, username, is_error, events, {} FROM usage_sessions_daily",
                hour_columns()
            ),
        ),
        (
            count_spanning("true"),
            "SELECT * FROM usage_sessions_spanning".to_string(),
        ),
        (
            count_session_values("true"),
            "SELECT day, dim, value, hours, sessions FROM usage_session_counts".to_string(),
        ),
    ];
    let mut total = 0;
    for (a, b) in &pairs {
        total += q(format!(
            "SELECT (SELECT count(*) FROM ({a} EXCEPT ALL {b})) + (SELECT count(*) FROM ({b} EXCEPT ALL {a}))"
        ))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn a_window_splits_into_whole_hours_and_raw_edges() {
        let f = TelemetryFilter {
            since: Some(t("2026-11-26 14:37:00")),
            until: Some(t("2026-12-03 09:05:00")),
            ..Default::default()
        };
        let h = Hours::of(&f).unwrap();
        assert_eq!(h.from, Some(t("2026-11-26 15:00:00")));
        assert_eq!(h.to, Some(t("2026-12-03 09:00:00")));
        assert_eq!(h.edges(&f).len(), 2);
        // Whole days 27 Nov – 2 Dec, hours 15..23 of the first day, 0..8 of the last.
        let p = h.pieces();
        assert_eq!(p.len(), 3);
        assert_eq!(
            p[0].day,
            "day >= DATE '2026-11-27' AND day < DATE '2026-12-03'"
        );
        assert_eq!((p[1].hours, p[2].hours), (Some((15, 24)), Some((0, 9))));
        assert_eq!(p[1].active().unwrap(), format!("hours & {} <> 0", 0xFF8000));
        assert_eq!(
            p[2].events(),
            "(h00 + h01 + h02 + h03 + h04 + h05 + h06 + h07 + h08)"
        );
        // Both ends inside one day: one piece, no whole days.
        let day = TelemetryFilter {
            since: Some(t("2026-11-26 10:10:00")),
            until: Some(t("2026-11-26 20:10:00")),
            ..Default::default()
        };
        let p = Hours::of(&day).unwrap().pieces();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].hours, Some((11, 20)));
        // Aligned windows have no edges; short ones and session filters read raw.
        let aligned = TelemetryFilter {
            since: Some(t("2026-11-26 00:00:00")),
            until: None,
            ..Default::default()
        };
        let h = Hours::of(&aligned).unwrap();
        assert!(h.edges(&aligned).is_empty());
        assert_eq!(h.pieces().len(), 1);
        let short = TelemetryFilter {
            since: Some(t("2026-11-26 14:37:00")),
            until: Some(t("2026-11-26 15:30:00")),
            ..Default::default()
        };
        assert_eq!(Hours::of(&short), None);
        let session = TelemetryFilter {
            session_id: Some("s".into()),
            ..Default::default()
        };
        assert_eq!(Hours::of(&session), None);
        assert!(!rows(&session).rolled);
    }
}
