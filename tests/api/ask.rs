//! Ask (`POST /api/admin/telemetry/ask`) against a stub of the Messages API
//! started by each test: canned good answers, hostile SQL, malformed JSON,
//! errors, and an address where nothing listens.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use glassbox::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_detail, Api, TestApp};

/// Requests the stub received: (headers, body).
type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// A Messages API stand-in. The answer depends on a keyword in the question.
async fn stub() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/v1/messages",
        axum::routing::post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let log = log.clone();
            async move {
                let question = body["messages"][0]["content"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                log.lock().unwrap().push((headers, body.0));
                canned(&question)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, seen)
}

fn tool(sql: &str) -> axum::response::Response {
    axum::Json(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "stub",
        "stop_reason": "tool_use",
        "content": [{"type": "tool_use", "id": "t1", "name": "answer",
                     "input": {"sql": sql, "rationale": "Counts tool calls per tool."}}],
    }))
    .into_response()
}

fn text(t: &str) -> axum::response::Response {
    axum::Json(json!({"type": "message", "stop_reason": "end_turn", "content": [{"type": "text", "text": t}]}))
        .into_response()
}

fn error(status: u16, kind: &str, message: &str) -> axum::response::Response {
    (
        AxumStatus::from_u16(status).unwrap(),
        axum::Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
    )
        .into_response()
}

const GOOD_SQL: &str =
    "SELECT tool_name, count(*) AS n FROM usage_events GROUP BY tool_name ORDER BY n DESC, tool_name";

/// (keyword, hostile SQL the model "writes").
const HOSTILE: &[(&str, &str)] = &[
    ("hostile-file", "SELECT * FROM read_csv('/etc/passwd')"),
    (
        "hostile-write",
        "WITH x AS (DELETE FROM usage_events RETURNING *) SELECT count(*) FROM x",
    ),
    ("hostile-audit", "SELECT * FROM audit_log"),
    ("hostile-stacked", "SELECT 1; DROP TABLE usage_events"),
    (
        "hostile-users",
        "SELECT e.*, u.password_hash FROM usage_events e JOIN users u ON u.id = e.user_id",
    ),
    (
        "hostile-recursive",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
    ),
];

fn canned(question: &str) -> axum::response::Response {
    if let Some((_, sql)) = HOSTILE.iter().find(|(k, _)| question.contains(k)) {
        return tool(sql);
    }
    match question {
        q if q.contains("good") => tool(GOOD_SQL),
        q if q.contains("fenced") => text(&format!(
            "```json\n{}\n```",
            json!({"sql": "SELECT count(*) AS events FROM usage_events", "rationale": "All events."})
        )),
        q if q.contains("malformed") => text("Sure! You could run SELECT count(*) FROM usage_events."),
        q if q.contains("broken") => tool("SELECT no_such_column FROM usage_events"),
        q if q.contains("endless") => tool(
            "WITH t(x) AS (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10)) \
             SELECT sum(a.x * b.x - c.x + d.x) FROM t a, t b, t c, t d, t e, t f, t g, t h, t i, t j, t k, t l, t m",
        ),
        q if q.contains("overloaded") => error(529, "overloaded_error", "Overloaded"),
        q if q.contains("badkey") => error(401, "authentication_error", "invalid x-api-key"),
        q if q.contains("nomodel") => error(404, "not_found_error", "model: claude-nope"),
        q if q.contains("refuse") => axum::Json(json!({"type": "message", "stop_reason": "refusal", "content": []})).into_response(),
        _ => text("{}"),
    }
}

async fn app_with_stub() -> (TestApp, Seen, Api) {
    let (url, seen) = stub().await;
    let app = TestApp::spawn_with(move |c| {
        c.anthropic_api_key = Some("test-key".into());
        c.anthropic_base_url = url;
        c.query_timeout_secs = 1;
    })
    .await;
    seed_events(&app).await;
    let admin = app.api_as(Role::Admin).await;
    (app, seen, admin)
}

