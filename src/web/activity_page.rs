//! The Audit log page, `/admin/activity` (SPEC §4): one template
//! (`activity.html`) whose regions are blocks; htmx requests get the block
//! they swap. Filters are parsed exactly like the JSON APIs
//! ([`super::activity::parse_filter`]) and every query is a repository call.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Html;
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tower_sessions::Session;

use super::activity::{
    audit_read, cached_health, int_param, now, parse_cursor, parse_filter, present, remove_view,
    store_view, Params, Parsed,
};
use super::extract::{Form, Query, RequestMeta};
use crate::app::AppState;
use crate::audit::{RESULT_CLASSES, SOURCES};
use crate::auth::RequireAdmin;
use crate::error::{AppError, AppResult};
use crate::isotime;
use crate::repo::audit::{self as audit_repo, AuditFilter, AuditRow, Kpis, SortKey};
use crate::repo::{sync_history, views};
use crate::templates::ser;

const TEMPLATE: &str = "activity.html";
/// Rows per "load more" and per offset page.
pub const PAGE_ROWS: usize = 50;
/// Strings longer than this are cut in the side panel.
pub const PANEL_MAX_CHARS: usize = 128;
/// The time ranges offered, in minutes.
const RANGES: [(&str, &str); 5] = [
    ("60", "Last hour"),
    ("360", "Last 6 hours"),
    ("1440", "Last 24 hours"),
    ("10080", "Last 7 days"),
    ("43200", "Last 30 days"),
];
/// The query parameters that make up the page's filter state, in URL order.
/// Every filter `parse_filter` applies must be here, or the links built from
/// the state (load more, export, sort, views) would silently drop it.
const FILTER_KEYS: [&str; 15] = [
    "since_minutes",
    "since",
    "until",
    "user_id",
    "action",
    "source",
    "result_class",
    "resource_prefix",
    "q",
    "include_self_reads",
    "min_duration_ms",
    "action_prefix",
    "resource",
    "result_pattern",
    "correlation_id",
];
/// Filters the form has no control for (they come from shared links, saved
/// views or the side panel): shown as removable chips, carried as hidden fields.
const LINK_ONLY_KEYS: [(&str, &str); 4] = [
    ("action_prefix", "Action starts with"),
    ("resource", "Resource"),
    ("result_pattern", "Result like"),
    ("correlation_id", "Correlation id"),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/activity", get(page))
        .route("/admin/activity/facets", get(facet_options))
        .route("/admin/activity/kpis", get(kpi_fragment))
        .route("/admin/activity/rows", get(more_rows))
        .route("/admin/activity/rows/{id}", get(row_panel))
        .route("/admin/activity/views", post(save_view))
        .route("/admin/activity/views/{id}/delete", post(delete_view))
}

/// The page's query: the audit filters plus the table's sort and page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PageParams {
    #[serde(flatten)]
    filter: Params,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
}

/// htmx asks for a fragment, except when it restores history from the server
/// (then it needs the whole page).
fn wants_fragment(h: &HeaderMap) -> bool {
    h.get("hx-request").is_some_and(|v| v == "true")
        && h.get("hx-history-restore-request")
            .is_none_or(|v| v != "true")
}

/// The raw value of each filter parameter ("" when absent), for the form.
fn form_values(p: &Params) -> BTreeMap<&'static str, String> {
    let v = serde_json::to_value(p).unwrap_or(Value::Null);
    FILTER_KEYS
        .iter()
        .map(|k| {
            let s = v
                .get(*k)
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            (*k, s)
        })
        .collect()
}

/// A query string of the non-empty pairs.
fn qs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            ser.append_pair(k, v);
        }
    }
    ser.finish()
}

/// The filter state with some keys replaced (an empty value removes one).
fn qs_with(values: &BTreeMap<&'static str, String>, set: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> = FILTER_KEYS
        .iter()
        .filter(|k| !set.iter().any(|(s, _)| s == *k))
        .map(|k| (*k, values.get(k).map(String::as_str).unwrap_or("")))
        .collect();
    pairs.extend(set.iter().copied());
    qs(pairs)
}

