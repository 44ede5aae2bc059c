//! The Sessions JSON APIs on Agnes's paths and shapes (reference §1.4, §1.5),
//! and their `/api/me/…` twins scoped to the signed-in person (SPEC §1).

use std::convert::Infallible;
use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::files;
use super::params::{bool_param, int_param, Parsed, SessionsQuery};
use crate::app::AppState;
use crate::auth::{Human, Principal, RequireAdmin};
use crate::error::{AppError, AppResult};
use crate::repo::sessions::{self as repo, FindingMark, Owner, SessionRow};
use crate::repo::users::User;
use crate::sessions::paths::DirFile;
use crate::sessions::transcript::{self, ReadOptions};
use crate::sessions::zip::{write_zip, ChannelWriter};
use crate::web::extract::{Query, RequestMeta};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/sessions/list", get(admin_list))
        .route("/api/admin/sessions/kpis", get(admin_kpis))
        .route("/api/admin/sessions/facets", get(admin_facets))
        .route("/api/admin/sessions/heatmap", get(admin_heatmap))
        .route(
            "/api/admin/sessions/{user_dir}/{file}/transcript",
            get(admin_transcript),
        )
        .route(
            "/api/admin/sessions/{user_dir}/{file}/download",
            get(admin_download),
        )
        .route("/api/admin/users/{id}/sessions", get(admin_user_sessions))
        .route(
            "/api/admin/users/{id}/sessions/download-all",
            get(admin_user_zip),
        )
        .route(
            "/api/admin/users/{id}/sessions/{file}/download",
            get(admin_user_download),
        )
        .route("/api/admin/users/{id}/activity", get(admin_user_activity))
        .route("/api/me/sessions", get(me_sessions))
        .route("/api/me/sessions/list", get(me_list))
        .route("/api/me/sessions/kpis", get(me_kpis))
        .route("/api/me/sessions/facets", get(me_facets))
        .route("/api/me/sessions/heatmap", get(me_heatmap))
        .route("/api/me/sessions/download-all", get(me_zip))
        .route("/api/me/sessions/{file}/transcript", get(me_transcript))
        .route("/api/me/sessions/{file}/download", get(me_download))
}

pub(crate) fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// An analyst sees only their own rows, even on the `/api/me` twins used by
/// an admin for themselves.
fn own(p: &Principal) -> Owner {
    Owner {
        user_id: p.id().to_string(),
        email: p.user.email.clone(),
    }
}

fn window_echo(p: &Parsed) -> Value {
    json!({
        "since": p.filter.since.as_ref().map(crate::isotime::format),
        "until": p.filter.until.as_ref().map(crate::isotime::format),
        "since_minutes": p.since_minutes,
        "anchor": p.filter.anchor.as_str(),
    })
}

// ---- list, KPIs, facets, heatmap -------------------------------------------

pub(crate) async fn list_json(state: &AppState, p: Parsed) -> AppResult<Value> {
    let (f, sort, limit, offset) = (p.filter.clone(), p.sort.clone(), p.limit, p.offset);
    let (rows, total) = state
        .db
        .run(move |c| repo::list(c, &f, &sort, limit, offset))
        .await?;
    let next = offset + rows.len() as i64;
    Ok(json!({
        "rows": rows,
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": (next < total).then_some(next),
        "sort": p.sort.as_param(),
        "window": window_echo(&p),
    }))
}

pub(crate) async fn kpis_json(state: &AppState, p: Parsed) -> AppResult<Value> {
    let f = p.filter.clone();
    let prev = f.previous(now());
    let (cur, prev) = state
        .db
        .run(move |c| {
            let cur = repo::kpis(c, &f)?;
            let prev = prev.map(|pf| repo::kpis(c, &pf)).transpose()?;
            Ok((cur, prev))
        })
        .await?;
    let mut v = serde_json::to_value(&cur).map_err(|e| AppError::Internal(e.into()))?;
    v["previous"] = serde_json::to_value(&prev).map_err(|e| AppError::Internal(e.into()))?;
    v["window"] = window_echo(&p);
    Ok(v)
}

