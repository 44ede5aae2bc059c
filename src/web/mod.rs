//! HTTP: one router per page or API family, merged here with the shared layers.

pub mod ask;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod extract;
pub mod feedback;
pub mod kit;
pub mod me;
pub mod middleware;
pub mod ops;
pub mod pages;
pub mod processing;
pub mod query_api;
pub mod sessions;
pub mod telemetry;
pub mod telemetry_page;
pub mod tokens;
pub mod uploads;
pub mod usage_api;
pub mod usage_export;
pub mod users;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::Router;
use minijinja::Value;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::app::AppState;
use crate::auth::session_store::DuckDbStore;
use crate::error::{AppError, AppResult};
use crate::repo::users::User;

pub const SESSION_COOKIE: &str = "glassbox_session";
/// Browser sessions end after a week without use.
pub const SESSION_IDLE_DAYS: i64 = 7;
/// The longest a handler may take to start its answer (uploads of the
/// largest transcripts included).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

pub fn router(state: AppState) -> Router {
    let sessions = SessionManagerLayer::new(DuckDbStore::new(state.db.clone()))
        .with_name(SESSION_COOKIE)
        .with_secure(state.config.cookie_secure)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(
            SESSION_IDLE_DAYS,
        )));

    Router::new()
        .merge(auth::router())
        .merge(me::router())
        .merge(users::router())
        .merge(audit::router())
        .merge(usage_api::router())
        .merge(feedback::router())
        .merge(pages::router())
        .merge(ops::router())
        .merge(uploads::router())
        .merge(processing::router())
        .merge(sessions::router())
        .merge(query_api::router())
        .merge(ask::router())
        .merge(telemetry::router())
        .merge(telemetry_page::router())
        .merge(assets::router())
        .fallback(|| async { AppError::not_found("Not Found: no page or API at this address") })
        // Innermost first: CSRF needs the principal, which needs the session.
        .layer(from_fn(middleware::csrf_guard))
        .layer(from_fn_with_state(state.clone(), middleware::authenticate))
        .layer(sessions)
        .layer(from_fn_with_state(state.clone(), middleware::shape_errors))
        .layer(from_fn_with_state(state.clone(), middleware::request_meta))
        // A handler that hangs (a stuck query) answers 408 instead of holding
        // the connection; streamed bodies (exports, downloads) are not cut.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // JSON and forms stay small; the upload route streams with its own limit.
        .layer(DefaultBodyLimit::max(2 * 1024 * 1024))
        .route_layer(from_fn_with_state(state.clone(), middleware::track_metrics))
        .with_state(state)
}

/// What templates know about the signed-in user.
pub fn user_ctx(u: &User) -> Value {
    minijinja::context! {
        id => u.id.clone(), email => u.email.clone(), name => u.name.clone(), label => u.label(),
        role => u.role.as_str(), is_admin => u.is_admin(),
    }
}

/// The context every page needs for `base.html`: user, CSRF token, active nav.
pub async fn base_ctx(session: &Session, user: Option<&User>, nav: &str) -> AppResult<Value> {
    let csrf_token = crate::auth::csrf::token(session)
        .await
        .map_err(|e| AppError::Internal(e.context("while creating the CSRF token")))?;
    Ok(minijinja::context! {
        user => user.map(user_ctx),
        csrf_token => csrf_token,
        nav => nav,
    })
}
