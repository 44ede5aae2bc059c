//! The Telemetry page's "Product usage" tab (SPEC §9; issue 12):
//! `/admin/telemetry/product?days=N`, the usage API's events as event types ×
//! users for the last N whole days (UTC), KPI cards against the N days
//! before, and a daily trend. Everything is read from the `app_events_daily`
//! rollup, so the tab costs the same on 50 M events as on 50.

use std::collections::BTreeMap;

use axum::response::Html;
use chrono::{Duration, NaiveDate};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::trend;
use crate::auth::RequireAdmin;
use crate::error::AppResult;
use crate::repo::app_events::{self, Totals};
use crate::repo::telemetry::DayPoint;
use crate::repo::users;
use crate::templates::{ser, thousands};
use crate::web::extract::Query;
use crate::web::kit::params::{int_param, now};
use crate::web::kit::{Delta, KpiCard, PageCtx, Qs};

const TEMPLATE: &str = "telemetry_product.html";
const NAV: &str = "telemetry";
pub const PATH: &str = "/admin/telemetry/product";
/// The windows offered, in days; 30 by default (the usage API's default too).
const RANGES: [(i64, &str); 4] = [
    (7, "Last 7 days"),
    (30, "Last 30 days"),
    (90, "Last 90 days"),
    (365, "Last 365 days"),
];
const DEFAULT_DAYS: i64 = 30;
/// Users shown as their own column; the rest are summed under "Others".
const USER_COLUMNS: usize = 10;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ProductParams {
    days: Option<String>,
}

/// One event type's row: its count per shown user, the others, the total.
#[derive(Serialize)]
struct MatrixRow {
    event_type: String,
    cells: Vec<i64>,
    others: i64,
    total: i64,
}

/// The matrix: users (most events first, the first `USER_COLUMNS` as their
/// own column) across, event types (most events first) down.
/// A user's column: the name part of their email, the whole in its title.
#[derive(Serialize, Debug, PartialEq)]
struct UserColumn {
    label: String,
    title: String,
}

#[derive(Serialize)]
struct Matrix {
    users: Vec<UserColumn>,
    rows: Vec<MatrixRow>,
    column_totals: Vec<i64>,
    others_total: i64,
    total: i64,
    has_others: bool,
}

