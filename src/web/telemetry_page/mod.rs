//! The Telemetry page (SPEC §5, §11; issues 10 and 11): `/admin/telemetry`
//! for admins and `/me/telemetry`, the same page over the caller's own
//! events. Built from the page kit like the Audit log: one template
//! (`telemetry.html`) whose regions are blocks. Filters are parsed by the
//! JSON APIs' own [`Params`] and `parse_filter`; every query is a repository
//! call. Admins also get the Ask box (`POST /admin/telemetry/ask`).

mod product;
mod trend;

use axum::response::Html;
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::telemetry::{own, parse_filter, parse_group_by, Params};
use crate::app::AppState;
use crate::ask::{self, AskError};
use crate::auth::{Human, Principal, RequireAdmin};
use crate::error::{AppError, AppResult};
use crate::isotime;
use crate::repo::telemetry::{self as repo, GroupBy, Kpis, Scope, TelemetryFilter};
use crate::templates::ser;
use crate::web::extract::{Form, Query, RequestMeta};
use crate::web::kit::params::now;
use crate::web::kit::{
    form_values, sort_links, Column, Delta, FacetField, KpiCard, PageCtx, Pager, Qs, Sort,
    SortQuery,
};
use trend::Series;

const TEMPLATE: &str = "telemetry.html";
const NAV: &str = "telemetry";
/// Rows (buckets or events) a page.
const PAGE_ROWS: usize = 50;
/// The time ranges offered, in minutes (up to the 365-day cap).
const RANGES: [(&str, &str); 6] = [
    ("60", "Last hour"),
    ("1440", "Last 24 hours"),
    ("10080", "Last 7 days"),
    ("43200", "Last 30 days"),
    ("129600", "Last 90 days"),
    ("525600", "Last 365 days"),
];
/// The group-by choices, in the select's order ("" and `raw`: raw events).
const GROUPS: [(&str, &str); 8] = [
    ("", "Raw events"),
    ("day", "Day"),
    ("username", "User"),
    ("tool_name", "Tool"),
    ("source", "Source"),
    ("ref_id", "Ref"),
    ("model", "Model"),
    ("session_id", "Session"),
];
/// The bucket table's columns; the first (most invocations) is the default.
const BUCKET_COLUMNS: [Column; 5] = [
    Column::desc("invocations", "Events"),
    Column::asc("bucket", "Bucket"),
    Column::desc("distinct_users", "Users"),
    Column::desc("distinct_sessions", "Sessions"),
    Column::desc("errors", "Errors"),
];
/// The raw events' columns; newest first by default.
const EVENT_COLUMNS: [Column; 8] = [
    Column::desc("occurred_at", "Time"),
    Column::asc("username", "User"),
    Column::asc("tool_name", "Tool"),
    Column::asc("event_type", "Type"),
    Column::asc("source", "Source"),
    Column::asc("model", "Model"),
    Column::asc("session_id", "Session"),
    Column::desc("is_error", "Error"),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/telemetry", get(admin_page))
        .route("/admin/telemetry/ask", post(ask_box))
        .route("/me/telemetry", get(me_page))
        .route(product::PATH, get(product::page))
}

/// The page's query: the API's filters (its `sort` is the kit's column key
/// here), the kit's `dir` and `page`, and the trend's second series.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct PageParams {
    #[serde(flatten)]
    filter: Params,
    dir: Option<String>,
    page: Option<String>,
    series: Option<String>,
}

/// Where the page lives and what it may show.
struct Flavor {
    path: &'static str,
    export: &'static str,
    admin: bool,
}

const ADMIN: Flavor = Flavor {
    path: "/admin/telemetry",
    export: "/api/admin/telemetry/export",
    admin: true,
};
const ME: Flavor = Flavor {
    path: "/me/telemetry",
    export: "/api/me/telemetry/export",
    admin: false,
};

/// The filters (and group-by and series) as a query string: what every link keeps.
fn filters_of(p: &PageParams) -> Qs {
    let f = Params {
        sort: None,
        limit: None,
        offset: None,
        format: None,
        window: None,
        ..p.filter.clone()
    };
    let qs = Qs::of(&f);
    match Series::parse(p.series.as_deref()) {
        Some(Series::Tokens) => qs.set("series", "tokens"),
        Some(Series::Cost) => qs.set("series", "cost"),
        None => qs,
    }
}

