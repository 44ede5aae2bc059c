//! In-process scheduled jobs (tokio-cron-scheduler, 6-field cron strings with
//! seconds first). Job bodies are plain `async fn(AppState)` so tests call them
//! directly; they run on the state's `TaskTracker`, because the scheduler's own
//! `shutdown()` does not wait for running jobs.

use std::future::Future;
use std::time::Instant;

use tokio_cron_scheduler::{Job, JobScheduler};

use crate::app::AppState;
use crate::audit::AuditEvent;

/// The running scheduler; `stop` ends it.
pub struct Scheduler {
    inner: JobScheduler,
}

impl Scheduler {
    pub async fn stop(mut self) {
        if let Err(e) = self.inner.shutdown().await {
            tracing::warn!(error = ?e, "scheduler did not shut down cleanly");
        }
    }
}

/// Session-store cleanup, hourly at minute 17 (off the hour, where other cron
/// work on a host tends to pile up).
pub const CLEANUP_CRON: &str = "0 17 * * * *";
/// Retention prune, daily at 03:23 UTC.
pub const PRUNE_CRON: &str = "0 23 3 * * *";

pub async fn start(state: AppState) -> anyhow::Result<Scheduler> {
    let sched = JobScheduler::new().await?;
    add(&sched, CLEANUP_CRON, state.clone(), cleanup).await?;
    add(
        &sched,
        &state.config.usage_processor_cron,
        state.clone(),
        crate::processors::scheduled_tick,
    )
    .await?;
    add(
        &sched,
        PRUNE_CRON,
        state.clone(),
        crate::processors::daily_prune,
    )
    .await?;
    sched.start().await?;
    state.tracker.spawn(catch_up_rollups(state.clone()));
    Ok(Scheduler { inner: sched })
}

async fn add<F, Fut>(
    sched: &JobScheduler,
    cron: &str,
    state: AppState,
    body: F,
) -> anyhow::Result<()>
where
    F: Fn(AppState) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let job = Job::new_async(cron, move |_id, _sched| {
        let (state, body) = (state.clone(), body.clone());
        Box::pin(async move {
            if state.shutdown.is_cancelled() {
                return;
            }
            state.tracker.spawn(body(state.clone()));
        })
    })?;
    sched.add(job).await?;
    Ok(())
}

/// Deletes expired browser sessions and extends the audit rollups over the
/// hours that have settled; writes `maintenance.cleanup` with counts.
pub async fn cleanup(state: AppState) {
    let started = Instant::now();
    let now = chrono::Utc::now().naive_utc();
    let result = state
        .db
        .run(move |c| {
            let sessions = crate::repo::web_sessions::delete_expired(c, now)?;
            let rolled = crate::repo::audit::rollup::roll_forward(c, now)?;
            Ok((sessions, rolled))
        })
        .await;
    let ms = started.elapsed().as_millis() as i64;
    let event = AuditEvent::new("maintenance.cleanup").duration_ms(ms);
    let event = match result {
        Ok((n, rolled)) => event
            .params(serde_json::json!({
                "expired_sessions": n,
                "audit_rollup_rows": rolled.rollup_rows,
                "audit_rollup_covered_until": rolled.covered_until.map(|t| crate::isotime::format(&t)),
            }))
            .success(),
        Err(e) => {
            tracing::error!(error = ?e, "session cleanup failed");
            event
                .params(serde_json::json!({}))
                .error("cleanup", &format!("{e:#}"))
        }
    };
    state.audit(event).await;
}

/// Brings the audit rollups up to date at start-up (after downtime, or over a
/// log that predates them: seconds for 10 M rows). Reads stay exact meanwhile:
/// whatever is not covered yet is read from `audit_log`.
async fn catch_up_rollups(state: AppState) {
    let now = chrono::Utc::now().naive_utc();
    match state
        .db
        .run(move |c| crate::repo::audit::rollup::roll_forward(c, now))
        .await
    {
        Ok(r) => tracing::info!(rows = r.rollup_rows, "audit rollups up to date"),
        Err(e) => tracing::warn!(error = ?e, "audit rollups not extended; the hourly job retries"),
    }
}
