//! `GET /api/v1/usage/export?format=ndjson|csv|parquet&since=…&after_id=…`
//! (admin): every `app_events` row after the cursor, oldest first, streamed
//! through the shared export helper, so a SIEM that passes the last row's
//! `created_at` (and `id`) resumes without gaps.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map};

use super::extract::{Query, RequestMeta};
use crate::app::AppState;
use crate::auth::RequireAdmin;
use crate::error::{AppError, AppResult};
use crate::export::{self, ExportSpec, Format};
use crate::isotime;
use crate::repo::app_events as repo;

#[derive(Deserialize)]
pub(crate) struct ExportParams {
    format: Option<String>,
    since: Option<String>,
    after_id: Option<String>,
}

pub(crate) async fn export(
    State(state): State<AppState>,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(p): Query<ExportParams>,
) -> AppResult<Response> {
    let format = Format::parse(
        p.format.as_deref(),
        &[Format::Ndjson, Format::Csv, Format::Parquet],
        Format::Ndjson,
    )?;
    let since = match p.since.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(isotime::parse(s).ok_or_else(|| {
            AppError::unprocessable(format!("since: not an ISO 8601 date-time, got {s:?}"))
        })?),
    };
    let after_id = p.after_id.filter(|s| !s.is_empty());
    if after_id.is_some() && since.is_none() {
        return Err(AppError::unprocessable(
            "after_id: only with since (the cursor is created_at and id)",
        ));
    }
    if after_id.as_deref().is_some_and(|a| a.len() > 64) {
        return Err(AppError::unprocessable("after_id: at most 64 characters"));
    }
    let mut params = Map::new();
    params.insert("since".into(), json!(since.map(|s| isotime::format(&s))));
    params.insert("after_id".into(), json!(after_id));
    let spec = ExportSpec {
        format,
        file_stem: match &since {
            Some(s) => format!("app_events_after_{}", isotime::compact(s)),
            None => "app_events".into(),
        },
        event: meta.audit("usage.export", Some(&admin)),
        params,
        started: meta.started,
    };
    Ok(export::stream(&state, spec, move |conn, sink| {
        repo::export(conn, since, after_id.as_deref(), sink)
    }))
}
