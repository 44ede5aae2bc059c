//! Telemetry JSON APIs on Agnes's paths and shapes (reference §1.3; SPEC §5,
//! §11): `/api/admin/telemetry/{facets,kpis,query,summary}` for admins and
//! their `/api/me/telemetry/…` twins, which answer the same for the caller's
//! own rows only (SPEC §1 scope rule). `reprocess` and `prune` live in
//! `processing.rs`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Json as AxumJson, Router};
use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Query, RequestMeta};
use super::kit::params::{
    bool_param, int_param, now, one_of, present, text_param, time_param, Window, WindowQuery,
    WindowRules,
};
use crate::app::AppState;
use crate::auth::{Human, Principal, RequireAdmin};
use crate::error::{AppError, AppResult};
use crate::export::{self, ExportSpec, Format};
use crate::isotime;
use crate::repo::telemetry::{
    self as repo, GroupBy, Scope, Sort, TelemetryFilter, BUCKET_SORTS, EVENT_SORTS, EVENT_TYPES,
    SOURCES,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/telemetry/facets", get(admin_facets))
        .route("/api/admin/telemetry/kpis", get(admin_kpis))
        .route("/api/admin/telemetry/query", get(admin_query))
        .route("/api/admin/telemetry/summary", get(admin_summary))
        .route("/api/admin/telemetry/export", get(admin_export))
        .route("/api/me/telemetry/export", get(me_export))
        .route("/api/me/telemetry/facets", get(me_facets))
        .route("/api/me/telemetry/kpis", get(me_kpis))
        .route("/api/me/telemetry/query", get(me_query))
        .route("/api/me/telemetry/summary", get(me_summary))
}

/// Telemetry windows go up to 365 days (SPEC §11), 7 days by default.
pub const WINDOW: WindowRules = WindowRules::long(10_080);

/// Every query parameter of the telemetry endpoints, as sent; blank values
/// count as absent (HTML forms send them for "any").
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Params {
    pub since_minutes: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub username: Option<String>,
    /// Agnes's export name for `username`.
    pub user_id: Option<String>,
    pub tool_name: Option<String>,
    pub source: Option<String>,
    pub event_type: Option<String>,
    pub only_errors: Option<String>,
    pub q: Option<String>,
    pub model: Option<String>,
    pub session_id: Option<String>,
    pub group_by: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
    pub window: Option<String>,
    pub format: Option<String>,
}

/// The filter's dimensions (everything but the window).
fn dims(p: &Params) -> AppResult<TelemetryFilter> {
    let username = text_param("username", &p.username)?;
    let user_id = text_param("user_id", &p.user_id)?;
    if let (Some(a), Some(b)) = (&username, &user_id) {
        if a != b {
            return Err(AppError::unprocessable(
                "user_id: the same filter as username; send one of them",
            ));
        }
    }
    Ok(TelemetryFilter {
        username: username.or(user_id),
        tool_name: text_param("tool_name", &p.tool_name)?,
        source: one_of("source", &p.source, &SOURCES)?,
        event_type: one_of("event_type", &p.event_type, &EVENT_TYPES)?,
        only_errors: bool_param("only_errors", &p.only_errors)?.unwrap_or(false),
        q: text_param("q", &p.q)?,
        model: text_param("model", &p.model)?,
        session_id: text_param("session_id", &p.session_id)?,
        ..TelemetryFilter::default()
    })
}

/// A validated filter over a window, and its echo.
pub struct Parsed {
    pub filter: TelemetryFilter,
    pub window: Window,
    pub echo: BTreeMap<&'static str, Value>,
}

fn window_query(p: &Params) -> WindowQuery {
    WindowQuery {
        since_minutes: p.since_minutes.clone(),
        since: p.since.clone(),
        until: p.until.clone(),
    }
}

