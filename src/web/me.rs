//! `/me`: where analysts land. Their own tokens (to push transcripts) now; their
//! sessions and telemetry as those features arrive.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json as AxumJson, Router};
use minijinja::context;

use crate::templates::ser;
use tower_sessions::Session;

use super::extract::{Form, Htmx, Json, RequestMeta};
use super::tokens::{self, CreatedToken, NewToken};
use crate::app::AppState;
use crate::auth::Human;
use crate::error::AppResult;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(page))
        .route("/me/tokens", post(create_from_page))
        .route("/me/tokens/{id}/revoke", post(revoke_from_page))
        .route("/api/me/tokens", get(api_list).post(api_create))
        .route("/api/me/tokens/{id}", delete(api_revoke))
}

async fn render(
    state: &AppState,
    session: &Session,
    who: &Human,
    htmx: bool,
    created: Option<CreatedToken>,
) -> AppResult<Html<String>> {
    let list = tokens::list(state, Some(who.id().to_string())).await?;
    let base = super::base_ctx(session, Some(&who.user), "me").await?;
    let ctx = context! { tokens => ser(&list), created => ser(&created), title => "My account",
    telegram => state.telegram.enabled() && who.is_admin(), ..base };
    state
        .templates
        .page_or_block(htmx, "me.html", "tokens", ctx)
}

async fn page(
    State(state): State<AppState>,
    session: Session,
    who: Human,
) -> AppResult<Html<String>> {
    render(&state, &session, &who, false, None).await
}

async fn create_from_page(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Htmx(htmx): Htmx,
    who: Human,
    Form(req): Form<NewToken>,
) -> AppResult<Html<String>> {
    let created = tokens::issue(&state, &meta, &who, (*who.user).clone(), req).await?;
    render(&state, &session, &who, htmx, Some(created)).await
}

async fn revoke_from_page(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Htmx(htmx): Htmx,
    who: Human,
    Path(id): Path<String>,
) -> AppResult<Html<String>> {
    tokens::revoke(&state, &meta, &who, id, Some(who.id().to_string())).await?;
    render(&state, &session, &who, htmx, None).await
}

async fn api_list(
    State(state): State<AppState>,
    who: Human,
) -> AppResult<AxumJson<serde_json::Value>> {
    let list = tokens::list(&state, Some(who.id().to_string())).await?;
    Ok(AxumJson(serde_json::json!({ "tokens": list })))
}

async fn api_create(
    State(state): State<AppState>,
    meta: RequestMeta,
    who: Human,
    Json(req): Json<NewToken>,
) -> AppResult<Response> {
    let created = tokens::issue(&state, &meta, &who, (*who.user).clone(), req).await?;
    Ok((StatusCode::CREATED, AxumJson(created)).into_response())
}

async fn api_revoke(
    State(state): State<AppState>,
    meta: RequestMeta,
    who: Human,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    tokens::revoke(&state, &meta, &who, id, Some(who.id().to_string())).await?;
    Ok(StatusCode::NO_CONTENT)
}
