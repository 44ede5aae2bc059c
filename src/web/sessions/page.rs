//! The Sessions pages: the list (`/admin/sessions`, `/me/sessions`) and the
//! transcript viewer (`/admin/sessions/{user_dir}/{file}`, `/me/sessions/{file}`),
//! built from the page kit. Analysts get the same pages scoped to themselves.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::api::{marks, now, session_resource, user_sessions};
use super::files;
use super::params::SessionFilters;
use crate::app::AppState;
use crate::auth::{Human, Principal, RequireAdmin};
use crate::error::{AppError, AppResult};
use crate::repo::sessions::{self as repo, Owner, SessionSort, FINDING_TYPES};
use crate::sessions::transcript::{self, Event, ReadOptions};
use crate::templates::{compact_tokens, ser};
use crate::web::extract::{Query, RequestMeta};
use crate::web::kit::{
    sort_links, Column, Delta, FacetField, KpiCard, PageCtx, Pager, Qs, Sort, SortQuery,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/sessions", get(admin_list))
        .route("/admin/sessions/{user_dir}/{file}", get(admin_viewer))
        .route("/admin/sessions/{user_dir}/{file}/turns", get(admin_turns))
        .route("/admin/users/{id}/sessions-tab", get(user_tab))
        .route("/me/sessions", get(me_list))
        .route("/me/sessions/{file}", get(me_viewer))
        .route("/me/sessions/{file}/turns", get(me_turns))
}

/// Lines per page of the viewer: the first screen and each scroll load.
const LINES_PER_PAGE: u64 = 150;
/// Tool results and inputs longer than this are cut (fetched on demand).
const MAX_TEXT: usize = 2_000;
const PER_PAGE: usize = 50;

/// The list's columns; the first is the page's default order (SPEC §6: the
/// page opens sorted by tool errors).
const COLUMNS: &[Column] = &[
    Column::desc("tool_errors", "Errors"),
    Column::desc("started_at", "Started"),
    Column::asc("username", "User"),
    Column::asc("primary_model", "Model"),
    Column::desc("tool_calls", "Tool calls"),
    Column::desc("active_seconds", "Active"),
    Column::desc("findings", "Findings"),
    Column::desc("tokens", "Tokens"),
    Column::desc("cost", "Cost"),
];

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PageParams {
    #[serde(flatten)]
    pub filters: SessionFilters,
    #[serde(flatten)]
    pub table: SortQuery,
}

/// Who the page is for: an admin over everyone, or a person over their own.
#[derive(Clone)]
enum Scope {
    Admin,
    Me(Owner),
}

impl Scope {
    fn list_path(&self) -> &'static str {
        match self {
            Scope::Admin => "/admin/sessions",
            Scope::Me(_) => "/me/sessions",
        }
    }

    fn nav(&self) -> &'static str {
        match self {
            Scope::Admin => "sessions",
            Scope::Me(_) => "me",
        }
    }

    fn viewer(&self, session_file: &str) -> String {
        match self {
            Scope::Admin => format!("/admin/sessions/{session_file}"),
            Scope::Me(_) => format!(
                "/me/sessions/{}",
                session_file.rsplit('/').next().unwrap_or(session_file)
            ),
        }
    }

    fn download(&self, user_dir: &str, file: &str) -> String {
        match self {
            Scope::Admin => format!("/api/admin/sessions/{user_dir}/{file}/download"),
            Scope::Me(_) => format!("/api/me/sessions/{file}/download"),
        }
    }

    fn turns(&self, user_dir: &str, file: &str) -> String {
        match self {
            Scope::Admin => format!("/admin/sessions/{user_dir}/{file}/turns"),
            Scope::Me(_) => format!("/me/sessions/{file}/turns"),
        }
    }
}

fn own(p: &Principal) -> Owner {
    Owner {
        user_id: p.id().to_string(),
        email: p.user.email.clone(),
    }
}

