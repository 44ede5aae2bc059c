//! `glassbox admin activity [health|sync]`: the Audit log's timeline, health
//! pulse and sync runs (`/api/admin/activity…`), as Agnes's CLI shows them.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::{print_json, Client, Failure};
use super::table::{cell, first, render, time};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ActivityArgs {
    #[command(subcommand)]
    cmd: Option<ActivityCmd>,
    #[command(flatten)]
    timeline: TimelineArgs,
}

#[derive(Subcommand)]
enum ActivityCmd {
    /// The health pulse: scheduler, sync, users, ingest, processors, database.
    Health {
        #[arg(long)]
        json: bool,
    },
    /// Recent sync runs, newest first.
    Sync {
        /// How far back: 30m, 24h, 7d or plain minutes.
        #[arg(long, default_value = "24h", value_parser = minutes)]
        since: i64,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

/// The timeline's filters (Agnes's flags and the parameters they send).
#[derive(Args)]
struct TimelineArgs {
    /// How far back: 30m, 24h, 7d or plain minutes.
    #[arg(long, default_value = "24h", value_parser = minutes)]
    since: i64,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Actions starting with this (`auth.`, `token.create`).
    #[arg(long)]
    action: Option<String>,
    /// A user id or email.
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    resource: Option<String>,
    /// Results matching this pattern.
    #[arg(long)]
    result: Option<String>,
    /// success, error, denied or none.
    #[arg(long)]
    result_class: Option<String>,
    /// web, cli, agent, scheduler or system.
    #[arg(long)]
    source: Option<String>,
    /// Free text over params.
    #[arg(long)]
    search: Option<String>,
    /// Show audit-log reads too (hidden by default).
    #[arg(long)]
    include_self_reads: bool,
    #[arg(long)]
    json: bool,
}

/// `30m`, `1h`, `7d` or plain minutes → minutes (anything else: exit 2).
pub(super) fn minutes(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_lowercase()),
        _ => (s, 'm'),
    };
    let n: i64 = num
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("expected 30m, 1h, 7d or a number of minutes, got {s:?}"))?;
    match unit {
        'm' => Ok(n),
        'h' => Ok(n * 60),
        'd' => Ok(n * 1440),
        _ => Err(format!(
            "expected 30m, 1h, 7d or a number of minutes, got {s:?}"
        )),
    }
}

pub(crate) async fn run(client: &Client, args: ActivityArgs) -> Result<(), Failure> {
    match args.cmd {
        None => timeline(client, args.timeline).await,
        Some(ActivityCmd::Health { json }) => health(client, json).await,
        Some(ActivityCmd::Sync { since, limit, json }) => sync(client, since, limit, json).await,
    }
}

async fn timeline(client: &Client, a: TimelineArgs) -> Result<(), Failure> {
    let query = [
        ("since_minutes", a.since.to_string()),
        ("limit", a.limit.to_string()),
        ("action_prefix", a.action.unwrap_or_default()),
        ("user_id", a.user.unwrap_or_default()),
        ("resource", a.resource.unwrap_or_default()),
        ("result_pattern", a.result.unwrap_or_default()),
        ("result_class", a.result_class.unwrap_or_default()),
        ("source", a.source.unwrap_or_default()),
        ("q", a.search.unwrap_or_default()),
        (
            "include_self_reads",
            if a.include_self_reads { "true" } else { "" }.to_string(),
        ),
    ];
    let body = client
        .get("activity", "/api/admin/activity", &query)
        .await?;
    if a.json {
        print_json(&body);
        return Ok(());
    }
    let rows = rows_of(&body);
    if rows.is_empty() {
        println!("No audit rows in the last {}.", span(a.since));
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                time(first(r, &["timestamp", "ts"])),
                cell(&r["action"]),
                cell(first(r, &["user_email", "user_id"])),
                cell(&r["result"]),
                cell(&r["resource"]),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &["TIME (UTC)", "ACTION", "USER", "RESULT", "RESOURCE"],
            &table
        )
    );
    if !body["next_cursor"].is_null() {
        println!(
            "More rows: raise --limit or narrow --since (the Audit log page pages through all)."
        );
    }
    Ok(())
}

async fn health(client: &Client, json: bool) -> Result<(), Failure> {
    let body = client
        .get("activity health", "/api/admin/activity/health", &[])
        .await?;
    if json {
        print_json(&body);
        return Ok(());
    }
    println!("{}: {}", cell(&body["status"]), cell(&body["sentence"]));
    let table: Vec<Vec<String>> = rows_in(&body["fields"])
        .iter()
        .map(|f| vec![cell(&f["key"]), cell(&f["value"]), cell(&f["color"])])
        .collect();
    print!("{}", render(&["CHECK", "VALUE", "STATUS"], &table));
    Ok(())
}

async fn sync(client: &Client, since: i64, limit: u32, json: bool) -> Result<(), Failure> {
    let query = [
        ("since_minutes", since.to_string()),
        ("limit", limit.to_string()),
    ];
    let body = client
        .get("activity sync", "/api/admin/activity/sync", &query)
        .await?;
    if json {
        print_json(&body);
        return Ok(());
    }
    let rows = rows_of(&body);
    if rows.is_empty() {
        println!("No sync runs in the last {}.", span(since));
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                cell(first(r, &["table_id", "name"])),
                time(first(r, &["synced_at", "last_synced_at"])),
                cell(first(r, &["rows", "row_count"])),
                cell(&r["duration_ms"]),
                cell(&r["status"]),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &["TABLE", "SYNCED AT (UTC)", "ROWS", "DURATION MS", "STATUS"],
            &table
        )
    );
    Ok(())
}

fn rows_of(body: &Value) -> &[Value] {
    rows_in(&body["rows"])
}

fn rows_in(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// 1440 → "1 day", 90 → "90 minutes".
fn span(minutes: i64) -> String {
    let (n, unit) = if minutes % 1440 == 0 {
        (minutes / 1440, "day")
    } else if minutes % 60 == 0 {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    if n == 1 {
        unit.to_string()
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn since_reads_minutes_hours_days_and_plain_numbers() {
        for (s, m) in [
            ("30m", 30),
            ("1h", 60),
            ("7d", 10080),
            ("45", 45),
            ("24H", 1440),
        ] {
            assert_eq!(super::minutes(s), Ok(m), "{s}");
        }
        for bad in ["", "0", "-5m", "1w", "soon", "h"] {
            assert!(super::minutes(bad).is_err(), "{bad}");
        }
        assert_eq!(super::span(1440), "day");
        assert_eq!(super::span(2880), "2 days");
        assert_eq!(super::span(90), "90 minutes");
    }
}
