//! The Audit log on the web: its JSON APIs (Agnes's paths), its page
//! (`/admin/activity`) and the producer endpoints that feed it.

pub mod api;
pub mod page;
pub mod producers;
pub mod query;

use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(api::router())
        .merge(page::router())
        .merge(producers::router())
}