fn url(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

#[derive(Serialize)]
struct KpiCard {
    key: &'static str,
    label: &'static str,
    value: String,
    detail: String,
    delta: Option<String>,
    /// "up", "down" or "flat".
    trend: &'static str,
    /// True when the change is in the bad direction (more errors, slower).
    worse: bool,
    href: Option<String>,
    focus: Option<&'static str>,
    active: bool,
}

/// The trend of a change and its arrow; changes smaller than `flat` are flat.
fn trend(delta: f64, flat: f64) -> (&'static str, &'static str) {
    if delta.abs() < flat {
        ("flat", "■")
    } else if delta > 0.0 {
        ("up", "▲")
    } else {
        ("down", "▼")
    }
}

fn pct_change(cur: f64, prev: f64) -> (Option<String>, &'static str) {
    if prev == 0.0 {
        if cur == 0.0 {
            return (Some("no change".into()), "flat");
        }
        return (Some("new vs previous window".into()), "up");
    }
    let pct = (cur - prev) / prev * 100.0;
    let (trend, arrow) = trend(pct, 0.5);
    (
        Some(format!("{arrow} {:.0}% vs previous", pct.abs())),
        trend,
    )
}

fn kpi_cards(
    cur: &Kpis,
    prev: Option<&Kpis>,
    values: &BTreeMap<&'static str, String>,
) -> Vec<KpiCard> {
    let thousands = |n: i64| crate::templates::thousands(n);
    let (ev_delta, ev_trend) = prev
        .map(|p| pct_change(cur.events_total as f64, p.events_total as f64))
        .unwrap_or((None, "flat"));
    let (us_delta, us_trend) = prev
        .map(|p| pct_change(cur.active_users as f64, p.active_users as f64))
        .unwrap_or((None, "flat"));
    let (er_delta, er_trend) = match prev {
        Some(p) => {
            let pts = (cur.error_rate - p.error_rate) * 100.0;
            let (trend, arrow) = trend(pts, 0.05);
            (
                Some(format!("{arrow} {:.1} pts vs previous", pts.abs())),
                trend,
            )
        }
        None => (None, "flat"),
    };
    let (p95_delta, p95_trend) = match (prev, cur.p95_duration_ms) {
        (Some(p), Some(c)) => match p.p95_duration_ms {
            Some(pv) => pct_change(c as f64, pv as f64),
            None => (Some("new vs previous window".into()), "up"),
        },
        _ => (None, "flat"),
    };
    let p95_href = cur.p95_duration_ms.map(|p| {
        url(
            "/admin/activity",
            &qs_with(values, &[("min_duration_ms", &p.to_string())]),
        )
    });
    vec![
        KpiCard {
            key: "events",
            label: "Events",
            value: thousands(cur.events_total),
            detail: "in this window".into(),
            delta: ev_delta,
            trend: ev_trend,
            worse: false,
            href: Some(url(
                "/admin/activity",
                &qs_with(values, &[("result_class", ""), ("min_duration_ms", "")]),
            )),
            focus: None,
            active: false,
        },
        KpiCard {
            key: "users",
            label: "Active users",
            value: thousands(cur.active_users),
            detail: "people, not scheduler or system".into(),
            delta: us_delta,
            trend: us_trend,
            worse: false,
            href: None,
            focus: Some("f-user"),
            active: !values["user_id"].is_empty(),
        },
        KpiCard {
            key: "errors",
            label: "Error rate",
            value: format!("{:.1}%", cur.error_rate * 100.0),
            detail: format!("{} errors", thousands(cur.errors)),
            delta: er_delta,
            trend: er_trend,
            worse: er_trend == "up",
            href: Some(url(
                "/admin/activity",
                &qs_with(values, &[("result_class", "error")]),
            )),
            focus: None,
            active: values["result_class"] == "error",
        },
        KpiCard {
            key: "p95",
            label: "p95 duration",
            value: cur
                .p95_duration_ms
                .map(|p| format!("{} ms", thousands(p)))
                .unwrap_or_else(|| "—".into()),
            detail: format!("{:.0}% of events measured", cur.duration_coverage * 100.0),
            delta: p95_delta,
            trend: p95_trend,
            worse: p95_trend == "up",
            href: p95_href,
            focus: None,
            active: !values["min_duration_ms"].is_empty(),
        },
    ]
}

#[derive(Serialize)]
struct SortLink {
    key: &'static str,
    label: &'static str,
    href: String,
    /// "ascending", "descending" or "none" (aria-sort).
    state: &'static str,
}

struct Sort {
    key: Option<SortKey>,
    name: String,
    descending: bool,
    page: usize,
}

fn parse_sort(p: &PageParams) -> AppResult<Sort> {
    let name = present(&p.sort).unwrap_or("time").trim().to_string();
    let key = match name.as_str() {
        "time" | "timestamp" => None,
        other => Some(SortKey::parse(other).ok_or_else(|| {
            AppError::unprocessable(format!(
                "sort: must be one of time, action, user, result, source, duration, resource, got {other:?}"
            ))
        })?),
    };
    let descending = match present(&p.dir).map(str::trim) {
        _ if key.is_none() => true,
        None => key == Some(SortKey::Duration),
        Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(AppError::unprocessable(format!(
                "dir: must be asc or desc, got {other:?}"
            )))
        }
    };
    let page = int_param("page", &p.page, 1, 100_000)?.unwrap_or(1) as usize;
    Ok(Sort {
        key,
        name: if key.is_none() { "time".into() } else { name },
        descending,
        page,
    })
}