async fn list_page(ctx: PageCtx, scope: Scope, p: PageParams) -> AppResult<Html<String>> {
    let (mut filter, _) = p.filters.filter(now())?;
    if let Scope::Me(o) = &scope {
        filter.owner = Some(o.clone());
    }
    let sort = Sort::parse(&p.table, COLUMNS)?;
    let repo_sort = SessionSort {
        key: repo::SORT_KEYS
            .iter()
            .find(|(k, _)| *k == sort.name)
            .map(|(k, _)| *k)
            .unwrap_or("tool_errors"),
        desc: sort.descending,
    };
    let offset = sort.offset(PER_PAGE) as i64;
    let prev_filter = filter.previous(now());
    let f = filter.clone();
    let (rows, total, kpis, prev, facets, heatmap) = ctx
        .state
        .db
        .run(move |c| {
            let (rows, total) = repo::list(c, &f, &repo_sort, PER_PAGE as i64, offset)?;
            let kpis = repo::kpis(c, &f)?;
            let prev = prev_filter.map(|pf| repo::kpis(c, &pf)).transpose()?;
            let facets = repo::facets(c, &f)?;
            let heatmap = repo::heatmap(c, &f)?;
            Ok((rows, total, kpis, prev, facets, heatmap))
        })
        .await?;
    let path = scope.list_path();
    let filters = Qs::of(&p.filters);
    let view = filters.join(&sort.qs());
    let p_ = |f: fn(&repo::Kpis) -> f64| prev.as_ref().map(f);
    let cards = vec![
        KpiCard::new(
            "sessions",
            "Sessions",
            crate::templates::thousands(kpis.sessions_total),
        )
        .detail(format!(
            "{} with findings",
            crate::templates::thousands(kpis.sessions_with_findings)
        ))
        .delta(
            Delta::pct_of(kpis.sessions_total as f64, p_(|k| k.sessions_total as f64)),
            false,
        )
        .href(Some(
            filters
                .without("only_errors")
                .without("finding_type")
                .join(&sort.qs())
                .url(path),
        )),
        KpiCard::new(
            "users",
            "Users",
            crate::templates::thousands(kpis.distinct_users),
        )
        .delta(
            Delta::pct_of(kpis.distinct_users as f64, p_(|k| k.distinct_users as f64)),
            false,
        )
        .focus("f-username"),
        KpiCard::new(
            "errors",
            "Sessions with errors",
            crate::templates::thousands(kpis.error_sessions),
        )
        .detail(format!(
            "{} tool errors",
            crate::templates::thousands(kpis.tool_errors_total)
        ))
        .delta(
            Delta::pct_of(kpis.error_sessions as f64, p_(|k| k.error_sessions as f64)),
            true,
        )
        .href(Some(
            filters
                .set("only_errors", "true")
                .join(&sort.qs())
                .url(path),
        ))
        .active(p.filters.only_errors.as_deref() == Some("true")),
        KpiCard::new(
            "error_rate",
            "Tool error rate",
            format!("{:.1}%", kpis.tool_error_rate * 100.0),
        )
        .detail(format!(
            "of {} tool calls",
            crate::templates::thousands(kpis.tool_calls_total)
        ))
        .delta(
            prev.as_ref()
                .map(|pk| Delta::pts(kpis.tool_error_rate, pk.tool_error_rate))
                .unwrap_or_else(Delta::none),
            true,
        )
        .href(Some(
            filters
                .set("only_errors", "true")
                .set("sort", "tool_errors")
                .url(path),
        )),
        KpiCard::new("tokens", "Tokens", compact_tokens(kpis.total_tokens))
            .detail(format!("{} output", compact_tokens(kpis.output_tokens)))
            .delta(
                Delta::pct_of(kpis.total_tokens as f64, p_(|k| k.total_tokens as f64)),
                false,
            )
            .href(Some(
                filters.set("sort", "tokens").set("dir", "desc").url(path),
            )),
        KpiCard::new("cost", "Cost", format!("${:.2}", kpis.cost_usd))
            .detail("API list prices")
            .delta(Delta::pct_of(kpis.cost_usd, p_(|k| k.cost_usd)), true)
            .href(Some(
                filters.set("sort", "cost").set("dir", "desc").url(path),
            )),
    ];
    let fields = vec![
        FacetField::values("User", "f-username", "username", "Any user", &facets.users),
        FacetField::values("Model", "f-model", "model", "Any model", &facets.models),
    ];
    let finding_types: Vec<Value> = FINDING_TYPES
        .iter()
        .map(|t| {
            let n = facets
                .finding_types
                .iter()
                .find(|b| b.value == *t)
                .map(|b| b.count)
                .unwrap_or(0);
            json!({"value": t, "count": n})
        })
        .collect();
    // Heatmap cells: each filters the table to its type and week.
    let week_index: std::collections::HashMap<&str, usize> = heatmap
        .weeks
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i))
        .collect();
    let type_index: std::collections::HashMap<&str, usize> = heatmap
        .finding_types
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let cells: Vec<Value> = heatmap
        .cells
        .iter()
        .map(|c| {
            let start = chrono::NaiveDate::parse_from_str(&c.week, "%Y-%m-%d").ok();
            let end = start.map(|d| d + chrono::Duration::days(7));
            let href = filters
                .without("since_minutes")
                .set("finding_type", &c.finding_type)
                .set("since", &start.map(|d| d.to_string()).unwrap_or_default())
                .set("until", &end.map(|d| d.to_string()).unwrap_or_default())
                .url(path);
            json!({
                "x": week_index.get(c.week.as_str()).copied().unwrap_or(0),
                "y": type_index.get(c.finding_type.as_str()).copied().unwrap_or(0),
                "n": c.sessions,
                "week": c.week,
                "finding_type": c.finding_type,
                "opacity": 0.15 + 0.85 * (c.sessions as f64 / heatmap.max_cell.max(1) as f64),
                "href": href,
            })
        })
        .collect();
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["href"] = json!(scope.viewer(&r.session_file));
            v["tokens_label"] = json!(compact_tokens(r.total_tokens));
            v["file"] = json!(r.file_name());
            v
        })
        .collect();
    let form: std::collections::BTreeMap<String, String> = crate::web::kit::form_values(&p.filters);
    let context = context! {
        title => "Sessions",
        path => path,
        is_me => matches!(scope, Scope::Me(_)),
        f => form,
        kpis => ser(&cards),
        fields => ser(&fields),
        finding_types => ser(&finding_types),
        heatmap => ser(&heatmap),
        cells => ser(&cells),
        rows => ser(&rows),
        total => total,
        sort_links => ser(&sort_links(path, &filters, COLUMNS, &sort)),
        pager => ser(&Pager::new(path, &filters, &sort, total, PER_PAGE)),
        view => view.url(path),
    };
    if ctx.wants_fragment() {
        ctx.block("sessions.html", scope.nav(), "results", context)
            .await
    } else {
        ctx.page("sessions.html", scope.nav(), context).await
    }
}

