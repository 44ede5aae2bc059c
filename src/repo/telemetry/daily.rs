//! The daily trend of the Telemetry page: events and errors per day from
//! the events' rollup (see [`super::rollup`]), tokens and cost per day from the same source as the KPI
//! figures (which ignores tool filters).

use std::collections::BTreeMap;

use duckdb::{params_from_iter, Connection};
use serde::Serialize;

use super::TelemetryFilter;

/// One UTC day of the trend.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayPoint {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub events: i64,
    pub errors: i64,
    pub tokens: i64,
    pub cost_usd: f64,
}

/// Every day of the filter's window that has events or tokens, oldest first.
pub fn daily(conn: &Connection, f: &TelemetryFilter) -> anyhow::Result<Vec<DayPoint>> {
    let mut days: BTreeMap<String, DayPoint> = BTreeMap::new();
    let src = super::rollup::rows(f);
    let mut stmt = conn.prepare(&format!(
        "SELECT CAST(day AS VARCHAR), sum(n)::BIGINT, coalesce(sum(n) FILTER (WHERE is_error), 0)::BIGINT
         FROM ({}) e GROUP BY 1",
        src.sql
    ))?;
    let rows = stmt.query_map(params_from_iter(src.args.iter()), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for r in rows {
        let (day, events, errors) = r?;
        let p = days.entry(day.clone()).or_default();
        p.day = day;
        p.events = events;
        p.errors = errors;
    }
    let (src, args) = f.token_source();
    let mut stmt = conn.prepare(&format!(
        "SELECT CAST(day AS VARCHAR),
                (coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0)
                 + coalesce(sum(cache_creation_tokens), 0) + coalesce(sum(cache_read_tokens), 0))::BIGINT,
                coalesce(sum(cost_usd), 0)::DOUBLE
         FROM ({src}) t GROUP BY 1"
    ))?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, f64>(2)?,
        ))
    })?;
    for r in rows {
        let (day, tokens, cost) = r?;
        let p = days.entry(day.clone()).or_default();
        p.day = day;
        p.tokens = tokens;
        p.cost_usd = (cost * 1e6).round() / 1e6;
    }
    Ok(days.into_values().collect())
}
