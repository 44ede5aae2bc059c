//! Session ingestion: transcripts in, exact telemetry, findings and cost out.

pub mod parse;
/// Prices live below `repo` (which stores costs); re-exported where ingestion uses them.
pub use crate::model::pricing;
pub mod profile;
pub mod runner;
