//! The intake queue: requests hand validated events to a bounded in-memory
//! queue and answer 202 at once; one writer task stores them in batches with
//! an `Appender` (SPEC §9: recording never waits for DuckDB).
//!
//! The queue is a bounded tokio channel of events. A request reserves room for
//! all its events at once (`try_reserve_many`), so a batch is queued whole or
//! refused whole with 503; nothing that got a 202 is ever dropped. The writer
//! takes whatever is waiting (up to [`WRITE_BATCH`]): when idle an event is
//! written at once, under load a write starts no sooner than
//! [`MIN_WRITE_INTERVAL`] after the previous one (a commit's CPU cost hardly
//! depends on its size). Shutdown closes the queue (late
//! callers get 503) and waits until the writer has stored everything in it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::event::NewAppEvent;
use super::posthog::Forwarder;
use crate::db::Db;
use crate::metrics::Metrics;

/// Most events one Appender transaction writes.
pub const WRITE_BATCH: usize = 4096;
/// Shortest time between the starts of two writes while events keep coming
/// (bounds the commits to 20 a second; see [`Intake::gather`]).
pub const MIN_WRITE_INTERVAL: Duration = Duration::from_millis(50);
/// How often a gathering writer looks whether a full batch is waiting.
const GATHER_TICK: Duration = Duration::from_millis(5);
/// Distinct `event_type` labels `/metrics` keeps; later types count as `other`
/// so a careless producer cannot blow up the scrape.
const MAX_TYPE_LABELS: usize = 256;

/// Why an event was not queued (both are 503s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No room for the whole request right now.
    Full,
    /// The server is shutting down.
    Closing,
}

pub struct Intake {
    tx: mpsc::Sender<NewAppEvent>,
    rx: Mutex<Option<mpsc::Receiver<NewAppEvent>>>,
    capacity: usize,
    /// Events the writer has taken from the channel and not yet stored.
    in_flight: AtomicUsize,
    closed: AtomicBool,
    stop: CancellationToken,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Held by the writer around each write; tests hold it to keep events queued.
    pause: Arc<tokio::sync::Mutex<()>>,
    metrics: Arc<Metrics>,
    type_labels: Mutex<HashSet<String>>,
    forwarder: Mutex<Option<Forwarder>>,
}

impl Intake {
    pub fn new(capacity: usize, metrics: Arc<Metrics>) -> Intake {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        metrics.set_gauge("usage_queue_capacity", capacity as f64);
        Intake {
            tx,
            rx: Mutex::new(Some(rx)),
            capacity,
            in_flight: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            stop: CancellationToken::new(),
            writer: Mutex::new(None),
            pause: Arc::new(tokio::sync::Mutex::new(())),
            metrics,
            type_labels: Mutex::new(HashSet::new()),
            forwarder: Mutex::new(None),
        }
    }

    /// Events accepted (202) and not yet stored: what a crash would lose.
    pub fn depth(&self) -> usize {
        let queued = self.capacity.saturating_sub(self.tx.capacity());
        queued + self.in_flight.load(Ordering::Relaxed)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Queues all the events or none of them.
    pub fn submit(&self, events: Vec<NewAppEvent>) -> Result<(), Refused> {
        let n = events.len();
        if n == 0 {
            return Ok(());
        }
        if self.is_closed() {
            self.metrics.inc(
                "usage_events_rejected_total",
                &[("reason", "closing")],
                n as u64,
            );
            return Err(Refused::Closing);
        }
        let permits = match self.tx.try_reserve_many(n) {
            Ok(p) => p,
            Err(mpsc::error::TrySendError::Full(())) => {
                self.metrics.inc(
                    "usage_events_rejected_total",
                    &[("reason", "queue_full")],
                    n as u64,
                );
                return Err(Refused::Full);
            }
            Err(mpsc::error::TrySendError::Closed(())) => {
                self.metrics.inc(
                    "usage_events_rejected_total",
                    &[("reason", "closing")],
                    n as u64,
                );
                return Err(Refused::Closing);
            }
        };
        // One counter update per type, not per event (batches are mostly one type).
        let mut by_type: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for e in &events {
            *by_type.entry(e.event_type.as_str()).or_default() += 1;
        }
        for (t, k) in by_type {
            let label = self.type_label(t);
            self.metrics
                .inc("usage_events_total", &[("event_type", &label)], k);
        }
        self.metrics
            .inc("usage_events_accepted_total", &[], n as u64);
        for (permit, e) in permits.zip(events) {
            permit.send(e);
        }
        Ok(())
    }

    fn type_label(&self, t: &str) -> String {
        let mut seen = self.type_labels.lock().expect("type labels");
        if seen.contains(t) {
            return t.to_string();
        }
        if seen.len() < MAX_TYPE_LABELS {
            seen.insert(t.to_string());
            return t.to_string();
        }
        "other".into()
    }

    /// Holds the writer before its next write until the guard is dropped
    /// (tests use it to keep events queued; operators never need it).
    pub async fn pause_writes(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.pause.clone().lock_owned().await
    }

    /// Starts the one writer (and the PostHog forwarder when configured).
    /// Called by the server once it runs inside the runtime; a second call
    /// does nothing.
    pub fn start(self: &Arc<Self>, db: Db, forwarder: Option<Forwarder>) {
        let Some(rx) = self.rx.lock().expect("intake rx").take() else {
            return;
        };
        *self.forwarder.lock().expect("forwarder") = forwarder;
        let me = self.clone();
        let handle = tokio::spawn(async move { me.write_loop(db, rx).await });
        *self.writer.lock().expect("writer") = Some(handle);
    }

    /// Refuses new events, stores everything queued, then stops the writer
    /// and flushes the forwarder.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.stop.cancel();
        let handle = self.writer.lock().expect("writer").take();
        if let Some(h) = handle {
            if let Err(e) = h.await {
                tracing::error!(error = ?e, "the usage event writer failed");
            }
        }
        let fwd = self.forwarder.lock().expect("forwarder").take();
        if let Some(f) = fwd {
            f.shutdown().await;
        }
    }

