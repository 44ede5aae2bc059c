//! Where an ingest process spends its time, phase by phase (docs/performance.md).
//!
//! Process-wide counters of nanoseconds, summed over threads (so the parse
//! phase is CPU time over the workers, the others the writer's wall time).
//! Costs two `Instant::now()` per phase and batch; printed by `glassbox
//! ingest` at debug level (`RUST_LOG=glassbox::ingest::profile=debug`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub enum Phase {
    Open,
    Discover,
    Parse,
    WaitParsed,
    Delete,
    AppendEvents,
    AppendResponses,
    AppendFindings,
    Summaries,
    State,
    Pending,
    Commit,
    Rebuild,
    Audit,
    Close,
}

const NAMES: [&str; 15] = [
    "open+migrate",
    "discover+state",
    "parse (worker CPU)",
    "writer waits for parsed files",
    "delete old rows",
    "append usage_events",
    "append usage_responses",
    "append session_findings",
    "upsert summaries",
    "upsert processor state",
    "record pending rollups",
    "commit",
    "rebuild rollups",
    "audit rows",
    "close (checkpoint)",
];

static NANOS: [AtomicU64; 15] = [const { AtomicU64::new(0) }; 15];

/// Adds the time until it is dropped to `phase`.
pub struct Timer(Phase, Instant);

pub fn time(phase: Phase) -> Timer {
    Timer(phase, Instant::now())
}

impl Drop for Timer {
    fn drop(&mut self) {
        NANOS[self.0 as usize].fetch_add(self.1.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// `name: seconds` per phase that took any time, one per line.
pub fn summary() -> String {
    NAMES
        .iter()
        .zip(&NANOS)
        .filter_map(|(name, n)| {
            let ns = n.load(Ordering::Relaxed);
            (ns > 0).then(|| format!("{name}: {:.3} s", ns as f64 / 1e9))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
