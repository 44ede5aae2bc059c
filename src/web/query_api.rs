//! `POST /api/query` (SPEC §8): the internal data source. Any person (admin or
//! analyst) queries `agnes_sessions`, `agnes_telemetry` and `agnes_audit`;
//! admins see every row, analysts their own (SPEC §1's one scope rule). SQL is
//! refused with 400 by the guard before anything runs.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json as AxumJson, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Json, RequestMeta};
use crate::app::AppState;
use crate::auth::Human;
use crate::error::{AppError, AppResult};
use crate::repo::query_source::{self, Limits, RunError, Viewer, INTERNAL_RELATIONS};
use crate::sqlguard;

/// Most rows one call returns (Agnes's cap).
pub const MAX_LIMIT: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/query", post(query))
}

#[derive(Deserialize)]
struct QueryRequest {
    sql: String,
    #[serde(default)]
    limit: Option<i64>,
}

async fn query(
    State(state): State<AppState>,
    meta: RequestMeta,
    who: Human,
    Json(req): Json<QueryRequest>,
) -> AppResult<AxumJson<Value>> {
    let limit = match req.limit {
        None => MAX_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(n) => {
            return Err(AppError::unprocessable(format!(
                "limit: must be between 1 and {MAX_LIMIT}, got {n}"
            )))
        }
    } as usize;
    let preview = crate::audit::cut(req.sql.trim(), 200);
    let is_admin = who.is_admin();
    let guarded = match sqlguard::check(&req.sql, INTERNAL_RELATIONS) {
        Ok(g) => g,
        Err(refused) => {
            state
                .audit(
                    meta.audit("query.internal", Some(&who))
                        .params(json!({"sql_preview": preview, "is_admin": is_admin, "reason": refused.0}))
                        .result("denied"),
                )
                .await;
            return Err(AppError::bad_request(format!("sql: refused: {refused}")));
        }
    };
    let viewer = if is_admin {
        Viewer::Admin
    } else {
        Viewer::Person {
            user_id: who.id().to_string(),
            email: who.user.email.clone(),
        }
    };
    let limits = Limits {
        rows: limit,
        timeout: Duration::from_secs(state.config.query_timeout_secs),
    };
    let started = Instant::now();
    let checked = guarded.clone();
    let outcome = state
        .db
        .run(move |conn| {
            let views = query_source::internal_views(&viewer);
            Ok(query_source::run(conn, &checked, &views, limits))
        })
        .await?;
    let duration_ms = started.elapsed().as_millis() as i64;
    let resource = format!("table:{}", guarded.relations.join(","));
    let params = json!({
        "sql_preview": preview,
        "internal_tables": guarded.relations,
        "is_admin": is_admin,
        "duration_ms": duration_ms,
    });
    match outcome {
        Ok(rows) => {
            let mut params = params;
            params["rows_returned"] = json!(rows.rows.len());
            state
                .audit(
                    meta.audit("query.internal", Some(&who))
                        .resource(resource)
                        .params(params)
                        .success(),
                )
                .await;
            Ok(AxumJson(json!({
                "columns": rows.columns,
                "row_count": rows.rows.len(),
                "rows": rows.rows,
                "truncated": rows.truncated,
            })))
        }
        Err(e) => {
            let code = match e {
                RunError::TimedOut(_) => "timeout",
                RunError::Failed(_) => "exec_failed",
            };
            state
                .audit(
                    meta.audit("query.internal", Some(&who))
                        .resource(resource)
                        .params(params)
                        .error(code, &e.to_string()),
                )
                .await;
            Err(AppError::bad_request(format!("SQL execution failed: {e}")))
        }
    }
}