fn kpi_cards(cur: &Kpis, prev: Option<&Kpis>, filters: &Qs, path: &str) -> Vec<KpiCard> {
    let thousands = crate::templates::thousands;
    let pct = |c: i64, p: Option<i64>| Delta::pct_of(c as f64, p.map(|v| v as f64));
    let er = prev
        .map(|p| Delta::pts(cur.error_rate, p.error_rate))
        .unwrap_or_else(Delta::none);
    vec![
        KpiCard::new("events", "Events", thousands(cur.events_total))
            .detail("in this window")
            .delta(pct(cur.events_total, prev.map(|p| p.events_total)), false)
            .href(Some(filters.without("only_errors").url(path))),
        KpiCard::new("users", "Users", thousands(cur.distinct_users))
            .detail("distinct usernames")
            .delta(
                pct(cur.distinct_users, prev.map(|p| p.distinct_users)),
                false,
            )
            .href(Some(filters.set("group_by", "username").url(path)))
            .active(filters.get("group_by") == "username"),
        KpiCard::new("tools", "Tools", thousands(cur.distinct_tools))
            .detail("distinct tools")
            .delta(
                pct(cur.distinct_tools, prev.map(|p| p.distinct_tools)),
                false,
            )
            .href(Some(filters.set("group_by", "tool_name").url(path)))
            .active(filters.get("group_by") == "tool_name"),
        KpiCard::new(
            "errors",
            "Error rate",
            format!("{:.1}%", cur.error_rate * 100.0),
        )
        .detail(format!("{} errors", thousands(cur.errors)))
        .delta(er, true)
        .href(Some(filters.set("only_errors", "true").url(path)))
        .active(filters.get("only_errors") == "true"),
        KpiCard::new("tokens", "Tokens", thousands(cur.tokens.total_tokens))
            .detail("ignores tool filters")
            .delta(
                pct(cur.tokens.total_tokens, prev.map(|p| p.tokens.total_tokens)),
                false,
            )
            .href(Some(filters.set("series", "tokens").url(path)))
            .active(filters.get("series") == "tokens"),
        KpiCard::new("cost", "Cost", format!("${:.2}", cur.tokens.cost_usd))
            .detail("USD, ignores tool filters")
            .delta(
                Delta::pct_of(cur.tokens.cost_usd, prev.map(|p| p.tokens.cost_usd)),
                true,
            )
            .href(Some(filters.set("series", "cost").url(path)))
            .active(filters.get("series") == "cost"),
    ]
}

fn facet_list(f: &repo::Facets, admin: bool) -> Vec<FacetField> {
    let mut v = Vec::new();
    if admin {
        v.push(FacetField::values(
            "User", "f-user", "username", "Any user", &f.users,
        ));
    }
    v.extend([
        FacetField::values("Tool", "f-tool", "tool_name", "Any tool", &f.tools),
        FacetField::values("Source", "f-source", "source", "Any source", &f.sources),
        FacetField::values(
            "Event type",
            "f-type",
            "event_type",
            "Any type",
            &f.event_types,
        ),
        FacetField::values("Model", "f-model", "model", "Any model", &f.models),
    ]);
    v
}

/// One bucket row: its label and, unless it is the NULL bucket, the link
/// that applies it as a filter.
#[derive(Serialize)]
struct BucketRow {
    label: String,
    href: Option<String>,
    invocations: i64,
    distinct_users: i64,
    distinct_sessions: i64,
    errors: i64,
}

/// The filter a bucket applies: its column (a day becomes a one-day window)
/// and raw events.
fn bucket_href(filters: &Qs, by: GroupBy, value: &str, path: &str) -> String {
    let base = filters.without("group_by");
    match by {
        GroupBy::Day => base
            .without("since_minutes")
            .set_all(&[
                ("since", &format!("{value}T00:00:00Z")),
                ("until", &next_day(value)),
            ])
            .url(path),
        _ => base.set(by.as_str(), value).url(path),
    }
}