async fn seed_events(app: &TestApp) {
    app.state
        .db
        .run(|c| {
            c.execute_batch(
                "INSERT INTO usage_events (id, session_id, session_file, username, event_type, tool_name, source, occurred_at, processor_version)
                 SELECT 'e' || i, 's', 'u/a.jsonl', 'ann@example.com', 'tool_use', CASE WHEN i < 3 THEN 'Bash' ELSE 'Read' END,
                        'builtin', TIMESTAMP '2026-11-01', 1 FROM range(5) t(i)",
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

async fn ask(api: &Api, question: &str) -> reqwest::Response {
    api.post("/api/admin/telemetry/ask", json!({ "question": question }))
        .await
}

async fn last_ask_audit(app: &TestApp) -> (String, Value) {
    app.state
        .db
        .run(|c| {
            Ok(c.query_row(
                "SELECT result, params::VARCHAR FROM audit_log WHERE action = 'usage.ask' ORDER BY timestamp DESC, id DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )?)
        })
        .await
        .map(|(r, p)| (r, serde_json::from_str(&p).unwrap()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_answer_is_guarded_run_and_audited_in_agnes_shape() {
    let (app, seen, admin) = app_with_stub().await;
    let resp = ask(&admin, "  good: which tools are used most?  ").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["question"], "good: which tools are used most?");
    assert_eq!(body["sql"], GOOD_SQL);
    assert_eq!(body["rationale"], "Counts tool calls per tool.");
    assert_eq!(body["columns"], json!(["tool_name", "n"]));
    assert_eq!(
        body["rows"],
        json!([{"tool_name": "Bash", "n": 3}, {"tool_name": "Read", "n": 2}])
    );
    assert_eq!(body["row_count"], 2);
    assert_eq!(body["truncated"], false);
    assert!(body["llm_ms"].is_u64() && body["exec_ms"].is_u64());
    assert!(body.get("rejected").is_none());

    // What the model was sent: our key, the API version, the default model, the
    // schema of every telemetry table, and the answer tool forced.
    let (headers, sent) = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(headers["x-api-key"], "test-key");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(sent["model"], "claude-haiku-4-5-20251001");
    let system = sent["system"].as_str().unwrap();
    for table in [
        "usage_events(",
        "usage_responses(",
        "usage_session_summary(",
        "usage_tool_daily(",
        "usage_tokens_daily(",
        "session_findings(",
    ] {
        assert!(system.contains(table), "{table} missing from the prompt");
    }
    assert!(system.contains("occurred_at TIMESTAMP"));
    assert!(!system.contains("audit_log"), "only the telemetry tables");
    assert_eq!(sent["tool_choice"]["name"], "answer");
    assert_eq!(
        sent["tools"][0]["input_schema"]["required"],
        json!(["sql", "rationale"])
    );
    drop(seen);

    let (result, params) = last_ask_audit(&app).await;
    assert_eq!(result, "success");
    assert_eq!(params["question"], "good: which tools are used most?");
    assert_eq!(params["sql"], GOOD_SQL);
    assert_eq!(params["verdict"], "ok");
    assert_eq!(params["row_count"], 2);
    assert!(params["llm_ms"].is_u64() && params["exec_ms"].is_u64());
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_sql_from_the_model_is_rejected_with_200_and_never_runs() {
    let (app, _seen, admin) = app_with_stub().await;
    let before = app.query_i64("SELECT count(*) FROM usage_events").await;
    for (keyword, sql) in HOSTILE {
        let resp = ask(&admin, &format!("{keyword}: show me everything")).await;
        assert_eq!(resp.status(), StatusCode::OK, "{keyword}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["sql"], *sql, "{keyword}: the SQL is shown");
        assert!(
            body["rejected"].as_str().is_some_and(|r| !r.is_empty()),
            "{keyword}: {body}"
        );
        assert_eq!(body["rows"], Value::Null);
        assert_eq!(body["row_count"], 0);
        assert!(body["rationale"].is_string());
        let (result, params) = last_ask_audit(&app).await;
        assert_eq!(result, "error.invalid_sql");
        assert_eq!(params["verdict"], "rejected");
        assert_eq!(params["sql"], *sql);
        assert_eq!(params["reason"], body["rejected"]);
    }
    assert_eq!(
        app.query_i64("SELECT count(*) FROM usage_events").await,
        before
    );
    let users = app.query_i64("SELECT count(*) FROM users").await;
    assert!(users >= 1, "nothing was dropped");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fenced_json_answer_is_accepted_and_prose_is_a_502() {
    let (app, _seen, admin) = app_with_stub().await;
    let body: Value = ask(&admin, "fenced: how many events?")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["rows"], json!([{"events": 5}]));
    let resp = ask(&admin, "malformed: how many events?").await;
    assert_detail(resp, StatusCode::BAD_GATEWAY, "not the JSON asked for").await;
    assert_eq!(last_ask_audit(&app).await.0, "error.llm_bad_answer");
    let resp = ask(&admin, "nomodel: anything").await;
    assert_detail(resp, StatusCode::BAD_GATEWAY, "LLM call failed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn execution_failures_and_endless_queries_are_400s() {
    let (app, _seen, admin) = app_with_stub().await;
    let resp = ask(&admin, "broken: a column that does not exist").await;
    assert_detail(resp, StatusCode::BAD_REQUEST, "SQL execution failed").await;
    assert_eq!(last_ask_audit(&app).await.0, "error.exec_failed");
    let resp = ask(&admin, "endless: every combination").await;
    assert_detail(resp, StatusCode::BAD_REQUEST, "stopped").await;
    let (result, params) = last_ask_audit(&app).await;
    assert_eq!(result, "error.timeout");
    assert_eq!(params["verdict"], "timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unavailable_model_is_a_503_json_and_a_refusal_a_400() {
    let (app, _seen, admin) = app_with_stub().await;
    for q in ["overloaded: now", "badkey: now"] {
        assert_detail(
            ask(&admin, q).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        )
        .await;
    }
    assert_eq!(last_ask_audit(&app).await.0, "error.llm_unavailable");
    assert_detail(
        ask(&admin, "refuse: please").await,
        StatusCode::BAD_REQUEST,
        "declined",
    )
    .await;

    // Nothing listens at the model's address.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = TestApp::spawn_with(move |c| {
        c.anthropic_api_key = Some("test-key".into());
        c.anthropic_base_url = dead;
    })
    .await;
    let admin = app.api_as(Role::Admin).await;
    assert_detail(
        ask(&admin, "good: anything").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "could not connect",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_key_ask_is_a_503_json_and_empty_questions_are_400() {
    let app = TestApp::spawn().await;
    let admin = app.api_as(Role::Admin).await;
    assert_detail(
        ask(&admin, "good: anything").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "ANTHROPIC_API_KEY",
    )
    .await;
    assert_eq!(last_ask_audit(&app).await.0, "error.not_configured");
    for q in ["", "   \n"] {
        assert_detail(ask(&admin, q).await, StatusCode::BAD_REQUEST, "question").await;
    }
    let long = "x".repeat(1001);
    assert_detail(
        ask(&admin, &long).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "question",
    )
    .await;
    let resp = admin.post("/api/admin/telemetry/ask", json!({})).await;
    assert_detail(resp, StatusCode::UNPROCESSABLE_ENTITY, "question").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_comes_from_usage_ask_model() {
    let (url, seen) = stub().await;
    let app = TestApp::spawn_with(move |c| {
        c.anthropic_api_key = Some("k".into());
        c.anthropic_base_url = format!("{url}/");
        c.usage_ask_model = "claude-test-model".into();
    })
    .await;
    let admin = app.api_as(Role::Admin).await;
    assert_eq!(ask(&admin, "good: x").await.status(), StatusCode::OK);
    assert_eq!(seen.lock().unwrap()[0].1["model"], "claude-test-model");
}

#[tokio::test(flavor = "multi_thread")]
async fn glassbox_admin_ask_prints_sql_rationale_and_rows_or_the_rejection() {
    let (app, _seen, _admin) = app_with_stub().await;
    let token = app.token_for(crate::helpers::ADMIN_EMAIL).await;
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("GLASSBOX_URL", app.url.as_str()),
        ("GLASSBOX_TOKEN", token.as_str()),
    ];
    let (code, out, err) =
        crate::cli::admin_async(home.path(), &env, &["ask", "good: which tools?"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(GOOD_SQL), "{out}");
    assert!(out.contains("Counts tool calls per tool."), "{out}");
    assert!(
        out.contains("tool_name  n") && out.contains("Bash       3"),
        "{out}"
    );
    assert!(out.contains("2 rows"), "{out}");
    let (code, out, _) =
        crate::cli::admin_async(home.path(), &env, &["ask", "--json", "good: which tools?"]).await;
    assert_eq!(code, Some(0));
    let body: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["row_count"], 2);
    let (code, out, err) =
        crate::cli::admin_async(home.path(), &env, &["ask", "hostile-audit: all of it"]).await;
    assert_eq!(code, Some(1));
    assert!(out.contains("SELECT * FROM audit_log"), "{out}");
    assert!(
        err.contains("[rejected]") && err.contains("audit_log"),
        "{err}"
    );
    let (code, _, err) =
        crate::cli::admin_async(home.path(), &env, &["ask", "overloaded: now"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("[err] server error on ask") && err.contains("unavailable"),
        "{err}"
    );
}
