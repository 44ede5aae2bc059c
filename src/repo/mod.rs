//! All SQL lives here: one module per table family, plain functions over a
//! `&Connection`, called through `Db::run` from async code.

pub mod app_events;
pub mod audit;
pub mod feedback;
pub mod query_source;
pub mod sessions;
pub mod sql;
pub mod sync_history;
pub mod telemetry;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod views;
pub mod web_sessions;