pub fn parse_filter(p: &Params, now: NaiveDateTime, scope: Option<Scope>) -> AppResult<Parsed> {
    let window = Window::parse(&window_query(p), WINDOW, now)?;
    let mut filter = dims(p)?;
    filter.since = Some(window.since);
    filter.until = window.until;
    filter.scope = scope;
    let mut echo = BTreeMap::new();
    for (k, v) in window.echo() {
        let key: &'static str = match k.as_str() {
            "since_minutes" => "since_minutes",
            "since" => "since",
            _ => "until",
        };
        echo.insert(key, v);
    }
    echo.insert("username", json!(filter.username));
    echo.insert("tool_name", json!(filter.tool_name));
    echo.insert("source", json!(filter.source));
    echo.insert("event_type", json!(filter.event_type));
    echo.insert("only_errors", json!(filter.only_errors));
    echo.insert("q", json!(filter.q));
    echo.insert("model", json!(filter.model));
    echo.insert("session_id", json!(filter.session_id));
    Ok(Parsed {
        filter,
        window,
        echo,
    })
}

/// The scope of a `/me` request: the caller's own rows.
pub(crate) fn own(p: &Principal) -> Scope {
    Scope {
        user_id: p.user.id.clone(),
        email: p.user.email.clone(),
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> AppResult<Value> {
    serde_json::to_value(v).map_err(|e| AppError::Internal(e.into()))
}

async fn kpis(state: &AppState, p: &Params, scope: Option<Scope>) -> AppResult<Value> {
    let now = now();
    let parsed = parse_filter(p, now, scope)?;
    let filter = parsed.filter.clone();
    let (current, previous) = state
        .db
        .run(move |c| repo::kpis_with_previous(c, &filter, now))
        .await?;
    let mut out = to_value(&current)?;
    if let Some(obj) = out.as_object_mut() {
        obj.insert("window_minutes".into(), json!(parsed.window.minutes(now)));
        obj.insert("since".into(), json!(isotime::format(&parsed.window.since)));
        obj.insert(
            "until".into(),
            json!(parsed.window.until.as_ref().map(isotime::format)),
        );
        obj.insert("previous".into(), to_value(&previous)?);
        obj.insert("filter".into(), json!(parsed.echo));
    }
    Ok(out)
}

async fn facets(state: &AppState, p: &Params, scope: Option<Scope>) -> AppResult<Value> {
    let now = now();
    let parsed = parse_filter(p, now, scope)?;
    let filter = parsed.filter.clone();
    let f = state.db.run(move |c| repo::facets(c, &filter)).await?;
    let mut out = to_value(&f)?;
    if let Some(obj) = out.as_object_mut() {
        obj.insert("window_minutes".into(), json!(parsed.window.minutes(now)));
        obj.insert("filter".into(), json!(parsed.echo));
    }
    Ok(out)
}

/// A label for each group-by column (Agnes's `group_alias`).
fn alias(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Day => "Day",
        GroupBy::Username => "User",
        GroupBy::ToolName => "Tool",
        GroupBy::Source => "Source",
        GroupBy::RefId => "Ref",
        GroupBy::Model => "Model",
        GroupBy::SessionId => "Session",
    }
}

pub fn parse_group_by(p: &Params) -> AppResult<Option<GroupBy>> {
    match present(&p.group_by) {
        None => Ok(None),
        Some(s) => GroupBy::parse(s).map(Some).ok_or_else(|| {
            AppError::unprocessable(format!(
                "group_by: must be one of {}, got {s:?}",
                GroupBy::NAMES.join(", ")
            ))
        }),
    }
}

pub fn parse_sort(p: &Params, grouped: bool) -> AppResult<Sort> {
    let (allowed, default): (&[&'static str], &str) = if grouped {
        (&BUCKET_SORTS, "invocations:desc")
    } else {
        (&EVENT_SORTS, "occurred_at:desc")
    };
    let s = present(&p.sort).unwrap_or(default);
    Sort::parse(s, allowed).ok_or_else(|| {
        AppError::unprocessable(format!(
            "sort: expected column:asc or column:desc with a column among {}, got {s:?}",
            allowed.join(", ")
        ))
    })
}

async fn query(state: &AppState, p: &Params, scope: Option<Scope>) -> AppResult<Value> {
    let now = now();
    let parsed = parse_filter(p, now, scope)?;
    let by = parse_group_by(p)?;
    let sort = parse_sort(p, by.is_some())?;
    let limit = int_param("limit", &p.limit, 1, 500)?.unwrap_or(100);
    let offset = int_param("offset", &p.offset, 0, 50_000)?.unwrap_or(0);
    let filter = parsed.filter.clone();
    let next = |total: i64| (offset + limit < total).then_some(offset + limit);
    let mut out = match by {
        Some(by) => {
            let b = state
                .db
                .run(move |c| repo::group_by(c, &filter, by, &sort, limit, offset))
                .await?;
            json!({
                "group_by": by.as_str(), "group_alias": alias(by), "rows": b.rows,
                "total": b.total, "limit": limit, "offset": offset, "next_offset": next(b.total),
            })
        }
        None => {
            let (rows, total) = state
                .db
                .run(move |c| {
                    let rows = repo::events(c, &filter, &sort, limit, offset)?;
                    Ok((rows, repo::count(c, &filter)?))
                })
                .await?;
            json!({
                "group_by": null, "group_alias": null, "rows": rows,
                "total": total, "limit": limit, "offset": offset, "next_offset": next(total),
            })
        }
    };
    if let Some(obj) = out.as_object_mut() {
        obj.insert("window_minutes".into(), json!(parsed.window.minutes(now)));
        obj.insert("filter".into(), json!(parsed.echo));
    }
    Ok(out)
}

async fn summary(
    state: &AppState,
    meta: &RequestMeta,
    who: &Principal,
    p: &Params,
    scope: Option<Scope>,
) -> AppResult<Value> {
    let window = present(&p.window).unwrap_or("7d").to_string();
    if !repo::WINDOWS.iter().any(|(n, _)| *n == window) {
        return Err(AppError::unprocessable(format!(
            "window: must be one of 7d, 30d, all, got {window:?}"
        )));
    }
    let prices = state.prices.clone();
    let filter = TelemetryFilter {
        scope: scope.clone(),
        ..TelemetryFilter::default()
    };
    let w = window.clone();
    let s = state
        .db
        .run(move |c| repo::summary(c, &w, &filter, now(), &|m| prices.price(m).is_some()))
        .await?;
    // Audited like Agnes: at most once a minute per caller and window.
    let key = format!("usage.summary|{window}|{}", scope.is_some());
    if state.audit_state.reads.should_write(who.id(), &key) {
        state
            .audit(
                meta.audit("usage.summary", Some(who))
                    .params(json!({"window": window, "own_rows_only": scope.is_some()}))
                    .success(),
            )
            .await;
    }
    to_value(&s)
}

async fn admin_kpis(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(p): Query<Params>,
) -> AppResult<AxumJson<Value>> {
    Ok(AxumJson(kpis(&state, &p, None).await?))
}

async fn admin_facets(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(p): Query<Params>,
) -> AppResult<AxumJson<Value>> {
    Ok(AxumJson(facets(&state, &p, None).await?))
}

async fn admin_query(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(p): Query<Params>,
) -> AppResult<AxumJson<Value>> {
    Ok(AxumJson(query(&state, &p, None).await?))
}

async fn admin_summary(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(p): Query<Params>,
) -> AppResult<AxumJson<Value>> {
    Ok(AxumJson(summary(&state, &meta, &admin, &p, None).await?))
}

async fn me_kpis(
    State(state): State<AppState>,
    who: Human,
    Query(p): Query<Params>,
) -> AppResult<AxumJson<Value>> {
    Ok(AxumJson(kpis(&state, &p, Some(own(&who))).await?))
}

async fn me_facets(
    State(state): State<AppState>,
    who: Human,
    Query(p): Query<Params>,
) -> AppResult<AxumJson<Value>> {
    Ok(AxumJson(facets(&state, &p, Some(own(&who))).await?))
}

async fn me_query(
    State(state): State<AppState>,
    who: Human,
    Query(p): Query<Params>,
) -> AppResult<AxumJson<Value>> {
    Ok(AxumJson(query(&state, &p, Some(own(&who))).await?))
}

async fn me_summary(
    State(state): State<AppState>,
    meta: RequestMeta,
    who: Human,
    Query(p): Query<Params>,
) -> AppResult<AxumJson<Value>> {
    let scope = Some(own(&who));
    Ok(AxumJson(summary(&state, &meta, &who, &p, scope).await?))
}

/// The export's window: `since_minutes` like the other endpoints, or
/// Agnes's `since`/`until` (either, both or neither: no bound exports
/// everything, as Agnes does), never capped.
fn export_window(
    p: &Params,
    now: NaiveDateTime,
) -> AppResult<(Option<NaiveDateTime>, Option<NaiveDateTime>)> {
    if present(&p.since_minutes).is_some() {
        let w = Window::parse(&window_query(p), WINDOW, now)?;
        return Ok((Some(w.since), w.until));
    }
    let since = time_param("since", &p.since)?;
    let until = time_param("until", &p.until)?;
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            return Err(AppError::unprocessable("since: must be before until"));
        }
    }
    Ok((since, until))
}

