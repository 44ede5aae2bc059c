//! The usage monitoring API (SPEC §9): intake through the queue, its limits
//! and who may name the user, drain on shutdown, 503 when full, the admin
//! reads, the SIEM export, metrics and PostHog forwarding.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use glassbox::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_detail, TestApp, ADMIN_EMAIL};

const EVENTS: &str = "/api/v1/usage/events";
const BATCH: &str = "/api/v1/usage/events/batch";

async fn stored(app: &TestApp) -> i64 {
    app.query_i64("SELECT count(*) FROM app_events").await
}

/// Waits (up to 20 s) until the writer has stored `n` events in all.
async fn written(app: &TestApp, n: i64) {
    for _ in 0..1000 {
        if stored(app).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the writer never stored {n} events (stored {})",
        stored(app).await
    );
}

async fn rows(app: &TestApp, sql: &str) -> Vec<Vec<Option<String>>> {
    let sql = sql.to_string();
    app.state
        .db
        .run(move |c| {
            let mut stmt = c.prepare(&sql)?;
            let out = stmt
                .query_map([], |r| {
                    (0..r.as_ref().column_count())
                        .map(|i| r.get::<_, Option<String>>(i))
                        .collect::<Result<Vec<_>, _>>()
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(out)
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_signed_in_caller_reports_events_that_are_stored_as_their_own() {
    let app = TestApp::spawn().await;
    let analyst = app.api_as(Role::Analyst).await;
    let service = app.api_as(Role::Service).await;
    let admin = app.api_as(Role::Admin).await;
    for (api, source) in [(&analyst, "a"), (&service, "s"), (&admin, "ad")] {
        let resp = api
            .post(
                EVENTS,
                json!({"event_type": "sql_generation", "metadata": {"question": "how many?"}, "source": source}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        assert_eq!(
            resp.json::<Value>().await.unwrap(),
            json!({"status": "accepted"})
        );
    }
    // A browser needs the CSRF token, like every state-changing cookie request.
    let b = app.signed_in("analyst@example.com").await;
    let body = json!({"event_type": "ui.click", "metadata": {}});
    let resp = b
        .json(Method::POST, EVENTS, Some(body.clone()), false)
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = b.json(Method::POST, EVENTS, Some(body), true).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(
        app.api()
            .post(EVENTS, json!({"event_type": "x"}))
            .await
            .status()
            == StatusCode::UNAUTHORIZED
    );

    written(&app, 4).await;
    let analyst_id = app.user_by_email("analyst@example.com").await.unwrap().id;
    let service_id = app.user_by_email("service@example.com").await.unwrap().id;
    let admin_id = app.user_by_email(ADMIN_EMAIL).await.unwrap().id;
    let got = rows(
        &app,
        "SELECT user_id, event_type, source, metadata::VARCHAR FROM app_events ORDER BY created_at, id",
    )
    .await;
    let owners: Vec<(String, String)> = got
        .iter()
        .map(|r| (r[0].clone().unwrap(), r[2].clone().unwrap_or_default()))
        .collect();
    assert!(owners.contains(&(analyst_id.clone(), "a".into())));
    assert!(owners.contains(&(service_id, "s".into())));
    assert!(owners.contains(&(admin_id, "ad".into())));
    assert!(owners.contains(&(analyst_id, "".into())));
    assert!(got
        .iter()
        .any(|r| r[3].as_deref() == Some(r#"{"question":"how many?"}"#)));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_events_get_422_naming_the_field_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Analyst).await;
    let cases = [
        (json!({}), "event_type: required"),
        (json!({"event_type": ""}), "event_type:"),
        (json!({"event_type": "Has Caps"}), "event_type:"),
        (json!({"event_type": "x".repeat(65)}), "event_type:"),
        (json!({"event_type": 7}), "event_type: must be a string"),
        (json!({"event_type": "x", "metadata": "flat"}), "metadata:"),
        (
            json!({"event_type": "x", "metadata": {"rows": 12}}),
            "metadata.rows: must be a string",
        ),
        (
            json!({"event_type": "x", "metadata": {"a": {"b": "c"}}}),
            "metadata.a:",
        ),
        (
            json!({"event_type": "x", "metadata": (0..65).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
            "metadata: at most 64 keys",
        ),
        (
            json!({"event_type": "x", "metadata": {"q": "y".repeat(8 * 1024)}}),
            "metadata: larger than 8 KiB",
        ),
        (
            json!({"event_type": "x", "source": "s".repeat(65)}),
            "source: at most 64",
        ),
        (
            json!({"event_type": "x", "when": "now"}),
            "unknown field `when`",
        ),
        (
            json!(["not", "an", "object"]),
            "body: expected a JSON object",
        ),
    ];
    for (body, needle) in cases {
        assert_detail(
            api.post(EVENTS, body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            needle,
        )
        .await;
    }
    let resp = api
        .client
        .post(app.at(EVENTS))
        .bearer_auth(api.token.as_ref().unwrap())
        .header("content-type", "application/json")
        .body("{\"event_type\": ")
        .send()
        .await
        .unwrap();
    assert_detail(resp, StatusCode::UNPROCESSABLE_ENTITY, "malformed JSON").await;
    // Nothing was queued: a good event afterwards is the only row.
    assert_eq!(
        api.post(EVENTS, json!({"event_type": "ok"})).await.status(),
        StatusCode::ACCEPTED
    );
    written(&app, 1).await;
    assert_eq!(stored(&app).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_holds_up_to_1000_events_and_is_stored_whole_or_not_at_all() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Service).await;
    let many = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"event_type": "sql_execution", "metadata": {"rows": i.to_string()}}))
            .collect()
    };
    let resp = api.post(BATCH, json!({"events": many(1000)})).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"status": "accepted", "accepted": 1000})
    );
    // A bare array is a batch too.
    let resp = api.post(BATCH, Value::Array(many(2))).await;
    assert_eq!(resp.json::<Value>().await.unwrap()["accepted"], 2);

    assert_detail(
        api.post(BATCH, json!({"events": many(1001)})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "events: at most 1000",
    )
    .await;
    assert_detail(
        api.post(BATCH, json!({"events": []})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "events:",
    )
    .await;
    assert_detail(
        api.post(BATCH, json!({"items": many(1)})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "events",
    )
    .await;
    let mut one_bad = many(5);
    one_bad[3] = json!({"event_type": "sql_execution", "metadata": {"rows": 3}});
    assert_detail(
        api.post(BATCH, json!({"events": one_bad})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "events[3].metadata.rows",
    )
    .await;
    // Over 16 MiB: refused before parsing.
    let big = "y".repeat(8000);
    let huge: Vec<Value> = (0..2100)
        .map(|_| json!({"event_type": "x", "metadata": {"q": big}}))
        .collect();
    let resp = api.post(BATCH, json!({"events": huge})).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    written(&app, 1002).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        stored(&app).await,
        1002,
        "nothing of a refused batch is stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_service_and_admin_tokens_may_name_the_user_an_event_is_about() {
    let app = TestApp::spawn().await;
    let service = app.api_as(Role::Service).await;
    let analyst = app.api_as(Role::Analyst).await;
    let admin = app.api_as(Role::Admin).await;
    let analyst_id = app.user_by_email("analyst@example.com").await.unwrap().id;
    let admin_id = app.user_by_email(ADMIN_EMAIL).await.unwrap().id;

    let about = |u: &str| json!({"event_type": "dashboard_publish", "user_id": u});
    assert_eq!(
        service.post(EVENTS, about(&analyst_id)).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        admin.post(EVENTS, about(&analyst_id)).await.status(),
        StatusCode::ACCEPTED
    );
    assert_detail(
        service.post(EVENTS, about("no-such-user")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "user_id",
    )
    .await;
    assert_detail(
        service
            .post(
                BATCH,
                json!({"events": [about(&analyst_id), about("ghost")]}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "events[1].user_id",
    )
    .await;
    assert_detail(
        analyst.post(EVENTS, about(&admin_id)).await,
        StatusCode::FORBIDDEN,
        "user_id",
    )
    .await;
    // Naming oneself is no claim about anyone else.
    assert_eq!(
        analyst.post(EVENTS, about(&analyst_id)).await.status(),
        StatusCode::ACCEPTED
    );
    // An admin in the browser is a person, not a producer.
    let b = app.signed_in(ADMIN_EMAIL).await;
    let resp = b
        .json(Method::POST, EVENTS, Some(about(&analyst_id)), true)
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    written(&app, 3).await;
    let owners = rows(&app, "SELECT DISTINCT user_id FROM app_events").await;
    assert_eq!(owners, vec![vec![Some(analyst_id)]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_stores_every_queued_event_before_the_process_ends() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Service).await;
    // Hold the writer so the events are still queued when shutdown begins.
    let hold = app.state.usage.pause_writes().await;
    for i in 0..20 {
        let resp = api
            .post(
                EVENTS,
                json!({"event_type": "queued", "metadata": {"i": i.to_string()}}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }
    let batch: Vec<Value> = (0..300)
        .map(|_| json!({"event_type": "queued.batch"}))
        .collect();
    assert_eq!(
        api.post(BATCH, json!({"events": batch})).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(stored(&app).await, 0, "the writer is held");
    assert_eq!(app.state.usage.depth(), 320);
    // Let the writer go only once shutdown has closed the queue.
    let usage = app.state.usage.clone();
    tokio::spawn(async move {
        while !usage.is_closed() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(hold);
    });
    let app = app.restart().await;
    assert_eq!(stored(&app).await, 320);
    assert_eq!(
        app.query_i64("SELECT count(DISTINCT id) FROM app_events")
            .await,
        320
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_503_and_loses_nothing_it_accepted() {
    let app = TestApp::spawn_with(|c| c.usage_queue_capacity = 10).await;
    let api = app.api_as(Role::Analyst).await;
    let hold = app.state.usage.pause_writes().await;
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..200 {
        let resp = api
            .post(
                EVENTS,
                json!({"event_type": "burst", "metadata": {"i": i.to_string()}}),
            )
            .await;
        match resp.status() {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = Some(resp);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let resp = refused.expect("a held writer and a queue of 10 must refuse");
    assert_eq!(resp.headers().get("retry-after").unwrap(), "1");
    assert_detail(resp, StatusCode::SERVICE_UNAVAILABLE, "queue is full").await;
    assert!(accepted >= 10, "the queue holds 10 events, got {accepted}");
    // A batch that does not fit is refused whole.
    let resp = api
        .post(
            BATCH,
            json!({"events": [{"event_type": "b"}, {"event_type": "b"}]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let metrics = app.api().get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("usage_events_rejected_total{reason=\"queue_full\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("usage_queue_depth {accepted}")),
        "{metrics}"
    );

    drop(hold);
    written(&app, accepted).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stored(&app).await, accepted);
    // Room again once the writer caught up.
    assert_eq!(
        api.post(EVENTS, json!({"event_type": "after"}))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_reads_summarise_the_window_by_type_user_query_dashboard_and_model() {
    let app = TestApp::spawn().await;
    let service = app.api_as(Role::Service).await;
    let analyst = app.api_as(Role::Analyst).await;
    let admin = app.api_as(Role::Admin).await;
    let a = app.user_by_email("analyst@example.com").await.unwrap().id;
    let events = json!({"events": [
        {"event_type": "sql_generation", "user_id": a, "metadata": {"question": "q"}},
        {"event_type": "sql_generation", "user_id": a},
        {"event_type": "sql_execution", "user_id": a, "metadata": {"rows": "40"}},
        {"event_type": "sql_execution", "user_id": a, "metadata": {"row_count": "2"}},
        {"event_type": "sql_execution", "user_id": a, "metadata": {"rows": "many"}},
        {"event_type": "dashboard_publish", "user_id": a, "metadata": {"dashboard_id": "d1", "adapter": "metabase"}},
        {"event_type": "dashboard_publish", "metadata": {"dashboard_id": "d1", "adapter": "superset"}},
        {"event_type": "dashboard_publish", "metadata": {"dashboard_id": "d2", "adapter": "metabase"}},
    ]});
    assert_eq!(
        service.post(BATCH, events).await.status(),
        StatusCode::ACCEPTED
    );
    written(&app, 8).await;
    // One event from 40 days ago lies outside the default 30-day window.
    app.state
        .db
        .run(|c| {
            c.execute_batch(
                "INSERT INTO app_events VALUES ('old', 'someone', 'sql_generation', '{}', NULL, now()::TIMESTAMP - INTERVAL 40 DAY);
                 INSERT INTO app_events_daily VALUES ((now()::TIMESTAMP - INTERVAL 40 DAY)::DATE, 'sql_generation', 'someone', 1, now()::TIMESTAMP - INTERVAL 40 DAY);
                 INSERT INTO usage_tokens_daily VALUES
                   (current_date, 'analyst@example.com', 'claude-opus', 100, 20, 5, 1000, 0.5),
                   (current_date - 1, 'analyst@example.com', 'claude-opus', 1, 1, 1, 1, 0.25),
                   (current_date - 1, 'analyst@example.com', 'claude-haiku', 10, 2, 0, 0, 0.01),
                   (current_date - 60, 'analyst@example.com', 'claude-haiku', 999, 999, 0, 0, 9.0);",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let s = app.api_as(Role::Service).await;
    let service_id = app.user_by_email("service@example.com").await.unwrap().id;

    let summary: Value = admin
        .get("/api/v1/usage/summary")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["days"], 30);
    assert!(summary["generated_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        summary["summary"]["sql_generation"],
        json!({ a.clone(): 2 })
    );
    assert_eq!(
        summary["summary"]["dashboard_publish"],
        json!({ a.clone(): 1, service_id.clone(): 2 })
    );
    let wide: Value = admin
        .get("/api/v1/usage/summary?days=365")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(wide["summary"]["sql_generation"]["someone"], 1);
    for bad in ["0", "366", "week", "-1"] {
        assert_detail(
            admin
                .get(&format!("/api/v1/usage/summary?days={bad}"))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "days",
        )
        .await;
    }
    assert_detail(
        analyst.get("/api/v1/usage/summary").await,
        StatusCode::FORBIDDEN,
        "Admin",
    )
    .await;
    assert_detail(
        s.get("/api/v1/usage/users").await,
        StatusCode::FORBIDDEN,
        "Admin",
    )
    .await;

    let users: Value = admin
        .get("/api/v1/usage/users?days=7")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users["users"][&a]["events"], 6);
    assert_eq!(users["users"][&a]["event_types"]["sql_execution"], 3);
    assert!(users["users"][&a]["last_event_at"].is_string());
    assert!(users["users"].get("someone").is_none());

    let q: Value = admin
        .get("/api/v1/usage/queries")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        q["queries"][&a],
        json!({"sql_generation": 2, "sql_execution": 3, "rows": 42})
    );

    let d: Value = admin
        .get("/api/v1/usage/dashboards")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["dashboards"]["d1"]["publishes"], 2);
    assert_eq!(
        d["dashboards"]["d1"]["adapters"],
        json!({"metabase": 1, "superset": 1})
    );
    assert_eq!(d["dashboards"]["d1"]["users"], 2);
    assert_eq!(d["dashboards"]["d2"]["adapters"], json!({"metabase": 1}));

    let t: Value = admin
        .get("/api/v1/usage/llm-tokens?days=2")
        .await
        .json()
        .await
        .unwrap();
    let opus = &t["llm_tokens"]["analyst@example.com"]["claude-opus"];
    assert_eq!(opus["input_tokens"], 101);
    assert_eq!(opus["cache_read_tokens"], 1001);
    assert_eq!(opus["cost_usd"], 0.75);
    assert_eq!(
        t["llm_tokens"]["analyst@example.com"]["claude-haiku"]["output_tokens"],
        2
    );
    assert_eq!(t["totals"]["input_tokens"], 111);
    let today: Value = admin
        .get("/api/v1/usage/llm-tokens?days=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(today["totals"]["input_tokens"], 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_export_resumes_after_its_cursor_oldest_first_without_gaps() {
    let app = TestApp::spawn().await;
    let service = app.api_as(Role::Service).await;
    let admin = app.api_as(Role::Admin).await;
    for round in 0..3 {
        let batch: Vec<Value> = (0..50)
            .map(|i| json!({"event_type": "siem.tail", "metadata": {"round": round.to_string(), "i": i.to_string()}}))
            .collect();
        assert_eq!(
            service.post(BATCH, json!({"events": batch})).await.status(),
            StatusCode::ACCEPTED
        );
        written(&app, 50 * (round + 1)).await;
    }
    let all = admin.get("/api/v1/usage/export?format=ndjson").await;
    assert_eq!(all.status(), StatusCode::OK);
    assert!(all.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/x-ndjson"));
    let lines: Vec<Value> = all
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 150);
    let keys: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["created_at"].as_str().unwrap().into(),
                l["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "oldest first by (created_at, id)");
    let meta: Value = serde_json::from_str(lines[0]["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(meta["round"], "0");
    assert_eq!(lines[0]["event_type"], "siem.tail");

    // Resume from the middle of a batch: the cursor's id breaks the tie.
    let (ts, id) = &keys[70];
    let url = format!(
        "/api/v1/usage/export?format=json&since={}&after_id={id}",
        urlencode(ts)
    );
    let rest: Vec<Value> = admin
        .get(&url)
        .await
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rest.len(), 79);
    assert_eq!(rest[0]["id"].as_str().unwrap(), keys[71].1);
    // `since` alone is exclusive: nothing at the last row's time comes back.
    let (last_ts, _) = keys.last().unwrap();
    let none = admin
        .get(&format!(
            "/api/v1/usage/export?since={}",
            urlencode(last_ts)
        ))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(none, "");

    for (q, needle) in [
        ("format=xml", "format"),
        ("since=yesterday", "since"),
        ("after_id=abc", "after_id"),
    ] {
        assert_detail(
            admin.get(&format!("/api/v1/usage/export?{q}")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            needle,
        )
        .await;
    }
    assert_detail(
        app.api_as(Role::Analyst)
            .await
            .get("/api/v1/usage/export")
            .await,
        StatusCode::FORBIDDEN,
        "Admin",
    )
    .await;
    assert_eq!(app.audit_rows("usage.export").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_csv_export_neutralises_cells_a_spreadsheet_would_run() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Analyst).await;
    let resp = api
        .post(
            EVENTS,
            json!({"event_type": "-dash", "metadata": {"q": "x"}, "source": "=HYPERLINK(\"x\")"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    written(&app, 1).await;
    let admin = app.api_as(Role::Admin).await;
    let resp = admin.get("/api/v1/usage/export?format=csv").await;
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let body = resp.text().await.unwrap();
    let mut r = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "id",
            "created_at",
            "user_id",
            "event_type",
            "source",
            "metadata"
        ]
    );
    let row = r.records().next().unwrap().unwrap();
    assert_eq!(&row[3], "'-dash");
    assert_eq!(&row[4], "'=HYPERLINK(\"x\")");
    assert_eq!(&row[5], r#"{"q":"x"}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_events_at_intake_and_show_the_queue_and_the_writer() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Analyst).await;
    for _ in 0..3 {
        api.post(EVENTS, json!({"event_type": "sql_generation"}))
            .await;
    }
    api.post(
        BATCH,
        json!({"events": [{"event_type": "sql_execution"}, {"event_type": "sql_generation"}]}),
    )
    .await;
    api.post(EVENTS, json!({"event_type": "NOPE"})).await;
    written(&app, 5).await;
    let text = app.api().get("/metrics").await.text().await.unwrap();
    for line in [
        "usage_events_total{event_type=\"sql_generation\"} 4",
        "usage_events_total{event_type=\"sql_execution\"} 1",
        "usage_events_accepted_total 5",
        "usage_events_rejected_total{reason=\"invalid\"} 1",
        "usage_queue_capacity 50000",
        "# TYPE usage_queue_depth gauge",
        "# TYPE usage_writer_batch_seconds histogram",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn app_event_retention_joins_the_daily_prune() {
    let app = TestApp::spawn_with(|c| c.app_events_retention_days = 30).await;
    app.state
        .db
        .run(|c| {
            c.execute_batch(
                "INSERT INTO app_events VALUES
                   ('old', 'u', 'x', '{}', NULL, now()::TIMESTAMP - INTERVAL 31 DAY),
                   ('new', 'u', 'x', '{}', NULL, now()::TIMESTAMP - INTERVAL 29 DAY);
                 INSERT INTO app_events_daily VALUES
                   ((now()::TIMESTAMP - INTERVAL 32 DAY)::DATE, 'x', 'u', 1, now()::TIMESTAMP - INTERVAL 32 DAY),
                   ((now()::TIMESTAMP - INTERVAL 29 DAY)::DATE, 'x', 'u', 1, now()::TIMESTAMP - INTERVAL 29 DAY);",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    glassbox::processors::daily_prune(app.state.clone()).await;
    assert_eq!(
        rows(&app, "SELECT id FROM app_events").await,
        vec![vec![Some("new".to_string())]]
    );
    assert_eq!(
        app.query_i64("SELECT count(*) FROM app_events_daily").await,
        1,
        "the rollup's days before the horizon go too"
    );
    let prune = rows(
        &app,
        "SELECT params::VARCHAR FROM audit_log WHERE action = 'maintenance.prune'",
    )
    .await;
    let params: Value = serde_json::from_str(prune[0][0].as_deref().unwrap()).unwrap();
    assert_eq!(params["app_events_deleted"], 1);
}

/// A stand-in for PostHog's batch API on loopback that records what it gets
/// and answers `status` (a shared switch).
async fn posthog_stub(status: Arc<Mutex<u16>>) -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::<Value>::new()));
    let router = axum::Router::new().route(
        "/batch/",
        axum::routing::post({
            let got = got.clone();
            move |body: axum::Json<Value>| {
                let got = got.clone();
                let status = status.clone();
                async move {
                    let code = *status.lock().unwrap();
                    if code == 200 {
                        got.lock().unwrap().push(body.0);
                    }
                    axum::http::StatusCode::from_u16(code).unwrap()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, got)
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_posthog_key_stored_events_are_forwarded_in_batches() {
    let status = Arc::new(Mutex::new(200));
    let (host, got) = posthog_stub(status.clone()).await;
    let app = TestApp::spawn_with(|c| {
        c.posthog_api_key = Some("phc_test".into());
        c.posthog_host = Some(host.clone());
    })
    .await;
    let api = app.api_as(Role::Analyst).await;
    let analyst_id = app.user_by_email("analyst@example.com").await.unwrap().id;
    let batch: Vec<Value> = (0..30)
        .map(|i| json!({"event_type": "dashboard_publish", "metadata": {"dashboard_id": format!("d{i}")}, "source": "bi"}))
        .collect();
    assert_eq!(
        api.post(BATCH, json!({"events": batch})).await.status(),
        StatusCode::ACCEPTED
    );
    let mut sent: Vec<Value> = Vec::new();
    for _ in 0..500 {
        sent = got
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b["batch"].as_array().unwrap().clone())
            .collect();
        if sent.len() >= 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sent.len(), 30);
    assert!(got
        .lock()
        .unwrap()
        .iter()
        .all(|b| b["api_key"] == "phc_test"));
    assert_eq!(sent[0]["event"], "dashboard_publish");
    assert_eq!(sent[0]["distinct_id"], analyst_id.as_str());
    assert_eq!(sent[0]["properties"]["source"], "bi");
    assert!(sent[0]["properties"]["dashboard_id"]
        .as_str()
        .unwrap()
        .starts_with('d'));

    // PostHog failing never fails intake; the failure is counted.
    *status.lock().unwrap() = 500;
    assert_eq!(
        api.post(EVENTS, json!({"event_type": "still.fine"}))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    written(&app, 31).await;
    let mut failed = false;
    for _ in 0..500 {
        let text = app.api().get("/metrics").await.text().await.unwrap();
        if text.contains("usage_posthog_failed_total 1") {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed, "a failed forward is counted");
    assert!(text_has(&app, "usage_posthog_sent_total 30").await);
}

async fn text_has(app: &TestApp, needle: &str) -> bool {
    app.api()
        .get("/metrics")
        .await
        .text()
        .await
        .unwrap()
        .contains(needle)
}

fn urlencode(s: &str) -> String {
    form_urlencoded_encode(s)
}

fn form_urlencoded_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_on_the_binary_stores_every_accepted_event_before_exit() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GLASSBOX_DATA_DIR", dir.path())
        .env("GLASSBOX_BIND", "127.0.0.1:0")
        .env("GLASSBOX_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("GLASSBOX_ADMIN_PASSWORD", crate::helpers::PASSWORD)
        .env("RUST_LOG", "warn")
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .trim_start_matches("glassbox listening on ")
        .to_string();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{url}/auth/token"))
        .json(&json!({"email": ADMIN_EMAIL, "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    // Eight clients send batches side by side; SIGTERM follows the last answer.
    let mut tasks = Vec::new();
    for c in 0..8 {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0;
            for r in 0..10 {
                let batch: Vec<Value> = (0..100)
                    .map(|i| json!({"event_type": "term.test", "metadata": {"c": c.to_string(), "r": r.to_string(), "i": i.to_string()}}))
                    .collect();
                let resp = http
                    .post(format!("{url}{BATCH}"))
                    .bearer_auth(&token)
                    .json(&json!({"events": batch}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::ACCEPTED);
                accepted += 100;
            }
            accepted
        }));
    }
    let mut accepted = 0i64;
    for t in tasks {
        accepted += t.await.unwrap();
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    assert!(server.wait().unwrap().success());
    let db = glassbox::db::Db::open(
        &dir.path().join("glassbox.duckdb"),
        &glassbox::db::DbOptions::default(),
    )
    .unwrap();
    let n = glassbox::repo::app_events::count(&db.connect().unwrap()).unwrap();
    assert_eq!(n, accepted);
    assert_eq!(n, 8000);
}

/// The intake remembers a verified bearer string (no signature check per
/// event), but revocation, deactivation and a forged copy still take effect
/// on the very next event.
#[tokio::test(flavor = "multi_thread")]
async fn a_remembered_token_is_refused_at_once_once_revoked_or_its_user_deactivated() {
    let app = TestApp::spawn().await;
    let admin = app.api_as(Role::Admin).await;
    let bot = app.create_user("bot@example.com", Role::Service).await;
    let issue = |name: &'static str| {
        let (admin, id) = (&admin, bot.id.clone());
        async move {
            let created: Value = admin
                .post(
                    &format!("/api/admin/users/{id}/tokens"),
                    json!({"name": name, "days": 30}),
                )
                .await
                .json()
                .await
                .unwrap();
            (
                created["token"].as_str().unwrap().to_string(),
                created["id"].as_str().unwrap().to_string(),
            )
        }
    };
    let (first, first_id) = issue("first").await;
    let (second, _) = issue("second").await;
    let mut api = app.api();
    api.token = Some(first.clone());
    for _ in 0..3 {
        assert_eq!(
            api.post(EVENTS, json!({"event_type": "seen"}))
                .await
                .status(),
            StatusCode::ACCEPTED
        );
    }
    // The same token with its signature altered is not the remembered string.
    let mut forged = app.api();
    let mut tampered = first.clone().into_bytes();
    let i = tampered.len() - 10;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    forged.token = Some(String::from_utf8(tampered).unwrap());
    assert_eq!(
        forged
            .post(EVENTS, json!({"event_type": "seen"}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        admin
            .call(
                Method::DELETE,
                &format!("/api/admin/tokens/{first_id}"),
                None
            )
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_detail(
        api.post(EVENTS, json!({"event_type": "after.revoke"}))
            .await,
        StatusCode::UNAUTHORIZED,
        "revoked",
    )
    .await;

    api.token = Some(second);
    assert_eq!(
        api.post(EVENTS, json!({"event_type": "seen"}))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let resp = admin
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{}", bot.id),
            Some(json!({"active": false})),
        )
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_detail(
        api.post(EVENTS, json!({"event_type": "after.deactivate"}))
            .await,
        StatusCode::UNAUTHORIZED,
        "deactivated",
    )
    .await;
    written(&app, 4).await;
    assert_eq!(
        app.query_i64("SELECT count(*) FROM app_events WHERE event_type LIKE 'after%'")
            .await,
        0
    );
}