async fn facets_json(state: &AppState, p: Parsed) -> AppResult<Value> {
    let f = p.filter.clone();
    let facets = state.db.run(move |c| repo::facets(c, &f)).await?;
    let mut v = serde_json::to_value(&facets).map_err(|e| AppError::Internal(e.into()))?;
    v["window"] = window_echo(&p);
    Ok(v)
}

async fn heatmap_json(state: &AppState, p: Parsed) -> AppResult<Value> {
    let f = p.filter.clone();
    let map = state.db.run(move |c| repo::heatmap(c, &f)).await?;
    let mut v = serde_json::to_value(&map).map_err(|e| AppError::Internal(e.into()))?;
    v["window"] = window_echo(&p);
    Ok(v)
}

fn parsed(q: &SessionsQuery, who: Option<&Principal>) -> AppResult<Parsed> {
    let mut p = q.parse(now(), "started_at:desc")?;
    p.filter.owner = who.map(own);
    Ok(p)
}

async fn admin_list(
    State(s): State<AppState>,
    _a: RequireAdmin,
    Query(q): Query<SessionsQuery>,
) -> AppResult<Json<Value>> {
    Ok(Json(list_json(&s, parsed(&q, None)?).await?))
}

async fn admin_kpis(
    State(s): State<AppState>,
    _a: RequireAdmin,
    Query(q): Query<SessionsQuery>,
) -> AppResult<Json<Value>> {
    Ok(Json(kpis_json(&s, parsed(&q, None)?).await?))
}

async fn admin_facets(
    State(s): State<AppState>,
    _a: RequireAdmin,
    Query(q): Query<SessionsQuery>,
) -> AppResult<Json<Value>> {
    Ok(Json(facets_json(&s, parsed(&q, None)?).await?))
}

async fn admin_heatmap(
    State(s): State<AppState>,
    _a: RequireAdmin,
    Query(q): Query<SessionsQuery>,
) -> AppResult<Json<Value>> {
    Ok(Json(heatmap_json(&s, parsed(&q, None)?).await?))
}

async fn me_list(
    State(s): State<AppState>,
    who: Human,
    Query(q): Query<SessionsQuery>,
) -> AppResult<Json<Value>> {
    Ok(Json(list_json(&s, parsed(&q, Some(&who))?).await?))
}

async fn me_kpis(
    State(s): State<AppState>,
    who: Human,
    Query(q): Query<SessionsQuery>,
) -> AppResult<Json<Value>> {
    Ok(Json(kpis_json(&s, parsed(&q, Some(&who))?).await?))
}

async fn me_facets(
    State(s): State<AppState>,
    who: Human,
    Query(q): Query<SessionsQuery>,
) -> AppResult<Json<Value>> {
    Ok(Json(facets_json(&s, parsed(&q, Some(&who))?).await?))
}

async fn me_heatmap(
    State(s): State<AppState>,
    who: Human,
    Query(q): Query<SessionsQuery>,
) -> AppResult<Json<Value>> {
    Ok(Json(heatmap_json(&s, parsed(&q, Some(&who))?).await?))
}

// ---- transcripts -----------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TranscriptQuery {
    pub offset: Option<String>,
    pub limit: Option<String>,
    /// Cut tool results and inputs longer than this many characters.
    pub max_text: Option<String>,
    /// Give the error and finding lines (default: on the first page only).
    pub marks: Option<String>,
}

/// The viewer's jump list: lines with an error result or a finding.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Marks {
    /// Sorted, distinct lines to visit with "Next error".
    pub lines: Vec<u64>,
    /// Lines of error tool results.
    pub errors: Vec<u64>,
    pub findings: Vec<FindingMark>,
}

