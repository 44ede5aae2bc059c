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

#[tokio::test(flavor = "multi_thread")]
async fn the_cleanup_job_rolls_settled_audit_hours_up_and_kpis_stay_exact() {
    let app = TestApp::spawn().await;
    // About two and three days old: settled hours. An hour or two ago: not yet.
    app.state
        .db
        .run(|c| {
            c.execute_batch(
                "INSERT INTO audit_log (id, timestamp, user_id, action, result, duration_ms, result_class, source)
                 SELECT 'r' || i, now()::TIMESTAMP - INTERVAL ([1, 50, 74][i % 3 + 1]) HOUR - INTERVAL (i % 50) MINUTE,
                        'u' || (i % 4), 'table.read', CASE WHEN i % 5 = 0 THEN 'error.500' ELSE 'success' END,
                        i, CASE WHEN i % 5 = 0 THEN 'error' ELSE 'success' END, 'web'
                 FROM range(300) t(i)",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    glassbox::scheduler::cleanup(app.state.clone()).await;
    let rolled = app
        .query_i64("SELECT CAST(params->>'audit_rollup_rows' AS BIGINT) FROM audit_log WHERE action = 'maintenance.cleanup'")
        .await;
    assert!(rolled > 0, "the job wrote rollup rows");
    let covered_rows = app
        .query_i64("SELECT count(*) FROM audit_log WHERE timestamp < (SELECT covered_until FROM audit_rollup_state)")
        .await;
    assert_eq!(covered_rows, 200, "the two- and three-day-old rows");
    assert_eq!(
        app.query_i64("SELECT sum(events)::BIGINT FROM audit_hourly")
            .await,
        covered_rows
    );
    // A 7-day window now reads the rollups and the recent rows: still exact.
    let api = app.api_as(Role::Admin).await;
    let k: Value = api
        .get("/api/admin/observability/kpis?since_minutes=10080&action=table.read")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(k["events_total"], 300, "{k}");
    assert_eq!(k["errors"], 60);
    assert_eq!(k["active_users"], 4);
    let f: Value = api
        .get("/api/admin/observability/facets?since_minutes=10080")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(f["actions"][0]["value"], "table.read");
    assert_eq!(f["actions"][0]["count"], 300, "{f}");
}

/// Collects what the log subscriber writes, for one test.
#[derive(Clone, Default)]
struct LogBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime: the server runs on this thread, where the test's
// subscriber is the default.
#[tokio::test]
async fn an_internal_error_is_logged_in_a_span_with_its_route_and_correlation_id() {
    let logs = LogBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::spawn().await;
    let token = app.token_for(ADMIN_EMAIL).await;
    app.state
        .db
        .run(|c| Ok(c.execute_batch("ALTER TABLE audit_log RENAME TO audit_log_away")?))
        .await
        .unwrap();
    let resp = reqwest::Client::new()
        .get(app.at("/api/admin/activity"))
        .bearer_auth(token)
        .header("x-request-id", "trace-me-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-4711");
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("internal error"))
        .unwrap_or_else(|| panic!("no internal error logged:\n{text}"));
    assert!(line.contains("correlation_id=trace-me-4711"), "{line}");
    assert!(line.contains("route=/api/admin/activity"), "{line}");
}