/// The filter for the facet options: the window (and the self-reads toggle)
/// only, so picking one value does not hide the others.
fn window_filter(f: &AuditFilter) -> AuditFilter {
    AuditFilter {
        since: f.since,
        until: f.until,
        include_self_reads: f.include_self_reads,
        ..AuditFilter::default()
    }
}

/// The most recent run of each table, by table name.
fn sync_grid(runs: Vec<sync_history::SyncRun>) -> Vec<sync_history::SyncRun> {
    let mut by_table: BTreeMap<String, sync_history::SyncRun> = BTreeMap::new();
    for r in runs {
        // Newest first: keep the first seen.
        by_table.entry(r.table_id.clone()).or_insert(r);
    }
    by_table.into_values().collect()
}

#[derive(Serialize)]
struct ViewLink {
    id: String,
    name: String,
    href: String,
    created_at: Option<String>,
}

fn view_links(list: Vec<views::View>) -> Vec<ViewLink> {
    list.into_iter()
        .map(|v| {
            let pairs: Vec<(String, String)> = v
                .query
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| {
                            let s = match v {
                                Value::String(s) => s.clone(),
                                Value::Number(n) => n.to_string(),
                                Value::Bool(b) => b.to_string(),
                                _ => return None,
                            };
                            Some((k.clone(), s))
                        })
                        .collect()
                })
                .unwrap_or_default();
            ViewLink {
                href: url(
                    "/admin/activity",
                    &qs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                ),
                id: v.id,
                name: v.name,
                created_at: v.created_at.as_ref().map(isotime::format),
            }
        })
        .collect()
}

async fn load_views(state: &AppState, admin: &RequireAdmin) -> AppResult<Vec<ViewLink>> {
    let uid = admin.id().to_string();
    Ok(view_links(
        state.db.run(move |c| views::list(c, &uid)).await?,
    ))
}

/// Context shared by the page and its fragments: the filter state and the
/// links derived from it.
struct Links {
    values: BTreeMap<&'static str, String>,
    filters_qs: String,
    sort_qs: String,
}

fn links(p: &PageParams, sort: &Sort) -> Links {
    let values = form_values(&p.filter);
    let filters_qs = qs_with(&values, &[]);
    let dir = if sort.descending { "desc" } else { "asc" };
    let sort_qs = if sort.key.is_some() {
        qs([("sort", sort.name.as_str()), ("dir", dir)])
    } else {
        String::new()
    };
    Links {
        values,
        filters_qs,
        sort_qs,
    }
}

fn join_qs(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}&{b}"),
    }
}

fn sort_links(l: &Links, sort: &Sort) -> Vec<SortLink> {
    let cols: [(&'static str, &'static str); 7] = [
        ("time", "Time"),
        ("action", "Action"),
        ("user", "User"),
        ("result", "Result"),
        ("source", "Source"),
        ("duration", "Duration"),
        ("resource", "Resource"),
    ];
    cols.iter()
        .map(|(key, label)| {
            let current = sort.name == *key;
            // Clicking the current column flips it; another starts at its default.
            let next_dir = match (current, sort.descending) {
                (true, true) => "asc",
                (true, false) => "desc",
                (false, _) if *key == "time" || *key == "duration" => "desc",
                _ => "asc",
            };
            // Time is keyset-paged newest first only: its link resets the sort.
            let sq = if *key == "time" {
                String::new()
            } else {
                qs([("sort", *key), ("dir", next_dir)])
            };
            SortLink {
                key,
                label,
                href: url("/admin/activity", &join_qs(&l.filters_qs, &sq)),
                state: match (current, sort.descending) {
                    (false, _) => "none",
                    (true, true) => "descending",
                    (true, false) => "ascending",
                },
            }
        })
        .collect()
}

