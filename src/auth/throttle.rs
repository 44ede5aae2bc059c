//! Sign-in throttling: after 5 failures for one email or one IP within 5 minutes,
//! the 6th attempt and those after it get 429 until the oldest failure ages out.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    /// `Some(seconds to wait)` when any of `keys` is over the limit.
    pub fn check(&self, keys: &[String], now: Instant) -> Option<u64> {
        let mut map = self.failures.lock().expect("throttle lock");
        keys.iter()
            .filter_map(|k| {
                let q = map.get_mut(k)?;
                prune(q, now);
                (q.len() >= MAX_FAILURES).then(|| {
                    let oldest = *q.front().expect("non-empty when over the limit");
                    WINDOW
                        .saturating_sub(now.duration_since(oldest))
                        .as_secs()
                        .max(1)
                })
            })
            .max()
    }

    pub fn record_failure(&self, keys: &[String], now: Instant) {
        let mut map = self.failures.lock().expect("throttle lock");
        for k in keys {
            let q = map.entry(k.clone()).or_default();
            prune(q, now);
            q.push_back(now);
        }
        // Keep the map from growing without bound under a spray of addresses.
        if map.len() > 100_000 {
            map.retain(|_, q| {
                prune(q, now);
                !q.is_empty()
            });
        }
    }

    /// A success forgets the email's failures (the IP's stay).
    pub fn clear(&self, key: &str) {
        self.failures.lock().expect("throttle lock").remove(key);
    }
}

fn prune(q: &mut VecDeque<Instant>, now: Instant) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
        q.pop_front();
    }
}

/// The throttle keys of one attempt.
pub fn keys(email: &str, ip: &str) -> Vec<String> {
    vec![
        format!("email:{}", email.trim().to_lowercase()),
        format!("ip:{ip}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_failure_within_five_minutes_is_refused_until_the_window_passes() {
        let t = Throttle::default();
        let k = keys("a@example.com", "1.2.3.4");
        let start = Instant::now();
        for i in 0..5 {
            assert_eq!(t.check(&k, start), None, "attempt {i}");
            t.record_failure(&k, start);
        }
        let wait = t.check(&k, start + Duration::from_secs(10)).unwrap();
        assert!((280..=300).contains(&wait), "{wait}");
        assert_eq!(t.check(&k, start + WINDOW), None);
    }

    #[test]
    fn one_ip_spraying_many_emails_is_throttled_too() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..5 {
            t.record_failure(&keys(&format!("u{i}@example.com"), "9.9.9.9"), now);
        }
        assert!(t
            .check(&keys("fresh@example.com", "9.9.9.9"), now)
            .is_some());
        assert!(t
            .check(&keys("fresh@example.com", "8.8.8.8"), now)
            .is_none());
    }
}
