//! The Audit log page, `/admin/activity` (SPEC §4), built from the page kit
//! (docs/pages.md uses it as the worked example): one template
//! (`activity.html`) whose regions are blocks; htmx requests get the block
//! they swap. Filters are the typed [`AuditQuery`] the JSON APIs read too,
//! and every query is a repository call.

use axum::extract::Path;
use axum::response::Html;
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::api::{audit_read, cached_health, remove_view, store_view};
use super::query::{parse_cursor, parse_filter, AuditQuery, Parsed};
use crate::app::AppState;
use crate::audit::{RESULT_CLASSES, SOURCES};
use crate::auth::RequireAdmin;
use crate::error::{AppError, AppResult};
use crate::isotime;
use crate::repo::audit::{self as audit_repo, AuditFilter, Kpis, SortKey};
use crate::repo::{sync_history, views};
use crate::templates::ser;
use crate::web::extract::{Form, Query, RequestMeta};
use crate::web::kit::params::now;
use crate::web::kit::{
    chips, form_values, run_some, sort_links, Column, Delta, FacetField, KpiCard, PageCtx, Pager,
    Qs, Sort, SortQuery,
};

const TEMPLATE: &str = "activity.html";
const PATH: &str = "/admin/activity";
const NAV: &str = "activity";
/// Rows per "load more" and per offset page.
pub const PAGE_ROWS: usize = 50;
/// The time ranges offered, in minutes.
const RANGES: [(&str, &str); 5] = [
    ("60", "Last hour"),
    ("360", "Last 6 hours"),
    ("1440", "Last 24 hours"),
    ("10080", "Last 7 days"),
    ("43200", "Last 30 days"),
];
/// Filters the form has no control for (they come from shared links, saved
/// views or the side panel): shown as removable chips, carried as hidden fields.
const LINK_ONLY_KEYS: [(&str, &str); 4] = [
    ("action_prefix", "Action starts with"),
    ("resource", "Resource"),
    ("result_pattern", "Result like"),
    ("correlation_id", "Correlation id"),
];
/// The table's columns; the first (time, keyset-paged newest first) is the
/// default order.
const COLUMNS: [Column; 7] = [
    Column::fixed("time", "Time"),
    Column::asc("action", "Action"),
    Column::asc("user", "User"),
    Column::asc("result", "Result"),
    Column::asc("source", "Source"),
    Column::desc("duration", "Duration"),
    Column::asc("resource", "Resource"),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATH, get(page))
        .route("/admin/activity/facets", get(facet_options))
        .route("/admin/activity/kpis", get(kpi_fragment))
        .route("/admin/activity/rows", get(more_rows))
        .route("/admin/activity/rows/{id}", get(row_panel))
        .route("/admin/activity/views", post(save_view))
        .route("/admin/activity/views/{id}/delete", post(delete_view))
}

/// The page's query: the audit filters plus the table's sort and page (and
/// the cursor of "load more").
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PageParams {
    #[serde(flatten)]
    filter: AuditQuery,
    #[serde(flatten)]
    table: SortQuery,
    cursor_ts: Option<String>,
    cursor_id: Option<String>,
}

