//! Transcripts in over HTTP: uploads, processor runs, reprocess and prune.

use glassbox::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_detail, TestApp};

const LINE: &str = r#"{"type":"user","sessionId":"s1","timestamp":"2026-09-01T10:00:00.000Z","message":{"role":"user","content":"hello"}}"#;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sessions/fixture.user")
            .join(name),
    )
    .unwrap()
}

async fn upload_raw(api: &crate::helpers::Api, name: &str, body: Vec<u8>) -> reqwest::Response {
    let mut req = api
        .client
        .post(format!("{}/api/upload/sessions?filename={name}", api.base))
        .body(body);
    if let Some(t) = &api.token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_lands_in_the_uploaders_directory_replaces_atomically_and_is_audited() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Analyst).await;
    let ann = app.user_by_email("analyst@example.com").await.unwrap();
    // Multipart, as `push-sessions` and browsers send it.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(fixture("simple_bash.jsonl")).file_name("s1.jsonl"),
    );
    let resp = api
        .client
        .post(app.at("/api/upload/sessions"))
        .bearer_auth(api.token.as_ref().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["session_file"], format!("{}/s1.jsonl", ann.id));
    let path = app
        .state
        .config
        .session_data_dir
        .join(&ann.id)
        .join("s1.jsonl");
    assert_eq!(std::fs::read(&path).unwrap(), fixture("simple_bash.jsonl"));
    // A re-upload replaces; no temp files are left behind.
    let resp = upload_raw(&api, "s1.jsonl", format!("{LINE}\n").into_bytes()).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{LINE}\n"));
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1
    );
    let rows = app.audit_rows("session.upload").await;
    assert_eq!(rows.len(), 2);
    let first_last = app
        .query_i64(&format!(
            "SELECT count(*) FROM session_uploads WHERE first_uploaded_at <= last_uploaded_at AND bytes = {}",
            LINE.len() + 1
        ))
        .await;
    assert_eq!(first_last, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_uploads_get_clear_errors_and_leave_nothing_behind() {
    let app = TestApp::spawn_with(|c| c.upload_max_mb = 1).await;
    let api = app.api_as(Role::Analyst).await;
    for (name, body, status, needle) in [
        (
            "../escape.jsonl",
            b"{}\n".to_vec(),
            StatusCode::BAD_REQUEST,
            "not a plain transcript name",
        ),
        (
            "x.json",
            b"{}\n".to_vec(),
            StatusCode::BAD_REQUEST,
            "not a plain transcript name",
        ),
        ("empty.jsonl", Vec::new(), StatusCode::BAD_REQUEST, "empty"),
        (
            "bin.jsonl",
            vec![0u8, 1, 2, 3, 0, 255],
            StatusCode::BAD_REQUEST,
            "binary",
        ),
        (
            "big.jsonl",
            vec![b'x'; 1024 * 1024 + 10],
            StatusCode::PAYLOAD_TOO_LARGE,
            "GLASSBOX_UPLOAD_MAX_MB",
        ),
    ] {
        let resp = upload_raw(&api, &urlenc(name), body).await;
        assert_detail(resp, status, needle).await;
    }
    let resp = api
        .client
        .post(app.at("/api/upload/sessions"))
        .bearer_auth(api.token.as_ref().unwrap())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_detail(resp, StatusCode::UNPROCESSABLE_ENTITY, "filename").await;
    let dir = app.state.config.session_data_dir.clone();
    let files: Vec<_> = walk(&dir);
    assert!(files.is_empty(), "nothing stored: {files:?}");
    assert_eq!(
        app.api()
            .post("/api/upload/sessions?filename=a.jsonl", json!({}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

fn urlenc(s: &str) -> String {
    s.replace('/', "%2F")
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn uploaded_and_hand_copied_files_are_processed_on_demand_under_the_right_user() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Analyst).await;
    let ann = app.user_by_email("analyst@example.com").await.unwrap();
    assert_eq!(
        upload_raw(&api, "up.jsonl", fixture("tool_error.jsonl"))
            .await
            .status(),
        StatusCode::CREATED
    );
    // Copied by hand under the email local-part.
    let by_hand = app.state.config.session_data_dir.join("analyst");
    std::fs::create_dir_all(&by_hand).unwrap();
    std::fs::write(by_hand.join("hand.jsonl"), fixture("loop.jsonl")).unwrap();
    // And an unknown directory keeps its name.
    let stranger = app.state.config.session_data_dir.join("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    std::fs::write(stranger.join("s.jsonl"), fixture("simple_bash.jsonl")).unwrap();

    let admin = app.api_as(Role::Admin).await;
    let resp = admin
        .call(
            Method::POST,
            "/api/admin/run-session-processor?processor=usage",
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["report"]["files_changed"], 3);
    let users = app
        .query_i64(&format!(
            "SELECT count(*) FROM usage_session_summary WHERE username = 'analyst@example.com' AND user_id = '{}'",
            ann.id
        ))
        .await;
    assert_eq!(users, 2);
    assert_eq!(app.query_i64("SELECT count(*) FROM usage_session_summary WHERE username = 'stranger' AND user_id IS NULL").await, 1);
    assert_eq!(
        app.query_i64("SELECT count(*) FROM session_findings").await,
        0,
        "only the usage processor ran"
    );
    let uploaded = app
        .query_i64("SELECT count(*) FROM usage_session_summary WHERE uploaded_at IS NOT NULL")
        .await;
    assert_eq!(uploaded, 1, "upload time known for the uploaded file only");

    let resp = admin
        .call(
            Method::POST,
            "/api/admin/run-session-processor?processor=failure_scan",
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        app.query_i64("SELECT count(*) FROM session_findings WHERE finding_type = 'loop'")
            .await
            >= 1
    );
    let audit = app
        .query_i64("SELECT count(*) FROM audit_log WHERE action LIKE 'run_session_processor:%' AND result = 'success' AND duration_ms IS NOT NULL")
        .await;
    assert_eq!(audit, 2);
    let bad = admin
        .call(
            Method::POST,
            "/api/admin/run-session-processor?processor=everything",
            None,
        )
        .await;
    assert_detail(bad, StatusCode::UNPROCESSABLE_ENTITY, "processor").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reprocess_and_prune_preview_with_dry_run_then_act_and_are_audited() {
    let app = TestApp::spawn_with(|c| c.usage_events_retention_days = 30).await;
    let api = app.api_as(Role::Analyst).await;
    // A fixture from September 2026 is older than 30 days (it is November).
    assert_eq!(
        upload_raw(&api, "old.jsonl", fixture("multi_tool_line.jsonl"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let admin = app.api_as(Role::Admin).await;
    glassbox::processors::run(
        &app.state,
        glassbox::ingest::runner::Processors::ALL,
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        app.query_i64("SELECT count(*) FROM usage_events").await,
        0,
        "events past retention are not extracted"
    );
    assert_eq!(
        app.query_i64("SELECT count(*) FROM usage_session_summary")
            .await,
        1,
        "the summary is kept"
    );
    // Let the old events in, then prune them.
    app.state
        .db
        .run(|c| {
            c.execute_batch("INSERT INTO usage_events (id, session_id, session_file, username, event_type, source, occurred_at, processor_version) VALUES ('e1','s','f','u','tool_use','builtin', now()::TIMESTAMP - INTERVAL 40 DAY, 1), ('e2','s','f','u','tool_use','builtin', now()::TIMESTAMP, 1)")?;
            Ok(())
        })
        .await
        .unwrap();
    let preview: Value = admin
        .call(
            Method::POST,
            "/api/admin/telemetry/prune?dry_run=true",
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(preview["status"], "dry_run");
    assert_eq!(preview["deleted"], 1);
    assert_eq!(app.query_i64("SELECT count(*) FROM usage_events").await, 2);
    let done: Value = admin
        .call(Method::POST, "/api/admin/telemetry/prune", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            done["status"].as_str(),
            done["deleted"].as_i64(),
            done["remaining"].as_i64(),
            done["retention_days"].as_i64()
        ),
        (Some("ok"), Some(1), Some(1), Some(30))
    );
    let preview: Value = admin
        .call(
            Method::POST,
            "/api/admin/telemetry/reprocess?dry_run=true",
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(preview["status"], "dry_run");
    assert_eq!(
        preview["deleted"]["summaries"], 0,
        "a session that started before the horizon keeps its summary"
    );
    assert_eq!(
        app.query_i64("SELECT count(*) FROM usage_session_summary")
            .await,
        1
    );
    let done: Value = admin
        .call(Method::POST, "/api/admin/telemetry/reprocess", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "ok");
    assert_eq!(done["deleted"]["state_rows"], 2);
    assert_eq!(
        app.query_i64("SELECT count(*) FROM usage_session_summary")
            .await,
        1,
        "SPEC §3: session summaries are kept"
    );
    assert_eq!(app.audit_rows("usage.prune").await.len(), 2);
    assert_eq!(app.audit_rows("usage.reprocess").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_is_skipped_without_a_retention() {
    let app = TestApp::spawn().await;
    let admin = app.api_as(Role::Admin).await;
    let body: Value = admin
        .call(Method::POST, "/api/admin/telemetry/prune", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "skipped");
    assert_eq!(body["reason"], "USAGE_EVENTS_RETENTION_DAYS unset or 0");
}

#[tokio::test(flavor = "multi_thread")]
async fn push_sessions_uploads_new_and_changed_transcripts_once_and_resumes() {
    let app = TestApp::spawn().await;
    app.create_user("pusher@example.com", Role::Analyst).await;
    let token = app.token_for("pusher@example.com").await;
    let user = app.user_by_email("pusher@example.com").await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let claude = home.path().join(".claude/projects");
    for (project, file, src) in [
        ("-repo-a", "a1.jsonl", "simple_bash.jsonl"),
        ("-repo-a", "a2.jsonl", "loop.jsonl"),
        ("-repo-b", "b1.jsonl", "skill.jsonl"),
    ] {
        std::fs::create_dir_all(claude.join(project)).unwrap();
        std::fs::write(claude.join(project).join(file), fixture(src)).unwrap();
    }
    // Subagent transcripts in nested folders are not top-level: not sent.
    std::fs::create_dir_all(claude.join("-repo-a/a1/subagents")).unwrap();
    std::fs::write(
        claude.join("-repo-a/a1/subagents/agent-1.jsonl"),
        fixture("sidechain.jsonl"),
    )
    .unwrap();
    let (url, home_dir) = (app.url.clone(), home.path().to_path_buf());
    let push = move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_glassbox"))
            .arg("push-sessions")
            .env_clear()
            .env("HOME", &home_dir)
            .env("GLASSBOX_URL", &url)
            .env("GLASSBOX_TOKEN", &token)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let p = push.clone();
    let (ok, out) = tokio::task::spawn_blocking(p).await.unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("3 new or changed"), "{out}");
    let dir = app.state.config.session_data_dir.join(&user.id);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
    // Nothing new: nothing sent.
    let p = push.clone();
    let (ok, out) = tokio::task::spawn_blocking(p).await.unwrap();
    assert!(ok && out.contains("0 new or changed"), "{out}");
    // A grown transcript is sent again, whole.
    let grown = claude.join("-repo-b/b1.jsonl");
    let mut text = std::fs::read(&grown).unwrap();
    text.extend_from_slice(format!("{LINE}\n").as_bytes());
    std::fs::write(&grown, &text).unwrap();
    let (ok, out) = tokio::task::spawn_blocking(push).await.unwrap();
    assert!(ok && out.contains("1 new or changed"), "{out}");
    assert_eq!(std::fs::read(dir.join("b1.jsonl")).unwrap(), text);
    assert_eq!(app.audit_rows("session.upload").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_prune_applies_usage_and_audit_retention_and_writes_its_row() {
    let app = TestApp::spawn_with(|c| {
        c.audit_retention_days = 7;
        c.usage_events_retention_days = 7;
    })
    .await;
    app.state
        .db
        .run(|c| {
            c.execute_batch(
                "INSERT INTO audit_log (id, timestamp, action, result_class, source) VALUES ('old', now()::TIMESTAMP - INTERVAL 8 DAY, 'x', 'none', 'system');
                 INSERT INTO usage_events (id, session_id, session_file, username, event_type, source, occurred_at, processor_version)
                   VALUES ('e-old','s','f','u','tool_use','builtin', now()::TIMESTAMP - INTERVAL 8 DAY, 1);
                 INSERT INTO usage_tool_daily VALUES (current_date - 8, 'Bash', 'builtin', 1, 0, 1, 1);",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    glassbox::processors::daily_prune(app.state.clone()).await;
    assert_eq!(
        app.query_i64("SELECT count(*) FROM audit_log WHERE id = 'old'")
            .await,
        0
    );
    assert_eq!(app.query_i64("SELECT count(*) FROM usage_events").await, 0);
    assert_eq!(
        app.query_i64("SELECT count(*) FROM usage_tool_daily").await,
        1,
        "rollups are kept"
    );
    let row = app
        .query_i64("SELECT count(*) FROM audit_log WHERE action = 'maintenance.prune' AND source = 'scheduler' AND (params->>'audit_deleted') = '1'")
        .await;
    assert_eq!(row, 1);
}
