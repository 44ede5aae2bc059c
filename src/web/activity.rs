//! The Audit log's JSON APIs, on Agnes's paths and shapes (reference §1.1,
//! §1.2; SPEC §4): the timeline, the health pulse, sync runs, the CSV export,
//! facets, KPIs and saved views. All admin-only.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json as AxumJson, Router};
use chrono::{Duration, NaiveDateTime};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Json, Query, RequestMeta};
use crate::activity::{self, HealthReport, HEALTH_TTL, PROCESSORS};
use crate::app::AppState;
use crate::audit::{RESULT_CLASSES, SOURCES};
use crate::auth::RequireAdmin;
use crate::error::{AppError, AppResult};
use crate::export::formula::neutralise;
use crate::isotime;
use crate::repo::audit::{self as audit_repo, AuditFilter, Cursor, SELF_READ_ACTION};
use crate::repo::{sync_history, views};

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

/// The longest window any audit endpoint serves (SPEC §1).
pub const MAX_WINDOW_MINUTES: i64 = 43_200;
pub const DEFAULT_WINDOW_MINUTES: i64 = 1_440;
/// Longest accepted text filter value.
const MAX_TEXT: usize = 512;
/// Saved views (reference §1.2; limits answered with 422 per SPEC §1).
pub const MAX_VIEW_NAME: usize = 80;
pub const MAX_VIEW_QUERY_BYTES: usize = 64 * 1024;
pub const MAX_VIEWS_PER_USER: i64 = 100;

/// Every query parameter the audit endpoints know, as sent; each endpoint
/// validates the ones it uses. Blank values count as absent (HTML forms send
/// them for "any").
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Params {
    pub since_minutes: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub user_id: Option<String>,
    pub action: Option<String>,
    pub action_prefix: Option<String>,
    pub resource: Option<String>,
    pub resource_prefix: Option<String>,
    pub result_pattern: Option<String>,
    pub result_class: Option<String>,
    pub source: Option<String>,
    pub correlation_id: Option<String>,
    pub q: Option<String>,
    pub include_self_reads: Option<String>,
    pub min_duration_ms: Option<String>,
    pub cursor_ts: Option<String>,
    pub cursor_id: Option<String>,
    pub limit: Option<String>,
    pub status: Option<String>,
    pub format: Option<String>,
}

pub(crate) fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

pub(crate) fn int_param(
    name: &str,
    v: &Option<String>,
    min: i64,
    max: i64,
) -> AppResult<Option<i64>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    let n: i64 = s.trim().parse().map_err(|_| {
        AppError::unprocessable(format!("{name}: expected a whole number, got {s:?}"))
    })?;
    if n < min || n > max {
        return Err(AppError::unprocessable(format!(
            "{name}: must be between {min} and {max}, got {n}"
        )));
    }
    Ok(Some(n))
}

fn bool_param(name: &str, v: &Option<String>) -> AppResult<Option<bool>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(Some(true)),
        "false" | "0" | "no" | "off" => Ok(Some(false)),
        _ => Err(AppError::unprocessable(format!(
            "{name}: expected true or false, got {s:?}"
        ))),
    }
}

fn text_param(name: &str, v: &Option<String>) -> AppResult<Option<String>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    if s.chars().count() > MAX_TEXT {
        return Err(AppError::unprocessable(format!(
            "{name}: longer than {MAX_TEXT} characters"
        )));
    }
    Ok(Some(s.to_string()))
}

fn one_of(name: &str, v: &Option<String>, set: &[&str]) -> AppResult<Option<String>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    if set.contains(&s) {
        Ok(Some(s.to_string()))
    } else {
        Err(AppError::unprocessable(format!(
            "{name}: must be one of {}, got {s:?}",
            set.join(", ")
        )))
    }
}

fn time_param(name: &str, v: &Option<String>) -> AppResult<Option<NaiveDateTime>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    isotime::parse(s).map(Some).ok_or_else(|| {
        AppError::unprocessable(format!("{name}: not {}, got {s:?}", isotime::EXPECTED))
    })
}