#[derive(Serialize)]
struct LinkFilter {
    key: &'static str,
    label: &'static str,
    value: String,
    remove_href: String,
}

/// The set filters the form has no control for, each with the address of the
/// page without it.
fn link_filters(values: &BTreeMap<&'static str, String>, sort_qs: &str) -> Vec<LinkFilter> {
    LINK_ONLY_KEYS
        .iter()
        .filter(|(k, _)| !values[k].is_empty())
        .map(|(key, label)| LinkFilter {
            key,
            label,
            value: values[key].clone(),
            remove_href: url(
                "/admin/activity",
                &join_qs(&qs_with(values, &[(key, "")]), sort_qs),
            ),
        })
        .collect()
}

/// The "load more" address after `last`.
fn more_href(filters_qs: &str, next: Option<&audit_repo::Cursor>) -> Option<String> {
    next.map(|c| {
        let ts = isotime::format(&c.ts);
        url(
            "/admin/activity/rows",
            &join_qs(
                filters_qs,
                &qs([("cursor_ts", ts.as_str()), ("cursor_id", c.id.as_str())]),
            ),
        )
    })
}

/// What the filter fields (`#filter-fields`) show: the filter state, the
/// window, the chips, and the facet options (`None`: still to be loaded from
/// `facets_href`, so a filter change is not held up by the facet scan).
fn fields_ctx(
    parsed: &Parsed,
    sort: &Sort,
    l: &Links,
    now: chrono::NaiveDateTime,
    facets: Option<&audit_repo::Facets>,
) -> minijinja::Value {
    let since_s = isotime::format(&parsed.window.since);
    let until_s = isotime::format(&parsed.window.until.unwrap_or(now));
    let range = if l.values["since"].is_empty() && l.values["until"].is_empty() {
        parsed
            .window
            .since_minutes
            .map(|m| m.to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let full_qs = join_qs(&l.filters_qs, &l.sort_qs);
    context! {
        f => ser(&l.values),
        range_known => range.is_empty() || RANGES.iter().any(|(v, _)| *v == range),
        range => range,
        ranges => ser(&RANGES),
        window_since => since_s,
        window_until => until_s,
        facets => ser(&facets.cloned().unwrap_or_default()),
        facets_href => facets.is_none().then(|| url("/admin/activity/facets", &full_qs)),
        sort => sort.name.clone(),
        dir => if sort.descending { "desc" } else { "asc" },
        link_filters => ser(&link_filters(&l.values, &l.sort_qs)),
    }
}

/// The KPI region: the cards, the window's event count and, when the table
/// is sorted, its pager (which needs that count). `None`: placeholders that
/// load the region from `/admin/activity/kpis?<view_qs>`.
fn kpi_ctx(
    kpis: Option<&(Kpis, Option<Kpis>)>,
    sort: &Sort,
    l: &Links,
    view_qs: &str,
) -> minijinja::Value {
    let Some(kpis) = kpis else {
        return context! {
            kpis => Vec::<()>::new(),
            kpis_href => url("/admin/activity/kpis", view_qs),
            total => (),
            pager => (),
            pager_pending => sort.key.is_some(),
        };
    };
    let total = kpis.0.events_total;
    let pages = ((total.max(0) as usize).div_ceil(PAGE_ROWS)).max(1);
    let dir = if sort.descending { "desc" } else { "asc" };
    let page_href = |n: usize| {
        url(
            "/admin/activity",
            &join_qs(
                &l.filters_qs,
                &qs([
                    ("sort", sort.name.as_str()),
                    ("dir", dir),
                    ("page", n.to_string().as_str()),
                ]),
            ),
        )
    };
    let pager = sort.key.map(|_| {
        json!({
            "page": sort.page,
            "pages": pages,
            "prev": (sort.page > 1).then(|| page_href(sort.page - 1)),
            "next": (sort.page < pages).then(|| page_href(sort.page + 1)),
        })
    });
    context! {
        kpis => ser(&kpi_cards(&kpis.0, kpis.1.as_ref(), &l.values)),
        kpis_href => (),
        total => total,
        pager => ser(&pager),
        pager_pending => false,
    }
}

/// `query(conn, arg)` on its own connection when there is an `arg`.
async fn run_some<A, T>(
    state: &AppState,
    arg: Option<A>,
    query: fn(&duckdb::Connection, &A) -> anyhow::Result<T>,
) -> AppResult<Option<T>>
where
    A: Send + 'static,
    T: Send + 'static,
{
    Ok(match arg {
        Some(a) => Some(state.db.run(move |c| query(c, &a)).await?),
        None => None,
    })
}

/// The page's query string parsed: the filter, the sort and the links.
fn parse_page(p: &PageParams, now: chrono::NaiveDateTime) -> AppResult<(Parsed, Sort, Links)> {
    let parsed: Parsed = parse_filter(&p.filter, now)?;
    let sort = parse_sort(p)?;
    let l = links(p, &sort);
    Ok((parsed, sort, l))
}

async fn page(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    admin: RequireAdmin,
    headers: HeaderMap,
    Query(p): Query<PageParams>,
) -> AppResult<Html<String>> {
    let now = now();
    let (parsed, sort, l) = parse_page(&p, now)?;
    let fragment = wants_fragment(&headers);

    // Absolute bounds: the export and "custom" show exactly this window.
    let since = parsed.window.since;
    let until = parsed.window.until.unwrap_or(now);
    let filter = parsed.filter.clone();
    // A whole page (first visit, shared link, history restore) is complete,
    // its regions queried side by side. An htmx swap answers with health, rows
    // and syncs, and the KPI cards and facet options load after as fragments
    // of their own, so a filter change shows its rows at once.
    let (kpi_filter, facet_filter) = if fragment {
        (None, None)
    } else {
        (Some(filter.clone()), Some(window_filter(&filter)))
    };
    let sort_key = sort.key;
    let (descending, offset) = (sort.descending, (sort.page - 1) * PAGE_ROWS);
    let (kpis, facets, (rows, next, runs), (health, _), views) = tokio::try_join!(
        run_some(&state, kpi_filter, audit_repo::kpis_with_previous),
        run_some(&state, facet_filter, audit_repo::facets_without_results),
        async {
            Ok(state
                .db
                .run(move |c| {
                    let (rows, next) = match sort_key {
                        None => {
                            let pg = audit_repo::query(c, &filter, None, PAGE_ROWS)?;
                            (pg.rows, pg.next_cursor)
                        }
                        Some(k) => (
                            audit_repo::query_sorted(c, &filter, k, descending, offset, PAGE_ROWS)?,
                            None,
                        ),
                    };
                    let runs = sync_history::list(c, since, Some(until), None, 500)?;
                    Ok((rows, next, runs))
                })
                .await?)
        },
        cached_health(&state),
        load_views(&state, &admin),
    )?;
    audit_read(&state, &meta, &admin, "page", &parsed.echo).await;

    let since_s = isotime::format(&since);
    let until_s = isotime::format(&until);
    let export_qs = qs_with(
        &l.values,
        &[
            ("since_minutes", ""),
            ("since", since_s.as_str()),
            ("until", until_s.as_str()),
        ],
    );
    // This very view (filters, sort and page): what a refresh reloads and
    // what the KPI fragment (whose pager needs the page) is asked for.
    let view_qs = match sort.page {
        1 => join_qs(&l.filters_qs, &l.sort_qs),
        n => join_qs(
            &join_qs(&l.filters_qs, &l.sort_qs),
            &qs([("page", n.to_string().as_str())]),
        ),
    };
    let kpi_region = kpi_ctx(kpis.as_ref(), &sort, &l, &view_qs);
    let base = super::base_ctx(&session, Some(&admin.user), "activity").await?;
    let ctx = context! {
        full => !fragment,
        oob => fragment,
        title => "Audit log",
        total_oob => false,
        pager_oob => false,
        result_classes => ser(&RESULT_CLASSES),
        sources => ser(&SOURCES),
        health => ser(&health),
        rows => ser(&rows),
        more_href => more_href(&l.filters_qs, next.as_ref()),
        sort_links => ser(&sort_links(&l, &sort)),
        sync => ser(&sync_grid(runs)),
        views => ser(&views),
        filters_qs => l.filters_qs.clone(),
        refresh_href => url("/admin/activity", &view_qs),
        export_href => url("/api/admin/activity/export", &join_qs("format=csv", &export_qs)),
        row => (),
        view_notice => (),
        ..context! { ..kpi_region, ..fields_ctx(&parsed, &sort, &l, now, facets.as_ref()), ..base }
    };
    if fragment {
        let results = state.templates.block(TEMPLATE, "results", ctx.clone())?;
        let filters = state.templates.block(TEMPLATE, "filters", ctx)?;
        Ok(Html(format!("{}\n{}", results.0, filters.0)))
    } else {
        state.templates.page(TEMPLATE, ctx)
    }
}

/// The KPI cards of the page's filters, with the event count and (when the
/// table is sorted) the pager out of band: what an htmx swap of the page
/// loads once its rows are in. Part of that page view: no `activity.read`.
async fn kpi_fragment(
    State(state): State<AppState>,
    session: Session,
    admin: RequireAdmin,
    Query(p): Query<PageParams>,
) -> AppResult<Html<String>> {
    let (parsed, sort, l) = parse_page(&p, now())?;
    let filter = parsed.filter;
    let kpis = state
        .db
        .run(move |c| audit_repo::kpis_with_previous(c, &filter))
        .await?;
    let ctx = context! {
        full => false,
        total_oob => true,
        pager_oob => true,
        ..context! { ..kpi_ctx(Some(&kpis), &sort, &l, ""), ..super::base_ctx(&session, Some(&admin.user), "activity").await? }
    };
    let mut html = state.templates.block(TEMPLATE, "kpis", ctx.clone())?.0;
    html.push_str(&state.templates.block(TEMPLATE, "total", ctx.clone())?.0);
    if sort.key.is_some() {
        html.push_str(&state.templates.block(TEMPLATE, "pager", ctx)?.0);
    }
    Ok(Html(html))
}

/// The facet selects with the options of the window, each swapped out of
/// band (so inputs the user is typing in are left alone): what an htmx swap of
/// the page loads once its rows are in. Part of that page view, so it writes
/// no `activity.read` of its own.
async fn facet_options(
    State(state): State<AppState>,
    session: Session,
    admin: RequireAdmin,
    Query(p): Query<PageParams>,
) -> AppResult<Html<String>> {
    let now = now();
    let (parsed, sort, l) = parse_page(&p, now)?;
    let facet_filter = window_filter(&parsed.filter);
    let facets = state
        .db
        .run(move |c| audit_repo::facets_without_results(c, &facet_filter))
        .await?;
    let base = super::base_ctx(&session, Some(&admin.user), "activity").await?;
    let ctx = context! {
        full => false,
        oob => false,
        ..context! { ..fields_ctx(&parsed, &sort, &l, now, Some(&facets)), ..base }
    };
    state.templates.block(TEMPLATE, "facet_options", ctx)
}

/// "Load more": the next keyset page of rows and, when there is more, the
/// next "load more" row.
async fn more_rows(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(p): Query<PageParams>,
) -> AppResult<Html<String>> {
    let (parsed, _, l) = parse_page(&p, now())?;
    let cursor = parse_cursor(&p.filter)?;
    let filter = parsed.filter.clone();
    let pg = state
        .db
        .run(move |c| audit_repo::query(c, &filter, cursor.as_ref(), PAGE_ROWS))
        .await?;
    audit_read(&state, &meta, &admin, "page", &parsed.echo).await;
    let base = super::base_ctx(&session, Some(&admin.user), "activity").await?;
    let ctx = context! {
        full => false,
        rows => ser(&pg.rows),
        more_href => more_href(&l.filters_qs, pg.next_cursor.as_ref()),
        ..base
    };
    state.templates.block(TEMPLATE, "rows", ctx)
}

async fn row_panel(
    State(state): State<AppState>,
    session: Session,
    admin: RequireAdmin,
    Path(id): Path<String>,
) -> AppResult<Html<String>> {
    let id_c = id.clone();
    let row = state
        .db
        .run(move |c| audit_repo::by_id(c, &id_c))
        .await?
        .ok_or_else(|| AppError::not_found(format!("no audit row {id}")))?;
    let view = panel_view(&row);
    let base = super::base_ctx(&session, Some(&admin.user), "activity").await?;
    let ctx = context! { full => false, row => ser(&view), ..base };
    state.templates.block(TEMPLATE, "panel", ctx)
}

#[derive(Deserialize)]
struct ViewForm {
    name: Option<String>,
    /// The filters as a query string (the page's current URL state).
    query: Option<String>,
}

async fn render_views(
    state: &AppState,
    session: &Session,
    admin: &RequireAdmin,
    filters_qs: String,
    notice: Option<String>,
) -> AppResult<Html<String>> {
    let views = load_views(state, admin).await?;
    let base = super::base_ctx(session, Some(&admin.user), "activity").await?;
    let ctx = context! {
        full => false, views => ser(&views), filters_qs => filters_qs, view_notice => notice, ..base
    };
    state.templates.block(TEMPLATE, "views", ctx)
}

/// The query string of a saved view: the known filter keys only.
fn view_query(query: &str) -> (Map<String, Value>, String) {
    let mut map = Map::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if FILTER_KEYS.contains(&k.as_ref()) && !v.trim().is_empty() {
            map.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    let back = qs(map
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.as_str(), s))));
    (map, back)
}

