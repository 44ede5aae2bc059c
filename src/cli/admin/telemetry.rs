//! `glassbox admin telemetry summary|export|reprocess|prune`: the telemetry
//! admin APIs (`/api/admin/telemetry/…`) as Agnes's CLI uses them; `export`
//! streams the server's bytes to stdout or `--out` without holding them.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

use super::client::{print_json, Client, Failure};
use super::table::{cell, render};

#[derive(Subcommand)]
pub(crate) enum TelemetryCmd {
    /// Top tools and users, error rates, tokens and cost per model.
    Summary {
        /// 7d, 30d or all.
        #[arg(long, default_value = "7d")]
        window: String,
        #[arg(long)]
        json: bool,
    },
    /// Every tool event of the filter, oldest first, as CSV, NDJSON or Parquet.
    Export {
        /// csv, json (NDJSON) or parquet.
        #[arg(long, default_value = "csv")]
        format: String,
        /// From this date or time (ISO 8601).
        #[arg(long)]
        since: Option<String>,
        /// Up to this date or time (ISO 8601, excluded).
        #[arg(long)]
        until: Option<String>,
        /// Only this user's events (their email).
        #[arg(long)]
        user: Option<String>,
        /// curated, flea or builtin.
        #[arg(long)]
        source: Option<String>,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Clear extracted telemetry so the next processor run re-reads every file.
    Reprocess {
        /// Only count what would be deleted.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete events older than USAGE_EVENTS_RETENTION_DAYS (rollups stay).
    Prune {
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(client: &Client, cmd: TelemetryCmd) -> Result<(), Failure> {
    match cmd {
        TelemetryCmd::Summary { window, json } => summary(client, window, json).await,
        TelemetryCmd::Export {
            format,
            since,
            until,
            user,
            source,
            out,
        } => {
            let query = [
                ("format", format),
                ("since", since.unwrap_or_default()),
                ("until", until.unwrap_or_default()),
                ("user_id", user.unwrap_or_default()),
                ("source", source.unwrap_or_default()),
            ];
            export(client, &query, out).await
        }
        TelemetryCmd::Reprocess { dry_run, json } => {
            let body = post(
                client,
                "telemetry reprocess",
                "/api/admin/telemetry/reprocess",
                dry_run,
            )
            .await?;
            if json {
                print_json(&body);
                return Ok(());
            }
            let verb = if dry_run { "Would delete" } else { "Deleted" };
            println!("{verb}:");
            print_counts(&body["deleted"]);
            Ok(())
        }
        TelemetryCmd::Prune { dry_run, json } => {
            let body = post(
                client,
                "telemetry prune",
                "/api/admin/telemetry/prune",
                dry_run,
            )
            .await?;
            if json {
                print_json(&body);
                return Ok(());
            }
            if body["status"] == "skipped" {
                println!("Skipped: {}", cell(&body["reason"]));
            } else {
                println!(
                    "{}: retention {} days, deleted {}, remaining {}",
                    cell(&body["status"]),
                    cell(&body["retention_days"]),
                    cell(&body["deleted"]),
                    cell(&body["remaining"])
                );
            }
            Ok(())
        }
    }
}

async fn post(client: &Client, ctx: &str, path: &str, dry_run: bool) -> Result<Value, Failure> {
    let query = [("dry_run", if dry_run { "true" } else { "" }.to_string())];
    let resp = client.send(ctx, Method::POST, path, &query).await?;
    resp.json::<Value>().await.map_err(|e| {
        Failure::Failed(format!(
            "[err] {ctx}: the server's answer is not JSON ({e})"
        ))
    })
}

fn print_counts(v: &Value) {
    let rows: Vec<Vec<String>> = v
        .as_object()
        .map(|m| m.iter().map(|(k, n)| vec![k.clone(), cell(n)]).collect())
        .unwrap_or_default();
    print!("{}", render(&["TABLE", "ROWS"], &rows));
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

async fn summary(client: &Client, window: String, json: bool) -> Result<(), Failure> {
    let body = client
        .get(
            "telemetry summary",
            "/api/admin/telemetry/summary",
            &[("window", window)],
        )
        .await?;
    if json {
        print_json(&body);
        return Ok(());
    }
    println!("Window: {}", cell(&body["window"]));
    let tools: Vec<Vec<String>> = list(&body["top_tools"])
        .iter()
        .map(|t| {
            vec![
                cell(&t["tool_name"]),
                cell(&t["source"]),
                cell(&t["invocations"]),
            ]
        })
        .collect();
    print!("{}", render(&["TOOL", "SOURCE", "CALLS"], &tools));
    println!();
    let users: Vec<Vec<String>> = list(&body["top_users"])
        .iter()
        .map(|u| vec![cell(&u["username"]), cell(&u["tool_calls"])])
        .collect();
    print!("{}", render(&["USER", "TOOL CALLS"], &users));
    println!();
    let models: Vec<Vec<String>> = list(&body["tokens_by_model"])
        .iter()
        .map(|m| {
            let cost = m["cost_usd"].as_f64().unwrap_or(0.0);
            let priced = m["priced"].as_bool().unwrap_or(true);
            vec![
                cell(&m["model"]),
                cell(&m["total_tokens"]),
                if priced {
                    format!("${cost:.2}")
                } else {
                    "no price (0)".into()
                },
            ]
        })
        .collect();
    print!("{}", render(&["MODEL", "TOKENS", "COST"], &models));
    println!(
        "Daily active users, 30-day average: {}",
        cell(&body["dau_avg"])
    );
    Ok(())
}

async fn export(
    client: &Client,
    query: &[(&str, String)],
    out: Option<PathBuf>,
) -> Result<(), Failure> {
    let mut resp = client
        .send(
            "telemetry export",
            Method::GET,
            "/api/admin/telemetry/export",
            query,
        )
        .await?;
    let mut sink: Box<dyn Write> = match &out {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|e| {
            Failure::Failed(format!(
                "[err] telemetry export: cannot write {}: {e}",
                path.display()
            ))
        })?),
        None => Box::new(std::io::stdout().lock()),
    };
    let failed = |e: String| Failure::Failed(format!("[err] telemetry export: {e}"));
    let mut bytes = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(e.to_string()))? {
        sink.write_all(&chunk).map_err(|e| failed(e.to_string()))?;
        bytes += chunk.len() as u64;
    }
    sink.flush().map_err(|e| failed(e.to_string()))?;
    if let Some(path) = out {
        eprintln!("Wrote {bytes} bytes to {}", path.display());
    }
    Ok(())
}
