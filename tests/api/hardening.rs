//! Crafted input at the edges: dates out of range, bodies with trailing
//! data, formula cells in exports, long and symlinked upload targets, and
//! audited health reads per actor.

use glassbox::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_detail, Api, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn dates_far_outside_the_supported_years_are_422s_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Admin).await;
    for (path, param) in [
        ("/api/admin/activity?until=-262143-01-01", "until"),
        ("/api/admin/activity?since=-262143-01-01", "since"),
        (
            "/api/admin/observability/kpis?since=-262143-01-01&until=-262143-01-02",
            "since",
        ),
        (
            "/api/admin/observability/kpis?since=2026-01-01&until=%2B10000-01-01",
            "until",
        ),
        ("/api/admin/observability/facets?until=1969-12-31", "until"),
        ("/api/admin/activity/sync?until=-262143-01-01", "until"),
        ("/api/admin/activity/export?until=-262143-01-01", "until"),
    ] {
        let resp = api.get(path).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        let detail = resp.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            detail.starts_with(&format!("{param}:")) && detail.contains("1970 to 9999"),
            "{path}: {detail}"
        );
    }
    // The edge of the range still answers.
    let resp = api
        .get("/api/admin/observability/kpis?since=1970-01-01&until=1970-01-02")
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn producers_cannot_send_sync_runs_or_events_in_year_minus_262143() {
    let app = TestApp::spawn().await;
    let service = app.api_as(Role::Service).await;
    let resp = service
        .post(
            "/api/v1/sync-runs",
            json!({"table_id": "orders", "status": "ok", "synced_at": "-262143-01-01T00:00:00Z"}),
        )
        .await;
    assert_detail(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "synced_at: not an ISO 8601",
    )
    .await;
    let resp = service
        .post(
            "/api/v1/audit/events",
            json!({"action": "query.run", "timestamp": "-262143-01-01T00:00:00Z"}),
        )
        .await;
    assert_detail(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "timestamp: not an ISO 8601",
    )
    .await;
    assert_eq!(app.query_i64("SELECT count(*) FROM sync_history").await, 0);
}
