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
//! row carries its day's 24 hourly counts, so a window starting at 14:37
//! reads hours 15–23 of its first day from the rollup), and the minutes
//! before the first whole hour and after the last from `usage_events`. A
//! filter the rollups cannot answer (a session, free text, an analyst's own
//! rows) reads `usage_events` with weight 1, through the same queries.
//! [`sessions`] is the same for the distinct sessions of a group-by.

use chrono::{Datelike, Duration, DurationRound, NaiveDate, NaiveDateTime, Timelike};
use duckdb::types::Value as DbValue;
use duckdb::Connection;

use super::TelemetryFilter;
use crate::repo::sql::time_range;

/// The columns both rollups share with `usage_events` (what the page filters
/// and groups by, sessions aside).
const DIMS: &str = "username, tool_name, source, event_type, model, ref_id, is_error";

/// All 24 hours of a day, as a bit mask.
const ALL_HOURS: i64 = (1 << 24) - 1;

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

/// Replaces both rollups' rows of `days` by counts of the `usage_events`
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
    conn.execute_batch(&format!(
        "DELETE FROM usage_events_daily WHERE {rollup_cond};
         DELETE FROM usage_event_sessions_daily WHERE {rollup_cond};
         INSERT INTO usage_events_daily
         SELECT CAST(occurred_at AS DATE) AS day, {DIMS}, count(*),
                list_transform(range(24), h -> coalesce(histogram(hour(occurred_at))[h], 0))
         FROM usage_events WHERE {events_cond} GROUP BY ALL ORDER BY day;
         INSERT INTO usage_event_sessions_daily
         SELECT CAST(occurred_at AS DATE) AS day, md5_number_lower(session_id), {DIMS},
                bit_or(1 << hour(occurred_at))
         FROM usage_events WHERE {events_cond} GROUP BY ALL ORDER BY day;"
    ))?;
    Ok(())
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

    /// Conditions on `day` selecting the rollup rows that can hold the hours.
    fn day_range(&self) -> Vec<String> {
        let mut c = Vec::new();
        if let Some(a) = self.from {
            c.push(format!("day >= {}", date_literal(a.date())));
        }
        if let Some(b) = self.to {
            let op = if b.hour() > 0 { "<=" } else { "<" };
            c.push(format!("day {op} {}", date_literal(b.date())));
        }
        c
    }

    /// The first hour of a row's day inside the window, as SQL.
    fn lo(&self) -> String {
        match self.from {
            Some(a) if a.hour() > 0 => format!(
                "CASE WHEN day = {} THEN {} ELSE 0 END",
                date_literal(a.date()),
                a.hour()
            ),
            _ => "0".to_string(),
        }
    }

    /// One past the last hour of a row's day inside the window, as SQL.
    fn hi(&self) -> String {
        match self.to {
            Some(b) if b.hour() > 0 => format!(
                "CASE WHEN day = {} THEN {} ELSE 24 END",
                date_literal(b.date()),
                b.hour()
            ),
            _ => "24".to_string(),
        }
    }

    /// Whether some day is only partly inside.
    fn partial(&self) -> bool {
        self.from.is_some_and(|a| a.hour() > 0) || self.to.is_some_and(|b| b.hour() > 0)
    }

    /// The raw edges: [since, from) and [to, until), each when not empty.
    fn edges(&self, f: &TelemetryFilter) -> Vec<crate::repo::sql::Where> {
        let mut out = Vec::new();
        if let (Some(s), Some(a)) = (f.since, self.from) {
            if s < a {
                out.push(time_range("occurred_at", Some(s), Some(a)));
            }
        }
        if let Some(b) = self.to {
            if f.until.is_some_and(|u| b < u) {
                out.push(time_range("occurred_at", Some(b), f.until));
            }
        }
        out
    }
}

