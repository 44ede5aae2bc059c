//! Producer APIs for machines (service tokens) and admins: audit events from
//! the platform (`POST /api/v1/audit/events`) and table sync runs
//! (`POST /api/v1/sync-runs`). A batch is validated whole before anything is
//! written, and written in one transaction: all or nothing.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json as AxumJson, Router};
use chrono::{Duration, NaiveDateTime};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::audit::AuditEvent;
use crate::auth::Producer;
use crate::error::{AppError, AppResult};
use crate::isotime;
use crate::repo::audit as audit_repo;
use crate::repo::sync_history::{self, NewSyncRun};
use crate::web::extract::Json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/audit/events",
            post(audit_events).layer(axum::extract::DefaultBodyLimit::max(MAX_EVENTS_BODY_BYTES)),
        )
        .route("/api/v1/sync-runs", post(sync_runs))
}

/// Most items one request may carry.
pub const MAX_BATCH: usize = 1000;
/// Largest `params` plus `params_before` of one event, serialized (SPEC §4:
/// at most 64 KiB per row).
pub const MAX_PARAMS_BYTES: usize = 64 * 1024;
/// Largest body of `POST /api/v1/audit/events`. Far above the 2 MiB of other
/// JSON bodies (hundreds of events with large params fit), yet bounded: the
/// body and its parsed form are held in memory until the batch is written. A
/// batch over it gets a 413 that says to send fewer events per request.
pub const MAX_EVENTS_BODY_BYTES: usize = 32 * 1024 * 1024;
/// How far back and ahead an event's own timestamp may lie.
pub const MAX_PAST: Duration = Duration::hours(24);
pub const MAX_FUTURE: Duration = Duration::minutes(5);
/// An `event_id` written within this window is a repeat. Events may be
/// timestamped up to 24 h in the past, so rows written in the last 24 h have
/// timestamps within the last 48 h.
pub const IDEMPOTENCY_LOOKBACK: Duration = Duration::hours(48);

/// A body holding one object or an array of them, each with its position's name.
fn items(body: Value, what: &str) -> AppResult<Vec<(String, Value)>> {
    match body {
        Value::Array(list) => {
            if list.is_empty() {
                return Err(AppError::unprocessable(format!(
                    "body: the array holds no {what}"
                )));
            }
            if list.len() > MAX_BATCH {
                return Err(AppError::unprocessable(format!(
                    "body: at most {MAX_BATCH} {what} per request, got {}",
                    list.len()
                )));
            }
            Ok(list
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("{what}[{i}]"), v))
                .collect())
        }
        v @ Value::Object(_) => Ok(vec![(String::new(), v)]),
        _ => Err(AppError::unprocessable(format!(
            "body: expected an object or an array of {what}"
        ))),
    }
}

/// `events[3].action: …`, or `action: …` for a lone object.
fn at(pos: &str, field: &str, msg: impl std::fmt::Display) -> AppError {
    if pos.is_empty() {
        AppError::unprocessable(format!("{field}: {msg}"))
    } else {
        AppError::unprocessable(format!("{pos}.{field}: {msg}"))
    }
}

fn decode<T: serde::de::DeserializeOwned>(pos: &str, v: Value) -> AppResult<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        match (pos.is_empty(), path.as_str()) {
            (true, "." | "") => AppError::unprocessable(inner),
            (true, p) => AppError::unprocessable(format!("{p}: {inner}")),
            (false, "." | "") => AppError::unprocessable(format!("{pos}: {inner}")),
            (false, p) => AppError::unprocessable(format!("{pos}.{p}: {inner}")),
        }
    })
}

fn bounded(pos: &str, field: &str, v: Option<String>, max: usize) -> AppResult<Option<String>> {
    match v {
        Some(s) if s.chars().count() > max => {
            Err(at(pos, field, format!("at most {max} characters")))
        }
        other => Ok(other),
    }
}

