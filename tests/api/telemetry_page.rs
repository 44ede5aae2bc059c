//! The Telemetry page (`/admin/telemetry`, `/me/telemetry`) over HTTP: KPI
//! cards and group-by buckets are links that keep the filters, the analyst's
//! page holds their own events only, and the Ask box says plainly when it is
//! not configured.

use glassbox::auth::Role;
use reqwest::StatusCode;

use crate::helpers::{Browser, TestApp, ADMIN_EMAIL};

const ANALYST: &str = "analyst@example.com";

/// A server with synthetic events for the analyst and two other people.
async fn app_with_usage() -> TestApp {
    let app = TestApp::spawn().await;
    app.add_usage(&["bo", "cy"], 600, 20, 10).await;
    app
}

async fn page(b: &Browser, path: &str) -> String {
    let resp = b.get(path).await;
    let status = resp.status();
    let html = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {html}");
    html
}

/// The `href`s of the elements whose markup starts with `marker`, unescaped.
fn hrefs(html: &str, marker: &str) -> Vec<String> {
    html.split(marker)
        .skip(1)
        .filter_map(|rest| rest.split("href=\"").nth(1))
        .filter_map(|h| h.split('"').next())
        .map(|h| h.replace("&amp;", "&").replace("&#x2f;", "/"))
        .collect()
}

#[tokio::test]
async fn kpi_cards_and_buckets_are_links_that_keep_the_filters() {
    let app = app_with_usage().await;
    let admin = app.signed_in(ADMIN_EMAIL).await;
    let html = page(
        &admin,
        "/admin/telemetry?since_minutes=43200&source=curated&group_by=username",
    )
    .await;
    let cards = hrefs(&html, "data-kpi=\"errors\"");
    assert_eq!(cards.len(), 1, "one error-rate card");
    assert!(cards[0].contains("only_errors=true"), "{}", cards[0]);
    assert!(cards[0].contains("source=curated"), "{}", cards[0]);
    let buckets = hrefs(&html, "class=\"bucket\"");
    assert!(buckets.len() >= 3, "a bucket per person: {buckets:?}");
    for b in &buckets {
        assert!(b.starts_with("/admin/telemetry?"), "{b}");
        assert!(
            b.contains("source=curated") && b.contains("since_minutes=43200"),
            "{b}"
        );
        assert!(b.contains("username=") && !b.contains("group_by"), "{b}");
    }
    // Applying a bucket narrows the page to it.
    let one = page(&admin, &buckets[0]).await;
    assert!(one.contains("id=\"events\""), "raw events after a bucket");
    assert!(one.contains("id=\"trend-chart\""));
    assert!(one
        .replace("&#x2f;", "/")
        .contains("/api/admin/telemetry/export?format=parquet"));
}

#[tokio::test]
async fn an_analyst_sees_only_their_own_events_and_no_ask_box() {
    let app = app_with_usage().await;
    let analyst = app.signed_in(ANALYST).await;
    let html = page(
        &analyst,
        "/me/telemetry?since_minutes=43200&group_by=username",
    )
    .await;
    let buckets = hrefs(&html, "class=\"bucket\"");
    assert_eq!(buckets.len(), 1, "{buckets:?}");
    assert!(buckets[0].starts_with("/me/telemetry?"), "{buckets:?}");
    assert!(!html.contains("bo@example.com") && !html.contains("cy@example.com"));
    assert!(!html.contains("id=\"ask-form\""));
    assert!(html
        .replace("&#x2f;", "/")
        .contains("/api/me/telemetry/export?format=csv"));
}

#[tokio::test]
async fn the_ask_box_says_when_no_key_is_set() {
    let app = TestApp::spawn_with(|c| c.anthropic_api_key = None).await;
    let admin = app.signed_in(ADMIN_EMAIL).await;
    assert!(page(&admin, "/admin/telemetry")
        .await
        .contains("id=\"ask-form\""));
    let resp = admin
        .post_form("/admin/telemetry/ask", &[("question", "How many events?")])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"ask-error\""), "{html}");
    assert!(
        html.contains("ANTHROPIC_API_KEY") && html.contains("503"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_product_usage_tab_shows_event_types_by_user_as_the_summary_api_counts_them() {
    use serde_json::{json, Value};
    let app = TestApp::spawn().await;
    let analyst = app.api_as(Role::Analyst).await;
    let admin = app.api_as(Role::Admin).await;
    let sent = [
        (&analyst, "sql_generation", 3),
        (&analyst, "dashboard_publish", 1),
        (&admin, "sql_generation", 2),
    ];
    for (api, event_type, n) in sent {
        for _ in 0..n {
            let resp = api
                .post(
                    "/api/v1/usage/events",
                    json!({"event_type": event_type, "metadata": {}}),
                )
                .await;
            assert_eq!(resp.status(), StatusCode::ACCEPTED);
        }
    }
    for _ in 0..1000 {
        if app.query_i64("SELECT count(*) FROM app_events").await >= 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let b = app.signed_in(ADMIN_EMAIL).await;
    let html = page(&b, "/admin/telemetry/product?days=7").await;
    let doc = scraper::Html::parse_document(&html);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let header: Vec<String> = doc
        .select(&sel("#matrix thead th"))
        .map(|e| {
            e.value()
                .attr("title")
                .map(String::from)
                .unwrap_or_else(|| e.text().collect())
        })
        .collect();
    // Most events first: the analyst (4), then the admin (2).
    assert_eq!(header, ["Event type", ANALYST, ADMIN_EMAIL, "Total"]);
    let row = |t: &str| -> Vec<String> {
        doc.select(&sel(&format!("#matrix tbody tr[data-event-type='{t}'] td")))
            .map(|e| e.text().collect::<String>().trim().to_string())
            .collect()
    };
    assert_eq!(row("sql_generation"), ["3", "2", "5"]);
    assert_eq!(row("dashboard_publish"), ["1", "0", "1"]);
    let total = doc
        .select(&sel("#total"))
        .next()
        .unwrap()
        .text()
        .collect::<String>();
    assert_eq!(total, "6");
    // The same figures as the usage API's summary.
    let s: Value = admin
        .get("/api/v1/usage/summary?days=7")
        .await
        .json()
        .await
        .unwrap();
    let from_api: i64 = s["summary"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|users| users.as_object().unwrap().values())
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert_eq!(from_api, 6);
    let events = doc
        .select(&sel("[data-kpi=app_events] .kpi-value"))
        .next()
        .unwrap()
        .text()
        .collect::<String>();
    assert_eq!(events.trim(), "6");
    // Today's bar holds every event; the tab links both views.
    assert!(html.contains("id=\"trend-chart\""), "{html}");
    assert!(html.contains("href=\"/admin/telemetry\""));
    let html = page(&b, "/admin/telemetry").await;
    assert!(html.contains("href=\"/admin/telemetry/product\""));
    // A bad window is a 422 that says what to send.
    let resp = b.get("/admin/telemetry/product?days=400").await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("days"));
}
