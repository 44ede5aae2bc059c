//! The inbox pages, from the page kit: `/admin/feedback` (KPI cards, facet
//! filters in the URL, sortable paged table), `/admin/feedback/{id}` (the
//! report, its excerpt as a transcript, duplicates, history, actions) and
//! `/me/feedback` (a person's own reports).

use axum::extract::Path;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;

use super::actions::{act, ActionReq};
use super::query::{ListParams, Parsed, COLUMNS, PAGE_ROWS};
use crate::app::AppState;
use crate::auth::{Human, RequireAdmin};
use crate::error::{AppError, AppResult};
use crate::repo::feedback::{self as repo, Facets, Filter, Kpis, Order};
use crate::sessions::transcript::{ReadOptions, Reader};
use crate::templates::ser;
use crate::web::extract::{Form, Query, RequestMeta};
use crate::web::kit::params::now;
use crate::web::kit::{form_values, sort_links, FacetField, KpiCard, PageCtx, Pager};
use crate::web::sessions::page::turns_ctx;

const PATH: &str = "/admin/feedback";
const NAV: &str = "feedback";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATH, get(inbox))
        .route("/admin/feedback/{id}", get(report_page))
        .route("/admin/feedback/{id}/{action}", post(report_action))
        .route("/me/feedback", get(my_reports))
}

fn kpi_cards(k: &Kpis, p: &Parsed) -> Vec<KpiCard> {
    let thousands = crate::templates::thousands;
    let base = p.filters.without("status").without("tag");
    let median = k
        .median_hours_to_resolve
        .map(|h| {
            if h < 48.0 {
                format!("{h:.1} h")
            } else {
                format!("{:.1} d", h / 24.0)
            }
        })
        .unwrap_or_else(|| "—".into());
    let top: Vec<String> = k
        .top_tags
        .iter()
        .map(|b| format!("{} ({})", b.value, b.count))
        .collect();
    vec![
        KpiCard::new("open", "Open", thousands(k.open))
            .detail("open or triaged")
            .href(Some(base.set("status", "open").url(PATH)))
            .active(p.filters.get("status") == "open"),
        KpiCard::new("new", "New this week", thousands(k.new_this_week))
            .detail("reported in the last 7 days"),
        KpiCard::new("ttr", "Median time to resolve", median)
            .detail("reports closed in the last 90 days"),
        KpiCard::new(
            "tags",
            "Top tags",
            k.top_tags
                .first()
                .map(|b| b.value.clone())
                .unwrap_or_else(|| "—".into()),
        )
        .detail(if top.is_empty() {
            "no tags yet".to_string()
        } else {
            top.join(", ")
        })
        .href(
            k.top_tags
                .first()
                .map(|b| p.filters.set("tag", &b.value).url(PATH)),
        )
        .active(!p.filters.get("tag").is_empty()),
    ]
}

fn facet_list(f: &Facets) -> Vec<FacetField> {
    vec![
        FacetField::values("Status", "f-status", "status", "Any status", &f.statuses),
        FacetField::values("Tag", "f-tag", "tag", "Any tag", &f.tags),
        FacetField::values("Assignee", "f-assignee", "assignee", "Anyone", &f.assignees)
            .labelled("value", "label"),
        FacetField::values(
            "Reporter",
            "f-reporter",
            "reporter",
            "Any reporter",
            &f.reporters,
        )
        .labelled("value", "label"),
    ]
}

async fn inbox(
    ctx: PageCtx,
    _admin: RequireAdmin,
    Query(p): Query<ListParams>,
) -> AppResult<Html<String>> {
    let parsed = p.parse()?;
    let (order, desc) = parsed.order();
    let offset = parsed.sort.offset(PAGE_ROWS);
    let f = parsed.filter.clone();
    let at = now();
    let (rows, total, facets, kpis) = ctx
        .state
        .db
        .run(move |c| {
            let (rows, total) = repo::list(c, &f, order, desc, PAGE_ROWS, offset)?;
            Ok((rows, total, repo::facets(c)?, repo::kpis(c, at)?))
        })
        .await?;
    let pager = Pager::new(PATH, &parsed.filters, &parsed.sort, total, PAGE_ROWS);
    let view = context! {
        title => "Feedback",
        rows => ser(&rows),
        total => total,
        kpis => ser(&kpi_cards(&kpis, &parsed)),
        f => ser(&form_values(&p.filter)),
        facet_fields_list => ser(&facet_list(&facets)),
        sort_links => ser(&sort_links(PATH, &parsed.filters, &COLUMNS, &parsed.sort)),
        sort => parsed.sort.name,
        dir => parsed.sort.dir(),
        pager => ser(&pager),
        full => !ctx.wants_fragment(),
    };
    if ctx.wants_fragment() {
        ctx.blocks("feedback.html", NAV, &["results"], view).await
    } else {
        ctx.page("feedback.html", NAV, view).await
    }
}

async fn report_page(
    ctx: PageCtx,
    _admin: RequireAdmin,
    Path(id): Path<String>,
) -> AppResult<Html<String>> {
    let detail = super::api::load_detail(&ctx.state, id).await?;
    let report = &detail["report"];
    // The excerpt rendered by the Sessions viewer's reader and macros
    // (everything kept whole: the excerpt is at most 2 MiB).
    let turns = match report["session_excerpt"].as_str() {
        Some(text) => {
            let mut reader = Reader::new(text.as_bytes(), ReadOptions { max_text: None });
            let mut events = Vec::new();
            while reader
                .next_line(&mut events)
                .map_err(|e| AppError::Internal(e.into()))?
            {}
            turns_ctx(events, &[])
        }
        None => Vec::new(),
    };
    let session_href = match (
        report["reporter_user"].as_str(),
        report["session_file"].as_str(),
    ) {
        (Some(dir), Some(file)) => Some(format!("/admin/sessions/{dir}/{file}")),
        _ => None,
    };
    let view = context! {
        title => "Feedback report",
        r => ser(report),
        turns => ser(&turns),
        duplicates => ser(&detail["duplicates"]),
        history => ser(&detail["history"]),
        session_href => session_href,
    };
    ctx.page("feedback_report.html", NAV, view).await
}

async fn report_action(
    ctx: PageCtx,
    meta: RequestMeta,
    admin: RequireAdmin,
    Path((id, action)): Path<(String, String)>,
    Form(req): Form<ActionReq>,
) -> AppResult<Response> {
    act(&ctx.state, &meta, &admin, id.clone(), &action, &req).await?;
    // Post/redirect/get: a reload does not repeat the action.
    let to = format!("/admin/feedback/{}", urlencoding_path(&id));
    if ctx.htmx {
        return Ok(([("HX-Redirect", to)], "").into_response());
    }
    Ok(Redirect::to(&to).into_response())
}

/// Report ids are UUIDs; anything else is refused before it reaches a header.
fn urlencoding_path(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

async fn my_reports(ctx: PageCtx, who: Human) -> AppResult<Html<String>> {
    let f = Filter {
        reporter: Some(who.id().to_string()),
        ..Filter::default()
    };
    let (rows, _) = ctx
        .state
        .db
        .run(move |c| repo::list(c, &f, Order::Newest, true, 200, 0))
        .await?;
    ctx.page(
        "me_feedback.html",
        "me",
        context! { title => "My feedback", rows => ser(&rows) },
    )
    .await
}
