//! Running SQL that passed the guard (`crate::sqlguard`): Ask over the
//! telemetry tables and the internal data source over its three relations.
//!
//! The query runs on its own cloned connection, inside a transaction that is
//! rolled back, with the relations it may name defined as TEMP views for that
//! call (a temp view lives in the connection's own `temp` catalog, which
//! DuckDB searches first and no other connection sees). The views carry the
//! caller's row filter, so the statement itself never touches a base table.
//! Ask (admins only) names the telemetry tables themselves and needs none. External access is off for
//! the whole database (db/mod.rs). The result is cut at `limit` rows with a
//! `LIMIT limit + 1` wrapper, and a timer interrupts the query when it runs
//! past its time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use duckdb::types::{TimeUnit, Value as DbValue};
use duckdb::Connection;
use serde_json::{Number, Value};

use crate::sqlguard::Guarded;

/// The relations of the internal data source (SPEC §8).
pub const INTERNAL_RELATIONS: &[&str] = &["agnes_sessions", "agnes_telemetry", "agnes_audit"];

/// The relations Ask may read (SPEC §5 "Ask safety").
pub const TELEMETRY_RELATIONS: &[&str] = &[
    "usage_events",
    "usage_responses",
    "usage_session_summary",
    "usage_tool_daily",
    "usage_tokens_daily",
    "session_findings",
];

/// Whose rows the internal source shows.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// Every row.
    Admin,
    /// The SPEC §1 scope rule: rows whose `user_id` is theirs, and transcript
    /// rows whose `username` is their email.
    Person { user_id: String, email: String },
}

/// A TEMP view made for one call: its name and its defining SELECT.
#[derive(Debug, Clone)]
pub struct View {
    pub name: &'static str,
    pub select: String,
}

/// The three internal relations as `viewer` may see them.
pub fn internal_views(viewer: &Viewer) -> Vec<View> {
    let (mine, my_audit) = match viewer {
        Viewer::Admin => (String::new(), String::new()),
        Viewer::Person { user_id, email } => (
            format!(
                " WHERE user_id = {} OR username = {}",
                literal(user_id),
                literal(email)
            ),
            format!(" WHERE user_id = {}", literal(user_id)),
        ),
    };
    vec![
        View {
            name: "agnes_sessions",
            select: format!("SELECT * FROM main.usage_session_summary{mine}"),
        },
        View {
            name: "agnes_telemetry",
            select: format!("SELECT * FROM main.usage_events{mine}"),
        },
        View {
            name: "agnes_audit",
            select: format!("SELECT * FROM main.audit_log{my_audit}"),
        },
    ]
}

/// The columns of `tables` (table, column, type), in table order then column
/// order: the schema Ask's prompt describes, read from the database itself so
/// it follows every migration.
pub fn columns_of(
    conn: &Connection,
    tables: &[&str],
) -> anyhow::Result<Vec<(String, String, String)>> {
    let names = tables
        .iter()
        .map(|t| literal(t))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare(&format!(
        "SELECT table_name, column_name, data_type FROM information_schema.columns
         WHERE table_schema = 'main' AND table_catalog = current_database() AND table_name IN ({names})
         ORDER BY table_name, ordinal_position"
    ))?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let mut out: Vec<(String, String, String)> = rows.collect::<Result<_, _>>()?;
    let order = |t: &str| tables.iter().position(|x| *x == t).unwrap_or(usize::MAX);
    out.sort_by_key(|(t, _, _)| order(t));
    Ok(out)
}

/// A SQL string literal (quotes doubled).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// How much a call may return and for how long it may run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub rows: usize,
    pub timeout: Duration,
}

/// A result: column names and rows of JSON values, cut at the row limit.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the query ran longer than {} s and was stopped", .0.as_secs_f64())]
    TimedOut(Duration),
    #[error("{0}")]
    Failed(String),
}

/// Runs guarded SQL with `views` defined for the call.
pub fn run(
    conn: &Connection,
    guarded: &Guarded,
    views: &[View],
    limits: Limits,
) -> Result<QueryRows, RunError> {
    conn.execute_batch("BEGIN TRANSACTION")
        .map_err(|e| RunError::Failed(e.to_string()))?;
    let result = run_in_transaction(conn, guarded, views, limits);
    // Nothing of the call survives it; after an interrupt the transaction may
    // already be gone, and the connection is dropped after the call anyway.
    let _ = conn.execute_batch("ROLLBACK");
    result
}

fn run_in_transaction(
    conn: &Connection,
    guarded: &Guarded,
    views: &[View],
    limits: Limits,
) -> Result<QueryRows, RunError> {
    for v in views {
        conn.execute_batch(&format!(
            "CREATE OR REPLACE TEMP VIEW {} AS {}",
            v.name, v.select
        ))
        .map_err(|e| RunError::Failed(format!("while preparing {}: {e}", v.name)))?;
    }
    let wrapped = format!(
        "SELECT * FROM ({}) AS glassbox_query LIMIT {}",
        guarded.sql,
        limits.rows + 1
    );
    let timer = Timer::start(conn, limits.timeout);
    let result = fetch(conn, &wrapped, limits.rows);
    let fired = timer.stop();
    match result {
        Err(_) if fired => Err(RunError::TimedOut(limits.timeout)),
        Err(e) => Err(RunError::Failed(e.to_string())),
        Ok(rows) => Ok(rows),
    }
}

