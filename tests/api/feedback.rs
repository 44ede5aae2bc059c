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
    let admin = app.signed_in(crate::helpers::ADMIN_EMAIL).await;
    let page = admin.get(&format!("/admin/feedback/{id}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Export hangs"));
    assert!(html.contains("turn-error") && html.contains("timed out after 600 s"));
    let doc = scraper::Html::parse_document(&html);
    let link = scraper::Selector::parse("#session-link").unwrap();
    assert_eq!(
        doc.select(&link)
            .next()
            .and_then(|a| a.value().attr("href")),
        Some("/admin/sessions/ann@example.com/s1.jsonl")
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
