//! One integration binary: real servers on loopback, real DuckDB files.

mod activity;
mod activity_page;
mod ask;
mod auth;
mod cli;
mod feedback;
mod feedback_telegram;
mod hardening;
mod helpers;
mod ingest;
mod manifest_check;
mod ops;
mod query;
mod routes;
mod sessions;
mod sessions_in;
mod telemetry;
mod telemetry_page;
mod usage_api;
mod users;
