//! The usage monitoring API (SPEC §9, seeds/003): event intake for every
//! signed-in caller, answered from the in-memory queue (202 before anything
//! is written), and the admin reads over `app_events` and
//! `usage_tokens_daily`.

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json as AxumJson, Router};
use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Json, Query};
use crate::app::AppState;
use crate::auth::extract::Via;
use crate::auth::{AnyUser, Principal, RequireAdmin, Role};
use crate::error::{AppError, AppResult};
use crate::isotime;
use crate::repo::app_events as repo;
use crate::usage_api::event::{self, at, MAX_BATCH, MAX_BATCH_BODY_BYTES};
use crate::usage_api::{NewAppEvent, Refused};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/usage/events", post(one_event))
        .route(
            "/api/v1/usage/events/batch",
            post(batch).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)),
        )
        .route("/api/v1/usage/summary", get(summary))
        .route("/api/v1/usage/users", get(users))
        .route("/api/v1/usage/queries", get(queries))
        .route("/api/v1/usage/dashboards", get(dashboards))
        .route("/api/v1/usage/llm-tokens", get(llm_tokens))
        .route("/api/v1/usage/export", get(super::usage_export::export))
}

/// Seconds a refused producer should wait: the writer empties a full queue in
/// well under a second unless the disk is in trouble.
const RETRY_AFTER_SECS: &str = "1";

fn refused(r: Refused) -> Response {
    let detail = match r {
        Refused::Full => {
            "The usage event queue is full: nothing was recorded, retry after a second"
        }
        Refused::Closing => "The server is shutting down: nothing was recorded, retry shortly",
    };
    let mut resp = AppError::Unavailable(detail.into()).into_response();
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    resp
}

/// Whose event this is: the caller's own, or — for a service or admin token
/// only — the named user, who must exist. Known answers are reused within a
/// batch.
async fn owner(
    state: &AppState,
    who: &Principal,
    pos: &str,
    named: Option<String>,
    known: &mut HashMap<String, bool>,
) -> AppResult<String> {
    let Some(u) = named.filter(|u| u != who.id()) else {
        return Ok(who.id().to_string());
    };
    let may_name = who.via == Via::Token && matches!(who.role(), Role::Service | Role::Admin);
    if !may_name {
        let field = if pos.is_empty() {
            "user_id".to_string()
        } else {
            format!("{pos}.user_id")
        };
        return Err(AppError::Forbidden(format!(
            "{field}: only service and admin tokens may report events about another user"
        )));
    }
    let exists = match known.get(&u) {
        Some(e) => *e,
        None => {
            let e = state.auth.user(&state.db, &u).await?.is_some();
            known.insert(u.clone(), e);
            e
        }
    };
    if !exists {
        return Err(at(pos, "user_id", format!("no user has the id {u:?}")));
    }
    Ok(u)
}

async fn to_event(
    state: &AppState,
    who: &Principal,
    pos: &str,
    v: Value,
    known: &mut HashMap<String, bool>,
) -> AppResult<NewAppEvent> {
    let c = event::check(pos, v)?;
    Ok(NewAppEvent {
        user_id: owner(state, who, pos, c.user_id, known).await?,
        event_type: c.event_type,
        metadata: c.metadata,
        source: c.source,
    })
}

fn invalid(state: &AppState, n: usize) {
    state.metrics.inc(
        "usage_events_rejected_total",
        &[("reason", "invalid")],
        n as u64,
    );
}

/// `POST /api/v1/usage/events` → 202 `{"status": "accepted"}`.
async fn one_event(
    State(state): State<AppState>,
    AnyUser(who): AnyUser,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let e = match to_event(&state, &who, "", body, &mut HashMap::new()).await {
        Ok(e) => e,
        Err(err) => {
            invalid(&state, 1);
            return Err(err);
        }
    };
    if let Err(r) = state.usage.submit(vec![e]) {
        return Ok(refused(r));
    }
    Ok((
        StatusCode::ACCEPTED,
        AxumJson(json!({"status": "accepted"})),
    )
        .into_response())
}

