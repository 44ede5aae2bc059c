//! The session processors as jobs: scheduled, on demand (admin API), and from
//! `glassbox ingest`. One run at a time; each writes its audit rows with counts
//! and duration. Also reprocess and prune (usage and audit retention).

use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use crate::app::AppState;
use crate::audit::AuditEvent;
use crate::ingest::runner::{self, Processors, RunOptions, RunReport};

/// Who asked for a run: the scheduler, or a person (for the audit row).
#[derive(Debug, Clone, Default)]
pub struct Trigger {
    pub user_id: Option<String>,
    pub client_kind: Option<String>,
}

/// Runs the processors once, serialized with any other run.
pub async fn run(
    state: &AppState,
    which: Processors,
    trigger: Trigger,
) -> anyhow::Result<RunReport> {
    let _guard = state.ingest_lock.lock().await;
    let started = Instant::now();
    let (session_dir, prices, retention) = (
        state.config.session_data_dir.clone(),
        state.prices.clone(),
        state.config.usage_events_retention_days,
    );
    let threads = state.config.duckdb_threads.max(1);
    let batch_bytes = (state.config.ingest_batch_mb as i64) << 20;
    let one_batch_backfill = state.config.ingest_one_batch_backfill;
    let result = state
        .db
        .run(move |c| {
            runner::run(
                c,
                &RunOptions {
                    session_dir: &session_dir,
                    batch_bytes,
                    one_batch_backfill,
                    prices: &prices,
                    retention_days: retention,
                    processors: which,
                    threads,
                },
            )
        })
        .await;
    let ms = started.elapsed().as_millis() as i64;
    for (enabled, name) in [(which.usage, "usage"), (which.failure_scan, "failure_scan")] {
        if !enabled {
            continue;
        }
        let mut e = AuditEvent::new(format!("run_session_processor:{name}")).duration_ms(ms);
        e.user_id = trigger.user_id.clone();
        e.client_kind = trigger.client_kind.clone();
        let e = match &result {
            Ok(r) if r.files_failed == 0 => e.params(report_params(r)).success(),
            Ok(r) => e.params(report_params(r)).error(
                "files_failed",
                &r.errors.first().cloned().unwrap_or_default(),
            ),
            Err(err) => e.params(json!({})).error("run_failed", &format!("{err:#}")),
        };
        state.audit(e).await;
    }
    match &result {
        Ok(r) => {
            state
                .metrics
                .inc("glassbox_ingest_files_total", &[], r.files_changed);
            state
                .metrics
                .inc("glassbox_ingest_bytes_total", &[], r.bytes);
            state
                .metrics
                .inc("glassbox_ingest_events_total", &[], r.events);
            if r.files_changed > 0 {
                tracing::info!(
                    files = r.files_changed,
                    events = r.events,
                    mb_s = r.mb_per_s(),
                    "session processors ran"
                );
            }
        }
        Err(e) => tracing::error!(error = ?e, "session processors failed"),
    }
    result
}

fn report_params(r: &RunReport) -> serde_json::Value {
    json!({
        "files_seen": r.files_seen, "files_changed": r.files_changed, "files_failed": r.files_failed,
        "bytes": r.bytes, "lines": r.lines, "malformed_lines": r.malformed_lines,
        "events": r.events, "responses": r.responses, "findings": r.findings,
        "unknown_models": r.unknown_models.iter().take(20).collect::<Vec<_>>(),
    })
}

/// The scheduled tick: both processors.
pub async fn scheduled_tick(state: AppState) {
    let _ = run(&state, Processors::ALL, Trigger::default()).await;
}

/// `{"status", "deleted": {…}}` in Agnes's shape.
#[derive(Debug, Serialize)]
pub struct ReprocessReport {
    pub status: &'static str,
    pub deleted: crate::repo::usage::ReprocessCounts,
}

/// Clears extracted telemetry (never the retention-protected rollup days) and,
/// unless a dry run, re-extracts in the background.
pub async fn reprocess(state: &AppState, dry_run: bool) -> anyhow::Result<ReprocessReport> {
    let horizon = horizon(state.config.usage_events_retention_days);
    let counts = {
        let _guard = state.ingest_lock.lock().await;
        state
            .db
            .run(move |c| crate::repo::usage::reprocess(c, horizon, dry_run))
            .await?
    };
    if !dry_run {
        let s = state.clone();
        state.tracker.spawn(async move {
            let _ = run(&s, Processors::ALL, Trigger::default()).await;
        });
    }
    Ok(ReprocessReport {
        status: if dry_run { "dry_run" } else { "ok" },
        deleted: counts,
    })
}

fn horizon(days: u32) -> Option<chrono::NaiveDateTime> {
    (days > 0).then(|| (chrono::Utc::now() - chrono::Duration::days(days as i64)).naive_utc())
}

/// Deletes usage events and responses past `USAGE_EVENTS_RETENTION_DAYS`
/// (Agnes's `/prune` shape). Rollups and summaries are kept.
pub async fn prune_usage(state: &AppState, dry_run: bool) -> anyhow::Result<serde_json::Value> {
    let days = state.config.usage_events_retention_days;
    let Some(h) = horizon(days) else {
        return Ok(
            json!({"status": "skipped", "reason": "USAGE_EVENTS_RETENTION_DAYS unset or 0"}),
        );
    };
    let (deleted, responses, remaining) = state
        .db
        .run(move |c| crate::repo::usage::prune(c, h, dry_run))
        .await?;
    Ok(json!({
        "status": if dry_run { "dry_run" } else { "ok" },
        "retention_days": days, "deleted": deleted, "deleted_responses": responses, "remaining": remaining,
    }))
}

/// The daily job: usage, audit and app event retention, one `maintenance.prune` row.
pub async fn daily_prune(state: AppState) {
    let started = Instant::now();
    let usage = prune_usage(&state, false).await;
    let audit_days = state.config.audit_retention_days;
    let audit = match horizon(audit_days) {
        None => Ok(0),
        Some(h) => state.db.run(move |c| crate::repo::audit::prune(c, h)).await,
    };
    let app_days = state.config.app_events_retention_days;
    let app = match horizon(app_days) {
        None => Ok(0),
        Some(h) => {
            state
                .db
                .run(move |c| crate::repo::app_events::prune(c, h))
                .await
        }
    };
    let e = AuditEvent::new("maintenance.prune").duration_ms(started.elapsed().as_millis() as i64);
    let e = match (usage, audit, app) {
        (Ok(u), Ok(a), Ok(p)) => e
            .params(
                json!({"usage": u, "audit_deleted": a, "audit_retention_days": audit_days,
                           "app_events_deleted": p, "app_events_retention_days": app_days}),
            )
            .success(),
        (u, a, p) => {
            let msg = format!("{:?} {:?} {:?}", u.err(), a.err(), p.err());
            e.params(json!({})).error("prune", &msg)
        }
    };
    state.audit(e).await;
}
