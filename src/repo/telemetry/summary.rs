//! The summary (reference §1.3 `GET /summary`): Agnes's fields, numbers never
//! null, plus tokens and cost per model and the models without a price.

use chrono::{Duration, NaiveDateTime};
use duckdb::{params_from_iter, Connection};
use serde::Serialize;
use serde_json::{json, Value};

use super::{ratio, TelemetryFilter};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopTool {
    pub tool_name: String,
    pub source: String,
    pub invocations: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopUser {
    pub username: String,
    pub tool_calls: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolErrors {
    pub tool_name: String,
    pub invocations: i64,
    pub errors: i64,
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DauPoint {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub active_users: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowAction {
    pub action: String,
    pub p50: i64,
    pub p95: i64,
    pub p99: i64,
    pub max_ms: i64,
    pub n: i64,
}

/// Tokens and cost of one model; `priced` is false for a model the price
/// table does not know (its cost is 0, SPEC §3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelTokens {
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_creation_tokens: i64,
    pub cache_read_tokens: i64,
    pub total_tokens: i64,
    pub cost_usd: f64,
    pub responses: Option<i64>,
    pub priced: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub window: String,
    pub top_tools: Vec<TopTool>,
    pub top_users: Vec<TopUser>,
    pub error_rate: Vec<ToolErrors>,
    pub dau_series: Vec<DauPoint>,
    pub dau_avg: f64,
    pub slow_actions: Vec<SlowAction>,
    /// Agnes's query-engine figures; glassbox has no such engine, so they are
    /// zeros and empty lists (the CLI formats them as numbers).
    pub query_telemetry: Value,
    pub tokens_by_model: Vec<ModelTokens>,
    /// Models seen in the window without a price (cost counted as 0).
    pub unknown_models: Vec<String>,
}

/// Summary windows (reference §1.3): the name and its days (`None`: all).
pub const WINDOWS: [(&str, Option<i64>); 3] = [("7d", Some(7)), ("30d", Some(30)), ("all", None)];

/// Tokens and cost per model for the filter's window, user, model and
/// session (the same source as the KPI figures), most costly first.
pub fn tokens_by_model(
    conn: &Connection,
    f: &TelemetryFilter,
    priced: &dyn Fn(&str) -> bool,
) -> anyhow::Result<Vec<ModelTokens>> {
    let (src, args) = f.token_source();
    // Responses are countable only when every row is one.
    let responses = if src.contains("usage_tokens_daily") {
        "NULL::BIGINT"
    } else {
        "count(*)"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT model, sum(input_tokens)::BIGINT, sum(output_tokens)::BIGINT,
                sum(cache_creation_tokens)::BIGINT, sum(cache_read_tokens)::BIGINT,
                sum(cost_usd)::DOUBLE, {responses}
         FROM ({src}) t GROUP BY model ORDER BY 6 DESC, model"
    ))?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), |r| {
            let (i, o, cc, cr): (i64, i64, i64, i64) = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            let model: String = r.get(0)?;
            Ok(ModelTokens {
                priced: priced(&model),
                model,
                input_tokens: i,
                output_tokens: o,
                cache_creation_tokens: cc,
                cache_read_tokens: cr,
                total_tokens: i + o + cc + cr,
                cost_usd: (r.get::<_, f64>(5)? * 1e6).round() / 1e6,
                responses: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The summary of `window` (one of [`WINDOWS`]) ending at `now`, restricted
/// to the filter's scope (for `/me`).
pub fn summary(
    conn: &Connection,
    window: &str,
    base: &TelemetryFilter,
    now: NaiveDateTime,
    priced: &dyn Fn(&str) -> bool,
) -> anyhow::Result<Summary> {
    let days = WINDOWS
        .iter()
        .find(|(n, _)| *n == window)
        .and_then(|(_, d)| *d);
    let f = TelemetryFilter {
        since: days.map(|d| now - Duration::days(d)),
        until: None,
        scope: base.scope.clone(),
        ..TelemetryFilter::default()
    };
    let w = f.where_clause();
    let args = || params_from_iter(w.args().iter());

    let mut stmt = conn.prepare(&format!(
        "SELECT tool_name, source, count(*) AS n FROM usage_events
         WHERE {} AND tool_name IS NOT NULL GROUP BY ALL ORDER BY n DESC, tool_name, source LIMIT 10",
        w.sql()
    ))?;
    let top_tools = stmt
        .query_map(args(), |r| {
            Ok(TopTool {
                tool_name: r.get(0)?,
                source: r.get(1)?,
                invocations: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

    let mut stmt = conn.prepare(&format!(
        "SELECT username, count(*) AS n FROM usage_events
         WHERE {} GROUP BY ALL ORDER BY n DESC, username LIMIT 10",
        w.sql()
    ))?;
    let top_users = stmt
        .query_map(args(), |r| {
            Ok(TopUser {
                username: r.get(0)?,
                tool_calls: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

    let mut stmt = conn.prepare(&format!(
        "SELECT tool_name, count(*) AS n, count(*) FILTER (WHERE is_error) AS e FROM usage_events
         WHERE {} AND tool_name IS NOT NULL GROUP BY ALL
         ORDER BY e DESC, n DESC, tool_name LIMIT 20",
        w.sql()
    ))?;
    let error_rate = stmt
        .query_map(args(), |r| {
            let (n, e): (i64, i64) = (r.get(1)?, r.get(2)?);
            Ok(ToolErrors {
                tool_name: r.get(0)?,
                invocations: n,
                errors: e,
                rate: ratio(e, n),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

    // Always the last 30 UTC days, whatever the window (as Agnes).
    let today = now.date();
    let first = today - Duration::days(29);
    let dau_filter = TelemetryFilter {
        since: first.and_hms_opt(0, 0, 0),
        until: None,
        scope: base.scope.clone(),
        ..TelemetryFilter::default()
    };
    let dw = dau_filter.where_clause();
    let mut stmt = conn.prepare(&format!(
        "SELECT strftime(CAST(occurred_at AS DATE), '%Y-%m-%d') AS d, count(DISTINCT username)
         FROM usage_events WHERE {} GROUP BY d",
        dw.sql()
    ))?;
    let counted: std::collections::HashMap<String, i64> = stmt
        .query_map(params_from_iter(dw.args().iter()), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let dau_series: Vec<DauPoint> = (0..30)
        .map(|i| {
            let day = (first + Duration::days(i)).format("%Y-%m-%d").to_string();
            DauPoint {
                active_users: counted.get(&day).copied().unwrap_or(0),
                day,
            }
        })
        .collect();
    let dau_avg = (dau_series.iter().map(|p| p.active_users).sum::<i64>() as f64 / 30.0 * 10.0)
        .round()
        / 10.0;

    let slow_actions = slow_actions(
        conn,
        f.since,
        base.scope.as_ref().map(|s| s.user_id.as_str()),
    )?;
    let tokens_by_model = tokens_by_model(conn, &f, priced)?;
    let unknown_models = tokens_by_model
        .iter()
        .filter(|m| !m.priced)
        .map(|m| m.model.clone())
        .collect();
    Ok(Summary {
        window: window.to_string(),
        top_tools,
        top_users,
        error_rate,
        dau_series,
        dau_avg,
        slow_actions,
        query_telemetry: json!({
            "top_tables": [],
            "frequency": [],
            "total_scan_bytes": 0,
            "remote_queries": 0,
            "local_queries": 0,
            "snapshot_creates": 0,
        }),
        tokens_by_model,
        unknown_models,
    })
}

/// Audit actions with a duration, slowest p95 first (at least 5 rows each).
fn slow_actions(
    conn: &Connection,
    since: Option<NaiveDateTime>,
    user_id: Option<&str>,
) -> anyhow::Result<Vec<SlowAction>> {
    let mut w = crate::repo::sql::time_range("timestamp", since, None);
    w.and("duration_ms > 0", []);
    if let Some(u) = user_id {
        w.and("user_id = ?", [duckdb::types::Value::Text(u.to_string())]);
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT action, quantile_disc(duration_ms, 0.5)::BIGINT, quantile_disc(duration_ms, 0.95)::BIGINT,
                quantile_disc(duration_ms, 0.99)::BIGINT, max(duration_ms)::BIGINT, count(*) AS n
         FROM audit_log WHERE {} GROUP BY action HAVING count(*) >= 5
         ORDER BY 3 DESC, action LIMIT 20",
        w.sql()
    ))?;
    let rows = stmt
        .query_map(params_from_iter(w.args().iter()), |r| {
            Ok(SlowAction {
                action: r.get(0)?,
                p50: r.get(1)?,
                p95: r.get(2)?,
                p99: r.get(3)?,
                max_ms: r.get(4)?,
                n: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