fn matrix(
    summary: &BTreeMap<String, BTreeMap<String, i64>>,
    label: impl Fn(&str) -> String,
) -> Matrix {
    let mut per_user: BTreeMap<&str, i64> = BTreeMap::new();
    for users in summary.values() {
        for (u, n) in users {
            *per_user.entry(u).or_default() += n;
        }
    }
    let mut ranked: Vec<(&str, i64)> = per_user.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown: Vec<&str> = ranked.iter().take(USER_COLUMNS).map(|(u, _)| *u).collect();
    let mut rows: Vec<MatrixRow> = summary
        .iter()
        .map(|(t, users)| {
            let cells: Vec<i64> = shown
                .iter()
                .map(|u| users.get(*u).copied().unwrap_or(0))
                .collect();
            let total: i64 = users.values().sum();
            MatrixRow {
                event_type: t.clone(),
                others: total - cells.iter().sum::<i64>(),
                cells,
                total,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.total.cmp(&a.total).then(a.event_type.cmp(&b.event_type)));
    let column_totals = (0..shown.len())
        .map(|i| rows.iter().map(|r| r.cells[i]).sum())
        .collect();
    let others_total = rows.iter().map(|r| r.others).sum();
    Matrix {
        users: shown
            .iter()
            .map(|u| {
                let title = label(u);
                UserColumn {
                    label: title.split('@').next().unwrap_or(&title).to_string(),
                    title,
                }
            })
            .collect(),
        total: rows.iter().map(|r| r.total).sum(),
        has_others: ranked.len() > shown.len(),
        rows,
        column_totals,
        others_total,
    }
}

/// The window's totals, from the matrix's own counts (no second read).
fn totals_of(summary: &BTreeMap<String, BTreeMap<String, i64>>) -> Totals {
    let mut users = std::collections::BTreeSet::new();
    let mut events = 0;
    for per_user in summary.values() {
        for (u, n) in per_user {
            events += n;
            if !u.is_empty() {
                users.insert(u.as_str());
            }
        }
    }
    Totals {
        events,
        users: users.len() as i64,
        event_types: summary.len() as i64,
    }
}

fn cards(cur: Totals, prev: Totals) -> Vec<KpiCard> {
    let pct = |c: i64, p: i64| Delta::pct(c as f64, p as f64);
    vec![
        KpiCard::new("app_events", "Events", thousands(cur.events))
            .detail("from the usage API")
            .delta(pct(cur.events, prev.events), false),
        KpiCard::new("app_users", "Users", thousands(cur.users))
            .detail("with at least one event")
            .delta(pct(cur.users, prev.users), false),
        KpiCard::new("app_types", "Event types", thousands(cur.event_types))
            .detail("distinct")
            .delta(pct(cur.event_types, prev.event_types), false),
    ]
}

struct Data {
    prev: Totals,
    days: Vec<(NaiveDate, i64)>,
    summary: BTreeMap<String, BTreeMap<String, i64>>,
    emails: std::collections::HashMap<String, String>,
}

pub async fn page(
    ctx: PageCtx,
    _admin: RequireAdmin,
    Query(p): Query<ProductParams>,
) -> AppResult<Html<String>> {
    let days = int_param("days", &p.days, 1, 365)?.unwrap_or(DEFAULT_DAYS);
    let today = now().date();
    let since = today - Duration::days(days - 1);
    let (prev_since, prev_until) = (since - Duration::days(days), since - Duration::days(1));
    let data = ctx
        .state
        .db
        .run(move |c| {
            Ok(Data {
                prev: app_events::totals(c, prev_since, prev_until)?,
                days: app_events::daily_counts(c, since, today)?,
                summary: app_events::summary(c, since)?,
                emails: users::emails(c)?,
            })
        })
        .await?;
    let points: Vec<DayPoint> = data
        .days
        .iter()
        .map(|(d, n)| DayPoint {
            day: d.to_string(),
            events: *n,
            errors: 0,
            tokens: 0,
            cost_usd: 0.0,
        })
        .collect();
    let bars = trend::bars(&points, None);
    let emails = &data.emails;
    let matrix = matrix(&data.summary, |u| match u {
        "" => "(no user)".to_string(),
        u => emails.get(u).cloned().unwrap_or_else(|| u.to_string()),
    });
    let days_s = days.to_string();
    let q = Qs::pairs([("days", days_s.as_str())]);
    let ranges: Vec<_> = RANGES
        .iter()
        .map(|(d, label)| {
            let href = q.set("days", &d.to_string()).url(PATH);
            context! { href => href, label => *label, active => *d == days }
        })
        .collect();
    let page_ctx = context! {
        title => "Telemetry · Product usage",
        days => days,
        since => since.to_string(),
        until => today.to_string(),
        ranges => ranges,
        kpis => ser(&cards(totals_of(&data.summary), data.prev)),
        bars => ser(&bars),
        line => (),
        chart_width => trend::WIDTH,
        chart_height => trend::HEIGHT,
        busiest => trend::busiest_weekday(&points).map(trend::weekday_name),
        matrix => ser(&matrix),
        summary_api => format!("/api/v1/usage/summary?days={days}"),
    };
    if ctx.wants_fragment() {
        ctx.block(TEMPLATE, NAV, "results", page_ctx).await
    } else {
        ctx.page(TEMPLATE, NAV, page_ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_ranks_users_and_types_and_sums_the_rest_as_others() {
        let mut s: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for u in 0..12 {
            s.entry("sql_execution".into())
                .or_default()
                .insert(format!("u{u:02}"), 100 - u);
        }
        s.entry("policy.hit".into())
            .or_default()
            .insert("u11".into(), 500);
        let m = matrix(&s, |u| u.to_uppercase());
        assert_eq!(m.users[0].title, "U11", "most events first: {:?}", m.users);
        assert_eq!(m.users.len(), USER_COLUMNS);
        assert!(m.has_others);
        assert_eq!(m.rows[0].event_type, "sql_execution");
        let sum: i64 = m.rows.iter().map(|r| r.total).sum();
        assert_eq!(m.total, sum);
        assert_eq!(
            m.total,
            m.column_totals.iter().sum::<i64>() + m.others_total,
            "every event is in exactly one column"
        );
        // u09 (91) and u10 (90) are left out.
        assert_eq!(m.others_total, 181);
        let t = totals_of(&s);
        assert_eq!((t.events, t.users, t.event_types), (m.total, 12, 2));
    }
}