/// The time window of a request: `since`/`until` (ISO 8601) when given, else
/// the last `since_minutes`.
#[derive(Debug, Clone)]
pub struct Window {
    pub since: NaiveDateTime,
    pub until: Option<NaiveDateTime>,
    /// Set when the window is relative (`since_minutes`), for the echo.
    pub since_minutes: Option<i64>,
}

impl Window {
    pub fn parse(p: &Params, now: NaiveDateTime) -> AppResult<Window> {
        let minutes = int_param("since_minutes", &p.since_minutes, 1, MAX_WINDOW_MINUTES)?;
        let since = time_param("since", &p.since)?;
        let until = time_param("until", &p.until)?;
        let max = Duration::minutes(MAX_WINDOW_MINUTES);
        let too_long = || {
            AppError::unprocessable(format!(
                "since, until: the window is longer than 30 days ({MAX_WINDOW_MINUTES} minutes); narrow it"
            ))
        };
        let relative = || Duration::minutes(minutes.unwrap_or(DEFAULT_WINDOW_MINUTES));
        // Checked: `since`/`until` are bounded years, but a window is never
        // computed with an operator that could panic.
        let before = |t: NaiveDateTime, name: &str| {
            t.checked_sub_signed(relative()).ok_or_else(|| {
                AppError::unprocessable(format!("{name}: not {}", isotime::EXPECTED))
            })
        };
        match (since, until) {
            (None, None) => Ok(Window {
                since: before(now, "since_minutes")?,
                until: None,
                since_minutes: Some(minutes.unwrap_or(DEFAULT_WINDOW_MINUTES)),
            }),
            (Some(s), Some(u)) => {
                if s >= u {
                    return Err(AppError::unprocessable("since: must be before until"));
                }
                if u.signed_duration_since(s) > max {
                    return Err(too_long());
                }
                Ok(Window {
                    since: s,
                    until: Some(u),
                    since_minutes: None,
                })
            }
            // Open-ended: measured against now, with a minute's grace for a
            // client that computed "30 days ago" a moment before sending.
            (Some(s), None) => {
                if now.signed_duration_since(s) > max + Duration::minutes(1) {
                    return Err(too_long());
                }
                Ok(Window {
                    since: s,
                    until: None,
                    since_minutes: None,
                })
            }
            (None, Some(u)) => Ok(Window {
                since: before(u, "until")?,
                until: Some(u),
                since_minutes: None,
            }),
        }
    }

    /// Length in minutes, the open end taken as `now`.
    pub fn minutes(&self, now: NaiveDateTime) -> i64 {
        self.until
            .unwrap_or(now)
            .signed_duration_since(self.since)
            .num_minutes()
    }
}

/// A validated filter and its echo (which is also the read-suppression key:
/// the cursor and the limit are not part of it).
pub struct Parsed {
    pub filter: AuditFilter,
    pub window: Window,
    pub echo: BTreeMap<&'static str, Value>,
}

pub fn parse_filter(p: &Params, now: NaiveDateTime) -> AppResult<Parsed> {
    let window = Window::parse(p, now)?;
    let filter = AuditFilter {
        since: Some(window.since),
        until: window.until,
        user_id: text_param("user_id", &p.user_id)?,
        action: text_param("action", &p.action)?,
        action_prefix: text_param("action_prefix", &p.action_prefix)?,
        action_in: None,
        resource: text_param("resource", &p.resource)?,
        resource_prefix: text_param("resource_prefix", &p.resource_prefix)?,
        result_pattern: text_param("result_pattern", &p.result_pattern)?,
        result_class: one_of("result_class", &p.result_class, &RESULT_CLASSES)?,
        source: one_of("source", &p.source, &SOURCES)?,
        correlation_id: text_param("correlation_id", &p.correlation_id)?,
        q: text_param("q", &p.q)?,
        include_self_reads: bool_param("include_self_reads", &p.include_self_reads)?
            .unwrap_or(false),
        min_duration_ms: int_param("min_duration_ms", &p.min_duration_ms, 0, i32::MAX as i64)?,
    };
    let given_time = |v: &Option<NaiveDateTime>| match (window.since_minutes, v) {
        (None, Some(t)) => json!(isotime::format(t)),
        _ => Value::Null,
    };
    let mut echo = BTreeMap::new();
    echo.insert("since_minutes", json!(window.since_minutes));
    echo.insert("since", given_time(&Some(window.since)));
    echo.insert("until", given_time(&window.until));
    echo.insert("user_id", json!(filter.user_id));
    echo.insert("action", json!(filter.action));
    echo.insert("action_prefix", json!(filter.action_prefix));
    echo.insert("resource", json!(filter.resource));
    echo.insert("resource_prefix", json!(filter.resource_prefix));
    echo.insert("result_pattern", json!(filter.result_pattern));
    echo.insert("result_class", json!(filter.result_class));
    echo.insert("source", json!(filter.source));
    echo.insert("correlation_id", json!(filter.correlation_id));
    echo.insert("q", json!(filter.q));
    echo.insert("include_self_reads", json!(filter.include_self_reads));
    echo.insert("min_duration_ms", json!(filter.min_duration_ms));
    Ok(Parsed {
        filter,
        window,
        echo,
    })
}