/// The filter's events as weighted rows: `day, username, tool_name, source,
/// event_type, model, ref_id, is_error, n` (and `session_id` when read from
/// `usage_events`), one row per `n` events.
pub fn rows(f: &TelemetryFilter) -> Source {
    let Some(h) = Hours::of(f) else {
        return raw_rows(f);
    };
    let dims = f.dims_where();
    let mut conds = h.day_range();
    conds.push(dims.sql());
    let n = if h.partial() {
        let (lo, hi) = (h.lo(), h.hi());
        format!(
            "CASE WHEN {lo} = 0 AND {hi} = 24 THEN events
                  ELSE coalesce(list_sum(list_slice(hours, {lo} + 1, {hi})), 0) END"
        )
    } else {
        "events".to_string()
    };
    let mut parts = vec![format!(
        "SELECT * FROM (SELECT day, {DIMS}, ({n})::BIGINT AS n FROM usage_events_daily WHERE {})
         WHERE n > 0",
        conds.join(" AND ")
    )];
    let mut args = dims.args().to_vec();
    for edge in h.edges(f) {
        let mut w = edge;
        w.extend(f.dims_where());
        parts.push(format!(
            "SELECT CAST(occurred_at AS DATE) AS day, {DIMS}, count(*) AS n
             FROM usage_events WHERE {} GROUP BY ALL",
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
    let mut conds = h.day_range();
    conds.push(dims.sql());
    if h.partial() {
        conds.push(format!("hours & ({}) <> 0", hours_mask(&h)));
    }
    let mut parts = vec![format!(
        "SELECT day, {DIMS}, session_key FROM usage_event_sessions_daily WHERE {}",
        conds.join(" AND ")
    )];
    let mut args = dims.args().to_vec();
    for edge in h.edges(f) {
        let mut w = edge;
        w.extend(f.dims_where());
        parts.push(format!(
            "SELECT DISTINCT CAST(occurred_at AS DATE) AS day, {DIMS}, md5_number_lower(session_id) AS session_key
             FROM usage_events WHERE {}",
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

/// The hours of a row's day inside the window, as a bit mask in SQL.
fn hours_mask(h: &Hours) -> String {
    let lo = match h.from {
        Some(a) if a.hour() > 0 => format!(
            "CASE WHEN day = {} THEN {} ELSE {ALL_HOURS} END",
            date_literal(a.date()),
            ALL_HOURS & !((1i64 << a.hour()) - 1)
        ),
        _ => ALL_HOURS.to_string(),
    };
    let hi = match h.to {
        Some(b) if b.hour() > 0 => format!(
            "CASE WHEN day = {} THEN {} ELSE {ALL_HOURS} END",
            date_literal(b.date()),
            (1i64 << b.hour()) - 1
        ),
        _ => ALL_HOURS.to_string(),
    };
    format!("({lo}) & ({hi})")
}

/// Whether the rollups hold exactly what `usage_events` does (tests and
/// `glassbox doctor`-style checks): the rows of each side missing from the
/// other, summed over both rollups.
pub fn mismatches(conn: &Connection) -> anyhow::Result<i64> {
    let q = |sql: String| -> anyhow::Result<i64> { Ok(conn.query_row(&sql, [], |r| r.get(0))?) };
    let events = format!(
        "SELECT CAST(occurred_at AS DATE) AS day, {DIMS}, count(*)::BIGINT AS n,
                list_transform(range(24), h -> coalesce(histogram(hour(occurred_at))[h], 0))::BIGINT[] AS hours
         FROM usage_events GROUP BY ALL"
    );
    let daily = format!("SELECT day, {DIMS}, events, hours FROM usage_events_daily");
    let sessions = format!(
        "SELECT CAST(occurred_at AS DATE) AS day, md5_number_lower(session_id) AS k, {DIMS},
                bit_or(1 << hour(occurred_at)) AS hours
         FROM usage_events GROUP BY ALL"
    );
    let sessions_daily =
        format!("SELECT day, session_key, {DIMS}, hours FROM usage_event_sessions_daily");
    let mut total = 0;
    for (a, b) in [(&events, &daily), (&sessions, &sessions_daily)] {
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
        // Hours 15..23 of the first day, 0..8 of the last.
        assert!(hours_mask(&h).contains(&(ALL_HOURS & !((1 << 15) - 1)).to_string()));
        assert!(hours_mask(&h).contains(&((1 << 9) - 1).to_string()));
        // Aligned windows have no edges; short ones and session filters read raw.
        let aligned = TelemetryFilter {
            since: Some(t("2026-11-26 00:00:00")),
            until: None,
            ..Default::default()
        };
        let h = Hours::of(&aligned).unwrap();
        assert!(h.edges(&aligned).is_empty());
        assert!(!h.partial());
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
