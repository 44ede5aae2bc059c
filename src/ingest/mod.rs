//! Session ingestion: transcripts in, exact telemetry, findings and cost out.

pub mod parse;
pub mod pricing;
pub mod runner;
