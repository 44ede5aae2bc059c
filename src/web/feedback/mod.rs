//! The feedback inbox over HTTP (SPEC §7): reporting (`POST /api/feedback`),
//! a person's own reports, the admin JSON and the inbox pages.

pub mod actions;
pub mod api;
pub mod page;
pub mod query;
pub mod telegram;

use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(api::router())
        .merge(page::router())
        .merge(telegram::router())
}