fn fetch(conn: &Connection, sql: &str, limit: usize) -> duckdb::Result<QueryRows> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    let columns = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
    let mut out = Vec::new();
    let mut truncated = false;
    while let Some(row) = rows.next()? {
        if out.len() == limit {
            truncated = true;
            break;
        }
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(to_json(row.get::<_, DbValue>(i)?));
        }
        out.push(values);
    }
    Ok(QueryRows {
        columns,
        rows: out,
        truncated,
    })
}

/// Interrupts the connection's running query when the time is up.
struct Timer {
    done: mpsc::Sender<()>,
    fired: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Timer {
    fn start(conn: &Connection, timeout: Duration) -> Timer {
        let handle = conn.interrupt_handle();
        let fired = Arc::new(AtomicBool::new(false));
        let (done, wait) = mpsc::channel::<()>();
        let flag = fired.clone();
        let thread = std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(timeout) {
                flag.store(true, Ordering::SeqCst);
                handle.interrupt();
            }
        });
        Timer {
            done,
            fired,
            thread,
        }
    }

    /// Stops the timer; true when it interrupted the query.
    fn stop(self) -> bool {
        let _ = self.done.send(());
        let _ = self.thread.join();
        self.fired.load(Ordering::SeqCst)
    }
}

/// A DuckDB value as JSON: numbers stay numbers (128-bit ones that do not fit
/// and non-finite floats become strings), times become ISO 8601 text (UTC),
/// lists and structs nest.
pub fn to_json(v: DbValue) -> Value {
    match v {
        DbValue::Null => Value::Null,
        DbValue::Boolean(b) => Value::Bool(b),
        DbValue::TinyInt(n) => n.into(),
        DbValue::SmallInt(n) => n.into(),
        DbValue::Int(n) => n.into(),
        DbValue::BigInt(n) => n.into(),
        DbValue::UTinyInt(n) => n.into(),
        DbValue::USmallInt(n) => n.into(),
        DbValue::UInt(n) => n.into(),
        DbValue::UBigInt(n) => n.into(),
        DbValue::HugeInt(n) => i64::try_from(n)
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(n.to_string())),
        DbValue::UHugeInt(n) => u64::try_from(n)
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(n.to_string())),
        DbValue::Float(f) => float(f as f64),
        DbValue::Double(f) => float(f),
        DbValue::Decimal(d) => {
            let text = d.to_string();
            text.parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .unwrap_or(Value::String(text))
        }
        DbValue::Timestamp(unit, n) => {
            let micros = match unit {
                TimeUnit::Second => n.saturating_mul(1_000_000),
                TimeUnit::Millisecond => n.saturating_mul(1_000),
                TimeUnit::Microsecond => n,
                TimeUnit::Nanosecond => n / 1_000,
            };
            match chrono::DateTime::from_timestamp_micros(micros) {
                Some(t) => Value::String(crate::isotime::format(&t.naive_utc())),
                None => Value::String(n.to_string()),
            }
        }
        DbValue::Date32(days) => chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|d| d.checked_add_signed(chrono::Duration::days(days as i64)))
            .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
            .unwrap_or(Value::Null),
        DbValue::Time64(unit, n) => {
            let micros = match unit {
                TimeUnit::Second => n.saturating_mul(1_000_000),
                TimeUnit::Millisecond => n.saturating_mul(1_000),
                TimeUnit::Microsecond => n,
                TimeUnit::Nanosecond => n / 1_000,
            };
            let secs = micros.div_euclid(1_000_000);
            let frac = micros.rem_euclid(1_000_000);
            let base = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
            Value::String(if frac == 0 {
                base
            } else {
                format!("{base}.{frac:06}")
            })
        }
        DbValue::Interval {
            months,
            days,
            nanos,
        } => Value::String(format!(
            "{months} months {days} days {} seconds",
            nanos as f64 / 1e9
        )),
        DbValue::Text(s) | DbValue::Enum(s) => Value::String(s),
        DbValue::Blob(b) | DbValue::Geometry(b) => {
            use base64::Engine;
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        DbValue::List(items) | DbValue::Array(items) => {
            Value::Array(items.into_iter().map(to_json).collect())
        }
        DbValue::Struct(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v.clone())))
                .collect(),
        ),
        DbValue::Map(entries) => Value::Array(
            entries
                .iter()
                .map(|(k, v)| serde_json::json!({"key": to_json(k.clone()), "value": to_json(v.clone())}))
                .collect(),
        ),
        DbValue::Union(inner) => to_json(*inner),
        // A kind a later duckdb crate adds: shown, not dropped.
        other => Value::String(format!("{other:?}")),
    }
}

fn float(f: f64) -> Value {
    Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String(f.to_string()))
}

#[cfg(test)]
mod tests;
