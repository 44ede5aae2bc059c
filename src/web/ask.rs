//! `POST /api/admin/telemetry/ask` (Agnes's path and shape): see `crate::ask`.

use axum::extract::State;
use axum::routing::post;
use axum::{Json as AxumJson, Router};
use serde::Deserialize;

use super::extract::{Json, RequestMeta};
use crate::app::AppState;
use crate::ask::{self, Answer};
use crate::auth::RequireAdmin;
use crate::error::AppResult;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/admin/telemetry/ask", post(ask_api))
}

#[derive(Deserialize)]
struct AskRequest {
    question: String,
}

async fn ask_api(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Json(req): Json<AskRequest>,
) -> AppResult<AxumJson<Answer>> {
    let audit = meta.audit("usage.ask", Some(&admin));
    Ok(AxumJson(ask::ask(&state, &req.question, audit).await?))
}
