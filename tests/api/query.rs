//! `POST /api/query`: the internal data source, its guard and its row scope.

use glassbox::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_detail, Api, TestApp};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sessions/fixture.user")
            .join(name),
    )
    .unwrap()
}

async fn upload(api: &Api, name: &str, body: Vec<u8>) {
    let resp = api
        .client
        .post(format!("{}/api/upload/sessions?filename={name}", api.base))
        .bearer_auth(api.token.as_ref().unwrap())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

async fn as_user(app: &TestApp, email: &str) -> Api {
    let mut api = app.api();
    api.token = Some(app.token_for(email).await);
    api
}

/// Two analysts with transcripts of their own, ingested; the admin ran it.
async fn two_analysts() -> (TestApp, (Api, String), (Api, String)) {
    let app = TestApp::spawn().await;
    let ann = app.create_user("ann@example.com", Role::Analyst).await;
    let bob = app.create_user("bob@example.com", Role::Analyst).await;
    let ann_api = as_user(&app, "ann@example.com").await;
    let bob_api = as_user(&app, "bob@example.com").await;
    upload(&ann_api, "a1.jsonl", fixture("simple_bash.jsonl")).await;
    upload(&ann_api, "a2.jsonl", fixture("tool_error.jsonl")).await;
    upload(&bob_api, "b1.jsonl", fixture("multi_tool_line.jsonl")).await;
    upload(&bob_api, "b2.jsonl", fixture("mcp_call.jsonl")).await;
    let admin = app.api_as(Role::Admin).await;
    for p in ["usage", "failure_scan"] {
        let resp = admin
            .call(
                Method::POST,
                &format!("/api/admin/run-session-processor?processor={p}"),
                None,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    (app, (ann_api, ann.id), (bob_api, bob.id))
}

async fn query(api: &Api, sql: &str) -> reqwest::Response {
    api.post("/api/query", json!({ "sql": sql })).await
}

/// Queries an analyst might write to reach someone else's rows.
const PROBES: &[&str] = &[
    "SELECT * FROM agnes_telemetry",
    "SELECT * FROM agnes_sessions",
    "SELECT * FROM agnes_audit",
    "SELECT * FROM agnes_telemetry t JOIN agnes_sessions s USING (session_file)",
    "SELECT * FROM agnes_telemetry t FULL OUTER JOIN agnes_audit a ON true",
    "SELECT DISTINCT username, user_id, session_file FROM agnes_telemetry UNION SELECT DISTINCT username, user_id, session_file FROM agnes_sessions",
    "WITH everyone AS (SELECT * FROM agnes_telemetry) SELECT * FROM everyone WHERE username NOT LIKE 'ann%'",
    "SELECT * FROM agnes_sessions WHERE session_file IN (SELECT session_file FROM agnes_telemetry WHERE username LIKE 'bob%' OR username LIKE 'ann%')",
    "SELECT (SELECT string_agg(DISTINCT user_id, ',') FROM agnes_audit) AS ids, (SELECT string_agg(DISTINCT username, ',') FROM agnes_sessions) AS names",
    "SELECT * FROM agnes_audit a WHERE EXISTS (SELECT 1 FROM agnes_telemetry t WHERE t.user_id <> a.user_id)",
    "SELECT username, count(*) FROM agnes_telemetry GROUP BY ALL",
    "WITH agnes_sessions AS (SELECT * FROM agnes_sessions) SELECT * FROM agnes_sessions",
];

/// SQL naming what lies under the three relations, or anything else: refused.
const REFUSED: &[&str] = &[
    "SELECT * FROM usage_events",
    "SELECT * FROM usage_session_summary",
    "SELECT * FROM audit_log",
    "SELECT * FROM users",
    "SELECT * FROM main.usage_events",
    "SELECT * FROM \"USAGE_EVENTS\"",
    "WITH agnes_telemetry AS (SELECT * FROM usage_events) SELECT * FROM agnes_telemetry",
    "WITH x AS (SELECT * FROM agnes_telemetry), y AS (SELECT * FROM audit_log) SELECT * FROM x, y",
    "SELECT * FROM agnes_telemetry WHERE user_id IN (SELECT user_id FROM usage_events)",
    "SELECT * FROM agnes_telemetry UNION ALL SELECT * FROM usage_events",
    "SELECT * FROM agnes_telemetry t JOIN usage_session_summary s USING (session_file)",
    "SELECT (SELECT count(*) FROM audit_log)",
    "SELECT * FROM agnes_telemetry, LATERAL (SELECT * FROM usage_responses) r",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM agnes_audit; DELETE FROM audit_log",
];

#[tokio::test(flavor = "multi_thread")]
async fn no_query_an_analyst_can_write_returns_the_other_analysts_rows() {
    let (app, (ann, ann_id), (bob, bob_id)) = two_analysts().await;
    for (me, my_id, my_email, other_id, other_email) in [
        (&ann, &ann_id, "ann@example.com", &bob_id, "bob@example.com"),
        (&bob, &bob_id, "bob@example.com", &ann_id, "ann@example.com"),
    ] {
        for sql in PROBES {
            let resp = query(me, sql).await;
            assert_eq!(resp.status(), StatusCode::OK, "{sql}");
            let text = resp.text().await.unwrap();
            assert!(
                !text.contains(other_id.as_str()) && !text.contains(other_email),
                "{my_email} saw the other analyst's rows through {sql}: {text}"
            );
        }
        // They do see their own (so the probes above could have failed).
        let own: Value = query(
            me,
            "SELECT count(*) AS n, min(username) AS who, min(user_id) AS id FROM agnes_telemetry",
        )
        .await
        .json()
        .await
        .unwrap();
        assert!(own["rows"][0][0].as_i64().unwrap() > 0, "{own}");
        assert_eq!(own["rows"][0][1], my_email);
        assert_eq!(own["rows"][0][2], my_id.as_str());
        let audit: Value = query(
            me,
            "SELECT count(*) FROM agnes_audit WHERE action = 'session.upload'",
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(audit["rows"][0][0], 2, "their own two uploads");
        for sql in REFUSED {
            let resp = query(me, sql).await;
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{sql}");
            let body: Value = resp.json().await.unwrap();
            let detail = body["detail"].as_str().unwrap();
            assert!(detail.starts_with("sql: refused: "), "{sql}: {detail}");
            assert!(!detail.contains(other_id.as_str()));
        }
    }
    // The admin sees both.
    let admin = app.api_as(Role::Admin).await;
    let all: Value = query(&admin, "SELECT count(DISTINCT user_id) FROM agnes_sessions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["rows"][0][0], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_have_agnes_shape_honour_the_limit_and_are_audited() {
    let (app, (ann, ann_id), _) = two_analysts().await;
    let resp = ann
        .post(
            "/api/query",
            json!({"sql": "SELECT id, tool_name FROM agnes_telemetry ORDER BY id", "limit": 2}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["columns"], json!(["id", "tool_name"]));
    assert_eq!(body["row_count"], 2);
    assert_eq!(body["rows"].as_array().unwrap().len(), 2);
    assert!(body["rows"][0].is_array(), "rows are lists");
    assert_eq!(body["truncated"], true);
    let whole: Value = query(&ann, "SELECT 1 AS one").await.json().await.unwrap();
    assert_eq!(
        whole,
        json!({"columns": ["one"], "rows": [[1]], "row_count": 1, "truncated": false})
    );
    for limit in [0, 1001, -1] {
        let resp = ann
            .post("/api/query", json!({"sql": "SELECT 1", "limit": limit}))
            .await;
        assert_detail(resp, StatusCode::UNPROCESSABLE_ENTITY, "limit").await;
    }
    let resp = ann.post("/api/query", json!({"limit": 5})).await;
    assert_detail(resp, StatusCode::UNPROCESSABLE_ENTITY, "sql").await;
    let failed = query(&ann, "SELECT no_such_column FROM agnes_audit").await;
    assert_detail(failed, StatusCode::BAD_REQUEST, "SQL execution failed").await;

    let rows = app.audit_rows("query.internal").await;
    let results: Vec<_> = rows
        .iter()
        .map(|r| r.2.clone().unwrap_or_default())
        .collect();
    assert!(rows.iter().all(|r| r.0.as_deref() == Some(ann_id.as_str())));
    assert_eq!(results.iter().filter(|r| *r == "success").count(), 2);
    assert_eq!(
        results.iter().filter(|r| *r == "error.exec_failed").count(),
        1
    );
    assert!(rows
        .iter()
        .any(|r| r.1.as_deref() == Some("table:agnes_telemetry")));
    // Refusals are audited too, and change nothing.
    let before = app.query_i64("SELECT count(*) FROM usage_events").await;
    let refused = query(
        &ann,
        "WITH x AS (DELETE FROM usage_events RETURNING *) SELECT * FROM x",
    )
    .await;
    assert_detail(refused, StatusCode::BAD_REQUEST, "refused").await;
    assert_eq!(
        app.query_i64("SELECT count(*) FROM usage_events").await,
        before
    );
    assert_eq!(
        app.query_i64(
            "SELECT count(*) FROM audit_log WHERE action = 'query.internal' AND result = 'denied'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_query_is_stopped_by_the_timeout_with_a_clear_error() {
    let app = TestApp::spawn_with(|c| c.query_timeout_secs = 1).await;
    let admin = app.api_as(Role::Admin).await;
    let resp = query(
        &admin,
        "WITH t(x) AS (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10))
         SELECT sum(a.x * b.x - c.x + d.x * e.x) FROM t a, t b, t c, t d, t e, t f, t g, t h, t i, t j, t k, t l, t m",
    )
    .await;
    assert_detail(resp, StatusCode::BAD_REQUEST, "was stopped").await;
    assert_eq!(
        app.query_i64("SELECT count(*) FROM audit_log WHERE action = 'query.internal' AND result = 'error.timeout'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_session_needs_the_csrf_token_and_service_accounts_are_refused() {
    let app = TestApp::spawn().await;
    app.create_user("ann@example.com", Role::Analyst).await;
    let b = app.signed_in("ann@example.com").await;
    let body = json!({"sql": "SELECT count(*) FROM agnes_audit"});
    let no_csrf = b
        .json(Method::POST, "/api/query", Some(body.clone()), false)
        .await;
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    let ok = b
        .json(Method::POST, "/api/query", Some(body.clone()), true)
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let service = app.api_as(Role::Service).await;
    assert_detail(
        service.post("/api/query", body).await,
        StatusCode::FORBIDDEN,
        "people",
    )
    .await;
}
