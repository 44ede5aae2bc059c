//! Optional forwarding of stored usage events to PostHog's batch capture API
//! (`POSTHOG_API_KEY`; `POSTHOG_HOST`, default PostHog's US cloud). Unset →
//! nothing is built and nothing leaves the machine.
//!
//! Forwarding never slows intake: the writer offers events to a bounded
//! buffer (full → the event is dropped and counted), and one background task
//! sends them in batches, retrying with backoff; a batch that still fails is
//! logged and counted, never retried forever.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::event::NewAppEvent;
use crate::metrics::Metrics;

/// Events waiting to be sent; beyond it they are dropped (and counted).
pub const BUFFER: usize = 10_000;
/// Events per request to PostHog.
pub const SEND_BATCH: usize = 100;
/// How long the sender waits to fill a batch.
const LINGER: Duration = Duration::from_secs(1);
/// Tries per batch (backoff 0.5 s, 1 s, 2 s between them).
const ATTEMPTS: u32 = 4;

/// The default host when only the key is set.
pub const DEFAULT_HOST: &str = "https://us.i.posthog.com";

pub struct Forwarder {
    tx: mpsc::Sender<Value>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    metrics: Arc<Metrics>,
}

impl Forwarder {
    /// Starts the sender when a key is configured.
    pub fn from_config(config: &crate::Config, metrics: Arc<Metrics>) -> Option<Forwarder> {
        let key = config.posthog_api_key.clone()?;
        let host = config
            .posthog_host
            .clone()
            .unwrap_or_else(|| DEFAULT_HOST.into());
        Some(Forwarder::start(key, host, metrics))
    }

    pub fn start(api_key: String, host: String, metrics: Arc<Metrics>) -> Forwarder {
        let (tx, rx) = mpsc::channel(BUFFER);
        let stop = CancellationToken::new();
        let url = format!("{}/batch/", host.trim_end_matches('/'));
        let task = tokio::spawn(send_loop(rx, stop.clone(), url, api_key, metrics.clone()));
        Forwarder {
            tx,
            stop,
            task,
            metrics,
        }
    }

    /// Hands stored events to the sender without waiting.
    pub fn offer(&self, events: &[NewAppEvent], ids: &[String], stamp: NaiveDateTime) {
        let ts = crate::isotime::format(&stamp);
        for (e, id) in events.iter().zip(ids) {
            let mut props: Map<String, Value> =
                serde_json::from_str(&e.metadata).unwrap_or_default();
            if let Some(s) = &e.source {
                props.insert("source".into(), json!(s));
            }
            let v = json!({
                "event": e.event_type,
                "distinct_id": e.user_id,
                "properties": props,
                "timestamp": ts,
                "uuid": id,
            });
            if self.tx.try_send(v).is_err() {
                self.metrics.inc("usage_posthog_dropped_total", &[], 1);
            }
        }
    }

    /// Sends what is buffered (one try each) and stops.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .is_err()
        {
            tracing::warn!("PostHog forwarding did not finish within 15 s");
        }
    }
}

async fn send_loop(
    mut rx: mpsc::Receiver<Value>,
    stop: CancellationToken,
    url: String,
    api_key: String,
    metrics: Arc<Metrics>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = ?e, "PostHog forwarding disabled: no HTTP client");
            return;
        }
    };
    let mut stopping = false;
    loop {
        let first = if stopping {
            rx.try_recv().ok()
        } else {
            tokio::select! {
                v = rx.recv() => v,
                _ = stop.cancelled() => { stopping = true; continue; }
            }
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < SEND_BATCH {
            if stopping {
                match rx.try_recv() {
                    Ok(v) => batch.push(v),
                    Err(_) => break,
                }
                continue;
            }
            tokio::select! {
                v = rx.recv() => match v { Some(v) => batch.push(v), None => break },
                _ = tokio::time::sleep_until(deadline) => break,
                _ = stop.cancelled() => { stopping = true; }
            }
        }
        let attempts = if stopping { 1 } else { ATTEMPTS };
        send(&client, &url, &api_key, batch, attempts, &metrics).await;
    }
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    api_key: &str,
    batch: Vec<Value>,
    attempts: u32,
    metrics: &Metrics,
) {
    let n = batch.len() as u64;
    let body = json!({"api_key": api_key, "batch": batch});
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=attempts {
        let outcome = client.post(url).json(&body).send().await;
        let error = match outcome {
            Ok(r) if r.status().is_success() => {
                metrics.inc("usage_posthog_sent_total", &[], n);
                return;
            }
            Ok(r) => format!("HTTP {}", r.status()),
            Err(e) => e.to_string(),
        };
        if attempt == attempts {
            tracing::warn!(%error, events = n, "PostHog forwarding failed; these events are not forwarded");
            metrics.inc("usage_posthog_failed_total", &[], n);
            return;
        }
        tracing::debug!(%error, attempt, "PostHog forwarding failed; retrying");
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}
