//! Admin actions on session processing: run a processor now, reprocess, prune.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Query, RequestMeta};
use crate::app::AppState;
use crate::auth::RequireAdmin;
use crate::error::{AppError, AppResult};
use crate::ingest::runner::Processors;
use crate::processors::{self, Trigger};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/run-session-processor", post(run_processor))
        .route("/api/admin/telemetry/reprocess", post(reprocess))
        .route("/api/admin/telemetry/prune", post(prune))
}

#[derive(Deserialize)]
struct RunQuery {
    processor: String,
}

async fn run_processor(
    State(state): State<AppState>,
    admin: RequireAdmin,
    Query(q): Query<RunQuery>,
) -> AppResult<Json<Value>> {
    let which = Processors::parse(&q.processor).ok_or_else(|| {
        AppError::unprocessable(format!(
            "processor: expected usage or failure_scan, got {:?}",
            q.processor
        ))
    })?;
    let trigger = Trigger {
        user_id: Some(admin.id().to_string()),
        client_kind: Some(admin.client_kind().to_string()),
    };
    let report = processors::run(&state, which, trigger).await?;
    Ok(Json(
        json!({"status": "ok", "processor": q.processor, "report": report}),
    ))
}

#[derive(Deserialize, Default)]
struct DryRun {
    #[serde(default)]
    dry_run: bool,
}

async fn reprocess(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(q): Query<DryRun>,
) -> AppResult<Json<Value>> {
    let report = processors::reprocess(&state, q.dry_run).await?;
    let value = serde_json::to_value(&report).map_err(|e| AppError::Internal(e.into()))?;
    state
        .audit(
            meta.audit("usage.reprocess", Some(&admin))
                .params(json!({"dry_run": q.dry_run, "deleted": value["deleted"]}))
                .success(),
        )
        .await;
    Ok(Json(value))
}

async fn prune(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(q): Query<DryRun>,
) -> AppResult<Json<Value>> {
    let result = processors::prune_usage(&state, q.dry_run).await?;
    state
        .audit(
            meta.audit("usage.prune", Some(&admin))
                .params(json!({"dry_run": q.dry_run, "result": result}))
                .success(),
        )
        .await;
    Ok(Json(result))
}