/// The findings of a file: from `session_findings` when the failure scan
/// has seen this version of it, else from parsing it now.
pub(crate) async fn marks(
    state: &AppState,
    session_file: &str,
    path: &std::path::Path,
) -> AppResult<Marks> {
    let size = tokio::fs::metadata(path)
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .len();
    let sf = session_file.to_string();
    let stored = state
        .db
        .run(move |c| repo::findings_of(c, &sf, size))
        .await?;
    let findings = match stored {
        Some(f) => f,
        None => {
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || -> std::io::Result<Vec<FindingMark>> {
                let f = std::fs::File::open(path)?;
                let parsed = crate::ingest::parse::parse_reader(
                    std::io::BufReader::with_capacity(1 << 16, f),
                )?;
                Ok(parsed
                    .findings
                    .iter()
                    .map(|f| FindingMark {
                        line: f.turn_index,
                        finding_type: f.finding_type.as_str().to_string(),
                        severity: f.severity.as_str().to_string(),
                        excerpt: Some(f.excerpt.clone()),
                    })
                    .collect())
            })
            .await
            .map_err(|e| AppError::Internal(e.into()))?
            .map_err(|e| AppError::Internal(e.into()))?
        }
    };
    let errors: Vec<u64> = findings
        .iter()
        .filter(|f| {
            matches!(
                f.finding_type.as_str(),
                "tool_error" | "permission_denied" | "user_rejection"
            )
        })
        .map(|f| f.line)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let lines = findings
        .iter()
        .map(|f| f.line)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(Marks {
        lines,
        errors,
        findings,
    })
}

pub(crate) fn session_resource(session_file: &str) -> String {
    format!("session:{session_file}")
}

/// Agnes's `summary`: the summary row, or `{}` for a file not yet ingested.
fn summary_value(row: &Option<SessionRow>) -> Value {
    row.as_ref()
        .and_then(|r| serde_json::to_value(r).ok())
        .unwrap_or_else(|| json!({}))
}

async fn transcript(
    state: AppState,
    meta: RequestMeta,
    who: Principal,
    user_dir: String,
    file: String,
    path: PathBuf,
    q: TranscriptQuery,
) -> AppResult<Response> {
    let offset = int_param("offset", &q.offset, 0, i64::MAX)?;
    let limit = int_param("limit", &q.limit, 1, 5000)?;
    let max_text = int_param("max_text", &q.max_text, 1, 100_000_000)?;
    let want_marks = match q.marks {
        Some(_) => bool_param("marks", &q.marks)?,
        None => offset.unwrap_or(0) == 0,
    };
    let session_file = format!("{user_dir}/{file}");
    let sf = session_file.clone();
    let summary = state.db.run(move |c| repo::by_file(c, &sf)).await?;
    let marks = if want_marks || limit.is_none() {
        Some(marks(&state, &session_file, &path).await?)
    } else {
        None
    };
    let opts = ReadOptions {
        max_text: max_text.map(|m| m as usize),
    };
    let audit = meta
        .audit("session.transcript_view", Some(&who))
        .resource(session_resource(&session_file));
    let Some(limit) = limit else {
        return Ok(stream_whole(
            state,
            audit,
            user_dir,
            session_file,
            summary,
            marks.unwrap_or_default(),
            path,
            opts,
        ));
    };
    let offset = offset.unwrap_or(0) as u64;
    let p = path.clone();
    let page =
        tokio::task::spawn_blocking(move || transcript::read_page(&p, offset, limit as u64, opts))
            .await
            .map_err(|e| AppError::Internal(e.into()))?
            .map_err(|e| AppError::Internal(e.into()))?;
    // One view per opening: the first page is the opening, later pages are not.
    if offset == 0 {
        state
            .audit(
                audit
                    .params(json!({"events": page.events.len(), "offset": 0, "limit": limit, "session_file": session_file}))
                    .success(),
            )
            .await;
    }
    let mut v = json!({
        "username": user_dir,
        "session_file": file,
        "summary": summary_value(&summary),
        "events": page.events,
        "offset": page.offset,
        "limit": page.limit,
        "next_offset": page.next_offset,
    });
    if let Some(m) = marks {
        v["marks"] = serde_json::to_value(m).map_err(|e| AppError::Internal(e.into()))?;
    }
    Ok(Json(v).into_response())
}

/// A body fed from a blocking producer through a bounded channel.
pub(crate) fn channel_body(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Body::from_stream(stream)
}

