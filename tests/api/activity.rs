//! The Audit log's APIs: timeline, KPIs, facets, health, sync, export, saved
//! views, read suppression, and the producer endpoints.

use chrono::{Duration, NaiveDateTime, Utc};
use glassbox::audit::AuditEvent;
use glassbox::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_detail, Api, TestApp};

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn iso(t: NaiveDateTime) -> String {
    glassbox::isotime::format(&t)
}

/// (minutes ago, user, action, result, client_kind, resource, duration)
type Seed = (
    i64,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<i64>,
);

async fn seed(app: &TestApp, rows: &[Seed]) {
    let base = now();
    let events: Vec<AuditEvent> = rows
        .iter()
        .map(|(mins, user, action, result, kind, resource, dur)| {
            let mut e = AuditEvent::new(*action);
            e.timestamp = Some(base - Duration::minutes(*mins));
            e.user_id = user.map(str::to_string);
            e.result = result.map(str::to_string);
            e.client_kind = kind.map(str::to_string);
            e.resource = resource.map(str::to_string);
            e.duration_ms = *dur;
            e.params = Some(json!({"note": format!("{action} by {}", user.unwrap_or("nobody"))}));
            e
        })
        .collect();
    app.state
        .db
        .run(move |c| {
            for e in &events {
                glassbox::repo::audit::log(c, e)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// Agnes's KPI seed (reference §7, test_activity_api.py).
const AGNES_SEED: &[Seed] = &[
    (
        50,
        Some("alice"),
        "table.read",
        Some("success"),
        Some("web"),
        Some("table:orders"),
        Some(12),
    ),
    (
        40,
        Some("alice"),
        "table.read",
        Some("success"),
        Some("cli"),
        Some("table:customers"),
        Some(30),
    ),
    (
        30,
        Some("alice"),
        "query.run",
        Some("error.400"),
        Some("web"),
        Some("table:orders"),
        None,
    ),
    (
        20,
        Some("bob"),
        "query.run",
        Some("denied"),
        Some("cli"),
        Some("table:orders"),
        Some(5),
    ),
    (
        10,
        Some("sched-user"),
        "run_session_processor:usage",
        Some("success"),
        None,
        None,
        Some(900),
    ),
];

/// Removes every audit row (the bootstrap admin's `user.create` included), so
/// counts are the seed's alone.
async fn clear_audit(app: &TestApp) {
    app.state
        .db
        .run(|c| Ok(c.execute("DELETE FROM audit_log", [])?))
        .await
        .unwrap();
}

async fn get_json(api: &Api, path: &str) -> Value {
    let resp = api.get(path).await;
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

async fn self_reads(app: &TestApp, endpoint: &str) -> i64 {
    app.query_i64(&format!(
        "SELECT count(*) FROM audit_log WHERE action = 'activity.read' AND (params->>'endpoint') = '{endpoint}'"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_timeline_answers_in_agnes_shape_with_users_and_the_filter_echo() {
    let app = TestApp::spawn().await;
    app.create_user("alice@example.com", Role::Analyst).await;
    let alice = app.user_by_email("alice@example.com").await.unwrap();
    seed(&app, AGNES_SEED).await;
    app.state
        .db
        .run({
            let id = alice.id.clone();
            move |c| {
                glassbox::repo::audit::log(
                    c,
                    &AuditEvent::new("auth.login")
                        .user(id)
                        .success()
                        .client_kind("web"),
                )
            }
        })
        .await
        .unwrap();
    let api = app.api_as(Role::Admin).await;
    let body = get_json(&api, "/api/admin/activity?since_minutes=120").await;
    let rows = body["rows"].as_array().unwrap();
    assert!(rows.len() >= 6, "{body}");
    assert!(body["next_cursor"].is_null());
    let login = &rows[0];
    assert_eq!(login["action"], "auth.login", "newest first");
    assert_eq!(login["user_email"], "alice@example.com");
    assert_eq!(login["user_id"], alice.id.as_str());
    assert_eq!(login["source"], "web");
    assert_eq!(login["result_class"], "success");
    for key in [
        "id",
        "timestamp",
        "user_id",
        "action",
        "resource",
        "params",
        "result",
        "duration_ms",
        "params_before",
        "client_ip",
        "client_kind",
        "correlation_id",
        "event_id",
        "result_class",
        "source",
        "resource_prefix",
        "user_email",
        "user_name",
    ] {
        assert!(login.get(key).is_some(), "rows carry {key}");
    }
    let ts = login["timestamp"].as_str().unwrap();
    assert!(
        ts.ends_with('Z') && glassbox::isotime::parse(ts).is_some(),
        "{ts}"
    );
    assert_eq!(body["filter"]["since_minutes"], 120);
    assert_eq!(body["filter"]["include_self_reads"], false);

    let sync = get_json(&api, "/api/admin/activity?action_prefix=query.").await;
    let actions: Vec<_> = sync["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["query.run", "query.run"]);
    let tables = get_json(&api, "/api/admin/activity?resource_prefix=table:").await;
    assert_eq!(tables["rows"].as_array().unwrap().len(), 4);
    assert!(tables["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["resource"].as_str().unwrap().starts_with("table:")));
    assert_eq!(tables["filter"]["resource_prefix"], "table:");
    let exact = get_json(
        &api,
        "/api/admin/activity?resource=table:customers&result_pattern=succ%25",
    )
    .await;
    assert_eq!(exact["rows"].as_array().unwrap().len(), 1);
    let search = get_json(&api, "/api/admin/activity?q=QUERY.RUN%20BY%20BOB").await;
    assert_eq!(
        search["rows"].as_array().unwrap().len(),
        1,
        "q is case-insensitive"
    );
    let slow = get_json(&api, "/api/admin/activity?min_duration_ms=30").await;
    assert_eq!(slow["rows"].as_array().unwrap().len(), 2);
    let sched = get_json(&api, "/api/admin/activity?source=scheduler").await;
    assert_eq!(sched["rows"][0]["action"], "run_session_processor:usage");
}

#[tokio::test(flavor = "multi_thread")]
async fn kpi_events_total_equals_the_timeline_row_count_for_the_same_filters() {
    let app = TestApp::spawn().await;
    clear_audit(&app).await;
    seed(&app, AGNES_SEED).await;
    let api = app.api_as(Role::Admin).await;
    for filter in [
        "user_id=alice",
        "result_class=success",
        "result_class=denied",
        "result_class=error",
        "source=cli",
        "source=scheduler",
        "user_id=alice&source=web",
        "action_prefix=table.&result_class=success&source=cli",
        "since_minutes=35",
        "",
    ] {
        let kpis = get_json(&api, &format!("/api/admin/observability/kpis?{filter}")).await;
        let rows = get_json(&api, &format!("/api/admin/activity?limit=200&{filter}")).await;
        assert_eq!(
            kpis["events_total"].as_u64().unwrap() as usize,
            rows["rows"].as_array().unwrap().len(),
            "{filter}"
        );
    }
    let k = get_json(&api, "/api/admin/observability/kpis?since_minutes=60").await;
    assert_eq!(k["events_total"], 5);
    assert_eq!(
        k["active_users"], 2,
        "alice and bob; the scheduler is no user"
    );
    assert_eq!(k["errors"], 1);
    assert_eq!(k["error_rate"], 0.2);
    assert_eq!(k["duration_coverage"], 0.8);
    assert_eq!(k["p95_duration_ms"], 900);
    assert_eq!(k["window_minutes"], 60);
    assert!(k["previous"]["events_total"].is_number(), "{k}");
    let p95 = get_json(&api, "/api/admin/activity?min_duration_ms=900").await;
    assert_eq!(
        p95["rows"].as_array().unwrap().len(),
        1,
        "the p95 card's filter"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn self_reads_are_hidden_by_default_and_shown_on_request() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Admin).await;
    get_json(&api, "/api/admin/activity").await;
    let hidden = get_json(&api, "/api/admin/activity").await;
    assert!(hidden["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["action"] != "activity.read"));
    for flag in ["true", "1"] {
        let shown = get_json(
            &api,
            &format!("/api/admin/activity?include_self_reads={flag}"),
        )
        .await;
        assert!(
            shown["rows"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["action"] == "activity.read"),
            "{flag}"
        );
    }
    let read = get_json(
        &api,
        "/api/admin/activity?include_self_reads=true&action=activity.read",
    )
    .await;
    let row = &read["rows"][0];
    assert_eq!(row["params"]["endpoint"], "timeline");
    assert_eq!(row["client_kind"], "cli", "token requests are cli");
}

#[tokio::test(flavor = "multi_thread")]
async fn facets_for_alice_list_her_actions_result_classes_and_resource_prefixes() {
    let app = TestApp::spawn().await;
    app.create_user("bob@example.com", Role::Analyst).await;
    seed(&app, AGNES_SEED).await;
    let api = app.api_as(Role::Admin).await;
    let f = get_json(&api, "/api/admin/observability/facets?user_id=alice").await;
    let pairs = |key: &str| -> Vec<(String, i64)> {
        f[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["value"].as_str().unwrap().to_string(),
                    b["count"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        pairs("actions"),
        [("table.read".to_string(), 2), ("query.run".to_string(), 1)]
    );
    assert_eq!(
        pairs("result_classes"),
        [("success".to_string(), 2), ("error".to_string(), 1)]
    );
    assert_eq!(pairs("resources"), [("table:".to_string(), 3)]);
    assert_eq!(
        f["users"],
        json!([{"id": "alice", "label": "alice", "count": 3}])
    );
    assert_eq!(f["window_minutes"], 1440);
    let all = get_json(&api, "/api/admin/observability/facets").await;
    assert!(all["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["value"] == "error.400"));
    assert!(all["sources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["value"] == "scheduler"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cursor_pages_come_as_2_2_1_then_no_cursor() {
    let app = TestApp::spawn().await;
    clear_audit(&app).await;
    seed(&app, AGNES_SEED).await;
    let api = app.api_as(Role::Admin).await;
    let mut path = "/api/admin/activity?limit=2&since_minutes=60".to_string();
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    loop {
        let page = get_json(&api, &path).await;
        let rows = page["rows"].as_array().unwrap();
        sizes.push(rows.len());
        ids.extend(rows.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        let next = &page["next_cursor"];
        if next.is_null() {
            break;
        }
        path = format!(
            "/api/admin/activity?limit=2&since_minutes=60&cursor_ts={}&cursor_id={}",
            urlencode(next["ts"].as_str().unwrap()),
            next["id"].as_str().unwrap()
        );
    }
    assert_eq!(sizes, [2, 2, 1]);
    ids.dedup();
    assert_eq!(ids.len(), 5);
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn health_has_the_six_fields_and_colours_ingest_and_scheduler() {
    let app = TestApp::spawn().await;
    seed(
        &app,
        &[(
            10,
            None,
            "maintenance.cleanup",
            Some("success"),
            None,
            None,
            Some(3),
        )],
    )
    .await;
    app.state
        .db
        .run(|c| {
            c.execute_batch(
                "INSERT INTO session_uploads VALUES
                   ('u/a.jsonl', 'u', now()::TIMESTAMP - INTERVAL 1 HOUR, now()::TIMESTAMP - INTERVAL 1 HOUR, 1),
                   ('u/b.jsonl', 'u', now()::TIMESTAMP - INTERVAL 1 HOUR, now()::TIMESTAMP - INTERVAL 1 HOUR, 1),
                   ('u/c.jsonl', 'u', now()::TIMESTAMP - INTERVAL 1 HOUR, now()::TIMESTAMP - INTERVAL 1 HOUR, 1);
                 INSERT INTO usage_session_summary (session_file, session_id, username, processor_version)
                   VALUES ('u/a.jsonl', 'a', 'u', 1), ('u/b.jsonl', 'b', 'u', 1);",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let api = app.api_as(Role::Admin).await;
    let h = get_json(&api, "/api/admin/activity/health").await;
    let keys: Vec<_> = h["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "scheduler",
            "sync_24h",
            "active_users_today",
            "session_ingest",
            "processors",
            "database"
        ]
    );
    let field = |h: &Value, k: &str| {
        h["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == k)
            .unwrap()
            .clone()
    };
    let ingest = field(&h, "session_ingest");
    assert_eq!(ingest["value"], "3 up / 2 ingested");
    assert_eq!(ingest["color"], "yellow");
    assert_eq!(ingest["raw"], 1);
    assert_eq!(field(&h, "scheduler")["color"], "green");
    assert_eq!(field(&h, "scheduler")["value"], "10m ago");
    assert!(
        field(&h, "database")["value"]
            .as_str()
            .unwrap()
            .contains("disk free"),
        "{h}"
    );
    assert_eq!(
        h["status"], "yellow",
        "ingest, sync and processors are behind"
    );
    assert!(
        h["sentence"].as_str().unwrap().starts_with("Degraded: "),
        "{h}"
    );

    // Once the cache has expired: the scheduler went quiet three hours ago.
    app.state
        .db
        .run(|c| Ok(c.execute("UPDATE audit_log SET timestamp = timestamp - INTERVAL 3 HOUR WHERE action = 'maintenance.cleanup'", [])?))
        .await
        .unwrap();
    let cached = get_json(&api, "/api/admin/activity/health").await;
    assert_eq!(
        field(&cached, "scheduler")["color"],
        "green",
        "served from the 30 s cache"
    );
    app.state.audit_state.health.lock().await.take();
    let h = get_json(&api, "/api/admin/activity/health").await;
    assert_eq!(field(&h, "scheduler")["color"], "red");
    assert_eq!(h["status"], "red");
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_health_writes_at_most_one_audit_row() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Admin).await;
    for _ in 0..4 {
        get_json(&api, "/api/admin/activity/health").await;
    }
    assert_eq!(self_reads(&app, "health").await, 1);
    // Recomputed (cache dropped) within the minute: still suppressed.
    app.state.audit_state.health.lock().await.take();
    get_json(&api, "/api/admin/activity/health").await;
    assert_eq!(self_reads(&app, "health").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_reads_audit_once_and_different_filters_twice() {
    let app = TestApp::spawn().await;
    seed(&app, AGNES_SEED).await;
    let api = app.api_as(Role::Admin).await;
    let first = get_json(&api, "/api/admin/activity?source=cli&limit=1").await;
    get_json(&api, "/api/admin/activity?source=cli&limit=1").await;
    let next = &first["next_cursor"];
    get_json(
        &api,
        &format!(
            "/api/admin/activity?source=cli&limit=1&cursor_ts={}&cursor_id={}",
            urlencode(next["ts"].as_str().unwrap()),
            next["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(
        self_reads(&app, "timeline").await,
        1,
        "the cursor is not a filter"
    );
    get_json(&api, "/api/admin/activity?source=web").await;
    assert_eq!(self_reads(&app, "timeline").await, 2);
    let row = app
        .query_i64("SELECT count(*) FROM audit_log WHERE action = 'activity.read' AND (params->>'source') = 'web'")
        .await;
    assert_eq!(row, 1, "the row records the filters");
    // Another admin reading the same filters is another actor.
    app.create_user("second@example.com", Role::Admin).await;
    let mut other = app.api();
    other.token = Some(app.token_for("second@example.com").await);
    get_json(&other, "/api/admin/activity?source=web").await;
    assert_eq!(self_reads(&app, "timeline").await, 3);
    get_json(&api, "/api/admin/activity/sync").await;
    get_json(&api, "/api/admin/activity/sync").await;
    assert_eq!(self_reads(&app, "sync").await, 1);
    get_json(&api, "/api/admin/observability/kpis").await;
    get_json(&api, "/api/admin/observability/facets").await;
    assert_eq!(
        app.query_i64("SELECT count(*) FROM audit_log WHERE action = 'activity.read' AND (params->>'endpoint') NOT IN ('timeline', 'sync')").await,
        0,
        "facets and KPIs write no rows"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_422_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Admin).await;
    let valid_ts = urlencode(&iso(now()));
    let cases: Vec<(String, &str)> = vec![
        ("/api/admin/activity?since=yesterday".into(), "since"),
        ("/api/admin/activity?until=2026-13-01".into(), "until"),
        (
            "/api/admin/activity?since=2026-01-01T00:00:00Z&until=2026-03-01T00:00:00Z".into(),
            "30 days",
        ),
        (
            "/api/admin/activity?since=2026-03-01&until=2026-01-01".into(),
            "since",
        ),
        (
            format!(
                "/api/admin/activity?since={}",
                urlencode(&iso(now() - Duration::days(31)))
            ),
            "30 days",
        ),
        (
            "/api/admin/activity?since_minutes=43201".into(),
            "since_minutes",
        ),
        (
            "/api/admin/activity?since_minutes=0".into(),
            "since_minutes",
        ),
        (
            "/api/admin/activity?since_minutes=abc".into(),
            "since_minutes",
        ),
        (
            "/api/admin/activity?result_class=bogus".into(),
            "result_class",
        ),
        ("/api/admin/activity?source=bogus".into(), "source"),
        (
            "/api/admin/activity?include_self_reads=maybe".into(),
            "include_self_reads",
        ),
        (
            "/api/admin/activity?min_duration_ms=-1".into(),
            "min_duration_ms",
        ),
        ("/api/admin/activity?limit=0".into(), "limit"),
        ("/api/admin/activity?limit=201".into(), "limit"),
        (
            "/api/admin/activity?cursor_ts=garbage&cursor_id=0190a000-0000-7000-8000-000000000000"
                .into(),
            "cursor_ts",
        ),
        (
            format!("/api/admin/activity?cursor_ts={valid_ts}&cursor_id=not-a-uuid"),
            "cursor_id",
        ),
        (
            format!("/api/admin/activity?cursor_ts={valid_ts}"),
            "cursor_id",
        ),
        (format!("/api/admin/activity?q={}", "x".repeat(600)), "q"),
        ("/api/admin/activity/sync?limit=501".into(), "limit"),
        (
            "/api/admin/activity/sync?since_minutes=50000".into(),
            "since_minutes",
        ),
        (
            "/api/admin/observability/kpis?result_class=oops".into(),
            "result_class",
        ),
        (
            "/api/admin/observability/facets?since=2026-01-01&until=2026-03-01".into(),
            "30 days",
        ),
        ("/api/admin/activity/export?format=xml".into(), "format"),
        ("/api/admin/activity/export?since=nope".into(), "since"),
    ];
    for (path, needle) in cases {
        let resp = api.get(&path).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_detail(resp, StatusCode::UNPROCESSABLE_ENTITY, needle).await;
    }
    // Blank values (an HTML form's "any") are no filter at all.
    let blank = api
        .get("/api/admin/activity?user_id=&result_class=&since_minutes=&limit=")
        .await;
    assert_eq!(blank.status(), StatusCode::OK);
    // since/until replace since_minutes and are echoed.
    let since = iso(now() - Duration::hours(2));
    let body = get_json(
        &api,
        &format!("/api/admin/activity?since={}", urlencode(&since)),
    )
    .await;
    assert_eq!(body["filter"]["since"], since.as_str());
    assert!(body["filter"]["since_minutes"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_views_upsert_list_delete_and_enforce_their_limits() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Admin).await;
    let path = "/api/admin/observability/views";
    let v: Value = api
        .post(
            path,
            json!({"name": "Errors", "query": {"result_class": "error"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["name"], "Errors");
    let again: Value = api
        .post(
            path,
            json!({"name": "Errors", "query": {"result_class": "denied"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["id"], v["id"], "the same name updates the view");
    let list = get_json(&api, path).await;
    assert_eq!(list["views"].as_array().unwrap().len(), 1);
    assert_eq!(list["views"][0]["query"], json!({"result_class": "denied"}));

    let too_long = api
        .post(path, json!({"name": "n".repeat(81), "query": {}}))
        .await;
    assert_detail(too_long, StatusCode::UNPROCESSABLE_ENTITY, "name").await;
    let empty = api.post(path, json!({"name": "  ", "query": {}})).await;
    assert_detail(empty, StatusCode::UNPROCESSABLE_ENTITY, "name").await;
    let not_object = api.post(path, json!({"name": "x", "query": [1, 2]})).await;
    assert_detail(not_object, StatusCode::UNPROCESSABLE_ENTITY, "query").await;
    let huge = api
        .post(
            path,
            json!({"name": "big", "query": {"q": "x".repeat(65 * 1024)}}),
        )
        .await;
    assert_detail(huge, StatusCode::UNPROCESSABLE_ENTITY, "query").await;

    let admin_id = app
        .user_by_email(crate::helpers::ADMIN_EMAIL)
        .await
        .unwrap()
        .id;
    app.state
        .db
        .run(move |c| {
            for i in 0..99 {
                glassbox::repo::views::upsert(c, &admin_id, &format!("view {i}"), &json!({}))?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let over = api
        .post(path, json!({"name": "one too many", "query": {}}))
        .await;
    assert_detail(over, StatusCode::UNPROCESSABLE_ENTITY, "100 saved views").await;
    let reuse = api
        .post(path, json!({"name": "view 3", "query": {"source": "cli"}}))
        .await;
    assert_eq!(
        reuse.status(),
        StatusCode::OK,
        "an existing name is still saved"
    );

    app.create_user("other-admin@example.com", Role::Admin)
        .await;
    let mut other = app.api();
    other.token = Some(app.token_for("other-admin@example.com").await);
    let id = v["id"].as_str().unwrap();
    let theirs = other
        .call(Method::DELETE, &format!("{path}/{id}"), None)
        .await;
    assert_detail(theirs, StatusCode::NOT_FOUND, "view not found").await;
    assert_eq!(
        get_json(&other, path).await["views"],
        json!([]),
        "views are per user"
    );
    let mine = api
        .call(Method::DELETE, &format!("{path}/{id}"), None)
        .await;
    assert_eq!(mine.status(), StatusCode::NO_CONTENT);
    let gone = api
        .call(Method::DELETE, &format!("{path}/{id}"), None)
        .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    // Each change is audited once; refused ones write nothing.
    assert_eq!(
        app.query_i64(
            "SELECT count(*) FROM audit_log WHERE action = 'observability.view.save' AND result = 'success'"
        )
        .await,
        3
    );
    assert_eq!(
        app.query_i64(
            "SELECT count(*) FROM audit_log WHERE action = 'observability.view.save' AND (params->>'replaced')::BOOLEAN"
        )
        .await,
        2,
        "the second save of Errors and the reuse of view 3 replaced a view"
    );
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'observability.view.delete' AND resource = 'view:{id}'"
        ))
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_runs_posted_by_a_service_show_in_the_sync_list() {
    let app = TestApp::spawn().await;
    let service = app.api_as(Role::Service).await;
    let resp = service
        .post(
            "/api/v1/sync-runs",
            json!([
                {"table_id": "orders", "rows": 120, "duration_ms": 900, "status": "ok"},
                {"table_id": "customers", "synced_at": iso(now() - Duration::hours(2)), "status": "error", "error": "upstream timeout"},
                {"table_id": "old", "synced_at": iso(now() - Duration::hours(30)), "status": "ok"}
            ]),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["accepted"], 3);
    let api = app.api_as(Role::Admin).await;
    let list = get_json(&api, "/api/admin/activity/sync").await;
    let rows = list["rows"].as_array().unwrap();
    let names: Vec<_> = rows
        .iter()
        .map(|r| r["table_id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders", "customers"], "newest first, last 24 h");
    assert_eq!(rows[0]["rows"], 120);
    assert_eq!(rows[0]["duration_ms"], 900);
    assert_eq!(rows[0]["status"], "ok");
    assert!(rows[0]["synced_at"].is_string());
    let failed = get_json(
        &api,
        "/api/admin/activity/sync?status=error&since_minutes=2880",
    )
    .await;
    assert_eq!(failed["rows"].as_array().unwrap().len(), 1);
    assert_eq!(
        get_json(&api, "/api/admin/activity/sync?limit=1").await["rows"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let bad = service
        .post(
            "/api/v1/sync-runs",
            json!([{"table_id": "t", "status": "ok"}, {"status": "ok"}]),
        )
        .await;
    assert_detail(bad, StatusCode::UNPROCESSABLE_ENTITY, "runs[1].table_id").await;
    let bad = service
        .post(
            "/api/v1/sync-runs",
            json!({"table_id": "t", "status": "ok", "rows": -1}),
        )
        .await;
    assert_detail(bad, StatusCode::UNPROCESSABLE_ENTITY, "rows").await;
    assert_eq!(
        app.query_i64("SELECT count(*) FROM sync_history").await,
        3,
        "invalid batches write nothing"
    );
    let h = get_json(&api, "/api/admin/activity/health").await;
    let sync = h["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "sync_24h")
        .unwrap()
        .clone();
    assert_eq!(sync["value"], "1 ok / 1 fail");
    assert_eq!(sync["color"], "red");
}

#[tokio::test(flavor = "multi_thread")]
async fn producers_post_audit_events_idempotently_and_only_with_the_right_role() {
    let app = TestApp::spawn().await;
    app.create_user("carol@example.com", Role::Analyst).await;
    let carol = app.user_by_email("carol@example.com").await.unwrap();
    let service = app.api_as(Role::Service).await;
    let path = "/api/v1/audit/events";

    let one = service
        .post(path, json!({"action": "table.read", "user_id": "Carol@Example.com", "resource": "table:orders",
                           "params": {"rows": 5}, "result": "success", "duration_ms": 42,
                           "client_kind": "agent", "event_id": "ev-1"}))
        .await;
    assert_eq!(one.status(), StatusCode::ACCEPTED);
    assert_eq!(
        one.json::<Value>().await.unwrap(),
        json!({"accepted": 1, "ignored": 0})
    );

    let batch = service
        .post(path, json!([
            {"action": "query.run", "event_id": "ev-1"},
            {"action": "query.run", "event_id": "ev-2", "timestamp": iso(now() - Duration::hours(23))},
            {"action": "query.run", "event_id": "ev-2"},
            {"action": "sync.trigger"}
        ]))
        .await;
    assert_eq!(batch.status(), StatusCode::ACCEPTED);
    assert_eq!(
        batch.json::<Value>().await.unwrap(),
        json!({"accepted": 2, "ignored": 2})
    );
    assert_eq!(
        app.query_i64("SELECT count(*) FROM audit_log WHERE event_id IS NOT NULL")
            .await,
        2
    );

    let admin = app.api_as(Role::Admin).await;
    let rows = get_json(&admin, "/api/admin/activity?action=table.read").await;
    let row = &rows["rows"][0];
    assert_eq!(
        row["user_id"],
        carol.id.as_str(),
        "a known email names the user"
    );
    assert_eq!(row["source"], "agent");
    assert_eq!(row["params"], json!({"rows": 5}));
    assert_eq!(row["duration_ms"], 42);
    let by_admin = admin.post(path, json!({"action": "admin.note"})).await;
    assert_eq!(by_admin.status(), StatusCode::ACCEPTED);

    let analyst = app.api_as(Role::Analyst).await;
    assert_detail(
        analyst.post(path, json!({"action": "x"})).await,
        StatusCode::FORBIDDEN,
        "service",
    )
    .await;
    assert_eq!(
        app.api().post(path, json!({"action": "x"})).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_large_events_within_the_item_limits_is_accepted_whole() {
    let app = TestApp::spawn().await;
    let service = app.api_as(Role::Service).await;
    // 40 events of 60 KiB params: 2.4 MB, over the 2 MiB limit of other JSON bodies.
    let big = json!({"action": "table.read", "params": {"blob": "x".repeat(60 * 1024)}});
    let resp = service
        .post("/api/v1/audit/events", Value::Array(vec![big; 40]))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        app.query_i64(
            "SELECT count(*) FROM audit_log WHERE action = 'table.read' AND length(params->>'blob') = 61440"
        )
        .await,
        40,
        "kept as sent"
    );
    // Other JSON bodies keep their small limit, with a message that says what to do.
    let admin = app.api_as(Role::Admin).await;
    assert_detail(
        admin
            .post(
                "/api/admin/observability/views",
                json!({"name": "big", "query": {"q": "x".repeat(3 * 1024 * 1024)}}),
            )
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "smaller requests",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn producer_bounds_name_the_first_bad_item_and_an_invalid_batch_writes_nothing() {
    let app = TestApp::spawn().await;
    let service = app.api_as(Role::Service).await;
    let path = "/api/v1/audit/events";
    let before = app.query_i64("SELECT count(*) FROM audit_log").await;
    let ok = json!({"action": "fine"});
    let cases = [
        (
            json!([ok, ok, ok, {"result": "success"}]),
            "events[3].action",
        ),
        (json!([ok, {"action": "a".repeat(129)}]), "events[1].action"),
        (
            json!([ok, {"action": "x", "params": {"blob": "x".repeat(64 * 1024)}}]),
            "events[1].params",
        ),
        (
            json!([ok, {"action": "x", "params": {"a": "x".repeat(33 * 1024)},
                        "params_before": {"a": "y".repeat(33 * 1024)}}]),
            "events[1].params_before: params and params_before together",
        ),
        (
            json!([{"action": "x", "params": "not an object"}]),
            "events[0].params",
        ),
        (
            json!([{"action": "x", "timestamp": iso(now() - Duration::hours(25))}]),
            "events[0].timestamp",
        ),
        (
            json!([{"action": "x", "timestamp": iso(now() + Duration::minutes(10))}]),
            "events[0].timestamp",
        ),
        (
            json!([{"action": "x", "timestamp": "soon"}]),
            "events[0].timestamp",
        ),
        (
            json!([{"action": "x", "duration_ms": -5}]),
            "events[0].duration_ms",
        ),
        (
            json!([{"action": "x", "duration_ms": "slow"}]),
            "events[0].duration_ms",
        ),
        (json!([{"action": "x", "colour": "red"}]), "unknown field"),
        (json!({"action": "x", "user_id": 7}), "user_id"),
        (json!([]), "body"),
        (json!("hello"), "body"),
        (Value::Array(vec![ok.clone(); 1001]), "1000"),
    ];
    for (body, needle) in cases {
        let resp = service.post(path, body).await;
        assert_detail(resp, StatusCode::UNPROCESSABLE_ENTITY, needle).await;
    }
    assert_eq!(
        app.query_i64("SELECT count(*) FROM audit_log").await,
        before,
        "nothing written"
    );
    let full = service.post(path, Value::Array(vec![ok; 1000])).await;
    assert_eq!(full.status(), StatusCode::ACCEPTED, "1000 is allowed");
    assert_eq!(
        app.query_i64("SELECT count(*) FROM audit_log").await,
        before + 1000
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_csv_export_streams_exactly_the_filtered_rows_and_audits_after_the_stream() {
    let app = TestApp::spawn().await;
    clear_audit(&app).await;
    seed(&app, AGNES_SEED).await;
    seed(
        &app,
        &[(
            5,
            Some("carol"),
            "table.read",
            Some("success"),
            Some("web"),
            Some("table:x,\"quoted\""),
            None,
        )],
    )
    .await;
    let api = app.api_as(Role::Admin).await;
    get_json(&api, "/api/admin/activity").await; // a self-read, which the export hides
    let since = (now() - Duration::hours(2)).and_utc().timestamp();
    let since = chrono::DateTime::from_timestamp(since, 0)
        .unwrap()
        .naive_utc();
    let until = since + Duration::hours(2) + Duration::minutes(1);
    let window = format!(
        "since={}&until={}",
        urlencode(&iso(since)),
        urlencode(&iso(until))
    );

    let kpis = get_json(&api, &format!("/api/admin/observability/kpis?{window}")).await;
    let resp = api
        .get(&format!("/api/admin/activity/export?format=csv&{window}"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        disposition,
        format!(
            "attachment; filename=\"audit_log_{}_{}.csv\"",
            glassbox::isotime::compact(&since),
            glassbox::isotime::compact(&until)
        )
    );
    let text = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        header,
        [
            "id",
            "timestamp",
            "user_id",
            "action",
            "resource",
            "params",
            "result",
            "duration_ms",
            "params_before",
            "client_ip",
            "client_kind",
            "correlation_id",
            "event_id",
            "result_class",
            "source",
            "resource_prefix",
            "user_email",
            "user_name"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len() as i64, kpis["events_total"].as_i64().unwrap());
    assert_eq!(rows.len(), 6, "the seed; the self-read is hidden");
    assert_eq!(&rows[0][3], "table.read", "oldest first");
    assert!(rows.windows(2).all(|w| w[0][1] <= w[1][1]), "in time order");
    let carol = rows.iter().find(|r| &r[2] == "carol").unwrap();
    assert_eq!(&carol[4], "table:x,\"quoted\"", "CSV quoting round-trips");
    assert_eq!(&carol[7], "", "NULL is an empty field");
    assert!(rows[0][1].ends_with('Z'));
    let params: Value = serde_json::from_str(&rows[0][5]).unwrap();
    assert_eq!(params["note"], "table.read by alice");

    let exported = app
        .query_i64("SELECT CAST(params->>'row_count' AS BIGINT) FROM audit_log WHERE action = 'audit.export'")
        .await;
    assert_eq!(
        exported, 6,
        "audited with the row count once the stream ended"
    );

    let filtered = api
        .get(&format!(
            "/api/admin/activity/export?{window}&user_id=alice"
        ))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        filtered.lines().count(),
        1 + 3,
        "header + alice's rows; csv is the default"
    );
    let none = api
        .get("/api/admin/activity/export?user_id=nobody")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(none.lines().count(), 1, "just the header");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_export_arrives_whole_across_many_chunks() {
    let app = TestApp::spawn().await;
    clear_audit(&app).await;
    let service = app.api_as(Role::Service).await;
    for batch in 0..3 {
        let events: Vec<Value> = (0..1000)
            .map(|i| {
                json!({"action": "table.read", "user_id": format!("u{}", i % 7), "resource": "table:orders",
                       "params": {"n": batch * 1000 + i, "text": "line one\nline two, with \"quotes\""},
                       "result": "success", "client_kind": "cli"})
            })
            .collect();
        let resp = service
            .post("/api/v1/audit/events", Value::Array(events))
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }
    let api = app.api_as(Role::Admin).await;
    let body = api
        .get("/api/admin/activity/export?action=table.read")
        .await
        .bytes()
        .await
        .unwrap();
    assert!(
        body.len() > 4 * 64 * 1024,
        "several chunks: {} bytes",
        body.len()
    );
    let mut reader = csv::Reader::from_reader(&body[..]);
    let mut ns: Vec<i64> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.len(), 18);
            serde_json::from_str::<Value>(&r[5]).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ns.len(), 3000);
    ns.sort();
    ns.dedup();
    assert_eq!(ns.len(), 3000, "every row once");
}

#[tokio::test(flavor = "multi_thread")]
async fn audited_requests_record_their_duration_client_ip_and_correlation_id() {
    let app = TestApp::spawn().await;
    let admin = app.api_as(Role::Admin).await;
    let resp = admin
        .client
        .get(app.at("/api/admin/activity/sync"))
        .bearer_auth(admin.token.as_deref().unwrap())
        .header("X-Request-Id", "trace-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-request-id"], "trace-7f3a", "echoed back");
    let (ip, corr, kind, timed) = app
        .state
        .db
        .run(|c| {
            Ok(c.query_row(
                "SELECT client_ip, correlation_id, client_kind, duration_ms IS NOT NULL AND duration_ms >= 0
                 FROM audit_log WHERE action = 'activity.read'",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                    ))
                },
            )?)
        })
        .await
        .unwrap();
    assert_eq!(
        (ip.as_str(), corr.as_str(), kind.as_str()),
        ("127.0.0.1", "trace-7f3a", "cli")
    );
    assert!(timed, "the request-timing layer fills duration_ms");
    // The timeline finds the request's rows by its correlation id.
    let found = get_json(
        &admin,
        "/api/admin/activity?correlation_id=trace-7f3a&include_self_reads=true",
    )
    .await;
    assert_eq!(found["rows"].as_array().unwrap().len(), 1);
    assert_eq!(found["rows"][0]["correlation_id"], "trace-7f3a");
    assert_eq!(found["filter"]["correlation_id"], "trace-7f3a");
    // Without an id of the caller's, one is made (a UUIDv7) and written.
    let resp = admin.get("/api/admin/activity/sync?status=failed").await;
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(uuid::Uuid::parse_str(&made).unwrap().get_version_num(), 7);
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM audit_log WHERE correlation_id = '{made}'"
        ))
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_audit_write_never_fails_the_request_that_caused_it() {
    let app = TestApp::spawn().await;
    let exec = |sql: &'static str| {
        let db = app.state.db.clone();
        async move { db.run(move |c| Ok(c.execute_batch(sql)?)).await.unwrap() }
    };
    // Every audit write now fails: the table is gone.
    exec("ALTER TABLE audit_log RENAME TO audit_log_away").await;
    let mut b = app.browser();
    let resp = b
        .login(crate::helpers::ADMIN_EMAIL, crate::helpers::PASSWORD)
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "signed in all the same"
    );
    let token = app
        .api()
        .post(
            "/auth/token",
            json!({"email": crate::helpers::ADMIN_EMAIL, "password": crate::helpers::PASSWORD}),
        )
        .await;
    assert_eq!(token.status(), StatusCode::OK);
    exec("ALTER TABLE audit_log_away RENAME TO audit_log").await;
    assert_eq!(
        app.query_i64("SELECT count(*) FROM audit_log WHERE action LIKE 'auth.%'")
            .await,
        0,
        "nothing was written while the table was away"
    );
    // And the server keeps auditing once the table is back.
    b.refresh_csrf("/me").await;
    let out = b.post_form("/logout", &[]).await;
    assert!(out.status().is_success(), "{}", out.status());
    assert_eq!(
        app.query_i64("SELECT count(*) FROM audit_log WHERE action = 'auth.logout'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn glassboxs_own_rows_keep_at_most_256_characters_of_a_logged_value() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.com", "a".repeat(1000));
    let resp = app
        .api()
        .post("/auth/token", json!({"email": email, "password": "wrong"}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.query_i64(
            "SELECT max(length(params->>'email')) FROM audit_log WHERE action = 'auth.login' AND result = 'invalid_password'"
        )
        .await,
        256
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_export_gives_the_same_rows_as_ndjson_and_parquet() {
    let app = TestApp::spawn().await;
    clear_audit(&app).await;
    seed(&app, AGNES_SEED).await;
    seed(
        &app,
        &[(
            3,
            Some("mallory"),
            "=cmd|'/c calc'!A1",
            None,
            None,
            Some("@SUM(1)"),
            Some(-1),
        )],
    )
    .await;
    let api = app.api_as(Role::Admin).await;
    // A fixed window: the exports' own audit rows come after it.
    let until = now() + Duration::seconds(1);
    let window = format!(
        "since={}&until={}",
        urlencode(&iso(until - Duration::hours(2))),
        urlencode(&iso(until))
    );
    let window = window.as_str();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let kpis = get_json(&api, &format!("/api/admin/observability/kpis?{window}")).await;
    let total = kpis["events_total"].as_i64().unwrap();
    assert_eq!(total, 6);

    for format in ["json", "ndjson"] {
        let resp = api
            .get(&format!(
                "/api/admin/activity/export?format={format}&{window}"
            ))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
        assert!(resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".ndjson\""));
        let text = resp.text().await.unwrap();
        let rows: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len() as i64, total, "{format}");
        assert_eq!(rows[0]["action"], "table.read", "oldest first");
        let m = rows.iter().find(|r| r["user_id"] == "mallory").unwrap();
        assert_eq!(
            m["action"], "=cmd|'/c calc'!A1",
            "NDJSON keeps text as sent"
        );
    }

    let resp = api
        .get(&format!(
            "/api/admin/activity/export?format=parquet&{window}"
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.parquet");
    std::fs::write(&file, &bytes).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let (n, actions): (i64, i64) = conn
        .query_row(
            &format!(
                "SELECT count(*), count(DISTINCT action) FROM read_parquet('{}')",
                file.display()
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (n, actions),
        (total, 4),
        "DuckDB reads the Parquet file back"
    );

    // CSV: the cells a spreadsheet would run as formulas are neutralised.
    let csv_text = api
        .get(&format!("/api/admin/activity/export?format=csv&{window}"))
        .await
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let m = rows.iter().find(|r| &r[2] == "mallory").unwrap();
    assert_eq!(&m[3], "'=cmd|'/c calc'!A1");
    assert_eq!(&m[4], "'@SUM(1)");
    let exports = app
        .query_i64("SELECT count(*) FROM audit_log WHERE action = 'audit.export' AND (params->>'format') IN ('ndjson', 'parquet', 'csv')")
        .await;
    assert_eq!(exports, 4, "each export audited with its format");
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_answer_with_vary_hx_request_and_an_unknown_export_format_is_named() {
    let app = TestApp::spawn().await;
    let mut b = app.browser();
    b.login(crate::helpers::ADMIN_EMAIL, crate::helpers::PASSWORD)
        .await;
    for resp in [
        b.get("/admin/activity").await,
        b.htmx_get("/admin/activity").await,
    ] {
        assert_eq!(resp.status(), StatusCode::OK);
        let vary: Vec<_> = resp
            .headers()
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert!(vary.iter().any(|v| v.contains("HX-Request")), "{vary:?}");
    }
    let api = app.api_as(Role::Admin).await;
    assert_detail(
        api.get("/api/admin/activity/export?format=xlsx").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "format: must be one of csv, ndjson, parquet",
    )
    .await;
}
