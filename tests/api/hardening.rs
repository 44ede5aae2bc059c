//! Crafted input at the edges: dates out of range, bodies with trailing
//! data, formula cells in exports, long and symlinked upload targets, and
//! audited health reads per actor.

use glassbox::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_detail, Api, TestApp};

async fn self_reads(app: &TestApp, endpoint: &str) -> i64 {
    app.query_i64(&format!(
        "SELECT count(*) FROM audit_log WHERE action = 'activity.read' AND (params->>'endpoint') = '{endpoint}'"
    ))
    .await
}

async fn post_raw(api: &Api, path: &str, body: &str) -> reqwest::Response {
    api.client
        .post(format!("{}{}", api.base, path))
        .bearer_auth(api.token.as_ref().unwrap())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

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

#[tokio::test(flavor = "multi_thread")]
async fn a_body_with_trailing_data_is_refused_and_nothing_is_kept() {
    let app = TestApp::spawn().await;
    let service = app.api_as(Role::Service).await;
    for body in [
        r#"{"action":"a"} {"action":"b"}"#,
        "{\"action\":\"a\"}\n{\"action\":\"b\"}\n",
        r#"{"action":"a"}{"action":"b"}"#,
        r#"[{"action":"a"}] x"#,
    ] {
        let resp = post_raw(&service, "/api/v1/audit/events", body).await;
        assert_detail(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "body: trailing data",
        )
        .await;
    }
    assert_eq!(
        app.query_i64("SELECT count(*) FROM audit_log WHERE action IN ('a', 'b')")
            .await,
        0
    );
    for body in [
        r#"{"table_id":"t","status":"ok"} {"table_id":"u","status":"ok"}"#,
        "{\"table_id\":\"t\",\"status\":\"ok\"}\n{\"table_id\":\"u\",\"status\":\"ok\"}",
        r#"{"table_id":"t","status":"ok"}{"table_id":"u","status":"ok"}"#,
    ] {
        let resp = post_raw(&service, "/api/v1/sync-runs", body).await;
        assert_detail(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "body: trailing data",
        )
        .await;
    }
    assert_eq!(app.query_i64("SELECT count(*) FROM sync_history").await, 0);
    // Whitespace after the value is fine.
    let resp = post_raw(
        &service,
        "/api/v1/audit/events",
        "{\"action\":\"a\"} \r\n\n",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = post_raw(
        &service,
        "/api/v1/sync-runs",
        "{\"table_id\":\"t\",\"status\":\"ok\"}\n",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_admin_gets_an_audited_health_read_even_from_the_cache() {
    let app = TestApp::spawn().await;
    let first = app.api_as(Role::Admin).await;
    app.create_user("second.admin@example.com", Role::Admin)
        .await;
    let mut second = app.api();
    second.token = Some(app.token_for("second.admin@example.com").await);
    for api in [&first, &second, &first, &second] {
        let resp = api.get("/api/admin/activity/health").await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(
        self_reads(&app, "health").await,
        2,
        "one row per actor; repeats within a minute are suppressed"
    );
    assert_eq!(
        app.query_i64(
            "SELECT count(DISTINCT user_id) FROM audit_log WHERE action = 'activity.read'"
        )
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn producer_strings_that_look_like_formulas_are_neutralised_in_the_csv_export() {
    let app = TestApp::spawn().await;
    let service = app.api_as(Role::Service).await;
    let hyperlink = r#"=HYPERLINK("http://evil.example/?x","Click")"#;
    let resp = service
        .post(
            "/api/v1/audit/events",
            json!({"action": "table.read", "resource": hyperlink, "result": "+1+1",
                   "client_kind": "@agent", "correlation_id": "-2+3", "duration_ms": 42,
                   "params": {"note": "=1+1"}}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let api = app.api_as(Role::Admin).await;
    let resp = api
        .get("/api/admin/activity/export?format=csv&resource_prefix=%3DHYPERLINK")
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{text}");
    let cell = |name: &str| {
        let i = header.iter().position(|h| h == name).unwrap();
        rows[0][i].to_string()
    };
    assert_eq!(cell("resource"), format!("'{hyperlink}"));
    assert_eq!(cell("result"), "'+1+1");
    assert_eq!(cell("client_kind"), "'@agent");
    assert_eq!(cell("correlation_id"), "'-2+3");
    assert_eq!(cell("duration_ms"), "42");
    assert_eq!(cell("action"), "table.read");
    let params: Value = serde_json::from_str(&cell("params")).unwrap();
    assert_eq!(
        params["note"], "=1+1",
        "JSON text starts with {{ and is kept"
    );
}

async fn upload(api: &Api, name: &str, body: &str) -> reqwest::Response {
    api.client
        .post(format!("{}/api/upload/sessions?filename={name}", api.base))
        .bearer_auth(api.token.as_ref().unwrap())
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

const LINE: &str = r#"{"type":"user","sessionId":"s1","timestamp":"2026-09-01T10:00:00.000Z","message":{"role":"user","content":"hello"}}"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_name_of_255_characters_is_stored() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Analyst).await;
    let ann = app.user_by_email("analyst@example.com").await.unwrap();
    let name = format!("{}.jsonl", "a".repeat(255 - ".jsonl".len()));
    assert_eq!(name.len(), 255);
    let resp = upload(&api, &name, &format!("{LINE}\n")).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let dir = app.state.config.session_data_dir.join(&ann.id);
    assert!(dir.join(&name).is_file());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temp left");
    let resp = upload(&api, &format!("b{name}"), &format!("{LINE}\n")).await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "256 is one too many"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_into_a_user_directory_linked_outside_the_data_dir_is_refused() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Analyst).await;
    let ann = app.user_by_email("analyst@example.com").await.unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = app.state.config.session_data_dir.clone();
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join(&ann.id)).unwrap();
    let resp = upload(&api, "s1.jsonl", &format!("{LINE}\n")).await;
    assert_detail(
        resp,
        StatusCode::FORBIDDEN,
        "is a symlink leading outside SESSION_DATA_DIR",
    )
    .await;
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written through the link"
    );
    // A link inside the data dir is refused too: ingest reads plain
    // directories only, so the file would land under another name.
    std::fs::remove_file(root.join(&ann.id)).unwrap();
    std::fs::create_dir_all(root.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(root.join("elsewhere"), root.join(&ann.id)).unwrap();
    let resp = upload(&api, "s1.jsonl", &format!("{LINE}\n")).await;
    assert_detail(
        resp,
        StatusCode::FORBIDDEN,
        "is a symlink; ingest reads plain",
    )
    .await;
    // A plain directory is fine.
    std::fs::remove_file(root.join(&ann.id)).unwrap();
    let resp = upload(&api, "s1.jsonl", &format!("{LINE}\n")).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(root.join(&ann.id).join("s1.jsonl").is_file());
}
