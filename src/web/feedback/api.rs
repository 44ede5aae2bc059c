//! JSON: `POST /api/feedback` (people), `/api/me/feedback` (own reports),
//! `/api/admin/feedback` (the inbox, a report, actions).

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json as AxumJson, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::actions::{act, ActionReq};
use super::query::{ListParams, PAGE_ROWS};
use crate::app::AppState;
use crate::auth::{Human, RequireAdmin};
use crate::error::{AppError, AppResult};
use crate::feedback::notify::Summary;
use crate::feedback::{excerpt, NewReport, MAX_BODY_BYTES};
use crate::repo::feedback::{self as repo, Filter, Order};
use crate::web::extract::{Json, Query, RequestMeta};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/feedback",
            post(report).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route("/api/me/feedback", get(mine))
        .route("/api/me/feedback/{id}", get(my_report))
        .route("/api/admin/feedback", get(list))
        .route("/api/admin/feedback/{id}", get(detail))
        .route("/api/admin/feedback/{id}/actions", post(action))
}

/// The body of `POST /api/feedback`.
#[derive(Debug, Deserialize)]
pub struct ReportBody {
    pub message: String,
    #[serde(default)]
    pub session_excerpt: Option<String>,
    #[serde(default)]
    pub session_file: Option<String>,
    #[serde(default)]
    pub environment: Option<Value>,
    /// The reporter saw a preview of exactly what is sent (the CLI's
    /// confirmation); recorded in the audit row.
    #[serde(default)]
    pub ack_preview: Option<bool>,
}

async fn report(
    State(state): State<AppState>,
    meta: RequestMeta,
    who: Human,
    Json(body): Json<ReportBody>,
) -> AppResult<Response> {
    let ack_preview = body.ack_preview.unwrap_or(false);
    let new = NewReport::validate(
        body.message,
        body.session_excerpt,
        body.session_file,
        body.environment,
    )
    .map_err(|e| AppError::unprocessable(e.0))?;
    let id = uuid::Uuid::now_v7().to_string();
    let (rid, uid, n) = (id.clone(), who.id().to_string(), new.clone());
    let duplicates = state
        .db
        .run(move |c| repo::insert(c, &rid, &uid, &n, None))
        .await?;
    let excerpt_lines = new
        .session_excerpt
        .as_deref()
        .map(|e| excerpt::lines(e).count())
        .unwrap_or(0);
    state
        .audit(
            meta.audit("feedback.report", Some(&who))
                .resource(format!("feedback:{id}"))
                .params(json!({
                    "ack_preview": ack_preview,
                    "duplicates": duplicates,
                    "excerpt_lines": excerpt_lines,
                    "session_file": new.session_file,
                    "fingerprint": &new.fingerprint()[..12],
                }))
                .success(),
        )
        .await;
    notify_admins(&state, &id, &who, &new, duplicates).await;
    Ok((
        StatusCode::CREATED,
        AxumJson(json!({ "id": id, "duplicates": duplicates })),
    )
        .into_response())
}

/// Tells linked admins (in the background; a failure is only logged).
async fn notify_admins(state: &AppState, id: &str, who: &Human, new: &NewReport, duplicates: i64) {
    if !state.telegram.enabled() {
        return;
    }
    let chats = match state.db.run(|c| repo::admin_chats(c)).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = ?e, "could not read the admins' telegram chats");
            return;
        }
    };
    let link = format!(
        "{}/admin/feedback/{id}",
        state.config.public_url.clone().unwrap_or_default()
    );
    state.telegram.notify(
        chats,
        Summary {
            id: id.to_string(),
            reporter: who.user.email.clone(),
            first_line: crate::feedback::first_line(&new.message, 200),
            duplicates,
            link,
        },
    );
}

/// A person's own reports, newest first, with their status.
async fn mine(State(state): State<AppState>, who: Human) -> AppResult<AxumJson<Value>> {
    let f = Filter {
        reporter: Some(who.id().to_string()),
        ..Filter::default()
    };
    let (rows, total) = state
        .db
        .run(move |c| repo::list(c, &f, Order::Newest, true, 200, 0))
        .await?;
    Ok(AxumJson(json!({ "reports": rows, "total": total })))
}

/// One of the person's own reports; another person's is not found.
async fn my_report(
    State(state): State<AppState>,
    who: Human,
    Path(id): Path<String>,
) -> AppResult<AxumJson<Value>> {
    let rid = id.clone();
    let r = state
        .db
        .run(move |c| repo::get(c, &rid))
        .await?
        .filter(|r| r.report.reporter_user.as_deref() == Some(who.id()))
        .ok_or_else(|| AppError::not_found(format!("id: you have no feedback report {id:?}")))?;
    Ok(AxumJson(json!(r)))
}

async fn list(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(p): Query<ListParams>,
) -> AppResult<AxumJson<Value>> {
    let parsed = p.parse()?;
    let (order, desc) = parsed.order();
    let offset = parsed.sort.offset(PAGE_ROWS);
    let f = parsed.filter.clone();
    let (rows, total) = state
        .db
        .run(move |c| repo::list(c, &f, order, desc, PAGE_ROWS, offset))
        .await?;
    Ok(AxumJson(
        json!({ "reports": rows, "total": total, "page": parsed.sort.page }),
    ))
}

/// A report with its duplicates and history (the CLI's and tests' view).
pub async fn load_detail(state: &AppState, id: String) -> AppResult<Value> {
    let rid = id.clone();
    let found = state
        .db
        .run(move |c| {
            let Some(r) = repo::get(c, &rid)? else {
                return Ok(None);
            };
            Ok(Some((
                r,
                repo::duplicates_of(c, &rid)?,
                repo::history(c, &rid)?,
            )))
        })
        .await?;
    let (r, dups, history) =
        found.ok_or_else(|| AppError::not_found(format!("id: no feedback report {id:?}")))?;
    Ok(json!({ "report": r, "duplicates": dups, "history": history }))
}

async fn detail(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Path(id): Path<String>,
) -> AppResult<AxumJson<Value>> {
    Ok(AxumJson(load_detail(&state, id).await?))
}

async fn action(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Path(id): Path<String>,
    Json(req): Json<ActionReq>,
) -> AppResult<AxumJson<Value>> {
    let name = req
        .action
        .clone()
        .ok_or_else(|| AppError::unprocessable("action: missing"))?;
    act(&state, &meta, &admin, id.clone(), &name, &req).await?;
    Ok(AxumJson(load_detail(&state, id).await?))
}
