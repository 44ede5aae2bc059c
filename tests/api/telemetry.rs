//! The telemetry JSON APIs over HTTP: invariants between KPIs, group-by
//! buckets and raw rows; tokens against `usage_tokens_daily`; the analyst
//! scope of `/api/me/telemetry`; bad input named in a 422.

use glassbox::auth::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_detail, Api, TestApp};

const ANALYST: &str = "analyst@example.com";

/// A server with 6 000 synthetic events over 20 days for the analyst and
/// three other people; returns it with the admin and analyst clients.
async fn app_with_usage() -> (TestApp, Api, Api) {
    let app = TestApp::spawn().await;
    let analyst = app.api_as(Role::Analyst).await;
    let admin = app.api_as(Role::Admin).await;
    app.add_usage(&["bo", "cy", "dee"], 6_000, 40, 20).await;
    (app, admin, analyst)
}

async fn json(api: &Api, path: &str) -> Value {
    let resp = api.get(path).await;
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn kpi_totals_equal_every_group_by_and_the_raw_rows_for_several_filters() {
    let (_app, admin, _) = app_with_usage().await;
    for filter in [
        "since_minutes=43200",
        "since_minutes=10080&only_errors=true",
        "since_minutes=43200&source=curated&event_type=tool_use",
        "since_minutes=43200&q=sql&model=claude-sonnet-4-5-20250929",
        "since_minutes=20160&username=bo@example.com",
    ] {
        let kpis = json(&admin, &format!("/api/admin/telemetry/kpis?{filter}")).await;
        let total = kpis["events_total"].as_i64().unwrap();
        assert!(total > 0, "{filter}");
        assert!(kpis["previous"]["events_total"].is_i64(), "{filter}");
        for by in [
            "day",
            "username",
            "tool_name",
            "source",
            "ref_id",
            "model",
            "session_id",
        ] {
            let base = "/api/admin/telemetry";
            let rows = {
                let mut rows = Vec::new();
                let mut offset = 0;
                loop {
                    let page = json(
                        &admin,
                        &format!("{base}/query?{filter}&group_by={by}&limit=7&offset={offset}"),
                    )
                    .await;
                    assert_eq!(page["group_by"], by);
                    rows.extend(page["rows"].as_array().unwrap().iter().cloned());
                    match page["next_offset"].as_i64() {
                        Some(n) => offset = n,
                        None => break,
                    }
                }
                rows
            };
            let sum: i64 = rows
                .iter()
                .map(|r| r["invocations"].as_i64().unwrap())
                .sum();
            assert_eq!(sum, total, "{filter} by {by}");
        }
        let raw = json(
            &admin,
            &format!("/api/admin/telemetry/query?{filter}&limit=500"),
        )
        .await;
        assert_eq!(raw["total"].as_i64().unwrap(), total, "{filter} raw");
    }
}

#[tokio::test]
async fn tokens_and_cost_on_a_day_aligned_window_equal_the_daily_rollup() {
    let (app, admin, _) = app_with_usage().await;
    let today = chrono::Utc::now().date_naive();
    let since = today - chrono::Duration::days(12);
    let until = today - chrono::Duration::days(2);
    let kpis = json(
        &admin,
        &format!("/api/admin/telemetry/kpis?since={since}&until={until}&tool_name=Bash"),
    )
    .await;
    let cond = format!("day >= DATE '{since}' AND day < DATE '{until}'");
    let want = app
        .query_i64(&format!(
            "SELECT sum(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens)::BIGINT FROM usage_tokens_daily WHERE {cond}"
        ))
        .await;
    assert!(want > 0);
    assert_eq!(kpis["total_tokens"].as_i64().unwrap(), want);
    let cost_micros = app
        .query_i64(&format!(
            "SELECT round(sum(cost_usd) * 1e6)::BIGINT FROM usage_tokens_daily WHERE {cond}"
        ))
        .await;
    let got = (kpis["cost_usd"].as_f64().unwrap() * 1e6).round() as i64;
    assert!((got - cost_micros).abs() <= 1, "{got} vs {cost_micros}");
}

#[tokio::test]
async fn an_analyst_gets_403_on_the_admin_apis_and_only_their_own_rows_on_me() {
    let (app, _admin, analyst) = app_with_usage().await;
    for path in ["kpis", "facets", "query", "summary"] {
        assert_detail(
            analyst.get(&format!("/api/admin/telemetry/{path}")).await,
            StatusCode::FORBIDDEN,
            "Admin",
        )
        .await;
    }
    let users = json(
        &analyst,
        "/api/me/telemetry/query?group_by=username&since_minutes=43200",
    )
    .await;
    let names: Vec<&str> = users["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["bucket"].as_str().unwrap())
        .collect();
    assert_eq!(names, [ANALYST]);
    let kpis = json(&analyst, "/api/me/telemetry/kpis?since_minutes=43200").await;
    let own = app
        .query_i64(&format!(
            "SELECT count(*) FROM usage_events WHERE username = '{ANALYST}'"
        ))
        .await;
    assert_eq!(kpis["events_total"].as_i64().unwrap(), own);
    assert_eq!(kpis["distinct_users"], 1);
    // Asking for someone else's rows finds nothing rather than leaking them.
    let other = json(
        &analyst,
        "/api/me/telemetry/kpis?since_minutes=43200&username=bo@example.com",
    )
    .await;
    assert_eq!(other["events_total"], 0);
    assert_eq!(other["total_tokens"], 0);
    let facets = json(&analyst, "/api/me/telemetry/facets?since_minutes=43200").await;
    assert_eq!(facets["users"].as_array().unwrap().len(), 1);
    let summary = json(&analyst, "/api/me/telemetry/summary?window=30d").await;
    for u in summary["top_users"].as_array().unwrap() {
        assert_eq!(u["username"], ANALYST);
    }
}

#[tokio::test]
async fn the_summary_keeps_agnes_fields_as_numbers_and_lists_unpriced_models() {
    let (app, admin, _) = app_with_usage().await;
    let s = json(&admin, "/api/admin/telemetry/summary?window=all").await;
    assert_eq!(s["window"], "all");
    let qt = &s["query_telemetry"];
    for k in [
        "total_scan_bytes",
        "remote_queries",
        "local_queries",
        "snapshot_creates",
    ] {
        assert!(qt[k].is_number(), "{k}");
    }
    assert!(qt["top_tables"].is_array());
    assert_eq!(s["dau_series"].as_array().unwrap().len(), 30);
    assert!(s["dau_avg"].is_number());
    assert_eq!(s["unknown_models"], serde_json::json!(["glm-4.6"]));
    let models = s["tokens_by_model"].as_array().unwrap();
    let glm = models.iter().find(|m| m["model"] == "glm-4.6").unwrap();
    assert_eq!(glm["cost_usd"], 0.0);
    assert_eq!(glm["priced"], false);
    // Default window is 7d, audited at most once a minute.
    let again = json(&admin, "/api/admin/telemetry/summary").await;
    assert_eq!(again["window"], "7d");
    json(&admin, "/api/admin/telemetry/summary").await;
    assert_eq!(app.audit_rows("usage.summary").await.len(), 2);
}

#[tokio::test]
async fn bad_parameters_are_422_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let admin = app.api_as(Role::Admin).await;
    for (query, needle) in [
        ("kpis?since=yesterday", "since"),
        ("kpis?since_minutes=0", "since_minutes"),
        ("kpis?since_minutes=525601", "since_minutes"),
        ("kpis?since=2026-01-10&until=2026-01-01", "since"),
        ("kpis?since=2020-01-01&until=2022-01-01", "365 days"),
        ("facets?source=marketplace", "source"),
        ("query?event_type=thinking", "event_type"),
        ("query?only_errors=maybe", "only_errors"),
        ("query?group_by=week", "group_by"),
        ("query?group_by=day&sort=occurred_at:desc", "sort"),
        ("query?sort=invocations:desc", "sort"),
        ("query?sort=tool_name:up", "sort"),
        ("query?limit=0", "limit"),
        ("query?limit=501", "limit"),
        ("query?offset=-1", "offset"),
        ("query?offset=50001", "offset"),
        ("query?username=a&user_id=b", "user_id"),
        ("summary?window=90d", "window"),
    ] {
        assert_detail(
            admin.get(&format!("/api/admin/telemetry/{query}")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            needle,
        )
        .await;
    }
    // A whole year is allowed (SPEC §11), unlike the Audit log's 30 days.
    let resp = admin
        .get("/api/admin/telemetry/kpis?since_minutes=525600")
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn raw_events_carry_agnes_columns_sorted_as_asked() {
    let (_app, admin, _) = app_with_usage().await;
    let page = json(
        &admin,
        "/api/admin/telemetry/query?since_minutes=43200&sort=occurred_at:asc&limit=20",
    )
    .await;
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 20);
    assert_eq!(page["next_offset"], 20);
    for k in [
        "id",
        "occurred_at",
        "username",
        "source",
        "ref_id",
        "event_type",
        "tool_name",
        "skill_name",
        "subagent_type",
        "command_name",
        "is_error",
        "session_id",
        "model",
    ] {
        assert!(rows[0].get(k).is_some(), "{k}");
    }
    let times: Vec<&str> = rows
        .iter()
        .map(|r| r["occurred_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

/// `2026-11-02T10:11:12.123456Z`: ISO 8601 UTC, six fraction digits.
fn assert_iso_micros(t: &str) {
    assert_eq!(t.len(), 27, "{t}");
    assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
    assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{t}");
}

/// Rows of an export in each format: (csv rows, ndjson rows, parquet rows).
async fn export_rows(api: &Api, path: &str) -> (i64, i64, i64) {
    let get = |format: &'static str| {
        let url = format!("{path}&format={format}");
        async move {
            let resp = api.get(&url).await;
            assert_eq!(resp.status(), StatusCode::OK, "{url}");
            resp.bytes().await.unwrap()
        }
    };
    let csv_bytes = get("csv").await;
    let mut reader = csv::Reader::from_reader(&csv_bytes[..]);
    let headers = reader.headers().unwrap().clone();
    assert_eq!(headers.get(0), Some("id"));
    assert!(headers.iter().any(|h| h == "occurred_at"));
    let at = headers.iter().position(|h| h == "occurred_at").unwrap();
    let mut csv_rows = 0i64;
    for r in reader.records() {
        let r = r.unwrap();
        if csv_rows == 0 {
            assert_iso_micros(&r[at]);
        }
        csv_rows += 1;
    }
    let ndjson = get("json").await;
    let lines: Vec<Value> = std::str::from_utf8(&ndjson)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let times: Vec<&str> = lines
        .iter()
        .map(|v| v["occurred_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    if let Some(first) = lines.first() {
        assert_iso_micros(first["occurred_at"].as_str().unwrap());
        assert!(first["processor_version"].is_i64(), "{first}");
        assert!(first["is_error"].is_boolean(), "{first}");
    }
    let parquet = get("parquet").await;
    assert_eq!(&parquet[..4], b"PAR1");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.parquet");
    std::fs::write(&file, &parquet).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let parquet_rows: i64 = conn
        .query_row(
            &format!("SELECT count(*) FROM read_parquet('{}')", file.display()),
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Typed columns, times as UTC instants.
    let types: Vec<String> = conn
        .prepare(&format!(
            "SELECT column_type FROM (DESCRIBE SELECT occurred_at, processor_version, is_error
             FROM read_parquet('{}'))",
            file.display()
        ))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(types, ["TIMESTAMP WITH TIME ZONE", "INTEGER", "BOOLEAN"]);
    (csv_rows, lines.len() as i64, parquet_rows)
}

#[tokio::test]
async fn every_export_format_holds_exactly_the_kpi_total_for_several_filters() {
    let (app, admin, analyst) = app_with_usage().await;
    let today = chrono::Utc::now().date_naive();
    for filter in [
        "since_minutes=10080".to_string(),
        "since_minutes=43200&only_errors=true&event_type=tool_use".to_string(),
        format!(
            "since={}&until={}&user_id=bo@example.com&source=builtin",
            today - chrono::Duration::days(9),
            today - chrono::Duration::days(2)
        ),
        "since_minutes=43200&q=analytics&model=claude-opus-4-5-20251101".to_string(),
    ] {
        let total = json(&admin, &format!("/api/admin/telemetry/kpis?{filter}")).await
            ["events_total"]
            .as_i64()
            .unwrap();
        assert!(total > 0, "{filter}");
        let got = export_rows(&admin, &format!("/api/admin/telemetry/export?{filter}")).await;
        assert_eq!(got, (total, total, total), "{filter}");
    }
    // Agnes's export without a window: every row.
    let all = app.query_i64("SELECT count(*) FROM usage_events").await;
    let csv = admin.get("/api/admin/telemetry/export").await;
    assert_eq!(
        csv.headers()["content-disposition"].to_str().unwrap(),
        "attachment; filename=\"usage_events.csv\""
    );
    let text = csv.text().await.unwrap();
    assert_eq!(text.lines().count() as i64, all + 1);
    // The analyst's own export holds only their rows.
    let own = app
        .query_i64(&format!(
            "SELECT count(*) FROM usage_events WHERE username = '{ANALYST}' AND occurred_at >= now()::TIMESTAMP - INTERVAL 30 DAY"
        ))
        .await;
    let got = export_rows(&analyst, "/api/me/telemetry/export?since_minutes=43200").await;
    assert_eq!(got.0, own);
    // Audited with the row count after each stream (3 formats x 4 filters, +1, +3).
    let n = app
        .query_i64("SELECT count(*) FROM audit_log WHERE action = 'usage.export' AND (params->>'row_count') IS NOT NULL")
        .await;
    assert_eq!(n, 16);
}

#[tokio::test]
async fn bad_export_parameters_are_422_naming_them() {
    let app = TestApp::spawn().await;
    let admin = app.api_as(Role::Admin).await;
    for (query, needle) in [
        ("format=xlsx", "format"),
        ("source=marketplace", "source"),
        ("since=last-week", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-02-01&until=2026-01-01", "since"),
        ("since_minutes=0", "since_minutes"),
    ] {
        assert_detail(
            admin
                .get(&format!("/api/admin/telemetry/export?{query}"))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            needle,
        )
        .await;
    }
}