async fn admin_list(
    ctx: PageCtx,
    _a: RequireAdmin,
    Query(p): Query<PageParams>,
) -> AppResult<Html<String>> {
    list_page(ctx, Scope::Admin, p).await
}

async fn me_list(
    ctx: PageCtx,
    Human(who): Human,
    Query(p): Query<PageParams>,
) -> AppResult<Html<String>> {
    list_page(ctx, Scope::Me(own(&who)), p).await
}

// ---- the viewer ------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TurnsQuery {
    pub offset: Option<String>,
    /// Fetch one line whole (a long tool result opened on demand).
    pub line: Option<String>,
}

/// A transcript's events ready for the template: pretty tool inputs,
/// findings on their lines, and sidechain runs grouped.
pub(crate) fn turns_ctx(events: Vec<Event>, marks: &[repo::FindingMark]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut group: Vec<Value> = Vec::new();
    let flush = |group: &mut Vec<Value>, out: &mut Vec<Value>| {
        if !group.is_empty() {
            out.push(json!({"kind": "subagent", "events": std::mem::take(group)}));
        }
    };
    let mut last_line = None;
    for e in events {
        let mut v = serde_json::to_value(&e).unwrap_or_default();
        // Every key the template reads is present (strict templates in tests).
        for k in [
            "uuid",
            "text",
            "tool_name",
            "input",
            "tool_use_id",
            "is_error",
            "sidechain",
            "meta",
            "model",
            "tokens",
            "media_type",
            "bytes",
            "full_chars",
            "pretty",
            "findings",
            "first_of_line",
            "long",
        ] {
            if v.get(k).is_none() {
                v[k] = Value::Null;
            }
        }
        if let Some(input) = &e.input {
            let pretty = serde_json::from_str::<Value>(input.get())
                .ok()
                .map(|x| match x {
                    Value::String(s) => s,
                    other => serde_json::to_string_pretty(&other).unwrap_or_default(),
                })
                .unwrap_or_else(|| input.get().to_string());
            v["pretty"] = json!(pretty);
        }
        // The line's anchor and findings go on its first event.
        if last_line != Some(e.line) {
            v["first_of_line"] = json!(true);
            let f: Vec<&repo::FindingMark> = marks.iter().filter(|m| m.line == e.line).collect();
            if !f.is_empty() {
                v["findings"] = serde_json::to_value(f).unwrap_or_default();
            }
            last_line = Some(e.line);
        }
        if e.text
            .as_deref()
            .is_some_and(|t| t.lines().count() > 12 || t.len() > 1500)
        {
            v["long"] = json!(true);
        }
        if e.sidechain {
            group.push(v);
        } else {
            flush(&mut group, &mut out);
            out.push(v);
        }
    }
    flush(&mut group, &mut out);
    out
}