/// `POST /api/v1/usage/events/batch` with `{"events": [...]}` or a bare
/// array of up to 1000 events: all are queued or none → 202
/// `{"status": "accepted", "accepted": n}`.
async fn batch(
    State(state): State<AppState>,
    AnyUser(who): AnyUser,
    Json(body): Json<Value>,
) -> AppResult<Response> {
    let list = match body {
        Value::Array(list) => list,
        Value::Object(mut m) => match m.remove("events") {
            Some(Value::Array(list)) if m.is_empty() => list,
            Some(Value::Array(_)) => {
                let extra = m.keys().next().cloned().unwrap_or_default();
                return Err(AppError::unprocessable(format!(
                    "body: unknown field {extra:?} (expected only \"events\")"
                )));
            }
            Some(_) => return Err(AppError::unprocessable("events: must be an array")),
            None => return Err(AppError::unprocessable("events: required")),
        },
        _ => {
            return Err(AppError::unprocessable(
                "body: expected {\"events\": [...]} or an array of events",
            ))
        }
    };
    if list.is_empty() {
        return Err(AppError::unprocessable("events: the array holds no events"));
    }
    if list.len() > MAX_BATCH {
        invalid(&state, list.len());
        return Err(AppError::unprocessable(format!(
            "events: at most {MAX_BATCH} events per request, got {}",
            list.len()
        )));
    }
    let n = list.len();
    let mut known = HashMap::new();
    let mut events = Vec::with_capacity(n);
    for (i, v) in list.into_iter().enumerate() {
        match to_event(&state, &who, &format!("events[{i}]"), v, &mut known).await {
            Ok(e) => events.push(e),
            Err(err) => {
                invalid(&state, n);
                return Err(err);
            }
        }
    }
    if let Err(r) = state.usage.submit(events) {
        return Ok(refused(r));
    }
    Ok((
        StatusCode::ACCEPTED,
        AxumJson(json!({"status": "accepted", "accepted": n})),
    )
        .into_response())
}

#[derive(Deserialize)]
struct Window {
    days: Option<String>,
}

/// `days`: 1–365, default `USAGE_RETENTION_DAYS`; and now.
fn window(state: &AppState, w: &Window) -> AppResult<(u32, NaiveDateTime)> {
    let days = match w.days.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => state.config.usage_retention_days,
        Some(s) => match s.parse::<u32>() {
            Ok(d) if (1..=365).contains(&d) => d,
            _ => {
                return Err(AppError::unprocessable(format!(
                    "days: a whole number from 1 to 365, got {s:?}"
                )))
            }
        },
    };
    Ok((days, chrono::Utc::now().naive_utc()))
}

/// The first of the last `days` whole days (UTC), today included: every read
/// covers whole days, so the rollup-served ones and the rest agree.
fn first_day(now: NaiveDateTime, days: u32) -> chrono::NaiveDate {
    now.date() - chrono::Duration::days(days as i64 - 1)
}

/// `GET /api/v1/usage/summary?days=N` → `{summary: {event_type: {user_id:
/// count}}, generated_at, days}`.
async fn summary(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(w): Query<Window>,
) -> AppResult<Response> {
    let (days, now) = window(&state, &w)?;
    let since_day = first_day(now, days);
    let summary = state.db.run(move |c| repo::summary(c, since_day)).await?;
    Ok(AxumJson(json!({
        "summary": summary, "generated_at": isotime::format(&now), "days": days,
    }))
    .into_response())
}

/// `GET /api/v1/usage/users?days=N` → `{users: {user_id: {events,
/// event_types, last_event_at}}, …}`.
async fn users(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(w): Query<Window>,
) -> AppResult<Response> {
    let (days, now) = window(&state, &w)?;
    let since_day = first_day(now, days);
    let users = state.db.run(move |c| repo::users(c, since_day)).await?;
    Ok(AxumJson(json!({
        "users": users, "generated_at": isotime::format(&now), "days": days,
    }))
    .into_response())
}

/// `GET /api/v1/usage/queries?days=N` → `{queries: {user_id:
/// {sql_generation, sql_execution, rows}}, …}`.
async fn queries(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(w): Query<Window>,
) -> AppResult<Response> {
    let (days, now) = window(&state, &w)?;
    let since = first_day(now, days).and_time(chrono::NaiveTime::MIN);
    let queries = state.db.run(move |c| repo::queries(c, since)).await?;
    Ok(AxumJson(json!({
        "queries": queries, "generated_at": isotime::format(&now), "days": days,
    }))
    .into_response())
}

/// `GET /api/v1/usage/dashboards?days=N` → `{dashboards: {dashboard_id:
/// {publishes, adapters, users, last_published_at}}, …}`.
async fn dashboards(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(w): Query<Window>,
) -> AppResult<Response> {
    let (days, now) = window(&state, &w)?;
    let since = first_day(now, days).and_time(chrono::NaiveTime::MIN);
    let dashboards = state.db.run(move |c| repo::dashboards(c, since)).await?;
    Ok(AxumJson(json!({
        "dashboards": dashboards, "generated_at": isotime::format(&now), "days": days,
    }))
    .into_response())
}

/// `GET /api/v1/usage/llm-tokens?days=N` → `{llm_tokens: {username: {model:
/// tokens and cost}}, totals, …}` over the last N days (today included).
async fn llm_tokens(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(w): Query<Window>,
) -> AppResult<Response> {
    let (days, now) = window(&state, &w)?;
    let since_day = first_day(now, days);
    let (by_user, totals) = state
        .db
        .run(move |c| repo::llm_tokens(c, since_day))
        .await?;
    Ok(AxumJson(json!({
        "llm_tokens": by_user, "totals": totals, "since_day": since_day.to_string(),
        "generated_at": isotime::format(&now), "days": days,
    }))
    .into_response())
}
