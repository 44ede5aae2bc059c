//! The Audit log's in-process state: the `activity.read` suppression cache,
//! the health pulse's cache and the locks that make check-then-write steps
//! atomic. One process holds the database, so one process's memory is the
//! whole picture.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::health::HealthReport;

/// A read by the same actor with the same filters within this long of the last
/// written `activity.read` row writes none.
pub const READ_SUPPRESSION: Duration = Duration::from_secs(60);
/// Everything the Audit log keeps between requests.
#[derive(Default)]
pub struct AuditState {
    pub reads: ReadSuppression,
    /// The last health report and when it was computed; the async lock makes
    /// concurrent pollers wait for one computation instead of racing.
    pub health: tokio::sync::Mutex<Option<(Instant, HealthReport)>>,
    /// Serialises producer batches, so the idempotency check and the write are
    /// one step.
    pub intake: Mutex<()>,
    /// Serialises saved-view writes, so the 100-view limit check and the
    /// write are one step.
    pub views: Mutex<()>,
}

/// Remembers when each (actor, filters) pair last wrote an `activity.read` row.
#[derive(Default)]
pub struct ReadSuppression {
    last: Mutex<HashMap<(String, [u8; 32]), Instant>>,
}

impl ReadSuppression {
    /// True when a row should be written now (and records it); false within
    /// [`READ_SUPPRESSION`] of the last row for the same actor and filters.
    pub fn should_write(&self, actor: &str, filters_key: &str) -> bool {
        self.should_write_at(actor, filters_key, Instant::now())
    }

    pub fn should_write_at(&self, actor: &str, filters_key: &str, now: Instant) -> bool {
        let digest: [u8; 32] = Sha256::digest(filters_key.as_bytes()).into();
        let key = (actor.to_string(), digest);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = last.get(&key) {
            if now.saturating_duration_since(*t) < READ_SUPPRESSION {
                return false;
            }
        }
        if last.len() >= 4096 {
            last.retain(|_, t| now.saturating_duration_since(*t) < READ_SUPPRESSION);
        }
        last.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_suppressed_for_60_seconds_per_actor_and_filters() {
        let s = ReadSuppression::default();
        let t0 = Instant::now();
        assert!(s.should_write_at("a", "{x}", t0));
        assert!(!s.should_write_at("a", "{x}", t0 + Duration::from_secs(59)));
        assert!(s.should_write_at("a", "{y}", t0), "other filters");
        assert!(s.should_write_at("b", "{x}", t0), "other actor");
        assert!(s.should_write_at("a", "{x}", t0 + Duration::from_secs(61)));
    }
}
