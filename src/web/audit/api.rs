//! The Audit log's JSON APIs, on Agnes's paths and shapes (reference §1.1,
//! §1.2; SPEC §4): the timeline, the health pulse, sync runs, the CSV export,
//! facets, KPIs and saved views. All admin-only.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Json as AxumJson, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub use super::query::{parse_cursor, parse_filter, Params, Parsed};
use crate::app::AppState;
use crate::audit::health::{self, HealthReport, HEALTH_TTL, PROCESSORS};
use crate::auth::RequireAdmin;
use crate::error::{AppError, AppResult};
use crate::export::{self, ExportSpec, Format};
use crate::isotime;
use crate::repo::audit::{self as audit_repo, SELF_READ_ACTION};
use crate::repo::{sync_history, views};
use crate::web::extract::{Json, Query, RequestMeta};
use crate::web::kit::params::{int_param, now, text_param};
use crate::web::kit::{Window, WindowRules};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/activity", get(timeline))
        .route("/api/admin/activity/health", get(health))
        .route("/api/admin/activity/sync", get(sync))
        .route("/api/admin/activity/export", get(export))
        .route("/api/admin/observability/facets", get(facets))
        .route("/api/admin/observability/kpis", get(kpis))
        .route(
            "/api/admin/observability/views",
            get(list_views).post(save_view),
        )
        .route("/api/admin/observability/views/{id}", delete(delete_view))
}

/// Saved views (reference §1.2; limits answered with 422 per SPEC §1).
pub const MAX_VIEW_NAME: usize = 80;
pub const MAX_VIEW_QUERY_BYTES: usize = 64 * 1024;
pub const MAX_VIEWS_PER_USER: i64 = 100;

/// Writes an `activity.read` row unless the same actor read the same
/// filters within the last 60 s (SPEC §4).
pub(crate) async fn audit_read(
    state: &AppState,
    meta: &RequestMeta,
    admin: &RequireAdmin,
    endpoint: &'static str,
    filters: &Map<String, Value>,
) {
    let mut params = filters.clone();
    params.insert("endpoint".into(), json!(endpoint));
    // The key is the filters and the endpoint (a sorted map: stable).
    let key = serde_json::to_string(&params).unwrap_or_default();
    if state.audit_state.reads.should_write(admin.id(), &key) {
        state
            .audit(
                meta.audit(SELF_READ_ACTION, Some(admin))
                    .params(Value::Object(params))
                    .success(),
            )
            .await;
    }
}

async fn timeline(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(p): Query<Params>,
) -> AppResult<AxumJson<Value>> {
    let parsed = parse_filter(&p.filter, now())?;
    let limit = int_param("limit", &p.limit, 1, 200)?.unwrap_or(50) as usize;
    let cursor = parse_cursor(&p.cursor_ts, &p.cursor_id)?;
    let filter = parsed.filter.clone();
    let page = state
        .db
        .run(move |c| audit_repo::query(c, &filter, cursor.as_ref(), limit))
        .await?;
    audit_read(&state, &meta, &admin, "timeline", &parsed.echo).await;
    Ok(AxumJson(json!({
        "rows": page.rows,
        "next_cursor": page.next_cursor,
        "filter": parsed.echo,
    })))
}

async fn kpis(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(p): Query<Params>,
) -> AppResult<AxumJson<Value>> {
    let now = now();
    let parsed = parse_filter(&p.filter, now)?;
    let filter = parsed.filter.clone();
    let (current, previous) = state
        .db
        .run(move |c| audit_repo::kpis_with_previous(c, &filter))
        .await?;
    let mut out = serde_json::to_value(&current).map_err(anyhow::Error::from)?;
    if let Some(obj) = out.as_object_mut() {
        obj.insert("window_minutes".into(), json!(parsed.window.minutes(now)));
        obj.insert("since".into(), json!(isotime::format(&parsed.window.since)));
        obj.insert(
            "until".into(),
            json!(parsed.window.until.as_ref().map(isotime::format)),
        );
        obj.insert("previous".into(), json!(previous));
        obj.insert("filter".into(), json!(parsed.echo));
    }
    Ok(AxumJson(out))
}