async fn save_view(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    admin: RequireAdmin,
    Form(form): Form<ViewForm>,
) -> AppResult<Html<String>> {
    let (map, back) = view_query(form.query.as_deref().unwrap_or(""));
    let view = store_view(&state, &meta, &admin, form.name, Some(Value::Object(map))).await?;
    render_views(
        &state,
        &session,
        &admin,
        back,
        Some(format!("Saved “{}”.", view.name)),
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeleteForm {
    query: Option<String>,
}

async fn delete_view(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    admin: RequireAdmin,
    Path(id): Path<String>,
    Form(form): Form<DeleteForm>,
) -> AppResult<Html<String>> {
    remove_view(&state, &meta, &admin, id).await?;
    let (_, back) = view_query(form.query.as_deref().unwrap_or(""));
    render_views(&state, &session, &admin, back, Some("View deleted.".into())).await
}

// ---- the side panel's view of a row ----

#[derive(Debug, Serialize, PartialEq)]
pub struct Change {
    pub key: String,
    /// "added", "removed" or "changed".
    pub kind: &'static str,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PanelView {
    pub id: String,
    pub action: String,
    pub timestamp: String,
    pub json: String,
    pub diff: Option<Vec<Change>>,
}

/// The row as the side panel shows it: SQL literals masked, long strings
/// cut, and the change from `params_before` to `params`.
pub fn panel_view(row: &AuditRow) -> PanelView {
    let params = row.params.clone().map(mask_params);
    let before = row.params_before.clone().map(mask_params);
    let diff = before
        .as_ref()
        .map(|b| diff(b, params.as_ref().unwrap_or(&Value::Null)));
    let mut v = serde_json::to_value(row).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("params".into(), params.unwrap_or(Value::Null));
        o.insert("params_before".into(), before.unwrap_or(Value::Null));
    }
    let v = cut_strings(v, PANEL_MAX_CHARS);
    PanelView {
        id: row.id.clone(),
        action: row.action.clone(),
        timestamp: isotime::format(&row.timestamp),
        json: serde_json::to_string_pretty(&v).unwrap_or_default(),
        diff,
    }
}

/// Keys whose string values hold SQL in the platform's rows (`sql`,
/// `query`, `statement`, `…_sql`, `…_query`), in any case.
fn holds_sql(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["sql", "query", "statement"].contains(&k.as_str())
        || k.ends_with("_sql")
        || k.ends_with("_query")
}

/// Every SQL string of the params (see [`holds_sql`]), however deep, with its
/// literals masked.
fn mask_params(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) if holds_sql(&k) => Value::String(mask_sql(&s)),
                        other => mask_params(other),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(mask_params).collect()),
        other => other,
    }
}

