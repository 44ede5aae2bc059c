//! The Sessions feature over HTTP: JSON APIs (Agnes's paths and shapes) and
//! their `/api/me` twins. Pages come with the page kit.

pub mod api;
pub mod files;
pub mod params;

use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new().merge(api::router())
}