    async fn write_loop(self: Arc<Self>, db: Db, mut rx: mpsc::Receiver<NewAppEvent>) {
        let mut stopping = false;
        let mut last_stamp: Option<NaiveDateTime> = None;
        let mut last_write: Option<tokio::time::Instant> = None;
        loop {
            let first = if stopping {
                rx.recv().await
            } else {
                tokio::select! {
                    biased;
                    e = rx.recv() => e,
                    _ = self.stop.cancelled() => {
                        // No new sends; recv() yields what is queued, then None.
                        rx.close();
                        stopping = true;
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            // Under a steady trickle, gather for up to MIN_WRITE_INTERVAL after
            // the previous write began: a DuckDB commit costs milliseconds of
            // CPU whatever its size, and a writer that commits as often as it
            // can takes a core away from the requests. The first event after a
            // quiet spell is written at once; a full batch or shutdown cuts
            // the wait short. `first` is out of the channel meanwhile, so it
            // counts as in flight (`depth()` must never miss it).
            self.in_flight.store(1, Ordering::Relaxed);
            if !stopping {
                if let Some(prev) = last_write {
                    self.gather(&rx, prev + MIN_WRITE_INTERVAL).await;
                }
            }
            let mut batch = Vec::with_capacity(rx.len().clamp(63, WRITE_BATCH - 1) + 1);
            batch.push(first);
            while batch.len() < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            self.in_flight.store(batch.len(), Ordering::Relaxed);
            let _paused = self.pause.lock().await;
            last_write = Some(tokio::time::Instant::now());
            last_stamp = Some(self.store(&db, batch, last_stamp, stopping).await);
            self.in_flight.store(0, Ordering::Relaxed);
        }
        tracing::info!("usage event queue drained");
    }

    /// Waits until `until`, a full batch is queued, or shutdown begins,
    /// looking at the queue every [`GATHER_TICK`] (senders never wake the
    /// writer one event at a time).
    async fn gather(&self, rx: &mpsc::Receiver<NewAppEvent>, until: tokio::time::Instant) {
        loop {
            let now = tokio::time::Instant::now();
            if now >= until || rx.len() + 1 >= WRITE_BATCH {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(until.min(now + GATHER_TICK)) => {}
                _ = self.stop.cancelled() => return,
            }
        }
    }

    /// Writes one batch, retrying with backoff: these events were promised
    /// (202). Only at shutdown does it give up, after a few tries, saying how
    /// many were lost.
    async fn store(
        &self,
        db: &Db,
        batch: Vec<NewAppEvent>,
        last: Option<NaiveDateTime>,
        stopping: bool,
    ) -> NaiveDateTime {
        // created_at is the write time, kept strictly increasing, so created_at
        // order is commit order and the export's cursor never skips a row.
        let mut stamp = chrono::Utc::now().naive_utc();
        if let Some(l) = last {
            if stamp <= l {
                stamp = l + chrono::Duration::microseconds(1);
            }
        }
        let batch = Arc::new(batch);
        let mut delay = Duration::from_millis(50);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let rows = batch.clone();
            let written = db
                .run(move |c| crate::repo::app_events::append(c, &rows, stamp))
                .await;
            match written {
                Ok(ids) => {
                    self.metrics
                        .observe("usage_writer_batch_seconds", started.elapsed());
                    self.metrics
                        .inc("usage_events_written_total", &[], batch.len() as u64);
                    if let Some(f) = self.forwarder.lock().expect("forwarder").as_ref() {
                        f.offer(&batch, &ids, stamp);
                    }
                    return stamp;
                }
                Err(e) => {
                    self.metrics.inc("usage_writer_errors_total", &[], 1);
                    if stopping && attempt >= 3 {
                        tracing::error!(error = ?e, lost = batch.len(), "usage events could not be stored at shutdown");
                        return stamp;
                    }
                    tracing::warn!(error = ?e, events = batch.len(), "could not store usage events; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
