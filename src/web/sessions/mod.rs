//! The Sessions feature over HTTP: JSON APIs (Agnes's paths and shapes) and
//! their `/api/me` twins, and the pages built on the page kit.

pub mod api;
pub mod files;
pub mod page;
pub mod params;

use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new().merge(api::router()).merge(page::router())
}