/// The whole transcript as Agnes's `{…, events: […]}`, written event by event
/// while the file is read: memory stays at one line whatever the file's size.
#[allow(clippy::too_many_arguments)]
fn stream_whole(
    state: AppState,
    audit: crate::audit::AuditEvent,
    user_dir: String,
    session_file: String,
    summary: Option<SessionRow>,
    marks: Marks,
    path: PathBuf,
    opts: ReadOptions,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let file = session_file.rsplit('/').next().unwrap_or("").to_string();
    let head = json!({
        "username": user_dir,
        "session_file": file,
        "summary": summary_value(&summary),
        "marks": marks,
    })
    .to_string();
    let db = state.db.clone();
    let task = move || -> std::io::Result<u64> {
        use std::io::Write;
        let mut w = ChannelWriter::new(tx);
        // `{"username":…,"marks":…` then `,"events":[` … `]}`
        w.write_all(&head.as_bytes()[..head.len() - 1])?;
        w.write_all(b",\"events\":[")?;
        let f = std::fs::File::open(&path)?;
        let mut reader =
            transcript::Reader::new(std::io::BufReader::with_capacity(1 << 16, f), opts);
        let mut batch = Vec::new();
        let mut n = 0u64;
        while reader.next_line(&mut batch)? {
            for e in batch.drain(..) {
                if n > 0 {
                    w.write_all(b",")?;
                }
                serde_json::to_writer(&mut w, &e)?;
                n += 1;
            }
        }
        w.write_all(b"]}")?;
        w.flush()?;
        Ok(n)
    };
    let tracker = state.tracker.clone();
    tracker.spawn_blocking(move || {
        let result = task();
        let event = match &result {
            Ok(n) => audit
                .params(json!({"events": n, "session_file": session_file}))
                .success(),
            Err(e) => audit
                .params(json!({"session_file": session_file, "error": e.to_string()}))
                .result(format!("error: {e}")),
        };
        if let Err(e) = db
            .connect()
            .and_then(|c| crate::repo::audit::log(&c, &event).map(|_| ()))
        {
            tracing::error!(error = ?e, "could not write the transcript view's audit row");
        }
    });
    let mut resp = channel_body(rx).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

async fn admin_transcript(
    State(state): State<AppState>,
    meta: RequestMeta,
    RequireAdmin(who): RequireAdmin,
    Path((user_dir, file)): Path<(String, String)>,
    Query(q): Query<TranscriptQuery>,
) -> AppResult<Response> {
    let path = files::resolve(&state, &user_dir, &file).await?;
    transcript(state, meta, who, user_dir, file, path, q).await
}

async fn me_transcript(
    State(state): State<AppState>,
    meta: RequestMeta,
    Human(who): Human,
    Path(file): Path<String>,
    Query(q): Query<TranscriptQuery>,
) -> AppResult<Response> {
    let dirs = files::user_dirs(&state, &who.user).await?;
    let (dir, path) = files::user_file(&state, &dirs, &file).await?;
    transcript(state, meta, who, dir, file, path, q).await
}

// ---- downloads -------------------------------------------------------------

/// Streams one file as an attachment and audits it with its size.
async fn send_file(
    state: &AppState,
    audit: crate::audit::AuditEvent,
    path: PathBuf,
    file: &str,
) -> AppResult<Response> {
    let f = tokio::fs::File::open(&path)
        .await
        .map_err(|_| AppError::not_found("session file not found"))?;
    let bytes = f
        .metadata()
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .len();
    state
        .audit(
            audit
                .params(json!({"bytes": bytes, "session_file": file}))
                .success(),
        )
        .await;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(f, 64 * 1024));
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

async fn admin_download(
    State(state): State<AppState>,
    meta: RequestMeta,
    RequireAdmin(who): RequireAdmin,
    Path((user_dir, file)): Path<(String, String)>,
) -> AppResult<Response> {
    let path = files::resolve(&state, &user_dir, &file).await?;
    let audit = meta
        .audit("session_download", Some(&who))
        .resource(session_resource(&format!("{user_dir}/{file}")));
    send_file(&state, audit, path, &file).await
}

async fn me_download(
    State(state): State<AppState>,
    meta: RequestMeta,
    Human(who): Human,
    Path(file): Path<String>,
) -> AppResult<Response> {
    let dirs = files::user_dirs(&state, &who.user).await?;
    let (dir, path) = files::user_file(&state, &dirs, &file).await?;
    let audit = meta
        .audit("session_download", Some(&who))
        .resource(session_resource(&format!("{dir}/{file}")));
    send_file(&state, audit, path, &file).await
}

async fn target_user(state: &AppState, id: &str) -> AppResult<User> {
    let id2 = id.to_string();
    state
        .db
        .run(move |c| crate::repo::users::by_id(c, &id2))
        .await?
        .ok_or_else(|| AppError::not_found(format!("user {id} not found")))
}

async fn admin_user_download(
    State(state): State<AppState>,
    meta: RequestMeta,
    RequireAdmin(who): RequireAdmin,
    Path((id, file)): Path<(String, String)>,
) -> AppResult<Response> {
    let user = target_user(&state, &id).await?;
    let dirs = files::user_dirs(&state, &user).await?;
    let (dir, path) = files::user_file(&state, &dirs, &file).await?;
    let audit = meta
        .audit("session_download", Some(&who))
        .resource(session_resource(&format!("{dir}/{file}")));
    send_file(&state, audit, path, &file).await
}

/// `<name>-sessions-<YYYY-MM-DD>.zip`, the name reduced to safe characters.
fn zip_name(user: &User) -> String {
    let local: String = user
        .email
        .split('@')
        .next()
        .unwrap_or("user")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    format!("{local}-sessions-{}.zip", now().format("%Y-%m-%d"))
}

/// A person's transcripts as a ZIP, streamed while it is written; audited
/// after the stream ends with the count and bytes that went in.
async fn send_zip(
    state: &AppState,
    meta: &RequestMeta,
    who: &Principal,
    user: &User,
) -> AppResult<Response> {
    let dirs = files::user_dirs(state, user).await?;
    if dirs.is_empty() {
        return Err(AppError::not_found(
            "this user has no session directory under SESSION_DATA_DIR",
        ));
    }
    let found: Vec<DirFile> = files::user_files(state, &dirs)
        .await?
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let audit = meta
        .audit("session_bulk_download", Some(who))
        .resource(format!("users/{}/sessions", user.id));
    let (db, username) = (state.db.clone(), user.email.clone());
    state.tracker.spawn_blocking(move || {
        let result = write_zip(&found, ChannelWriter::new(tx));
        let event = match &result {
            Ok(w) => audit
                .params(json!({"file_count": w.file_count, "total_bytes": w.total_bytes, "username": username}))
                .success(),
            Err(e) => audit
                .params(json!({"username": username, "error": e.to_string()}))
                .result(format!("error: {e}")),
        };
        if let Err(e) = db.connect().and_then(|c| crate::repo::audit::log(&c, &event).map(|_| ())) {
            tracing::error!(error = ?e, "could not write the bulk download's audit row");
        }
    });
    let mut resp = channel_body(rx).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", zip_name(user))) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

async fn admin_user_zip(
    State(state): State<AppState>,
    meta: RequestMeta,
    RequireAdmin(who): RequireAdmin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let user = target_user(&state, &id).await?;
    send_zip(&state, &meta, &who, &user).await
}

async fn me_zip(
    State(state): State<AppState>,
    meta: RequestMeta,
    Human(who): Human,
) -> AppResult<Response> {
    let user = (*who.user).clone();
    send_zip(&state, &meta, &who, &user).await
}

// ---- a person's sessions and activity -------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub offset: Option<String>,
}

/// One row of a person's sessions: a summary row (`processed`), or a file
/// not ingested yet with zeroed counters.
#[derive(Debug, Clone, Serialize)]
pub struct UserSession {
    #[serde(flatten)]
    pub row: SessionRow,
    pub processed: bool,
}

/// Processed rows first (newest first), then files on disk not yet
/// ingested (by mtime), de-duplicated by file name.
pub(crate) async fn user_sessions(state: &AppState, user: &User) -> AppResult<Vec<UserSession>> {
    let (id, email) = (user.id.clone(), user.email.clone());
    let processed = state.db.run(move |c| repo::of_user(c, &id, &email)).await?;
    let dirs = files::user_dirs(state, user).await?;
    let on_disk = files::user_files(state, &dirs).await?;
    let names: std::collections::HashSet<String> = processed
        .iter()
        .map(|r| r.file_name().to_string())
        .collect();
    let mut pending: Vec<UserSession> = on_disk
        .into_iter()
        .filter(|(_, f)| !names.contains(&f.name))
        .map(|(dir, f)| {
            let started = f
                .mtime
                .map(|m| chrono::DateTime::<chrono::Utc>::from(m).naive_utc());
            UserSession {
                row: SessionRow {
                    session_file: format!("{dir}/{}", f.name),
                    session_id: f.name.trim_end_matches(".jsonl").to_string(),
                    username: user.email.clone(),
                    started_at: started,
                    ended_at: None,
                    uploaded_at: None,
                    active_seconds: None,
                    wall_seconds: None,
                    user_messages: 0,
                    assistant_messages: 0,
                    tool_calls: 0,
                    tool_errors: 0,
                    skill_invocations: 0,
                    subagent_dispatches: 0,
                    mcp_calls: 0,
                    slash_commands: 0,
                    distinct_tools: 0,
                    distinct_skills: 0,
                    primary_model: None,
                    session_dir: dir,
                    user_id: Some(user.id.clone()),
                    input_tokens: 0,
                    output_tokens: 0,
                    cache_read_tokens: 0,
                    cache_creation_tokens: 0,
                    total_tokens: 0,
                    cost_usd: 0.0,
                    bytes: f.size as i64,
                    findings: 0,
                    finding_types: Default::default(),
                },
                processed: false,
            }
        })
        .collect();
    pending.sort_by_key(|s| std::cmp::Reverse(s.row.started_at));
    Ok(processed
        .into_iter()
        .map(|row| UserSession {
            row,
            processed: true,
        })
        .chain(pending)
        .collect())
}

async fn paged_user_sessions(state: &AppState, user: &User, q: &PageQuery) -> AppResult<Value> {
    let limit = int_param("limit", &q.limit, 1, 200)?.unwrap_or(50) as usize;
    let offset = int_param("offset", &q.offset, 0, 50_000)?.unwrap_or(0) as usize;
    let all = user_sessions(state, user).await?;
    let total = all.len();
    let rows: Vec<UserSession> = all.into_iter().skip(offset).take(limit).collect();
    Ok(json!({
        "rows": rows,
        "pagination": {"limit": limit, "offset": offset, "total": total},
    }))
}

async fn admin_user_sessions(
    State(state): State<AppState>,
    _a: RequireAdmin,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> AppResult<Json<Value>> {
    let user = target_user(&state, &id).await?;
    Ok(Json(paged_user_sessions(&state, &user, &q).await?))
}

async fn me_sessions(
    State(state): State<AppState>,
    Human(who): Human,
    Query(q): Query<PageQuery>,
) -> AppResult<Json<Value>> {
    Ok(Json(paged_user_sessions(&state, &who.user, &q).await?))
}

async fn admin_user_activity(
    State(state): State<AppState>,
    meta: RequestMeta,
    RequireAdmin(who): RequireAdmin,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> AppResult<Json<Value>> {
    let user = target_user(&state, &id).await?;
    let limit = int_param("limit", &q.limit, 1, 200)?.unwrap_or(50);
    let offset = int_param("offset", &q.offset, 0, 50_000)?.unwrap_or(0);
    let uid = user.id.clone();
    let (rows, total) = state
        .db
        .run(move |c| repo::user_audit(c, &uid, limit, offset))
        .await?;
    state
        .audit(
            meta.audit("admin.user_activity_read", Some(&who))
                .resource(format!("user:{}", user.id))
                .params(json!({"target_user_id": user.id, "limit": limit, "offset": offset, "row_count": rows.len()}))
                .success(),
        )
        .await;
    Ok(Json(json!({
        "rows": rows,
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}
