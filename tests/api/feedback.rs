//! The feedback inbox: reporting, duplicates, scope, actions and their audit.

use glassbox::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_detail, TestApp};

fn error_line(text: &str) -> String {
    json!({"type": "user", "version": "2.0.14", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": text, "is_error": true}
    ]}})
    .to_string()
}

fn excerpt(error: &str) -> String {
    let ask = json!({"type": "assistant", "message": {"content": [
        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "glassbox query"}}]}});
    format!("{ask}\n{}\n", error_line(error))
}

async fn analyst(app: &TestApp, email: &str) -> crate::helpers::Api {
    app.create_user(email, Role::Analyst).await;
    let mut api = app.api();
    api.token = Some(app.token_for(email).await);
    api
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_is_stored_audited_and_its_duplicate_is_counted() {
    let app = TestApp::spawn().await;
    let ann = analyst(&app, "ann@example.com").await;
    let bob = analyst(&app, "bob@example.com").await;
    let first = ann
        .post(
            "/api/feedback",
            json!({"message": "The query tool fails on orders", "session_excerpt": excerpt("Error: relation orders does not exist"),
                   "session_file": "abc.jsonl", "environment": {"os": "linux", "glassbox": "0.1.0"}, "ack_preview": true}),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["duplicates"], 0);
    let id = first["id"].as_str().unwrap().to_string();

    let dup: Value = bob
        .post(
            "/api/feedback",
            json!({"message": "  the QUERY tool fails   on orders\n", "session_excerpt": excerpt("Error: relation orders does not exist")}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dup["duplicates"], 1);
    let near: Value = bob
        .post(
            "/api/feedback",
            json!({"message": "The query tool fails on orders", "session_excerpt": excerpt("Error: relation order does not exist")}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(near["duplicates"], 0);

    let rows = app.audit_rows("feedback.report").await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().any(
        |(_, r, res)| r.as_deref() == Some(&format!("feedback:{id}"))
            && res.as_deref() == Some("success")
    ));
    let acked = app
        .query_i64(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'feedback.report' AND resource = 'feedback:{id}'
             AND json_extract(params, '$.ack_preview')::BOOLEAN"
        ))
        .await;
    assert_eq!(acked, 1);

    let admin = app.api_as(Role::Admin).await;
    let detail: Value = admin
        .get(&format!("/api/admin/feedback/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["report"]["duplicates"], 1);
    assert_eq!(detail["report"]["environment"]["os"], "linux");
    assert_eq!(detail["duplicates"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn analysts_see_their_own_reports_and_cannot_read_others() {
    let app = TestApp::spawn().await;
    let ann = analyst(&app, "ann@example.com").await;
    let bob = analyst(&app, "bob@example.com").await;
    let ann_id = ann
        .post("/api/feedback", json!({"message": "ann's problem"}))
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    bob.post("/api/feedback", json!({"message": "bob's problem"}))
        .await;
    let mine: Value = bob.get("/api/me/feedback").await.json().await.unwrap();
    let msgs: Vec<&str> = mine["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(msgs, vec!["bob's problem"]);
    assert_eq!(mine["reports"][0]["status"], "open");
    assert_eq!(
        bob.get(&format!("/api/me/feedback/{ann_id}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ann.get(&format!("/api/me/feedback/{ann_id}"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        bob.get(&format!("/api/admin/feedback/{ann_id}"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let b = app.signed_in("bob@example.com").await;
    let page = b.get("/me/feedback").await.text().await.unwrap();
    assert!(page.contains("bob&#x27;s problem") || page.contains("bob's problem"));
    assert!(!page.contains("ann"));
    assert_eq!(
        b.get(&format!("/admin/feedback/{ann_id}")).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_reports_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let ann = analyst(&app, "ann@example.com").await;
    let post = |body: Value| ann.post("/api/feedback", body);
    assert_detail(
        post(json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "message",
    )
    .await;
    assert_detail(
        post(json!({"message": " "})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "message",
    )
    .await;
    assert_detail(
        post(json!({"message": "x".repeat(10_001)})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "message",
    )
    .await;
    assert_eq!(
        post(json!({"message": "x".repeat(10_000)})).await.status(),
        StatusCode::CREATED
    );
    assert_detail(
        post(json!({"message": "m", "session_excerpt": "{}\n".repeat(51)})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "session_excerpt",
    )
    .await;
    assert_detail(
        post(json!({"message": "m", "environment": {"os": {"name": "linux"}}})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "environment.os",
    )
    .await;
    assert_detail(
        post(json!({"message": "m", "session_file": "../../etc/passwd"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "session_file",
    )
    .await;
    // Over the 2 MiB default body limit but under the route's 8 MiB: the
    // excerpt's own 2 MiB bound answers, naming the field.
    let big = format!("{}\n", "y".repeat(3 * 1024 * 1024));
    assert_detail(
        post(json!({"message": "m", "session_excerpt": big})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "session_excerpt",
    )
    .await;
    let huge = "z".repeat(9 * 1024 * 1024);
    assert_eq!(
        post(json!({"message": "m", "session_excerpt": huge}))
            .await
            .status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let service = app.api_as(Role::Service).await;
    assert_eq!(
        service
            .post("/api/feedback", json!({"message": "m"}))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_in_person_reports_with_the_cookie_only_with_csrf() {
    let app = TestApp::spawn().await;
    app.create_user("ann@example.com", Role::Analyst).await;
    let b = app.signed_in("ann@example.com").await;
    let body = json!({"message": "from the browser"});
    assert_eq!(
        b.json(Method::POST, "/api/feedback", Some(body.clone()), false)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        b.json(Method::POST, "/api/feedback", Some(body), true)
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_assigns_tags_resolves_and_reopens_and_each_step_is_audited() {
    let app = TestApp::spawn().await;
    let ann = analyst(&app, "ann@example.com").await;
    let id = ann
        .post(
            "/api/feedback",
            json!({"message": "Export hangs\nsecond line", "session_excerpt": excerpt("Error: timed out after 600 s"), "session_file": "s1.jsonl"}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Uploads live under the uploader's user id (web::uploads).
    let ann_id = app.user_by_email("ann@example.com").await.unwrap().id;
    let admin = app.signed_in(crate::helpers::ADMIN_EMAIL).await;
    let page = admin.get(&format!("/admin/feedback/{id}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Export hangs"));
    assert!(html.contains("is-error") && html.contains("timed out after 600 s"));
    let doc = scraper::Html::parse_document(&html);
    let link = scraper::Selector::parse("#session-link").unwrap();
    assert_eq!(
        doc.select(&link)
            .next()
            .and_then(|a| a.value().attr("href")),
        Some(format!("/admin/sessions/{ann_id}/s1.jsonl").as_str())
    );

    let act = |action: &'static str, form: Vec<(&'static str, &'static str)>| {
        let path = format!("/admin/feedback/{id}/{action}");
        let admin = &admin;
        async move { admin.post_form(&path, &form).await }
    };
    assert_eq!(act("assign", vec![]).await.status(), StatusCode::OK);
    assert_eq!(
        act("tag", vec![("tags", "Export, slow,export")])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        act("tag", vec![("tags", "no spaces allowed")])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        act("resolve", vec![("resolution", " ")]).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        act("resolve", vec![("resolution", "raised the timeout")])
            .await
            .status(),
        StatusCode::OK
    );
    let detail: Value = app
        .api_as(Role::Admin)
        .await
        .get(&format!("/api/admin/feedback/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["report"]["status"], "resolved");
    assert_eq!(detail["report"]["tags"], json!(["export", "slow"]));
    assert_eq!(detail["report"]["resolution"], "raised the timeout");
    assert_eq!(act("reopen", vec![]).await.status(), StatusCode::OK);
    assert_eq!(
        act("explode", vec![]).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let history: Vec<String> = app
        .api_as(Role::Admin)
        .await
        .get(&format!("/api/admin/feedback/{id}"))
        .await
        .json::<Value>()
        .await
        .unwrap()["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        history,
        vec![
            "feedback.report",
            "feedback.assign",
            "feedback.tag",
            "feedback.resolve",
            "feedback.reopen"
        ]
    );
    // The inbox lists it, filtered by tag and by status, from the URL.
    let inbox = admin
        .get("/admin/feedback?tag=slow")
        .await
        .text()
        .await
        .unwrap();
    assert!(inbox.contains(&id) && inbox.contains("Export hangs"));
    let none = admin
        .get("/admin/feedback?status=wontfix")
        .await
        .text()
        .await
        .unwrap();
    assert!(!none.contains(&id));
    let page = admin
        .get(&format!("/admin/feedback/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("feedback.resolve") && page.contains("raised the timeout"));
}

/// `glassbox report …` with a clean environment pointing at `app`, run
/// through `script` (a pseudo-terminal) when `tty`, with `input` on stdin.
async fn report_cli(
    app: &TestApp,
    token: &str,
    args: Vec<String>,
    tty: bool,
    input: &'static str,
) -> (Option<i32>, String, String) {
    let (base, token) = (app.at(""), token.to_string());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let home = tempfile::tempdir().unwrap();
        let bin = env!("CARGO_BIN_EXE_glassbox");
        let mut c = if tty {
            let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
            let mut c = Command::new("script");
            c.args([
                "-q",
                "-e",
                "-c",
                &format!("{bin} report {}", quoted.join(" ")),
                "/dev/null",
            ]);
            c
        } else {
            let mut c = Command::new(bin);
            c.arg("report").args(&args);
            c
        };
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("GLASSBOX_URL", base.trim_end_matches('/'))
            .env("GLASSBOX_TOKEN", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_command_previews_asks_and_sends_only_when_confirmed() {
    let app = TestApp::spawn().await;
    app.create_user("ann@example.com", Role::Analyst).await;
    let token = app.token_for("ann@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sess-1.jsonl");
    let mut text: String = (0..60)
        .map(|i| format!("{}\n", json!({"type": "user", "version": "2.0.14", "message": {"content": format!("turn {i}")}})))
        .collect();
    text.push_str(&error_line("Error: permission denied for table payroll"));
    text.push('\n');
    std::fs::write(&file, text).unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--message".to_string(),
            "payroll is denied".to_string(),
            "--session".to_string(),
            file.to_string_lossy().into_owned(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let count = || app.query_i64("SELECT count(*) FROM feedback_reports");

    // No terminal, no --yes: refused, nothing sent.
    let (code, _, err) = report_cli(&app, &token, args(&[]), false, "y\n").await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("nothing sent"));
    assert_eq!(count().await, 0);

    // A terminal, answered "n": the preview was shown, nothing sent.
    let (code, out, _) = report_cli(&app, &token, args(&[]), true, "n\n").await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("permission denied for table payroll") && out.contains("Send this report?")
    );
    assert!(
        out.contains("claude_code_version")
            && out.contains("turn 11")
            && !out.contains("turn 10\\")
    );
    assert_eq!(count().await, 0);

    // Answered "y": sent, with the last 50 lines and the environment.
    let (code, out, _) = report_cli(&app, &token, args(&[]), true, "y\n").await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Sent: report"));
    assert_eq!(count().await, 1);
    let lines = app
        .query_i64("SELECT len(string_split(trim(session_excerpt, chr(10)), chr(10))) FROM feedback_reports")
        .await;
    assert_eq!(lines, 50);
    assert_eq!(
        app.query_i64(
            "SELECT count(*) FROM feedback_reports WHERE session_file = 'sess-1.jsonl'
             AND json_extract_string(environment, '$.claude_code_version') = '2.0.14'"
        )
        .await,
        1
    );

    // --yes --json without a terminal: sent, the answer as JSON.
    let (code, out, err) = report_cli(&app, &token, args(&["--yes", "--json"]), false, "").await;
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["duplicates"], 1);
}
