//! Every route, for anonymous, analyst, service and admin callers.

use glassbox::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, ADMIN_EMAIL};

#[derive(Clone, Copy)]
enum Body {
    None,
    Json(&'static str),
    Form(&'static str),
}

/// (method, path, body, [anonymous, analyst, service, admin]). `{uid}` is a
/// victim user's id, `{tok}` a fresh token id of that user, `{aid}` the admin's id.
const ROUTES: &[(&str, &str, Body, [u16; 4])] = &[
    // Sessions (issue 13): admin APIs, the /api/me twins.
    (
        "GET",
        "/api/admin/sessions/list",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/sessions/kpis",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/sessions/facets?anchor=started",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/sessions/heatmap",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/sessions/list?anchor=bogus",
        Body::None,
        [401, 403, 403, 422],
    ),
    (
        "GET",
        "/api/admin/sessions/{uid}/x.jsonl/transcript",
        Body::None,
        [401, 403, 403, 404],
    ),
    (
        "GET",
        "/api/admin/sessions/{uid}/x.txt/transcript",
        Body::None,
        [401, 403, 403, 400],
    ),
    (
        "GET",
        "/api/admin/sessions/{uid}/x.jsonl/download",
        Body::None,
        [401, 403, 403, 404],
    ),
    (
        "GET",
        "/api/admin/users/{uid}/sessions",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/users/{uid}/sessions/download-all",
        Body::None,
        [401, 403, 403, 404],
    ),
    (
        "GET",
        "/api/admin/users/{uid}/sessions/x.jsonl/download",
        Body::None,
        [401, 403, 403, 404],
    ),
    (
        "GET",
        "/api/admin/users/{uid}/activity",
        Body::None,
        [401, 403, 403, 200],
    ),
    ("GET", "/api/me/sessions", Body::None, [401, 200, 403, 200]),
    (
        "GET",
        "/api/me/sessions/list",
        Body::None,
        [401, 200, 403, 200],
    ),
    (
        "GET",
        "/api/me/sessions/kpis",
        Body::None,
        [401, 200, 403, 200],
    ),
    (
        "GET",
        "/api/me/sessions/facets",
        Body::None,
        [401, 200, 403, 200],
    ),
    (
        "GET",
        "/api/me/sessions/heatmap",
        Body::None,
        [401, 200, 403, 200],
    ),
    (
        "GET",
        "/api/me/sessions/download-all",
        Body::None,
        [401, 404, 403, 404],
    ),
    (
        "GET",
        "/api/me/sessions/x.jsonl/transcript",
        Body::None,
        [401, 404, 403, 404],
    ),
    (
        "GET",
        "/api/me/sessions/x.jsonl/download",
        Body::None,
        [401, 404, 403, 404],
    ),
    ("GET", "/healthz", Body::None, [200, 200, 200, 200]),
    ("GET", "/metrics", Body::None, [200, 200, 200, 200]),
    ("GET", "/cli/latest", Body::None, [200, 200, 200, 200]),
    ("GET", "/static/app.css", Body::None, [200, 200, 200, 200]),
    (
        "GET",
        "/static/vendor/htmx.min.js",
        Body::None,
        [200, 200, 200, 200],
    ),
    ("GET", "/login", Body::None, [200, 303, 303, 303]),
    ("GET", "/", Body::None, [303, 303, 303, 303]),
    ("GET", "/activity-center", Body::None, [308, 308, 308, 308]),
    (
        "GET",
        "/admin/scheduler-runs",
        Body::None,
        [308, 308, 308, 308],
    ),
    ("GET", "/admin/usage", Body::None, [308, 308, 308, 308]),
    ("GET", "/me", Body::None, [303, 200, 403, 200]),
    ("GET", "/admin/activity", Body::None, [303, 403, 403, 200]),
    (
        "GET",
        "/admin/activity?result_class=bogus",
        Body::None,
        [303, 403, 403, 422],
    ),
    (
        "GET",
        "/admin/activity/rows",
        Body::None,
        [303, 403, 403, 200],
    ),
    (
        "GET",
        "/admin/activity/facets?source=cli",
        Body::None,
        [303, 403, 403, 200],
    ),
    (
        "GET",
        "/admin/activity/kpis?source=cli&sort=action",
        Body::None,
        [303, 403, 403, 200],
    ),
    (
        "GET",
        "/admin/activity/kpis?result_class=bogus",
        Body::None,
        [303, 403, 403, 422],
    ),
    (
        "GET",
        "/admin/activity/facets?since=yesterday",
        Body::None,
        [303, 403, 403, 422],
    ),
    (
        "GET",
        "/admin/activity/rows/no-such-row",
        Body::None,
        [303, 403, 403, 404],
    ),
    (
        "POST",
        "/admin/activity/views",
        Body::Form("name=matrix&query=action%3Duser.update"),
        [303, 403, 403, 200],
    ),
    (
        "POST",
        "/admin/activity/views/no-such-view/delete",
        Body::None,
        [303, 403, 403, 404],
    ),
    ("GET", "/admin/telemetry", Body::None, [303, 403, 403, 200]),
    (
        "GET",
        "/admin/telemetry?group_by=username&sort=errors&dir=asc&series=cost",
        Body::None,
        [303, 403, 403, 200],
    ),
    (
        "GET",
        "/admin/telemetry?group_by=bogus",
        Body::None,
        [303, 403, 403, 422],
    ),
    (
        "GET",
        "/admin/telemetry/product",
        Body::None,
        [303, 403, 403, 200],
    ),
    (
        "GET",
        "/admin/telemetry/product?days=7",
        Body::None,
        [303, 403, 403, 200],
    ),
    (
        "GET",
        "/admin/telemetry/product?days=0",
        Body::None,
        [303, 403, 403, 422],
    ),
    ("GET", "/me/telemetry", Body::None, [303, 200, 403, 200]),
    (
        "GET",
        "/me/telemetry?group_by=day",
        Body::None,
        [303, 200, 403, 200],
    ),
    (
        "POST",
        "/admin/telemetry/ask",
        Body::Form("question=how+many+events"),
        [303, 403, 403, 200],
    ),
    ("GET", "/admin/sessions", Body::None, [303, 403, 403, 200]),
    (
        "GET",
        "/admin/sessions?anchor=bogus",
        Body::None,
        [303, 403, 403, 422],
    ),
    (
        "GET",
        "/admin/sessions/{uid}/x.jsonl",
        Body::None,
        [303, 403, 403, 404],
    ),
    (
        "GET",
        "/admin/sessions/{uid}/x.jsonl/turns",
        Body::None,
        [303, 403, 403, 404],
    ),
    (
        "GET",
        "/admin/users/{uid}/sessions-tab",
        Body::None,
        [303, 403, 403, 200],
    ),
    (
        "GET",
        "/admin/users/{uid}/sessions-tab?tab=activity",
        Body::None,
        [303, 403, 403, 200],
    ),
    ("GET", "/me/sessions", Body::None, [303, 200, 403, 200]),
    (
        "GET",
        "/me/sessions/x.jsonl",
        Body::None,
        [303, 404, 403, 404],
    ),
    ("GET", "/admin/feedback", Body::None, [303, 403, 403, 200]),
    ("GET", "/admin/users", Body::None, [303, 403, 403, 200]),
    (
        "GET",
        "/admin/users/{uid}",
        Body::None,
        [303, 403, 403, 200],
    ),
    (
        "POST",
        "/admin/users",
        Body::Form("email=page-made@example.com&role=analyst"),
        [303, 403, 403, 200],
    ),
    (
        "POST",
        "/admin/users/{uid}",
        Body::Form("name=Renamed"),
        [303, 403, 403, 200],
    ),
    (
        "POST",
        "/admin/users/{uid}/tokens",
        Body::Form("name=from-page&days=30"),
        [303, 403, 403, 200],
    ),
    (
        "POST",
        "/admin/tokens/{tok}/revoke",
        Body::None,
        [303, 403, 403, 200],
    ),
    (
        "POST",
        "/me/tokens",
        Body::Form("name=mine&days=30"),
        [303, 200, 403, 200],
    ),
    (
        "POST",
        "/me/tokens/{tok}/revoke",
        Body::None,
        [303, 404, 403, 404],
    ),
    ("POST", "/logout", Body::None, [303, 303, 303, 303]),
    ("GET", "/api/me/tokens", Body::None, [401, 200, 403, 200]),
    (
        "POST",
        "/api/me/tokens",
        Body::Json(r#"{"name": "api"}"#),
        [401, 201, 403, 201],
    ),
    (
        "DELETE",
        "/api/me/tokens/{tok}",
        Body::None,
        [401, 404, 403, 404],
    ),
    ("GET", "/api/admin/users", Body::None, [401, 403, 403, 200]),
    (
        "POST",
        "/api/admin/users",
        Body::Json(r#"{"email": "api-made@example.com", "role": "analyst"}"#),
        [401, 403, 403, 201],
    ),
    (
        "GET",
        "/api/admin/users/{uid}",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "PATCH",
        "/api/admin/users/{uid}",
        Body::Json(r#"{"name": "Patched"}"#),
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/users/{uid}/tokens",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "POST",
        "/api/admin/users/{uid}/tokens",
        Body::Json(r#"{"name": "by-admin"}"#),
        [401, 403, 403, 201],
    ),
    (
        "DELETE",
        "/api/admin/tokens/{tok}",
        Body::None,
        [401, 403, 403, 204],
    ),
    (
        "GET",
        "/api/admin/activity",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/activity/health",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/activity/sync",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/activity/export?format=csv",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/observability/facets",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/observability/kpis",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/observability/views",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "POST",
        "/api/admin/observability/views",
        Body::Json(r#"{"name": "mine", "query": {"source": "cli"}}"#),
        [401, 403, 403, 200],
    ),
    (
        "DELETE",
        "/api/admin/observability/views/no-such-view",
        Body::None,
        [401, 403, 403, 404],
    ),
    (
        "POST",
        "/api/v1/audit/events",
        Body::Json(r#"{"action": "matrix.probe", "result": "success"}"#),
        [401, 403, 202, 202],
    ),
    (
        "POST",
        "/api/v1/sync-runs",
        Body::Json(r#"{"table_id": "orders", "status": "ok"}"#),
        [401, 403, 201, 201],
    ),
    (
        "POST",
        "/api/v1/usage/events",
        Body::Json(r#"{"event_type": "matrix.probe", "metadata": {"k": "v"}}"#),
        [401, 202, 202, 202],
    ),
    (
        "POST",
        "/api/v1/usage/events",
        Body::Json(r#"{"event_type": "Not Valid"}"#),
        [401, 422, 422, 422],
    ),
    (
        "POST",
        "/api/v1/usage/events/batch",
        Body::Json(r#"{"events": [{"event_type": "matrix.probe"}]}"#),
        [401, 202, 202, 202],
    ),
    (
        "POST",
        "/api/v1/usage/events/batch",
        Body::Json(r#"{"events": []}"#),
        [401, 422, 422, 422],
    ),
    (
        "POST",
        "/api/v1/usage/events",
        Body::Json(r#"{"event_type": "about.someone", "user_id": "{uid}"}"#),
        [401, 403, 202, 202],
    ),
    (
        "GET",
        "/api/v1/usage/summary",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/v1/usage/summary?days=0",
        Body::None,
        [401, 403, 403, 422],
    ),
    (
        "GET",
        "/api/v1/usage/users?days=7",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/v1/usage/queries",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/v1/usage/dashboards",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/v1/usage/llm-tokens?days=366",
        Body::None,
        [401, 403, 403, 422],
    ),
    (
        "GET",
        "/api/v1/usage/llm-tokens",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/v1/usage/export?format=csv",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/v1/usage/export?format=xml",
        Body::None,
        [401, 403, 403, 422],
    ),
    (
        "POST",
        "/api/upload/sessions?filename=m.jsonl",
        Body::Json(r#"{"type":"user"}"#),
        [401, 201, 201, 201],
    ),
    (
        "POST",
        "/api/admin/run-session-processor?processor=usage",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "POST",
        "/api/admin/telemetry/reprocess?dry_run=true",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "POST",
        "/api/admin/telemetry/prune?dry_run=true",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/telemetry/facets",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/telemetry/kpis?only_errors=true",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/telemetry/query?group_by=model&sort=errors:asc",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/telemetry/query?sort=tool_name:asc",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/telemetry/summary?window=30d",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/telemetry/kpis?source=bogus",
        Body::None,
        [401, 403, 403, 422],
    ),
    (
        "GET",
        "/api/admin/telemetry/query?group_by=bogus",
        Body::None,
        [401, 403, 403, 422],
    ),
    (
        "GET",
        "/api/admin/telemetry/summary?window=1y",
        Body::None,
        [401, 403, 403, 422],
    ),
    (
        "GET",
        "/api/me/telemetry/facets",
        Body::None,
        [401, 200, 403, 200],
    ),
    (
        "GET",
        "/api/me/telemetry/kpis",
        Body::None,
        [401, 200, 403, 200],
    ),
    (
        "GET",
        "/api/me/telemetry/query?group_by=day",
        Body::None,
        [401, 200, 403, 200],
    ),
    (
        "GET",
        "/api/me/telemetry/summary",
        Body::None,
        [401, 200, 403, 200],
    ),
    (
        "GET",
        "/api/me/telemetry/query?since_minutes=525601",
        Body::None,
        [401, 422, 403, 422],
    ),
    (
        "GET",
        "/api/admin/telemetry/export?format=csv",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/telemetry/export?format=parquet&since_minutes=60",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/telemetry/export?format=xml",
        Body::None,
        [401, 403, 403, 422],
    ),
    (
        "GET",
        "/api/me/telemetry/export?format=json",
        Body::None,
        [401, 200, 403, 200],
    ),
    (
        "POST",
        "/api/admin/telemetry/ask",
        Body::Json(r#"{"question": "which tools are used most?"}"#),
        [401, 403, 403, 503],
    ),
    (
        "POST",
        "/api/admin/telemetry/ask",
        Body::Json(r#"{"question": " "}"#),
        [401, 403, 403, 400],
    ),
    (
        "POST",
        "/api/query",
        Body::Json(r#"{"sql": "SELECT count(*) FROM agnes_audit"}"#),
        [401, 200, 403, 200],
    ),
    (
        "POST",
        "/api/query",
        Body::Json(r#"{"sql": "SELECT * FROM audit_log"}"#),
        [401, 400, 403, 400],
    ),
    // Feedback inbox (SPEC §7): people report; admins read and act.
    (
        "POST",
        "/api/feedback",
        Body::Json(r#"{"message": "the query tool fails"}"#),
        [401, 201, 403, 201],
    ),
    (
        "POST",
        "/api/feedback",
        Body::Json(r#"{"message": ""}"#),
        [401, 422, 403, 422],
    ),
    (
        "POST",
        "/api/feedback",
        Body::Json(r#"{"message": "m", "environment": {"os": 1}}"#),
        [401, 422, 403, 422],
    ),
    ("GET", "/api/me/feedback", Body::None, [401, 200, 403, 200]),
    (
        "GET",
        "/api/me/feedback/no-such-report",
        Body::None,
        [401, 404, 403, 404],
    ),
    (
        "GET",
        "/api/admin/feedback",
        Body::None,
        [401, 403, 403, 200],
    ),
    (
        "GET",
        "/api/admin/feedback?status=bogus",
        Body::None,
        [401, 403, 403, 422],
    ),
    (
        "GET",
        "/api/admin/feedback/no-such-report",
        Body::None,
        [401, 403, 403, 404],
    ),
    (
        "POST",
        "/api/admin/feedback/no-such-report/actions",
        Body::Json(r#"{"action": "reopen"}"#),
        [401, 403, 403, 404],
    ),
    (
        "POST",
        "/api/admin/feedback/no-such-report/actions",
        Body::Json(r#"{"action": "explode"}"#),
        [401, 403, 403, 422],
    ),
    (
        "GET",
        "/admin/feedback?status=bogus&sort=duplicates",
        Body::None,
        [303, 403, 403, 422],
    ),
    (
        "GET",
        "/admin/feedback?tag=cli&sort=status&dir=asc",
        Body::None,
        [303, 403, 403, 200],
    ),
    (
        "GET",
        "/admin/feedback/no-such-report",
        Body::None,
        [303, 403, 403, 404],
    ),
    (
        "POST",
        "/admin/feedback/no-such-report/reopen",
        Body::Form(""),
        [303, 403, 403, 404],
    ),
    ("GET", "/me/feedback", Body::None, [303, 200, 403, 200]),
    // Telegram linking: hidden (404) without TELEGRAM_BOT_TOKEN.
    ("GET", "/me/telegram", Body::None, [303, 403, 403, 404]),
    (
        "POST",
        "/auth/token",
        Body::Json(r#"{"email": "nobody@example.com", "password": "wrong-password"}"#),
        [401, 401, 401, 401],
    ),
    ("GET", "/no/such/page", Body::None, [404, 404, 404, 404]),
    (
        "GET",
        "/api/no/such/thing",
        Body::None,
        [404, 404, 404, 404],
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_each_role_as_specified() {
    let app = TestApp::spawn().await;
    let victim = app.create_user("victim@example.com", Role::Analyst).await;
    let admin_id = app.user_by_email(ADMIN_EMAIL).await.unwrap().id;
    let callers = [
        ("anonymous", app.api()),
        ("analyst", app.api_as(Role::Analyst).await),
        ("service", app.api_as(Role::Service).await),
        ("admin", app.api_as(Role::Admin).await),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expected) in ROUTES {
        for (i, (who, client)) in callers.iter().enumerate() {
            // A fresh token of the victim for each call, so revocations succeed once.
            let tok = app
                .state
                .db
                .run({
                    let secret = app.state.auth.secret().to_vec();
                    let victim = victim.clone();
                    move |c| {
                        Ok(glassbox::accounts::issue_token(
                            c,
                            &secret,
                            &victim,
                            "t",
                            "pat",
                            chrono::Duration::days(1),
                            None,
                        )?
                        .row
                        .id)
                    }
                })
                .await
                .unwrap();
            let path = path
                .replace("{uid}", &victim.id)
                .replace("{tok}", &tok)
                .replace("{aid}", &admin_id);
            let mut req = client.client.request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.at(&path),
            );
            if let Some(t) = &client.token {
                req = req.bearer_auth(t);
            }
            req = match body {
                Body::None => req,
                Body::Json(j) => req
                    .header("content-type", "application/json")
                    .body(j.replace("{uid}", &victim.id)),
                Body::Form(f) => req
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(f.to_string()),
            };
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let is_api = path.starts_with("/api/")
                || path.starts_with("/auth/")
                || path.starts_with("/cli/");
            if is_api {
                assert!(
                    !resp.status().is_redirection(),
                    "{method} {path} redirected for {who}"
                );
                if status >= 400 {
                    let ct = resp
                        .headers()
                        .get("content-type")
                        .map(|v| v.to_str().unwrap().to_string());
                    let body: serde_json::Value = resp.json().await.unwrap_or(json!(null));
                    assert!(
                        ct.as_deref()
                            .is_some_and(|c| c.starts_with("application/json"))
                            && body["detail"].is_string(),
                        "{method} {path} for {who}: error without a JSON detail"
                    );
                }
            }
            if status != expected[i] {
                failures.push(format!(
                    "{method} {path} as {who}: expected {}, got {status}",
                    expected[i]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "route matrix mismatches:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_htmx_requests_get_401_with_hx_redirect_to_sign_in() {
    let app = TestApp::spawn().await;
    let resp = app.browser().htmx_get("/admin/users?x=1").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers().get("hx-redirect").unwrap().to_str().unwrap(),
        "/login?next=%2Fadmin%2Fusers%3Fx%3D1"
    );
    let page = app.browser().get("/admin/users?x=1").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers()["location"],
        "/login?next=%2Fadmin%2Fusers%3Fx%3D1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_role_on_a_page_gets_the_403_page_and_on_an_api_403_json() {
    let app = TestApp::spawn().await;
    app.create_user("ann@example.com", Role::Analyst).await;
    let b = app.signed_in("ann@example.com").await;
    let page = b.get("/admin/users").await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Admin access required") && html.contains("<html"),
        "a full error page"
    );
    let api = b.get("/api/admin/users").await;
    crate::helpers::assert_detail(api, StatusCode::FORBIDDEN, "Admin access required").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agnes_old_addresses_redirect_permanently_and_keep_the_query() {
    let app = TestApp::spawn().await;
    let api = app.api();
    for (from, to) in [
        ("/activity-center", "/admin/activity"),
        (
            "/activity-center?user_id=u1&since_minutes=60",
            "/admin/activity?user_id=u1&since_minutes=60",
        ),
        ("/admin/scheduler-runs", "/admin/activity?source=scheduler"),
        (
            "/admin/scheduler-runs?since_minutes=10080",
            "/admin/activity?source=scheduler&since_minutes=10080",
        ),
        (
            "/admin/scheduler-runs?source=cli&q=x",
            "/admin/activity?source=scheduler&q=x",
        ),
        ("/admin/usage", "/admin/telemetry"),
    ] {
        let resp = api.get(from).await;
        assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT, "{from}");
        assert_eq!(resp.headers()["location"], to, "{from}");
    }
}