async fn read_turns(
    path: std::path::PathBuf,
    offset: u64,
    limit: u64,
    max_text: Option<usize>,
) -> AppResult<transcript::Page> {
    tokio::task::spawn_blocking(move || {
        transcript::read_page(&path, offset, limit, ReadOptions { max_text })
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?
    .map_err(|e| AppError::Internal(e.into()))
}

#[allow(clippy::too_many_arguments)]
async fn viewer(
    ctx: PageCtx,
    meta: RequestMeta,
    who: Principal,
    scope: Scope,
    user_dir: String,
    file: String,
    path: std::path::PathBuf,
) -> AppResult<Response> {
    let session_file = format!("{user_dir}/{file}");
    let marks = marks(&ctx.state, &session_file, &path).await?;
    let page = read_turns(path.clone(), 0, LINES_PER_PAGE, Some(MAX_TEXT)).await?;
    // Opening the viewer is the one view (later pages are not).
    ctx.state
        .audit(
            meta.audit("session.transcript_view", Some(&who))
                .resource(session_resource(&session_file))
                .params(json!({"events": page.events.len(), "session_file": session_file, "viewer": true}))
                .success(),
        )
        .await;
    let sf = session_file.clone();
    let show_audit = matches!(scope, Scope::Admin);
    let (summary, trail) = ctx
        .state
        .db
        .run(move |c| {
            let s = repo::by_file(c, &sf)?;
            let t = if show_audit {
                repo::session_audit(c, &sf, 50)?
            } else {
                Vec::new()
            };
            Ok((s, t))
        })
        .await?;
    let turns_url = scope.turns(&user_dir, &file);
    let next = page.next_offset.map(|n| format!("{turns_url}?offset={n}"));
    let context = context! {
        title => format!("Session {file}"),
        scope_path => scope.list_path(),
        user_dir => user_dir.clone(),
        file => file.clone(),
        summary => ser(&summary),
        marks => ser(&marks),
        marks_json => serde_json::to_string(&marks.lines).unwrap_or_default(),
        errors_json => serde_json::to_string(&marks.errors).unwrap_or_default(),
        turns => ser(&turns_ctx(page.events, &marks.findings)),
        next => next,
        offset => 0,
        earlier => (),
        turns_url => turns_url,
        download => scope.download(&user_dir, &file),
        trail => ser(&trail),
    };
    Ok(ctx
        .page("session.html", scope.nav(), context)
        .await?
        .into_response())
}

async fn turns(
    ctx: PageCtx,
    scope: Scope,
    user_dir: String,
    file: String,
    path: std::path::PathBuf,
    q: TurnsQuery,
) -> AppResult<Response> {
    let session_file = format!("{user_dir}/{file}");
    let marks = marks(&ctx.state, &session_file, &path).await?;
    let turns_url = scope.turns(&user_dir, &file);
    if let Some(line) = crate::web::kit::params::int_param("line", &q.line, 0, i64::MAX)? {
        let page = read_turns(path, line as u64, 1, None).await?;
        let context = context! {
            turns => ser(&turns_ctx(page.events, &marks.findings)),
            full => true,
            turns_url => turns_url,
            next => (),
            offset => 0,
            earlier => (),
        scope_path => scope.list_path(),
        user_dir => user_dir.clone(),
        file => file.clone(),
        summary => (),
        marks => ser(&marks),
        marks_json => "[]",
        errors_json => "[]",
        download => scope.download(&user_dir, &file),
        trail => (),
        title => "Session",
        };
        return Ok(ctx
            .block("session.html", scope.nav(), "full", context)
            .await?
            .into_response());
    }
    let offset =
        crate::web::kit::params::int_param("offset", &q.offset, 0, i64::MAX)?.unwrap_or(0) as u64;
    let page = read_turns(path, offset, LINES_PER_PAGE, Some(MAX_TEXT)).await?;
    let next = page.next_offset.map(|n| format!("{turns_url}?offset={n}"));
    let context = context! {
        turns => ser(&turns_ctx(page.events, &marks.findings)),
        next => next,
        turns_url => turns_url.clone(),
        offset => offset,
        earlier => (offset > 0).then(|| format!("{turns_url}?offset={}", offset.saturating_sub(LINES_PER_PAGE))),
        scope_path => scope.list_path(),
        user_dir => user_dir.clone(),
        file => file.clone(),
        summary => (),
        marks => ser(&marks),
        marks_json => "[]",
        errors_json => "[]",
        download => scope.download(&user_dir, &file),
        trail => (),
        title => "Session",
    };
    Ok(ctx
        .block("session.html", scope.nav(), "turns", context)
        .await?
        .into_response())
}

async fn admin_viewer(
    ctx: PageCtx,
    meta: RequestMeta,
    RequireAdmin(who): RequireAdmin,
    Path((user_dir, file)): Path<(String, String)>,
) -> AppResult<Response> {
    let path = files::resolve(&ctx.state, &user_dir, &file).await?;
    viewer(ctx, meta, who, Scope::Admin, user_dir, file, path).await
}

async fn admin_turns(
    ctx: PageCtx,
    _a: RequireAdmin,
    Path((user_dir, file)): Path<(String, String)>,
    Query(q): Query<TurnsQuery>,
) -> AppResult<Response> {
    let path = files::resolve(&ctx.state, &user_dir, &file).await?;
    turns(ctx, Scope::Admin, user_dir, file, path, q).await
}

async fn me_viewer(
    ctx: PageCtx,
    meta: RequestMeta,
    Human(who): Human,
    Path(file): Path<String>,
) -> AppResult<Response> {
    let dirs = files::user_dirs(&ctx.state, &who.user).await?;
    let (dir, path) = files::user_file(&ctx.state, &dirs, &file).await?;
    let scope = Scope::Me(own(&who));
    viewer(ctx, meta, who, scope, dir, file, path).await
}

async fn me_turns(
    ctx: PageCtx,
    Human(who): Human,
    Path(file): Path<String>,
    Query(q): Query<TurnsQuery>,
) -> AppResult<Response> {
    let dirs = files::user_dirs(&ctx.state, &who.user).await?;
    let (dir, path) = files::user_file(&ctx.state, &dirs, &file).await?;
    turns(ctx, Scope::Me(own(&who)), dir, file, path, q).await
}

// ---- the user page's tabs --------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TabQuery {
    pub tab: Option<String>,
}

/// `/admin/users/{id}`'s Sessions and Activity tabs (loaded into the page).
async fn user_tab(
    State(state): State<AppState>,
    ctx: PageCtx,
    _a: RequireAdmin,
    Path(id): Path<String>,
    Query(q): Query<TabQuery>,
) -> AppResult<Html<String>> {
    let id2 = id.clone();
    let user = state
        .db
        .run(move |c| crate::repo::users::by_id(c, &id2))
        .await?
        .ok_or_else(|| AppError::not_found(format!("user {id} not found")))?;
    let tab = q.tab.as_deref().unwrap_or("sessions");
    if tab == "activity" {
        let uid = user.id.clone();
        let (rows, total) = state
            .db
            .run(move |c| repo::user_audit(c, &uid, 50, 0))
            .await?;
        let context =
            context! { user_id => user.id, rows => ser(&rows), total => total, tab => "activity" };
        return ctx.block("user_tabs.html", "users", "tab", context).await;
    }
    let sessions = user_sessions(&state, &user).await?;
    let rows: Vec<Value> = sessions
        .iter()
        .take(200)
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["href"] = json!(format!("/admin/sessions/{}", s.row.session_file));
            v["file"] = json!(s.row.file_name());
            v["tokens_label"] = json!(compact_tokens(s.row.total_tokens));
            v
        })
        .collect();
    let context = context! {
        user_id => user.id,
        rows => ser(&rows),
        total => sessions.len(),
        processed => sessions.iter().filter(|s| s.processed).count(),
        tab => "sessions",
    };
    ctx.block("user_tabs.html", "users", "tab", context).await
}
