//! Health, metrics, static files, and the scheduler's job bodies.

use glassbox::auth::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, ADMIN_EMAIL};

#[tokio::test(flavor = "multi_thread")]
async fn healthz_reports_the_database_and_schema() {
    let app = TestApp::spawn().await;
    let body: Value = app.api().get("/healthz").await.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(
        body["schema_version"],
        glassbox::db::migrate::latest_version()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_by_route_template_and_expose_no_user_data() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Admin).await;
    let admin = app.user_by_email(ADMIN_EMAIL).await.unwrap();
    api.get(&format!("/api/admin/users/{}", admin.id)).await;
    api.get("/api/admin/users").await;
    let text = app.api().get("/metrics").await.text().await.unwrap();
    assert!(text.contains(r#"glassbox_http_requests_total{method="GET",route="/api/admin/users/{id}",status="200"} 1"#), "{text}");
    assert!(text.contains("glassbox_http_request_duration_seconds_bucket"));
    assert!(!text.contains(&admin.id) && !text.contains(ADMIN_EMAIL));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_a_request_id_and_echoes_one_sent() {
    let app = TestApp::spawn().await;
    let resp = app
        .api()
        .client
        .get(app.at("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    let resp = app.api().get("/healthz").await;
    assert_eq!(resp.headers()["x-request-id"].len(), 36);
}

#[tokio::test(flavor = "multi_thread")]
async fn static_paths_cannot_escape_the_embedded_files() {
    let app = TestApp::spawn().await;
    for p in [
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/..%2fsrc%2flib.rs",
    ] {
        let resp = app.api().get(p).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{p}");
    }
    let resp = app.api().get("/static/app.js").await;
    assert_eq!(resp.headers()["content-type"], "text/javascript");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cleanup_job_removes_expired_sessions_and_writes_its_audit_row() {
    let app = TestApp::spawn().await;
    app.state
        .db
        .run(|c| {
            c.execute_batch(
                "INSERT INTO web_sessions VALUES ('old', '{}', now()::TIMESTAMP - INTERVAL 1 DAY), ('new', '{}', now()::TIMESTAMP + INTERVAL 1 DAY)",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    glassbox::scheduler::cleanup(app.state.clone()).await;
    assert_eq!(app.query_i64("SELECT count(*) FROM web_sessions").await, 1);
    let n = app
        .query_i64("SELECT count(*) FROM audit_log WHERE action = 'maintenance.cleanup' AND source = 'scheduler' AND (params->>'expired_sessions') = '1'")
        .await;
    assert_eq!(n, 1);
}