/// `cursor_ts` + `cursor_id`, both or neither; one that does not decode is a 422.
pub(crate) fn parse_cursor(p: &Params) -> AppResult<Option<Cursor>> {
    match (present(&p.cursor_ts), present(&p.cursor_id)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(AppError::unprocessable(
            "cursor_id: required with cursor_ts (pass the next_cursor's ts and id)",
        )),
        (None, Some(_)) => Err(AppError::unprocessable(
            "cursor_ts: required with cursor_id (pass the next_cursor's ts and id)",
        )),
        (Some(ts), Some(id)) => {
            let ts = isotime::parse(ts).ok_or_else(|| {
                AppError::unprocessable(format!(
                    "cursor_ts: not a timestamp from next_cursor, got {ts:?}"
                ))
            })?;
            let id = uuid::Uuid::parse_str(id)
                .map_err(|_| {
                    AppError::unprocessable(format!(
                        "cursor_id: not an audit row id from next_cursor, got {id:?}"
                    ))
                })?
                .hyphenated()
                .to_string();
            Ok(Some(Cursor { ts, id }))
        }
    }
}

pub(crate) fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Writes an `activity.read` row unless the same actor read the same
/// filters within the last 60 s (SPEC §4).
pub(crate) async fn audit_read(
    state: &AppState,
    meta: &RequestMeta,
    admin: &RequireAdmin,
    endpoint: &'static str,
    filters: &BTreeMap<&'static str, Value>,
) {
    let mut params: serde_json::Map<String, Value> = filters
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    params.insert("endpoint".into(), json!(endpoint));
    let mut key = filters.clone();
    key.insert("endpoint", json!(endpoint));
    let key = serde_json::to_string(&key).unwrap_or_default();
    if state.activity.reads.should_write(admin.id(), &key) {
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
    let parsed = parse_filter(&p, now())?;
    let limit = int_param("limit", &p.limit, 1, 200)?.unwrap_or(50) as usize;
    let cursor = parse_cursor(&p)?;
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
    let parsed = parse_filter(&p, now)?;
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
    let parsed = parse_filter(&p, now)?;
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
    let window = Window::parse(&p, now())?;
    let limit = int_param("limit", &p.limit, 1, 500)?.unwrap_or(100);
    let status = text_param("status", &p.status)?;
    let mut echo = BTreeMap::new();
    echo.insert("since_minutes", json!(window.since_minutes));
    let given = |t: &Option<NaiveDateTime>| match (window.since_minutes, t) {
        (None, Some(t)) => json!(isotime::format(t)),
        _ => Value::Null,
    };
    echo.insert("since", given(&Some(window.since)));
    echo.insert("until", given(&window.until));
    echo.insert("status", json!(status));
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
    let mut slot = state.activity.health.lock().await;
    if let Some((at, report)) = slot.as_ref() {
        if at.elapsed() < HEALTH_TTL {
            return Ok((report.clone(), false));
        }
    }
    let now = now();
    let path = state.db.path().map(|p| p.to_path_buf());
    let interval = activity::cron_interval(&state.config.usage_processor_cron);
    let actions: Vec<&'static str> = PROCESSORS.iter().map(|(_, a)| *a).collect();
    let (inputs, disk) = state
        .db
        .run(move |c| {
            let inputs = audit_repo::health_inputs(c, now, &actions)?;
            Ok((inputs, activity::disk_info(path.as_deref())))
        })
        .await?;
    let report = activity::build_report(&inputs, &disk, now, interval);
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
    audit_read(&state, &meta, &admin, "health", &BTreeMap::new()).await;
    Ok(AxumJson(report))
}

/// Bytes gathered from the CSV writer and handed to the response body in
/// chunks through a bounded channel: a slow client slows the query down
/// instead of filling memory.
struct ChunkSender {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

const EXPORT_CHUNK: usize = 64 * 1024;

impl ChunkSender {
    fn send_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(EXPORT_CHUNK + 4096),
        ));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= EXPORT_CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /api/admin/activity/export?format=csv&<filters>`: exactly the
/// filtered rows, oldest first, streamed; audited as `audit.export` with the
/// row count once the stream has ended.
async fn export(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(p): Query<Params>,
) -> AppResult<Response> {
    let format = present(&p.format).unwrap_or("csv");
    if format != "csv" {
        return Err(AppError::unprocessable(format!(
            "format: only csv is supported, got {format:?}"
        )));
    }
    let now = now();
    let mut parsed = parse_filter(&p, now)?;
    // A fixed upper bound, so the file holds exactly what its name says.
    let until = parsed.filter.until.unwrap_or(now);
    parsed.filter.until = Some(until);
    let since = parsed.window.since;
    let filename = format!(
        "audit_log_{}_{}.csv",
        isotime::compact(&since),
        isotime::compact(&until)
    );
    let mut params: serde_json::Map<String, Value> = parsed
        .echo
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    params.insert("format".into(), json!("csv"));
    params.insert("since".into(), json!(isotime::format(&since)));
    params.insert("until".into(), json!(isotime::format(&until)));
    let event = meta.audit("audit.export", Some(&admin));
    let started = meta.started;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let db = state.db.clone();
    let filter = parsed.filter;
    state.tracker.spawn_blocking(move || {
        let conn = match db.connect() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = ?e, "export: no connection");
                let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                return;
            }
        };
        let mut sent_rows = 0u64;
        let outcome = (|| -> anyhow::Result<u64> {
            let header = audit_repo::export_header(&conn)?;
            let mut wtr = csv::Writer::from_writer(ChunkSender {
                buf: Vec::with_capacity(EXPORT_CHUNK + 4096),
                tx: tx.clone(),
            });
            wtr.write_record(&header)?;
            let n = audit_repo::export(&conn, &filter, &mut |values| {
                wtr.write_record(values.iter().map(|v| neutralise(v.unwrap_or(""))))?;
                sent_rows += 1;
                Ok(true)
            })?;
            let mut sender = wtr
                .into_inner()
                .map_err(|e| std::io::Error::new(e.error().kind(), e.error().to_string()))?;
            sender.send_buf()?;
            Ok(n)
        })();
        let mut event = event;
        event.duration_ms = Some(started.elapsed().as_millis() as i64);
        let event = match &outcome {
            Ok(n) => {
                params.insert("row_count".into(), json!(n));
                event.params(Value::Object(params)).success()
            }
            Err(e) => {
                let gone = e
                    .downcast_ref::<std::io::Error>()
                    .or_else(|| {
                        e.downcast_ref::<csv::Error>().and_then(|c| match c.kind() {
                            csv::ErrorKind::Io(io) => Some(io),
                            _ => None,
                        })
                    })
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
                params.insert("row_count".into(), json!(sent_rows));
                if !gone {
                    tracing::error!(error = ?e, "export failed");
                    let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                }
                let code = if gone { "client_closed" } else { "export" };
                event
                    .params(Value::Object(params))
                    .error(code, &format!("{e:#}"))
            }
        };
        // Written before the body ends (the sender is still open), so the
        // row is there as soon as the client has the whole file.
        if let Err(e) = audit_repo::log(&conn, &event) {
            tracing::error!(error = ?e, "could not write the audit.export row");
        }
        drop(tx);
    });

    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
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
    let activity = state.activity.clone();
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
