//! A dozen demo reports in every status, with duplicates, tags, excerpts and
//! the audit rows their history is read from (`glassbox demo`).

use chrono::{Duration, NaiveDateTime};
use duckdb::Connection;
use serde_json::json;

use super::NewReport;
use crate::audit::AuditEvent;
use crate::repo::{audit as audit_repo, feedback as repo};

fn excerpt(tool: &str, command: &str, error: &str) -> String {
    let lines = [
        json!({"type": "user", "version": "2.0.14", "message": {"role": "user", "content": "Please check last week's numbers"}}),
        json!({"type": "assistant", "version": "2.0.14", "message": {"content": [
            {"type": "text", "text": "Let me query that."},
            {"type": "tool_use", "id": "tu1", "name": tool, "input": {"command": command}}]}}),
        json!({"type": "user", "version": "2.0.14", "message": {"content": [
            {"type": "tool_result", "tool_use_id": "tu1", "content": error, "is_error": true}]}}),
        json!({"type": "assistant", "version": "2.0.14", "message": {"content": [
            {"type": "text", "text": "That failed; I cannot continue without access."}]}}),
    ];
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// (message, excerpt error or none, status, tags, resolution, age in hours)
type DemoReport = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
    i64,
);

const REPORTS: [DemoReport; 12] = [
    (
        "The query tool fails on the orders table",
        Some("Error: relation \"orders\" does not exist"),
        "open",
        &[],
        None,
        3,
    ),
    (
        "the query tool fails on the orders table",
        Some("Error: relation \"orders\" does not exist"),
        "open",
        &[],
        None,
        20,
    ),
    (
        "The query tool  fails on the orders table",
        Some("Error: relation \"orders\" does not exist"),
        "triaged",
        &["query", "catalog"],
        None,
        50,
    ),
    (
        "Export to CSV hangs after a few minutes",
        Some("Error: timed out after 600 s"),
        "triaged",
        &["export", "slow"],
        None,
        30,
    ),
    (
        "Permission denied on payroll although I was granted access yesterday",
        Some("Error: permission denied for table payroll"),
        "open",
        &["access"],
        None,
        6,
    ),
    (
        "Claude keeps retrying the same failing command",
        None,
        "open",
        &[],
        None,
        1,
    ),
    (
        "Dashboard numbers differ from the warehouse",
        None,
        "resolved",
        &["data-quality"],
        Some("Timezone of the daily rollup fixed to UTC."),
        200,
    ),
    (
        "Sync of the customers table is two days late",
        Some("Error: sync run failed: upstream 503"),
        "resolved",
        &["sync"],
        Some("Upstream outage; re-ran the sync."),
        120,
    ),
    (
        "Login page loops after password reset",
        None,
        "resolved",
        &["auth"],
        Some("Cleared the stale session; fixed in 0.1.1."),
        90,
    ),
    (
        "Please add Parquet export to the sessions list",
        None,
        "wontfix",
        &["feature-request"],
        Some("Sessions are downloaded as JSONL by design."),
        300,
    ),
    (
        "The bash tool is blocked in my project",
        Some("Error: Bash is not allowed by the project's settings"),
        "wontfix",
        &["policy"],
        Some("Blocked on purpose by the platform policy."),
        160,
    ),
    (
        "Cost figures look doubled for Opus sessions",
        Some("Error: duplicate response id msg_01"),
        "triaged",
        &["cost"],
        None,
        12,
    ),
];

/// Inserts the demo reports; `users[0]` is the admin, the others report.
pub fn seed(conn: &Connection, users: &[String], now: NaiveDateTime) -> anyhow::Result<usize> {
    let admin = users.first().cloned().unwrap_or_default();
    let reporters: Vec<&String> = users.iter().skip(1).take(5).collect();
    for (i, (message, error, status, tags, resolution, age_h)) in REPORTS.iter().enumerate() {
        let reporter = reporters
            .get(i % reporters.len().max(1))
            .map(|s| s.as_str())
            .unwrap_or(admin.as_str());
        let report = NewReport {
            message: message.to_string(),
            session_excerpt: error.map(|e| excerpt("Bash", "glassbox query", e)),
            session_file: error.map(|_| format!("demo-feedback-{i}.jsonl")),
            environment: Some(
                json!({"glassbox_version": env!("CARGO_PKG_VERSION"), "os": "macos aarch64", "claude_code_version": "2.0.14"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
        };
        let id = uuid::Uuid::now_v7().to_string();
        let at = now - Duration::hours(*age_h);
        let duplicates = repo::insert(conn, &id, reporter, &report, Some(at))?;
        let mut e = AuditEvent::new("feedback.report")
            .user(reporter)
            .resource(format!("feedback:{id}"))
            .params(json!({"ack_preview": true, "duplicates": duplicates}))
            .client_kind("cli")
            .success();
        e.timestamp = Some(at);
        audit_repo::log(conn, &e)?;
        let assignee = (*status != "open").then_some(admin.as_str());
        let closed_at = super::is_closed(status).then(|| at + Duration::hours(age_h / 3 + 1));
        repo::set_state(conn, &id, status, assignee, tags, *resolution, closed_at)?;
        let step = |action: &str, params: serde_json::Value, when: NaiveDateTime| {
            let mut e = AuditEvent::new(action)
                .user(admin.clone())
                .resource(format!("feedback:{id}"))
                .params(params)
                .client_kind("web")
                .success();
            e.timestamp = Some(when);
            audit_repo::log(conn, &e)
        };
        if let Some(a) = assignee {
            step(
                "feedback.assign",
                json!({"assignee": a}),
                at + Duration::minutes(30),
            )?;
        }
        if !tags.is_empty() {
            step(
                "feedback.tag",
                json!({"tags": tags}),
                at + Duration::minutes(31),
            )?;
        }
        if let Some(c) = closed_at {
            let action = if *status == "resolved" {
                "feedback.resolve"
            } else {
                "feedback.wontfix"
            };
            step(
                action,
                json!({"status": status, "resolution": resolution}),
                c,
            )?;
        }
    }
    Ok(REPORTS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_has_a_dozen_reports_in_every_status_with_duplicates() {
        let c = Connection::open_in_memory().unwrap();
        crate::db::migrate::apply(&c, None).unwrap();
        let users: Vec<String> = (0..4).map(|i| format!("u{i}")).collect();
        assert_eq!(
            seed(&c, &users, chrono::Utc::now().naive_utc()).unwrap(),
            12
        );
        let f = repo::facets(&c).unwrap();
        let statuses: Vec<&str> = f.statuses.iter().map(|b| b.value.as_str()).collect();
        assert_eq!(statuses, super::super::STATUSES);
        let (rows, _) = repo::list(
            &c,
            &repo::Filter::default(),
            repo::Order::Duplicates,
            true,
            1,
            0,
        )
        .unwrap();
        assert_eq!(rows[0].duplicates, 2);
    }
}