async fn facets(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(p): Query<Params>,
) -> AppResult<AxumJson<Value>> {
    let now = now();
    let parsed = parse_filter(&p.filter, now)?;
    let filter = parsed.filter.clone();
    let f = state
        .db
        .run(move |c| audit_repo::facets(c, &filter))
        .await?;
    let mut out = serde_json::to_value(&f).map_err(anyhow::Error::from)?;
    if let Some(obj) = out.as_object_mut() {
        obj.insert("window_minutes".into(), json!(parsed.window.minutes(now)));
        obj.insert("filter".into(), json!(parsed.echo));
    }
    Ok(AxumJson(out))
}

async fn sync(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(p): Query<Params>,
) -> AppResult<AxumJson<Value>> {
    let window = Window::parse(&p.filter.window, WindowRules::AUDIT, now())?;
    let limit = int_param("limit", &p.limit, 1, 500)?.unwrap_or(100);
    let status = text_param("status", &p.status)?;
    let mut echo = window.echo();
    echo.insert("status".into(), json!(status));
    let (since, until, st) = (window.since, window.until, status.clone());
    let rows = state
        .db
        .run(move |c| sync_history::list(c, since, until, st.as_deref(), limit))
        .await?;
    audit_read(&state, &meta, &admin, "sync", &echo).await;
    Ok(AxumJson(json!({ "rows": rows })))
}

/// The health report, from the shared cache when it is younger than 30 s;
/// `true` when this call computed it.
pub(crate) async fn cached_health(state: &AppState) -> AppResult<(HealthReport, bool)> {
    let mut slot = state.audit_state.health.lock().await;
    if let Some((at, report)) = slot.as_ref() {
        if at.elapsed() < HEALTH_TTL {
            return Ok((report.clone(), false));
        }
    }
    let now = now();
    let path = state.db.path().map(|p| p.to_path_buf());
    let interval = health::cron_interval(&state.config.usage_processor_cron);
    let actions: Vec<&'static str> = PROCESSORS.iter().map(|(_, a)| *a).collect();
    let (inputs, disk) = state
        .db
        .run(move |c| {
            let inputs = audit_repo::health_inputs(c, now, &actions)?;
            Ok((inputs, health::disk_info(path.as_deref())))
        })
        .await?;
    let report = health::build_report(&inputs, &disk, now, interval);
    *slot = Some((Instant::now(), report.clone()));
    Ok((report, true))
}

async fn health(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
) -> AppResult<AxumJson<HealthReport>> {
    // Every actor's read is audited, cached or not; `audit_read` keeps it to
    // one row per actor per minute (SPEC §4).
    let (report, _fresh) = cached_health(&state).await?;
    audit_read(&state, &meta, &admin, "health", &Map::new()).await;
    Ok(AxumJson(report))
}

/// `GET /api/admin/activity/export?format=csv|ndjson|parquet&<filters>`:
/// exactly the filtered rows, oldest first, streamed; audited as
/// `audit.export` with the row count once the stream has ended.
async fn export(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(p): Query<Params>,
) -> AppResult<Response> {
    let format = Format::parse(
        p.format.as_deref(),
        &[Format::Csv, Format::Ndjson, Format::Parquet],
        Format::Csv,
    )?;
    let now = now();
    let mut parsed = parse_filter(&p.filter, now)?;
    // A fixed upper bound, so the file holds exactly what its name says.
    let until = parsed.filter.until.unwrap_or(now);
    parsed.filter.until = Some(until);
    let since = parsed.window.since;
    let mut params = parsed.echo;
    params.insert("since".into(), json!(isotime::format(&since)));
    params.insert("until".into(), json!(isotime::format(&until)));
    let spec = ExportSpec {
        format,
        file_stem: format!(
            "audit_log_{}_{}",
            isotime::compact(&since),
            isotime::compact(&until)
        ),
        event: meta.audit("audit.export", Some(&admin)),
        params,
        started: meta.started,
    };
    let filter = parsed.filter;
    Ok(export::stream(&state, spec, move |conn, sink| {
        audit_repo::export(conn, &filter, sink)
    }))
}

