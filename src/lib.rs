//! glassbox: a self-hosted observability server for AI-analyst platforms whose
//! users work through Claude Code. See README.md and docs/.

pub mod accounts;
pub mod app;
pub mod ask;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod export;
pub mod feedback;
pub mod ingest;
pub mod isotime;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod processors;
pub mod repo;
pub mod scheduler;
pub mod sessions;
pub mod sqlguard;
pub mod synth;
pub mod synth_transcripts;
pub mod synth_usage;
pub mod templates;
pub mod usage_api;
pub mod web;

pub use app::AppState;
pub use config::Config;
