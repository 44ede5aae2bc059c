//! The Audit log page (`/admin/activity`): the full page, its htmx blocks,
//! load more, sorting, the side panel, saved views and bad filters.

use chrono::{Duration, Utc};
use glassbox::audit::AuditEvent;
use glassbox::auth::Role;
use reqwest::StatusCode;
use scraper::{Html, Selector};
use serde_json::json;

use crate::helpers::{TestApp, ADMIN_EMAIL};

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn texts(doc: &Html, s: &str) -> Vec<String> {
    doc.select(&sel(s))
        .map(|e| e.text().collect::<String>().trim().to_string())
        .collect()
}

fn attrs(doc: &Html, s: &str, attr: &str) -> Vec<String> {
    doc.select(&sel(s))
        .filter_map(|e| e.value().attr(attr).map(str::to_string))
        .collect()
}

async fn write(app: &TestApp, events: Vec<AuditEvent>) {
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

/// `n` rows of `action`, one a minute apart, the newest `start` minutes ago.
fn rows(action: &str, n: i64, start: i64, result: &str, dur: i64) -> Vec<AuditEvent> {
    let now = Utc::now().naive_utc();
    (0..n)
        .map(|i| {
            let mut e = AuditEvent::new(action);
            e.timestamp = Some(now - Duration::minutes(start + i));
            e.result = Some(result.into());
            e.client_kind = Some("cli".into());
            e.resource = Some(format!("table:t{i}"));
            e.duration_ms = Some(dur + i);
            e.params = Some(json!({"i": i, "note": format!("Row {i} of {action}")}));
            e
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_renders_health_kpi_cards_facets_and_fifty_rows_for_an_admin() {
    let app = TestApp::spawn().await;
    write(&app, rows("table.read", 60, 1, "success", 10)).await;
    write(&app, rows("table.write", 4, 2, "error: boom", 900)).await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let resp = b.get("/admin/activity?action=table.read").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc = Html::parse_document(&resp.text().await.unwrap());

    assert_eq!(texts(&doc, ".kpi[data-kpi=events] .kpi-value"), vec!["60"]);
    assert_eq!(doc.select(&sel(".kpi")).count(), 4);
    assert_eq!(doc.select(&sel(".pulse .pulse-field")).count(), 6);
    let err_href = attrs(&doc, ".kpi[data-kpi=errors]", "hx-get");
    assert!(err_href[0].contains("result_class=error"), "{err_href:?}");
    assert!(attrs(&doc, ".kpi[data-kpi=p95]", "href")[0].contains("min_duration_ms="));
    assert_eq!(
        attrs(&doc, ".kpi[data-kpi=users]", "data-focus"),
        vec!["f-user"]
    );
    // Facet options come from the window, with counts, and the filter is selected.
    let actions = texts(&doc, "#f-action option");
    assert!(
        actions.iter().any(|o| o == "table.read (60)"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|o| o == "table.write (4)"),
        "{actions:?}"
    );
    assert_eq!(
        attrs(&doc, "#f-action option[selected]", "value"),
        vec!["table.read"]
    );
    assert!(texts(&doc, "#f-resource option")
        .iter()
        .any(|o| o.starts_with("table:")));
    assert_eq!(doc.select(&sel("#rows tr.audit-row")).count(), 50);
    assert_eq!(doc.select(&sel("#rows tr.load-more")).count(), 1);
    let times = attrs(&doc, "#rows tr.audit-row time", "datetime");
    assert!(times.iter().all(|t| t.ends_with('Z')), "{times:?}");
    let export = attrs(&doc, "#export-csv", "href")[0].clone();
    assert!(
        export.starts_with("/api/admin/activity/export?format=csv&")
            && export.contains("since=")
            && export.contains("until=")
            && export.contains("action=table.read")
            && !export.contains("since_minutes"),
        "{export}"
    );
    // The form is rendered from the query string (shared links restore it).
    assert_eq!(
        doc.select(&sel("form#filters[hx-push-url=true]")).count(),
        1
    );
    assert_eq!(doc.select(&sel("#views form.save-view")).count(), 1);
    assert_eq!(doc.select(&sel("section.sync")).count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn htmx_requests_get_only_the_results_block_and_the_filters_out_of_band() {
    let app = TestApp::spawn().await;
    write(&app, rows("table.read", 3, 1, "success", 10)).await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let resp = b.htmx_get("/admin/activity?q=ROW+1").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(!html.contains("<html"), "a fragment, not the page");
    assert!(
        !html.contains("id=\"filters\""),
        "the form itself is not re-sent"
    );
    let doc = Html::parse_fragment(&html);
    assert_eq!(doc.select(&sel("#results")).count(), 1);
    assert_eq!(
        doc.select(&sel("#filter-fields[hx-swap-oob=true]")).count(),
        1
    );
    // q is case-insensitive: "ROW 1" finds "Row 1 of table.read".
    assert_eq!(doc.select(&sel("#rows tr.audit-row")).count(), 1);
    // The KPI cards come after, as their own fragment, with the event count
    // out of band.
    assert_eq!(
        attrs(&doc, "#kpis[data-kpis-pending]", "hx-get"),
        vec!["/admin/activity/kpis?q=ROW+1"]
    );
    assert_eq!(texts(&doc, "#total"), vec!["…"]);
    let cards = Html::parse_fragment(
        &b.htmx_get("/admin/activity/kpis?q=ROW+1")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(cards.select(&sel("#kpis[data-kpis-pending]")).count(), 0);
    assert_eq!(texts(&cards, ".kpi[data-kpi=events] .kpi-value"), vec!["1"]);
    assert_eq!(texts(&cards, "#total[hx-swap-oob=true]"), vec!["1"]);
    assert_eq!(cards.select(&sel("#pager")).count(), 0, "no pager unsorted");
    // The facet options come after, as their own fragment: the swapped fields
    // carry the filter state at once, and a loader fetches the options.
    assert_eq!(
        attrs(
            &doc,
            "#filter-fields #facets-loader[data-facets-pending]",
            "hx-get"
        ),
        vec!["/admin/activity/facets?q=ROW+1"]
    );
    assert_eq!(attrs(&doc, "#f-action option", "value"), vec![""]);
    let options_html = b
        .htmx_get("/admin/activity/facets?q=ROW+1")
        .await
        .text()
        .await
        .unwrap();
    let fields = Html::parse_fragment(&options_html);
    // Only the five selects (out of band) and a spent loader: inputs the user
    // may be typing in (dates, durations) are not replaced.
    assert_eq!(fields.select(&sel("select[hx-swap-oob=true]")).count(), 5);
    assert_eq!(fields.select(&sel("input")).count(), 0);
    assert_eq!(
        fields
            .select(&sel(
                "#facets-loader[hx-swap-oob=true]:not([hx-get]):not([data-facets-pending])"
            ))
            .count(),
        1,
        "loaded once, no loop"
    );
    let options = texts(&fields, "#f-action option");
    assert!(
        options.contains(&"table.read (3)".to_string())
            && options.contains(&"auth.login (1)".to_string()),
        "the window's actions with counts, not only the searched ones: {options:?}"
    );
    // The fragments belong to the page view: with other filters than the
    // page's (so the one-a-minute rule cannot hide a row), they write none.
    for other in [
        "/admin/activity/facets?source=cli",
        "/admin/activity/kpis?source=cli",
    ] {
        assert_eq!(b.htmx_get(other).await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.query_i64("SELECT count(*) FROM audit_log WHERE action = 'activity.read'")
            .await,
        1,
        "only the page view wrote a read row"
    );

    // A history restore (back button with no cache) gets the whole page.
    let full = b
        .client
        .get(app.at("/admin/activity"))
        .header("HX-Request", "true")
        .header("HX-History-Restore-Request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(full.contains("<html") && full.contains("id=\"filters\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn load_more_returns_the_next_rows_and_no_further_link_at_the_end() {
    let app = TestApp::spawn().await;
    write(&app, rows("table.read", 60, 1, "success", 10)).await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let doc = Html::parse_document(
        &b.get("/admin/activity?action=table.read")
            .await
            .text()
            .await
            .unwrap(),
    );
    let first: Vec<String> = attrs(&doc, "#rows tr.audit-row", "data-id");
    let more = attrs(&doc, "#rows tr.load-more", "hx-get")[0].clone();
    assert!(more.starts_with("/admin/activity/rows?") && more.contains("cursor_id="));
    let resp = b.htmx_get(&more).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    let frag = Html::parse_fragment(&format!("<table><tbody>{html}</tbody></table>"));
    let next: Vec<String> = attrs(&frag, "tr.audit-row", "data-id");
    assert_eq!(next.len(), 10);
    assert!(next.iter().all(|id| !first.contains(id)), "no repeats");
    assert_eq!(frag.select(&sel("tr.load-more")).count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sorting_by_action_switches_to_offset_pages_of_the_same_filter() {
    let app = TestApp::spawn().await;
    write(&app, rows("b.second", 30, 1, "success", 10)).await;
    write(&app, rows("a.first", 30, 40, "success", 10)).await;
    write(&app, rows("c.third", 5, 80, "success", 10)).await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let page1 = Html::parse_document(
        &b.get("/admin/activity?source=cli&sort=action&dir=asc")
            .await
            .text()
            .await
            .unwrap(),
    );
    let actions = texts(&page1, "#rows tr.audit-row td:nth-child(2)");
    assert_eq!(actions.len(), 50);
    assert!(actions[..30].iter().all(|a| a == "a.first"));
    assert!(actions[30..].iter().all(|a| a == "b.second"));
    assert_eq!(page1.select(&sel("tr.load-more")).count(), 0);
    assert_eq!(
        attrs(&page1, "th[aria-sort=ascending] a", "data-sort"),
        vec!["action"]
    );
    let next = attrs(&page1, ".pager a[rel=next]", "href")[0].clone();
    assert!(next.contains("page=2") && next.contains("source=cli") && next.contains("sort=action"));
    let page2 = Html::parse_fragment(&b.htmx_get(&next).await.text().await.unwrap());
    let actions2 = texts(&page2, "#rows tr.audit-row td:nth-child(2)");
    assert_eq!(actions2.len(), 15);
    assert!(actions2[..10].iter().all(|a| a == "b.second"));
    assert!(actions2[10..].iter().all(|a| a == "c.third"));
    // Over htmx the pager waits for the count, which the KPI fragment brings.
    assert_eq!(texts(&page2, "#pager"), vec![""]);
    let kpis = attrs(&page2, "#kpis", "hx-get")[0].clone();
    assert!(
        kpis.contains("sort=action") && kpis.contains("page=2"),
        "{kpis}"
    );
    let refresh = attrs(&page2, "#results > div[hx-trigger^=every]", "hx-get");
    assert!(
        refresh[0].contains("page=2"),
        "auto-refresh stays on this page: {refresh:?}"
    );
    let cards = Html::parse_fragment(&b.htmx_get(&kpis).await.text().await.unwrap());
    assert!(texts(&cards, "#pager[hx-swap-oob=true] span")[0].contains("Page 2 of 2"));
    assert_eq!(attrs(&cards, "#pager a[rel=prev]", "href").len(), 1);
    // Descending by duration puts the slowest first.
    let by_dur = Html::parse_document(
        &b.get("/admin/activity?source=cli&sort=duration")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(
        texts(&by_dur, "#rows tr.audit-row td.num")[0],
        "39 ms",
        "the slowest row first"
    );
    let bad = b.htmx_get("/admin/activity?sort=params").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_side_panel_masks_sql_literals_cuts_long_strings_and_shows_a_diff() {
    let app = TestApp::spawn().await;
    let mut e = AuditEvent::new("query.run");
    e.params = Some(json!({
        "sql": "SELECT name FROM orders WHERE id = 4242 AND owner = 'bob''s' LIMIT 10",
        "long": "x".repeat(300),
        "role": "admin",
        "added": true,
    }));
    e.params_before = Some(json!({"role": "analyst", "gone": 1, "long": "x".repeat(300)}));
    e.result = Some("success".into());
    let id = app
        .state
        .db
        .run(move |c| glassbox::repo::audit::log(c, &e))
        .await
        .unwrap();
    let b = app.signed_in(ADMIN_EMAIL).await;
    let resp = b.htmx_get(&format!("/admin/activity/rows/{id}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc = Html::parse_fragment(&resp.text().await.unwrap());
    let json = texts(&doc, "pre.json")[0].clone();
    assert!(
        json.contains("SELECT name FROM orders WHERE id = ? AND owner = ? LIMIT ?"),
        "{json}"
    );
    assert!(!json.contains("bob") && !json.contains("4242"), "{json}");
    assert!(
        json.contains(&format!("\"{}…\"", "x".repeat(128))),
        "{json}"
    );
    assert!(!json.contains(&"x".repeat(129)));
    let changes: Vec<(String, String)> = doc
        .select(&sel("table.diff tbody tr"))
        .map(|tr| {
            let cells: Vec<String> = tr
                .select(&sel("td"))
                .map(|td| td.text().collect::<String>())
                .collect();
            (cells[0].clone(), cells[1].clone())
        })
        .collect();
    let has = |k: &str, kind: &str| changes.iter().any(|(a, b)| a == k && b == kind);
    assert!(has("role", "changed"), "{changes:?}");
    assert!(has("gone", "removed"), "{changes:?}");
    assert!(has("added", "added"), "{changes:?}");
    assert!(has("sql", "added"), "{changes:?}");
    assert!(
        !changes.iter().any(|(k, _)| k == "long"),
        "unchanged keys are not listed"
    );
    assert_eq!(
        b.htmx_get("/admin/activity/rows/nope").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_filters_give_htmx_a_422_toast_and_browsers_the_error_page() {
    let app = TestApp::spawn().await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let resp = b.htmx_get("/admin/activity?since_minutes=99999").await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(resp.headers()["hx-retarget"], "#toasts");
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("toast") && html.contains("since_minutes"),
        "{html}"
    );

    let page = b.get("/admin/activity?min_duration_ms=fast").await;
    assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = page.text().await.unwrap();
    assert!(html.contains("<html") && html.contains("min_duration_ms"));
}

#[tokio::test(flavor = "multi_thread")]
async fn analysts_get_403_and_anonymous_visitors_are_sent_to_sign_in() {
    let app = TestApp::spawn().await;
    app.create_user("ann@example.com", Role::Analyst).await;
    let ann = app.signed_in("ann@example.com").await;
    assert_eq!(
        ann.get("/admin/activity").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ann.htmx_get("/admin/activity/rows").await.status(),
        StatusCode::FORBIDDEN
    );
    let anon = app.browser().get("/admin/activity").await;
    assert_eq!(anon.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        anon.headers()["location"],
        "/login?next=%2Fadmin%2Factivity"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_views_are_saved_listed_applied_and_deleted_from_the_page() {
    let app = TestApp::spawn().await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let resp = b
        .post_form(
            "/admin/activity/views",
            &[
                ("name", "Recent errors"),
                ("query", "since_minutes=60&result_class=error&cursor_id=x"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc = Html::parse_fragment(&resp.text().await.unwrap());
    assert_eq!(texts(&doc, "#views a.view-apply"), vec!["Recent errors"]);
    let href = attrs(&doc, "#views a.view-apply", "href")[0].clone();
    assert_eq!(href, "/admin/activity?result_class=error&since_minutes=60");
    // The JSON API sees the same view.
    let api: serde_json::Value = b
        .get("/api/admin/observability/views")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(api["views"][0]["query"]["result_class"], "error");
    // Applying it renders the page with its filters.
    let page = Html::parse_document(&b.get(&href).await.text().await.unwrap());
    assert_eq!(
        attrs(&page, "#f-result option[selected]", "value"),
        vec!["error"]
    );
    let empty_name = b
        .post_form("/admin/activity/views", &[("name", " "), ("query", "")])
        .await;
    assert_eq!(empty_name.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let del = attrs(&page, "#views form[hx-post$=\"/delete\"]", "hx-post")[0].clone();
    let resp = b.post_form(&del, &[("query", "")]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc = Html::parse_fragment(&resp.text().await.unwrap());
    assert_eq!(doc.select(&sel("#views a.view-apply")).count(), 0);
    assert_eq!(
        b.post_form(&del, &[]).await.status(),
        StatusCode::NOT_FOUND,
        "already gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn page_reads_write_one_activity_read_row_per_filter_within_a_minute() {
    let app = TestApp::spawn().await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let before = app.audit_rows("activity.read").await.len();
    for _ in 0..3 {
        assert_eq!(
            b.get("/admin/activity?action=x").await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(app.audit_rows("activity.read").await.len(), before + 1);
    b.get("/admin/activity?action=y").await;
    assert_eq!(app.audit_rows("activity.read").await.len(), before + 2);
    // Self-reads stay hidden unless asked for.
    let doc = Html::parse_document(&b.get("/admin/activity").await.text().await.unwrap());
    assert!(!texts(&doc, "#rows td:nth-child(2)")
        .iter()
        .any(|a| a == "activity.read"));
    let doc = Html::parse_document(
        &b.get("/admin/activity?include_self_reads=true")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(texts(&doc, "#rows td:nth-child(2)")
        .iter()
        .any(|a| a == "activity.read"));
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_without_a_form_control_survive_in_every_link_and_show_as_removable_chips() {
    let app = TestApp::spawn().await;
    let mut tagged = rows("table.read", 60, 1, "success", 10);
    for e in &mut tagged {
        e.correlation_id = Some("req-42".into());
    }
    write(&app, tagged).await;
    write(&app, rows("table.read", 20, 100, "success", 10)).await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let doc = Html::parse_document(
        &b.get("/admin/activity?correlation_id=req-42")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(texts(&doc, ".kpi[data-kpi=events] .kpi-value"), vec!["60"]);
    assert_eq!(
        attrs(
            &doc,
            "#filter-fields input[type=hidden][name=correlation_id]",
            "value"
        ),
        vec!["req-42"],
        "the form carries it to the next htmx request"
    );
    let chip = attrs(&doc, ".filter-chip[data-filter=correlation_id]", "href");
    assert_eq!(chip, vec!["/admin/activity"], "the chip removes the filter");
    let mut links = attrs(&doc, "#rows tr.load-more", "hx-get");
    links.extend(attrs(&doc, "#export-csv", "href"));
    links.extend(attrs(&doc, "th a[data-sort]", "href"));
    links.extend(attrs(&doc, ".kpi[href^='/admin']", "href"));
    assert!(links.len() >= 10, "{links:?}");
    for l in &links {
        assert!(l.contains("correlation_id=req-42"), "{l} lost the filter");
    }
    // Load more brings the remaining 10 tagged rows, not untagged ones.
    let html = b
        .htmx_get(&attrs(&doc, "#rows tr.load-more", "hx-get")[0])
        .await;
    let frag = Html::parse_fragment(&format!(
        "<table><tbody>{}</tbody></table>",
        html.text().await.unwrap()
    ));
    assert_eq!(frag.select(&sel("tr.audit-row")).count(), 10);
    // The CSV has exactly the 60 tagged rows.
    let csv = b
        .get(&attrs(&doc, "#export-csv", "href")[0])
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 1 + 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_resource_column_sorts_too() {
    let app = TestApp::spawn().await;
    let mut evs = rows("table.read", 3, 1, "success", 10);
    for (e, r) in evs.iter_mut().zip(["table:b", "table:c", "table:a"]) {
        e.resource = Some(r.into());
    }
    write(&app, evs).await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let doc = Html::parse_document(
        &b.get("/admin/activity?action=table.read&sort=resource&dir=asc")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(
        texts(&doc, "#rows tr.audit-row td:nth-child(7)"),
        vec!["table:a", "table:b", "table:c"]
    );
    assert_eq!(
        attrs(&doc, "th[aria-sort=ascending] a", "data-sort"),
        vec!["resource"]
    );
}
