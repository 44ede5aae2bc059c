//! Operations endpoints, open to all and free of user data: `/healthz`, `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;
use crate::db::migrate;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

/// 200 when the database answers and its schema is current; 503 otherwise.
async fn healthz(State(state): State<AppState>) -> Response {
    let checked = state.db.run(|c| migrate::current_version(c)).await;
    let latest = migrate::latest_version();
    match checked {
        Ok(v) if v == latest => Json(json!({"status": "ok", "database": "ok", "schema_version": v})).into_response(),
        Ok(v) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "detail": format!("schema at version {v}, expected {latest}")})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "error", "detail": "database unreachable"})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state
        .metrics
        .set_gauge("usage_queue_depth", state.usage.depth() as f64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