/// An optional JSON object and its encoded size (0 when absent).
fn json_object(pos: &str, field: &str, v: Option<Value>) -> AppResult<(Option<Value>, usize)> {
    match v {
        None | Some(Value::Null) => Ok((None, 0)),
        Some(v @ Value::Object(_)) => {
            let size = v.to_string().len();
            if size > MAX_PARAMS_BYTES {
                return Err(at(
                    pos,
                    field,
                    format!(
                        "larger than {} KiB once encoded ({size} bytes)",
                        MAX_PARAMS_BYTES / 1024
                    ),
                ));
            }
            Ok((Some(v), size))
        }
        Some(_) => Err(at(pos, field, "must be a JSON object")),
    }
}

fn event_time(pos: &str, v: Option<String>, now: NaiveDateTime) -> AppResult<NaiveDateTime> {
    let Some(s) = v else {
        return Ok(now);
    };
    let t = isotime::parse(&s).ok_or_else(|| {
        at(
            pos,
            "timestamp",
            format!("not {}, got {s:?}", isotime::EXPECTED),
        )
    })?;
    if t < now - MAX_PAST {
        return Err(at(pos, "timestamp", "more than 24 hours in the past"));
    }
    if t > now + MAX_FUTURE {
        return Err(at(pos, "timestamp", "more than 5 minutes in the future"));
    }
    Ok(t)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventIn {
    action: Option<String>,
    user_id: Option<String>,
    resource: Option<String>,
    params: Option<Value>,
    params_before: Option<Value>,
    result: Option<String>,
    duration_ms: Option<i64>,
    timestamp: Option<String>,
    client_kind: Option<String>,
    client_ip: Option<String>,
    correlation_id: Option<String>,
    event_id: Option<String>,
}

fn parse_event(pos: &str, v: Value, now: NaiveDateTime) -> AppResult<AuditEvent> {
    let e: EventIn = decode(pos, v)?;
    let action = e
        .action
        .filter(|a| !a.trim().is_empty())
        .ok_or_else(|| at(pos, "action", "required"))?;
    if action.chars().count() > 128 {
        return Err(at(pos, "action", "at most 128 characters"));
    }
    if let Some(d) = e.duration_ms {
        if d < 0 || d > i32::MAX as i64 {
            return Err(at(
                pos,
                "duration_ms",
                format!("must be between 0 and {}", i32::MAX),
            ));
        }
    }
    let (params, params_size) = json_object(pos, "params", e.params)?;
    let (params_before, before_size) = json_object(pos, "params_before", e.params_before)?;
    let both = params_size + before_size;
    if both > MAX_PARAMS_BYTES {
        return Err(at(
            pos,
            "params_before",
            format!(
                "params and params_before together are larger than {} KiB once encoded ({both} bytes)",
                MAX_PARAMS_BYTES / 1024
            ),
        ));
    }
    let event_id = bounded(pos, "event_id", e.event_id, 128)?;
    if event_id.as_deref().is_some_and(|s| s.is_empty()) {
        return Err(at(pos, "event_id", "must not be empty"));
    }
    Ok(AuditEvent {
        timestamp: Some(event_time(pos, e.timestamp, now)?),
        user_id: bounded(pos, "user_id", e.user_id, 200)?.filter(|u| !u.is_empty()),
        action,
        resource: bounded(pos, "resource", e.resource, 1024)?,
        params,
        params_before,
        result: bounded(pos, "result", e.result, 128)?,
        duration_ms: e.duration_ms,
        client_ip: bounded(pos, "client_ip", e.client_ip, 64)?,
        client_kind: bounded(pos, "client_kind", e.client_kind, 64)?,
        correlation_id: bounded(pos, "correlation_id", e.correlation_id, 128)?,
        event_id,
    })
}

/// `POST /api/v1/audit/events`: one event or up to 1000 → 202
/// `{"accepted": n, "ignored": m}` (ignored = repeats of an `event_id`).
async fn audit_events(
    State(state): State<AppState>,
    _producer: Producer,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let now = chrono::Utc::now().naive_utc();
    let mut events = Vec::new();
    for (pos, v) in items(body, "events")? {
        events.push(parse_event(&pos, v, now)?);
    }
    let total = events.len();
    let activity = state.audit_state.clone();
    let accepted = state
        .db
        .run(move |c| {
            let _one_at_a_time = activity.intake.lock().unwrap_or_else(|e| e.into_inner());
            resolve_emails(c, &mut events)?;
            let ids: Vec<String> = events.iter().filter_map(|e| e.event_id.clone()).collect();
            let mut seen = if ids.is_empty() {
                HashSet::new()
            } else {
                audit_repo::existing_event_ids(c, &ids, now - IDEMPOTENCY_LOOKBACK)?
            };
            // Repeats within the batch count as repeats too.
            events.retain(|e| match &e.event_id {
                Some(id) => seen.insert(id.clone()),
                None => true,
            });
            if !events.is_empty() {
                audit_repo::insert_batch(c, &events)?;
            }
            Ok(events.len())
        })
        .await?;
    state
        .metrics
        .inc("audit_events_ingested_total", &[], accepted as u64);
    Ok((
        StatusCode::ACCEPTED,
        AxumJson(json!({"accepted": accepted, "ignored": total - accepted})),
    )
        .into_response())
}

/// A producer may name the user by email: a known user's email becomes their
/// id (as Agnes's identity rule does); anything else is kept as sent.
fn resolve_emails(c: &duckdb::Connection, events: &mut [AuditEvent]) -> anyhow::Result<()> {
    let emails: HashSet<String> = events
        .iter()
        .filter_map(|e| e.user_id.as_deref())
        .filter(|u| u.contains('@'))
        .map(str::to_lowercase)
        .collect();
    if emails.is_empty() {
        return Ok(());
    }
    let emails: Vec<String> = emails.into_iter().collect();
    let ids: HashMap<String, String> = crate::repo::users::ids_by_emails(c, &emails)?;
    for e in events.iter_mut() {
        if let Some(u) = &e.user_id {
            if let Some(id) = ids.get(&u.to_lowercase()) {
                e.user_id = Some(id.clone());
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncRunIn {
    table_id: Option<String>,
    synced_at: Option<String>,
    rows: Option<i64>,
    duration_ms: Option<i64>,
    status: Option<String>,
    error: Option<String>,
}

fn parse_sync_run(pos: &str, v: Value, now: NaiveDateTime) -> AppResult<NewSyncRun> {
    let r: SyncRunIn = decode(pos, v)?;
    let table_id = r
        .table_id
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| at(pos, "table_id", "required"))?;
    if table_id.chars().count() > 256 {
        return Err(at(pos, "table_id", "at most 256 characters"));
    }
    let status = r.status.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        at(
            pos,
            "status",
            "required (ok, or what went wrong, like error)",
        )
    })?;
    if status.chars().count() > 32 {
        return Err(at(pos, "status", "at most 32 characters"));
    }
    let synced_at = match r.synced_at {
        None => now,
        Some(s) => isotime::parse(&s).ok_or_else(|| {
            at(
                pos,
                "synced_at",
                format!("not {}, got {s:?}", isotime::EXPECTED),
            )
        })?,
    };
    if synced_at > now + MAX_FUTURE {
        return Err(at(pos, "synced_at", "more than 5 minutes in the future"));
    }
    if r.rows.is_some_and(|n| n < 0) {
        return Err(at(pos, "rows", "must not be negative"));
    }
    if let Some(d) = r.duration_ms {
        if d < 0 || d > i32::MAX as i64 {
            return Err(at(
                pos,
                "duration_ms",
                format!("must be between 0 and {}", i32::MAX),
            ));
        }
    }
    Ok(NewSyncRun {
        table_id,
        synced_at,
        rows: r.rows,
        duration_ms: r.duration_ms,
        status,
        error: bounded(pos, "error", r.error, 4000)?,
    })
}

/// `POST /api/v1/sync-runs`: one run or up to 1000 → 201 `{"accepted", "ids"}`.
async fn sync_runs(
    State(state): State<AppState>,
    _producer: Producer,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let now = chrono::Utc::now().naive_utc();
    let mut runs = Vec::new();
    for (pos, v) in items(body, "runs")? {
        runs.push(parse_sync_run(&pos, v, now)?);
    }
    let ids = state
        .db
        .run(move |c| sync_history::insert(c, &runs))
        .await?;
    Ok((
        StatusCode::CREATED,
        AxumJson(json!({"accepted": ids.len(), "ids": ids})),
    )
        .into_response())
}