fn kpi_cards(cur: &Kpis, prev: Option<&Kpis>, filters: &Qs) -> Vec<KpiCard> {
    let thousands = crate::templates::thousands;
    let er_delta = prev
        .map(|p| Delta::pts(cur.error_rate, p.error_rate))
        .unwrap_or_else(Delta::none);
    let p95_delta = match (prev, cur.p95_duration_ms) {
        (Some(p), Some(c)) => match p.p95_duration_ms {
            Some(pv) => Delta::pct(c as f64, pv as f64),
            None => Delta::new_value(),
        },
        _ => Delta::none(),
    };
    vec![
        KpiCard::new("events", "Events", thousands(cur.events_total))
            .detail("in this window")
            .delta(
                Delta::pct_of(cur.events_total as f64, prev.map(|p| p.events_total as f64)),
                false,
            )
            .href(Some(
                filters
                    .without("result_class")
                    .without("min_duration_ms")
                    .url(PATH),
            )),
        KpiCard::new("users", "Active users", thousands(cur.active_users))
            .detail("people, not scheduler or system")
            .delta(
                Delta::pct_of(cur.active_users as f64, prev.map(|p| p.active_users as f64)),
                false,
            )
            .focus("f-user")
            .active(!filters.get("user_id").is_empty()),
        KpiCard::new(
            "errors",
            "Error rate",
            format!("{:.1}%", cur.error_rate * 100.0),
        )
        .detail(format!("{} errors", thousands(cur.errors)))
        .delta(er_delta, true)
        .href(Some(filters.set("result_class", "error").url(PATH)))
        .active(filters.get("result_class") == "error"),
        KpiCard::new(
            "p95",
            "p95 duration",
            cur.p95_duration_ms
                .map(|p| format!("{} ms", thousands(p)))
                .unwrap_or_else(|| "—".into()),
        )
        .detail(format!(
            "{:.0}% of events measured",
            cur.duration_coverage * 100.0
        ))
        .delta(p95_delta, true)
        .href(
            cur.p95_duration_ms
                .map(|p| filters.set("min_duration_ms", &p.to_string()).url(PATH)),
        )
        .active(!filters.get("min_duration_ms").is_empty()),
    ]
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

/// The five facet selects of the form, in its order.
fn facet_list(f: Option<&audit_repo::Facets>) -> Vec<FacetField> {
    let f = f.cloned().unwrap_or_default();
    vec![
        FacetField::values("User", "f-user", "user_id", "Any user", &f.users)
            .labelled("id", "label"),
        FacetField::values("Action", "f-action", "action", "Any action", &f.actions),
        FacetField::values("Source", "f-source", "source", "Any source", &f.sources),
        FacetField::values(
            "Result",
            "f-result",
            "result_class",
            "Any result",
            &f.result_classes,
        ),
        FacetField::values(
            "Resource",
            "f-resource",
            "resource_prefix",
            "Any resource",
            &f.resources,
        ),
    ]
}

/// The most recent run of each table, by table name.
fn sync_grid(runs: Vec<sync_history::SyncRun>) -> Vec<sync_history::SyncRun> {
    let mut by_table: std::collections::BTreeMap<String, sync_history::SyncRun> =
        std::collections::BTreeMap::new();
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
        .map(|v| ViewLink {
            href: crate::web::kit::links::from_json(&v.query).url(PATH),
            id: v.id,
            name: v.name,
            created_at: v.created_at.as_ref().map(isotime::format),
        })
        .collect()
}

async fn load_views(state: &AppState, admin: &RequireAdmin) -> AppResult<Vec<ViewLink>> {
    let uid = admin.id().to_string();
    Ok(view_links(
        state.db.run(move |c| views::list(c, &uid)).await?,
    ))
}

/// The page's query string parsed: the filter, the sort, and the filters as
/// a query string (the base of every link).
struct View {
    parsed: Parsed,
    sort: Sort,
    filters: Qs,
}

impl View {
    fn parse(p: &PageParams, now: chrono::NaiveDateTime) -> AppResult<View> {
        let parsed = parse_filter(&p.filter, now)?;
        let mut table = p.table.clone();
        // `timestamp` is the old name of the time order.
        if table.sort.as_deref().map(str::trim) == Some("timestamp") {
            table.sort = Some("time".into());
        }
        let sort = Sort::parse(&table, &COLUMNS)?;
        Ok(View {
            parsed,
            sort,
            filters: Qs::of(&p.filter),
        })
    }

    /// The repository's order: `None` for the keyset-paged timeline.
    fn sort_key(&self) -> Option<SortKey> {
        SortKey::parse(self.sort.name).filter(|_| self.sort.name != "time")
    }

    /// This very view (filters, sort and page): what a refresh reloads and
    /// what the KPI fragment (whose pager needs the page) is asked for.
    fn this_view(&self) -> Qs {
        self.filters.join(&self.sort.qs_with_page())
    }

    /// The "load more" address after `next`.
    fn more_href(&self, next: Option<&audit_repo::Cursor>) -> Option<String> {
        next.map(|c| {
            let ts = isotime::format(&c.ts);
            self.filters
                .join(&Qs::pairs([
                    ("cursor_ts", ts.as_str()),
                    ("cursor_id", c.id.as_str()),
                ]))
                .url("/admin/activity/rows")
        })
    }

    /// What the filter fields (`#filter-fields`) show: the filter state, the
    /// window, the chips, and the facet options (`None`: still to be loaded
    /// from `facets_href`, so a filter change is not held up by the facet scan).
    fn fields_ctx(
        &self,
        p: &PageParams,
        now: chrono::NaiveDateTime,
        facets: Option<&audit_repo::Facets>,
    ) -> minijinja::Value {
        let window = &self.parsed.window;
        let values = form_values(&p.filter);
        let range = if values["since"].is_empty() && values["until"].is_empty() {
            window
                .since_minutes
                .map(|m| m.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let sort_qs = self.sort.qs();
        context! {
            f => ser(&values),
            range_known => range.is_empty() || RANGES.iter().any(|(v, _)| *v == range),
            range => range,
            ranges => ser(&RANGES),
            window_since => isotime::format(&window.since),
            window_until => isotime::format(&window.until.unwrap_or(now)),
            facet_fields_list => ser(&facet_list(facets)),
            facets_href => facets.is_none().then(|| self.filters.join(&sort_qs).url("/admin/activity/facets")),
            sort => self.sort.name,
            dir => self.sort.dir(),
            link_filters => ser(&chips(&self.filters, &LINK_ONLY_KEYS, PATH, &sort_qs)),
        }
    }

    /// The KPI region: the cards, the window's event count and, when the
    /// table is sorted, its pager (which needs that count). `None`:
    /// placeholders that load the region from `/admin/activity/kpis`.
    fn kpi_ctx(&self, kpis: Option<&(Kpis, Option<Kpis>)>) -> minijinja::Value {
        let sorted = self.sort_key().is_some();
        let Some((cur, prev)) = kpis else {
            return context! {
                kpis => Vec::<()>::new(),
                kpis_href => self.this_view().url("/admin/activity/kpis"),
                total => (),
                pager => (),
                pager_pending => sorted,
            };
        };
        let pager = sorted
            .then(|| Pager::new(PATH, &self.filters, &self.sort, cur.events_total, PAGE_ROWS));
        context! {
            kpis => ser(&kpi_cards(cur, prev.as_ref(), &self.filters)),
            kpis_href => (),
            total => cur.events_total,
            pager => ser(&pager),
            pager_pending => false,
        }
    }
}

async fn page(
    ctx: PageCtx,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(p): Query<PageParams>,
) -> AppResult<Html<String>> {
    let state = &ctx.state;
    let now = now();
    let v = View::parse(&p, now)?;
    let fragment = ctx.wants_fragment();

    // Absolute bounds: the export and "custom" show exactly this window.
    let since = v.parsed.window.since;
    let until = v.parsed.window.until.unwrap_or(now);
    let filter = v.parsed.filter.clone();
    // A whole page (first visit, shared link, history restore) is complete,
    // its regions queried side by side. An htmx swap answers with health, rows
    // and syncs, and the KPI cards and facet options load after as fragments
    // of their own, so a filter change shows its rows at once.
    let (kpi_filter, facet_filter) = if fragment {
        (None, None)
    } else {
        (Some(filter.clone()), Some(window_filter(&filter)))
    };
    let sort_key = v.sort_key();
    let (descending, offset) = (v.sort.descending, v.sort.offset(PAGE_ROWS));
    let (kpis, facets, (rows, next, runs), (health, _), views) = tokio::try_join!(
        run_some(state, kpi_filter, audit_repo::kpis_with_previous),
        run_some(state, facet_filter, audit_repo::facets_without_results),
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
        cached_health(state),
        load_views(state, &admin),
    )?;
    audit_read(state, &meta, &admin, "page", &v.parsed.echo).await;

    let export = v.filters.without("since_minutes").set_all(&[
        ("since", &isotime::format(&since)),
        ("until", &isotime::format(&until)),
    ]);
    let values = ctx_values(&v, &p, now, facets.as_ref(), kpis.as_ref());
    let page_ctx = context! {
        full => !fragment,
        oob => fragment,
        title => "Audit log",
        total_oob => false,
        pager_oob => false,
        result_classes => ser(&RESULT_CLASSES),
        sources => ser(&SOURCES),
        health => ser(&health),
        rows => ser(&rows),
        more_href => v.more_href(next.as_ref()),
        sort_links => ser(&sort_links(PATH, &v.filters, &COLUMNS, &v.sort)),
        sync => ser(&sync_grid(runs)),
        views => ser(&views),
        filters_qs => v.filters.to_string(),
        refresh_href => v.this_view().url(PATH),
        export_href => Qs::pairs([("format", "csv")]).join(&export).url("/api/admin/activity/export"),
        export_ndjson_href => Qs::pairs([("format", "ndjson")]).join(&export).url("/api/admin/activity/export"),
        export_parquet_href => Qs::pairs([("format", "parquet")]).join(&export).url("/api/admin/activity/export"),
        row => (),
        view_notice => (),
        ..values
    };
    if fragment {
        ctx.blocks(TEMPLATE, NAV, &["results", "filters"], page_ctx)
            .await
    } else {
        ctx.page(TEMPLATE, NAV, page_ctx).await
    }
}

/// The filter fields and the KPI region together.
fn ctx_values(
    v: &View,
    p: &PageParams,
    now: chrono::NaiveDateTime,
    facets: Option<&audit_repo::Facets>,
    kpis: Option<&(Kpis, Option<Kpis>)>,
) -> minijinja::Value {
    context! { ..v.kpi_ctx(kpis), ..v.fields_ctx(p, now, facets) }
}

/// The KPI cards of the page's filters, with the event count and (when the
/// table is sorted) the pager out of band: what an htmx swap of the page
/// loads once its rows are in. Part of that page view: no `activity.read`.
async fn kpi_fragment(
    ctx: PageCtx,
    _admin: RequireAdmin,
    Query(p): Query<PageParams>,
) -> AppResult<Html<String>> {
    let v = View::parse(&p, now())?;
    let filter = v.parsed.filter.clone();
    let kpis = ctx
        .state
        .db
        .run(move |c| audit_repo::kpis_with_previous(c, &filter))
        .await?;
    let page_ctx = context! {
        full => false,
        total_oob => true,
        pager_oob => true,
        ..v.kpi_ctx(Some(&kpis))
    };
    let blocks: &[&str] = if v.sort_key().is_some() {
        &["kpis", "total", "pager"]
    } else {
        &["kpis", "total"]
    };
    ctx.blocks(TEMPLATE, NAV, blocks, page_ctx).await
}

/// The facet selects with the options of the window, each swapped out of
/// band (so inputs the user is typing in are left alone): what an htmx swap of
/// the page loads once its rows are in. Part of that page view, so it writes
/// no `activity.read` of its own.
async fn facet_options(
    ctx: PageCtx,
    _admin: RequireAdmin,
    Query(p): Query<PageParams>,
) -> AppResult<Html<String>> {
    let now = now();
    let v = View::parse(&p, now)?;
    let facet_filter = window_filter(&v.parsed.filter);
    let facets = ctx
        .state
        .db
        .run(move |c| audit_repo::facets_without_results(c, &facet_filter))
        .await?;
    let page_ctx = context! {
        full => false,
        oob => false,
        ..v.fields_ctx(&p, now, Some(&facets))
    };
    ctx.block(TEMPLATE, NAV, "facet_options", page_ctx).await
}

/// "Load more": the next keyset page of rows and, when there is more, the
/// next "load more" row.
async fn more_rows(
    ctx: PageCtx,
    meta: RequestMeta,
    admin: RequireAdmin,
    Query(p): Query<PageParams>,
) -> AppResult<Html<String>> {
    let v = View::parse(&p, now())?;
    let cursor = parse_cursor(&p.cursor_ts, &p.cursor_id)?;
    let filter = v.parsed.filter.clone();
    let pg = ctx
        .state
        .db
        .run(move |c| audit_repo::query(c, &filter, cursor.as_ref(), PAGE_ROWS))
        .await?;
    audit_read(&ctx.state, &meta, &admin, "page", &v.parsed.echo).await;
    let page_ctx = context! {
        full => false,
        rows => ser(&pg.rows),
        more_href => v.more_href(pg.next_cursor.as_ref()),
    };
    ctx.block(TEMPLATE, NAV, "rows", page_ctx).await
}

async fn row_panel(
    ctx: PageCtx,
    _admin: RequireAdmin,
    Path(id): Path<String>,
) -> AppResult<Html<String>> {
    let id_c = id.clone();
    let row = ctx
        .state
        .db
        .run(move |c| audit_repo::by_id(c, &id_c))
        .await?
        .ok_or_else(|| AppError::not_found(format!("no audit row {id}")))?;
    let view = crate::audit::panel::panel_view(&row);
    ctx.block(
        TEMPLATE,
        NAV,
        "panel",
        context! { full => false, row => ser(&view) },
    )
    .await
}

#[derive(Deserialize)]
struct ViewForm {
    name: Option<String>,
    /// The filters as a query string (the page's current URL state).
    query: Option<String>,
}

async fn render_views(
    ctx: &PageCtx,
    admin: &RequireAdmin,
    filters_qs: String,
    notice: Option<String>,
) -> AppResult<Html<String>> {
    let views = load_views(&ctx.state, admin).await?;
    let page_ctx = context! {
        full => false, views => ser(&views), filters_qs => filters_qs, view_notice => notice,
    };
    ctx.block(TEMPLATE, NAV, "views", page_ctx).await
}

/// The query string of a saved view: the page's filters only (what
/// [`AuditQuery`] knows), as stored JSON and as a query string.
fn view_query(query: &str) -> (Map<String, Value>, String) {
    let q: AuditQuery = serde_urlencoded::from_str(query).unwrap_or_default();
    let qs = Qs::of(&q);
    (qs.clone().into_map(), qs.to_string())
}

async fn save_view(
    ctx: PageCtx,
    meta: RequestMeta,
    admin: RequireAdmin,
    Form(form): Form<ViewForm>,
) -> AppResult<Html<String>> {
    let (map, back) = view_query(form.query.as_deref().unwrap_or(""));
    let view = store_view(
        &ctx.state,
        &meta,
        &admin,
        form.name,
        Some(Value::Object(map)),
    )
    .await?;
    render_views(&ctx, &admin, back, Some(format!("Saved “{}”.", view.name))).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeleteForm {
    query: Option<String>,
}

async fn delete_view(
    ctx: PageCtx,
    meta: RequestMeta,
    admin: RequireAdmin,
    Path(id): Path<String>,
    Form(form): Form<DeleteForm>,
) -> AppResult<Html<String>> {
    remove_view(&ctx.state, &meta, &admin, id).await?;
    let (_, back) = view_query(form.query.as_deref().unwrap_or(""));
    render_views(&ctx, &admin, back, Some("View deleted.".into())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_view_keeps_only_the_filters_of_the_page() {
        let (map, back) = view_query("q=x&sort=action&since_minutes=60&bogus=1&user_id=");
        assert_eq!(back, "since_minutes=60&q=x");
        assert_eq!(map.len(), 2);
    }
}