/// `GET …/telemetry/export?format=csv|json|ndjson|parquet` with every filter:
/// every `usage_events` column, oldest first, streamed; audited as
/// `usage.export` with the row count once the stream has ended.
async fn export_rows(
    state: &AppState,
    meta: &RequestMeta,
    who: &Principal,
    p: &Params,
    scope: Option<Scope>,
) -> AppResult<Response> {
    let format = Format::parse(
        p.format.as_deref(),
        &[Format::Csv, Format::Ndjson, Format::Parquet],
        Format::Csv,
    )?;
    let now = now();
    let (since, until) = export_window(p, now)?;
    let mut filter = dims(p)?;
    filter.since = since;
    filter.until = until;
    filter.scope = scope;
    let stamp = |t: &Option<NaiveDateTime>| t.as_ref().map(isotime::format);
    let mut params = serde_json::Map::new();
    params.insert("since".into(), json!(stamp(&since)));
    params.insert("until".into(), json!(stamp(&until)));
    params.insert("user_id".into(), json!(filter.username));
    for (k, v) in [
        ("source", &filter.source),
        ("tool_name", &filter.tool_name),
        ("event_type", &filter.event_type),
        ("q", &filter.q),
        ("model", &filter.model),
        ("session_id", &filter.session_id),
    ] {
        if v.is_some() {
            params.insert(k.into(), json!(v));
        }
    }
    if filter.only_errors {
        params.insert("only_errors".into(), json!(true));
    }
    if filter.scope.is_some() {
        params.insert("own_rows_only".into(), json!(true));
    }
    let file_stem = match (since, until) {
        (None, None) => "usage_events".to_string(),
        (s, u) => format!(
            "usage_events_{}_{}",
            s.as_ref()
                .map(isotime::compact)
                .unwrap_or_else(|| "start".into()),
            isotime::compact(&u.unwrap_or(now))
        ),
    };
    let spec = ExportSpec {
        format,
        file_stem,
        event: meta.audit("usage.export", Some(who)),
        params,
        started: meta.started,
    };
    Ok(export::stream(state, spec, move |conn, sink| {
        repo::export(conn, &filter, sink)
    }))
}

async fn admin_export(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(p): Query<Params>,
) -> AppResult<Response> {
    export_rows(&state, &meta, &admin, &p, None).await
}

async fn me_export(
    State(state): State<AppState>,
    meta: RequestMeta,
    who: Human,
    Query(p): Query<Params>,
) -> AppResult<Response> {
    let scope = Some(own(&who));
    export_rows(&state, &meta, &who, &p, scope).await
}
