//! Prometheus text metrics: request counts and latency histograms by route, plus
//! named counters other parts of glassbox bump (ingest, audit, usage events).
//!
//! Small and dependency-free on purpose: a few mutex-guarded maps, rendered on
//! scrape. Routes are the matched templates (`/admin/users/{id}`), so the label
//! set stays bounded whatever the URLs.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// A counter's name and its label pairs.
type CounterKey = (String, Vec<(String, String)>);

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    counters: Mutex<BTreeMap<CounterKey, u64>>,
    gauges: Mutex<BTreeMap<String, f64>>,
    histograms: Mutex<BTreeMap<String, Histogram>>,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

impl Metrics {
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut lat = self.latency.lock().expect("metrics lock");
        lat.entry((method.to_string(), route.to_string()))
            .or_default()
            .observe(secs);
    }

    /// Adds `by` to a named counter with labels, e.g. `usage_events_total{event_type}`.
    pub fn inc(&self, name: &str, labels: &[(&str, &str)], by: u64) {
        let key = (
            name.to_string(),
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        *self
            .counters
            .lock()
            .expect("metrics lock")
            .entry(key)
            .or_default() += by;
    }

    /// Sets a gauge, e.g. `usage_queue_depth`.
    pub fn set_gauge(&self, name: &str, value: f64) {
        self.gauges
            .lock()
            .expect("metrics lock")
            .insert(name.to_string(), value);
    }

    /// Adds a duration to a named histogram, e.g. `usage_writer_batch_seconds`.
    pub fn observe(&self, name: &str, elapsed: Duration) {
        self.histograms
            .lock()
            .expect("metrics lock")
            .entry(name.to_string())
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP glassbox_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE glassbox_http_requests_total counter\n");
        for ((method, route, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "glassbox_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                esc(method),
                esc(route)
            );
        }
        out.push_str(
            "# HELP glassbox_http_request_duration_seconds Request latency by method and route.\n",
        );
        out.push_str("# TYPE glassbox_http_request_duration_seconds histogram\n");
        for ((method, route), h) in self.latency.lock().expect("metrics lock").iter() {
            let labels = format!("method=\"{}\",route=\"{}\"", esc(method), esc(route));
            h.render(&mut out, "glassbox_http_request_duration_seconds", &labels);
        }
        let counters = self.counters.lock().expect("metrics lock");
        let mut last_name = "";
        for ((name, labels), n) in counters.iter() {
            if name != last_name {
                let _ = writeln!(out, "# TYPE {name} counter");
                last_name = name;
            }
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
                .collect();
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {n}");
            } else {
                let _ = writeln!(out, "{name}{{{}}} {n}", labels.join(","));
            }
        }
        drop(counters);
        for (name, v) in self.gauges.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "# TYPE {name} gauge\n{name} {v}");
        }
        for (name, h) in self.histograms.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "# TYPE {name} histogram");
            h.render(&mut out, name, "");
        }
        out
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_render_as_counters_and_cumulative_histograms() {
        let m = Metrics::default();
        m.observe_request("GET", "/healthz", 200, Duration::from_millis(3));
        m.observe_request("GET", "/healthz", 200, Duration::from_millis(30));
        m.inc("usage_events_total", &[("event_type", "login")], 2);
        let text = m.render();
        assert!(text.contains(
            "glassbox_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.05\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("usage_events_total{event_type=\"login\"} 2"));
        m.set_gauge("usage_queue_depth", 3.0);
        m.observe("usage_writer_batch_seconds", Duration::from_millis(2));
        let text = m.render();
        assert!(text.contains("# TYPE usage_queue_depth gauge\nusage_queue_depth 3\n"));
        assert!(text.contains("usage_writer_batch_seconds_bucket{le=\"0.001\"} 0"));
        assert!(text.contains("usage_writer_batch_seconds_bucket{le=\"0.0025\"} 1"));
        assert!(text.contains("usage_writer_batch_seconds_count 1"));
    }
}