/// Replaces string literals (`'…'`, `''` escapes included) and number
/// literals with `?`; identifiers (`t1`, `"col 2"`) are kept.
pub fn mask_sql(sql: &str) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push('?');
        } else if c == '"' {
            // A quoted identifier: copied as is.
            out.push(c);
            i += 1;
            while i < chars.len() {
                out.push(chars[i]);
                i += 1;
                if chars[i - 1] == '"' {
                    break;
                }
            }
        } else if c.is_ascii_digit() && (i == 0 || !ident(chars[i - 1])) {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            out.push('?');
        } else if ident(c) {
            while i < chars.len() && ident(chars[i]) {
                out.push(chars[i]);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every string over `max` characters cut to `max` and "…".
pub fn cut_strings(v: Value, max: usize) -> Value {
    match v {
        Value::String(s) if s.chars().count() > max => {
            Value::String(format!("{}…", s.chars().take(max).collect::<String>()))
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|v| cut_strings(v, max)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, cut_strings(v, max)))
                .collect(),
        ),
        other => other,
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match cut_strings(Value::String(s), PANEL_MAX_CHARS) {
        Value::String(s) => s,
        _ => String::new(),
    }
}

/// Added, removed and changed top-level keys from `before` to `after`
/// (a non-object is compared as one value).
pub fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let empty = Map::new();
    match (before, after) {
        (Value::Object(b), a) => {
            let a = a.as_object().unwrap_or(&empty);
            let mut out = Vec::new();
            for (k, bv) in b {
                match a.get(k) {
                    None => out.push(Change {
                        key: k.clone(),
                        kind: "removed",
                        before: Some(short(bv)),
                        after: None,
                    }),
                    Some(av) if av != bv => out.push(Change {
                        key: k.clone(),
                        kind: "changed",
                        before: Some(short(bv)),
                        after: Some(short(av)),
                    }),
                    _ => {}
                }
            }
            for (k, av) in a {
                if !b.contains_key(k) {
                    out.push(Change {
                        key: k.clone(),
                        kind: "added",
                        before: None,
                        after: Some(short(av)),
                    });
                }
            }
            out.sort_by(|x, y| x.key.cmp(&y.key));
            out
        }
        (b, a) if b != a => vec![Change {
            key: "(value)".into(),
            kind: "changed",
            before: Some(short(b)),
            after: Some(short(a)),
        }],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_string_and_number_literals_are_masked() {
        assert_eq!(
            mask_sql("SELECT a1, \"col 2\" FROM t9 WHERE x = 'it''s' AND y >= 42.5 LIMIT 10"),
            "SELECT a1, \"col 2\" FROM t9 WHERE x = ? AND y >= ? LIMIT ?"
        );
    }

    #[test]
    fn sql_under_any_sql_holding_key_is_masked_and_other_strings_are_not() {
        let v = mask_params(json!({
            "sql": "SELECT 1",
            "Query": "SELECT * FROM t WHERE id = 7",
            "nested": [{"count_sql": "SELECT 'x'", "statement": "DELETE FROM t WHERE a = 'b'"}],
            "note": "row 7 of 'orders'",
        }));
        assert_eq!(v["sql"], "SELECT ?");
        assert_eq!(v["Query"], "SELECT * FROM t WHERE id = ?");
        assert_eq!(v["nested"][0]["count_sql"], "SELECT ?");
        assert_eq!(v["nested"][0]["statement"], "DELETE FROM t WHERE a = ?");
        assert_eq!(v["note"], "row 7 of 'orders'");
    }

    #[test]
    fn long_strings_are_cut_with_an_ellipsis() {
        let v = cut_strings(json!({"a": "x".repeat(200), "b": "short"}), 128);
        assert_eq!(v["a"].as_str().unwrap().chars().count(), 129);
        assert!(v["a"].as_str().unwrap().ends_with('…'));
        assert_eq!(v["b"], "short");
    }

    #[test]
    fn diff_lists_added_removed_and_changed_keys() {
        let d = diff(
            &json!({"role": "analyst", "name": "A", "gone": 1}),
            &json!({"role": "admin", "name": "A", "new": true}),
        );
        let kinds: Vec<_> = d.iter().map(|c| (c.key.as_str(), c.kind)).collect();
        assert_eq!(
            kinds,
            vec![("gone", "removed"), ("new", "added"), ("role", "changed")]
        );
    }

    #[test]
    fn query_strings_drop_empty_values() {
        assert_eq!(qs([("a", "1"), ("b", ""), ("c", "x y")]), "a=1&c=x+y");
    }
}