// ---- saved views ----

#[derive(Deserialize)]
struct ViewBody {
    name: Option<String>,
    query: Option<Value>,
}

async fn list_views(
    State(state): State<AppState>,
    admin: RequireAdmin,
) -> AppResult<AxumJson<Value>> {
    let uid = admin.id().to_string();
    let list = state.db.run(move |c| views::list(c, &uid)).await?;
    Ok(AxumJson(json!({ "views": list })))
}

async fn save_view(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Json(body): Json<ViewBody>,
) -> AppResult<AxumJson<views::View>> {
    let view = store_view(&state, &meta, &admin, body.name, body.query).await?;
    Ok(AxumJson(view))
}

/// Validates and saves (or replaces, by name) one of the user's views, and
/// audits it as `observability.view.save`: the API and the page's form share
/// these rules.
pub(crate) async fn store_view(
    state: &AppState,
    meta: &RequestMeta,
    admin: &RequireAdmin,
    name: Option<String>,
    query: Option<Value>,
) -> AppResult<views::View> {
    let name = name.unwrap_or_default().trim().to_string();
    if name.is_empty() {
        return Err(AppError::unprocessable("name: must not be empty"));
    }
    if name.chars().count() > MAX_VIEW_NAME {
        return Err(AppError::unprocessable(format!(
            "name: at most {MAX_VIEW_NAME} characters"
        )));
    }
    let query = match query {
        Some(q @ Value::Object(_)) => q,
        _ => return Err(AppError::unprocessable("query: must be a JSON object")),
    };
    if query.to_string().len() > MAX_VIEW_QUERY_BYTES {
        return Err(AppError::unprocessable(format!(
            "query: larger than {} KiB once encoded",
            MAX_VIEW_QUERY_BYTES / 1024
        )));
    }
    let uid = admin.id().to_string();
    let activity = state.audit_state.clone();
    let (view, replaced) = state
        .db
        .run(move |c| {
            // Check and write as one step, or two saves at once could both
            // pass the limit.
            let _one_at_a_time = activity.views.lock().unwrap_or_else(|e| e.into_inner());
            let replaced = views::by_name(c, &uid, &name)?.is_some();
            if !replaced && views::count(c, &uid)? >= MAX_VIEWS_PER_USER {
                return Ok(Err(AppError::unprocessable(format!(
                    "name: you already have {MAX_VIEWS_PER_USER} saved views; delete one or reuse a name"
                ))));
            }
            Ok(Ok((views::upsert(c, &uid, &name, &query)?, replaced)))
        })
        .await??;
    state
        .audit(
            meta.audit("observability.view.save", Some(admin))
                .resource(format!("view:{}", view.id))
                .params(json!({"name": view.name, "query": view.query, "replaced": replaced}))
                .success(),
        )
        .await;
    Ok(view)
}

/// Deletes one of the admin's own views (another's is not found) and audits
/// it as `observability.view.delete`.
pub(crate) async fn remove_view(
    state: &AppState,
    meta: &RequestMeta,
    admin: &RequireAdmin,
    id: String,
) -> AppResult<()> {
    let uid = admin.id().to_string();
    let vid = id.clone();
    if !state.db.run(move |c| views::delete(c, &uid, &vid)).await? {
        return Err(AppError::not_found("view not found"));
    }
    state
        .audit(
            meta.audit("observability.view.delete", Some(admin))
                .resource(format!("view:{id}"))
                .success(),
        )
        .await;
    Ok(())
}

async fn delete_view(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    remove_view(&state, &meta, &admin, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