fn next_day(day: &str) -> String {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.succ_opt())
        .map(|d| format!("{d}T00:00:00Z"))
        .unwrap_or_default()
}

async fn admin_page(
    ctx: PageCtx,
    _admin: RequireAdmin,
    Query(p): Query<PageParams>,
) -> AppResult<Html<String>> {
    render(ctx, p, None, &ADMIN).await
}

async fn me_page(ctx: PageCtx, who: Human, Query(p): Query<PageParams>) -> AppResult<Html<String>> {
    let scope: Scope = own(&who);
    render(ctx, p, Some(scope), &ME).await
}

/// Everything the page shows, queried on one connection.
struct Data {
    kpis: (Kpis, Option<Kpis>),
    facets: repo::Facets,
    days: Vec<repo::DayPoint>,
    month_events: i64,
    buckets: Option<repo::Buckets>,
    events: Vec<repo::Event>,
    total: i64,
    unknown_models: Vec<String>,
}

async fn render(
    ctx: PageCtx,
    mut p: PageParams,
    scope: Option<Scope>,
    flavor: &Flavor,
) -> AppResult<Html<String>> {
    let now = now();
    // `raw` is the explicit name of "no group-by".
    if p.filter.group_by.as_deref().map(str::trim) == Some("raw") {
        p.filter.group_by = None;
    }
    // An analyst's page is their own: a username filter would be theirs anyway.
    if !flavor.admin {
        p.filter.username = None;
        p.filter.user_id = None;
    }
    let parsed = parse_filter(&p.filter, now, scope.clone())?;
    let by = parse_group_by(&p.filter)?;
    let columns: &[Column] = if by.is_some() {
        &BUCKET_COLUMNS
    } else {
        &EVENT_COLUMNS
    };
    let sort = Sort::parse(
        &SortQuery {
            sort: p.filter.sort.clone(),
            dir: p.dir.clone(),
            page: p.page.clone(),
        },
        columns,
    )?;
    let series = Series::parse(p.series.as_deref());
    let filters = filters_of(&p);
    let filter = parsed.filter.clone();
    let repo_sort = repo::Sort {
        column: sort.name,
        desc: sort.descending,
    };
    let offset = sort.offset(PAGE_ROWS) as i64;
    let prices = ctx.state.prices.clone();
    let data = ctx
        .state
        .db
        .run(move |c| {
            let kpis = repo::kpis_with_previous(c, &filter, now)?;
            let facets = repo::facets(
                c,
                &TelemetryFilter {
                    since: filter.since,
                    until: filter.until,
                    scope: filter.scope.clone(),
                    ..TelemetryFilter::default()
                },
            )?;
            let days = repo::daily(c, &filter)?;
            let month_events = repo::count(
                c,
                &TelemetryFilter {
                    since: Some(trend::month_start(now)),
                    until: None,
                    ..filter.clone()
                },
            )?;
            let (buckets, events, total) = match by {
                Some(by) => {
                    let b = repo::group_by(c, &filter, by, &repo_sort, PAGE_ROWS as i64, offset)?;
                    let t = b.total;
                    (Some(b), Vec::new(), t)
                }
                None => (
                    None,
                    repo::events(c, &filter, &repo_sort, PAGE_ROWS as i64, offset)?,
                    kpis.0.events_total,
                ),
            };
            let unknown_models = repo::tokens_by_model(c, &filter, &|m| prices.price(m).is_some())?
                .into_iter()
                .filter(|m| !m.priced)
                .map(|m| m.model)
                .collect();
            Ok(Data {
                kpis,
                facets,
                days,
                month_events,
                buckets,
                events,
                total,
                unknown_models,
            })
        })
        .await?;

    let path = flavor.path;
    let bars = trend::bars(&data.days, series);
    let (avg, projected) = trend::projection(data.month_events, now);
    let buckets: Vec<BucketRow> = match (&data.buckets, by) {
        (Some(b), Some(by)) => b
            .rows
            .iter()
            .map(|r| BucketRow {
                href: r
                    .bucket
                    .as_ref()
                    .map(|v| bucket_href(&filters, by, v, path)),
                label: r.bucket.clone().unwrap_or_else(|| "—".into()),
                invocations: r.invocations,
                distinct_users: r.distinct_users,
                distinct_sessions: r.distinct_sessions,
                errors: r.errors,
            })
            .collect(),
        _ => Vec::new(),
    };
    let window = &parsed.window;
    let since = window.since;
    let until = window.until.unwrap_or(now);
    let export = filters
        .without("group_by")
        .without("series")
        .without("since_minutes")
        .set_all(&[
            ("since", &isotime::format(&since)),
            ("until", &isotime::format(&until)),
        ]);
    let export_href = |fmt: &str| {
        Qs::pairs([("format", fmt)])
            .join(&export)
            .url(flavor.export)
    };
    let values = form_values(&p.filter);
    let range = if values["since"].is_empty() && values["until"].is_empty() {
        window
            .since_minutes
            .map(|m| m.to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let group = by.map(|b| b.as_str()).unwrap_or("");
    let page_ctx = context! {
        full => !ctx.wants_fragment(),
        title => "Telemetry",
        path => path,
        admin => flavor.admin,
        f => ser(&values),
        range_known => range.is_empty() || RANGES.iter().any(|(v, _)| *v == range),
        range => range,
        ranges => ser(&RANGES),
        groups => ser(&GROUPS),
        group => group,
        group_label => GROUPS.iter().find(|(k, _)| *k == group).map(|(_, l)| *l).unwrap_or(""),
        series => p.series.clone().unwrap_or_default(),
        series_tokens_href => filters.set("series", "tokens").join(&sort.qs()).url(path),
        series_cost_href => filters.set("series", "cost").join(&sort.qs()).url(path),
        series_none_href => filters.without("series").join(&sort.qs()).url(path),
        window_since => isotime::format(&since),
        window_until => isotime::format(&until),
        facet_fields_list => ser(&facet_list(&data.facets, flavor.admin)),
        sort => sort.name,
        dir => sort.dir(),
        kpis => ser(&kpi_cards(&data.kpis.0, data.kpis.1.as_ref(), &filters, path)),
        total => data.total,
        events_total => data.kpis.0.events_total,
        bars => ser(&bars),
        line => trend::line(&bars),
        chart_width => trend::WIDTH,
        chart_height => trend::HEIGHT,
        busiest => trend::busiest_weekday(&data.days).map(trend::weekday_name),
        month_avg => format!("{avg:.1}"),
        month_projected => crate::templates::thousands(projected.round() as i64),
        buckets => ser(&buckets),
        events => ser(&data.events),
        sort_links => ser(&sort_links(path, &filters, columns, &sort)),
        pager => ser(&Pager::new(path, &filters, &sort, data.total, PAGE_ROWS)),
        unknown_models => ser(&data.unknown_models),
        refresh_href => filters.join(&sort.qs_with_page()).url(path),
        export_csv => export_href("csv"),
        export_ndjson => export_href("ndjson"),
        export_parquet => export_href("parquet"),
        answer => (),
        ask_error => (),
    };
    if ctx.wants_fragment() {
        ctx.blocks(TEMPLATE, NAV, &["results", "filters"], page_ctx)
            .await
    } else {
        ctx.page(TEMPLATE, NAV, page_ctx).await
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AskForm {
    question: String,
}

/// The Ask box: the model's SQL, rationale and rows; or the rejection and
/// the SQL; or the error as a sentence (always a 200, so htmx swaps it in).
async fn ask_box(
    ctx: PageCtx,
    meta: RequestMeta,
    admin: RequireAdmin,
    Form(form): Form<AskForm>,
) -> AppResult<Html<String>> {
    let who: &Principal = &admin;
    let audit = meta.audit("usage.ask", Some(who));
    let (answer, error) = match ask::ask(&ctx.state, &form.question, audit).await {
        Ok(a) => (Some(a), None),
        Err(AskError::Internal(e)) => return Err(AppError::Internal(e)),
        Err(e) => {
            let msg = e.to_string();
            let status = AppError::from(e).status().as_u16();
            (None, Some(format!("{msg} ({status})")))
        }
    };
    let page_ctx = context! {
        full => false,
        question => form.question,
        answer => ser(&answer),
        ask_error => error,
    };
    ctx.block(TEMPLATE, NAV, "ask_result", page_ctx).await
}
