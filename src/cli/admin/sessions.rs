//! `glassbox admin sessions list|show|download|kpis`: the Sessions APIs
//! (`/api/admin/sessions…`) as Agnes's CLI shows them, `--json` as sent.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::activity::minutes;
use super::client::{print_json, Client, Failure};
use super::table::{cell, render, time};

/// The filters `list` and `kpis` share (Agnes's flags).
#[derive(Args)]
pub(crate) struct Filters {
    /// How far back: 30m, 24h, 7d or plain minutes (up to 365 days).
    #[arg(long, default_value = "7d", value_parser = minutes)]
    since: i64,
    /// Window on the upload time (default) or the start time.
    #[arg(long, default_value = "uploaded", value_parser = ["uploaded", "started"])]
    anchor: String,
    /// The user's email.
    #[arg(long)]
    username: Option<String>,
    #[arg(long)]
    model: Option<String>,
    /// Only sessions with tool errors.
    #[arg(long)]
    only_errors: bool,
    /// tool_error, permission_denied, user_rejection, loop or abrupt_end.
    #[arg(long)]
    finding_type: Option<String>,
}

impl Filters {
    fn query(&self) -> Vec<(&'static str, String)> {
        vec![
            ("since_minutes", self.since.to_string()),
            ("anchor", self.anchor.clone()),
            ("username", self.username.clone().unwrap_or_default()),
            ("model", self.model.clone().unwrap_or_default()),
            (
                "only_errors",
                if self.only_errors {
                    "true".into()
                } else {
                    String::new()
                },
            ),
            (
                "finding_type",
                self.finding_type.clone().unwrap_or_default(),
            ),
        ]
    }
}

#[derive(Subcommand)]
pub(crate) enum SessionsCmd {
    /// Sessions of the window, as a table.
    List {
        #[command(flatten)]
        filters: Filters,
        /// Free text over the session id, file and user.
        #[arg(long)]
        search: Option<String>,
        /// `key:asc|desc` (started_at, tool_errors, tokens, cost, …).
        #[arg(long, default_value = "started_at:desc")]
        sort: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
        #[arg(long)]
        json: bool,
    },
    /// One transcript: its summary and events.
    Show {
        /// The user directory (a row's `session_dir`).
        user_dir: String,
        /// The file name (`….jsonl`).
        file: String,
        #[arg(long)]
        json: bool,
    },
    /// The raw JSONL of one transcript, to `-o FILE` or `./FILE`.
    Download {
        user_dir: String,
        file: String,
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
    },
    /// The window's key figures.
    Kpis {
        #[command(flatten)]
        filters: Filters,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(client: &Client, cmd: SessionsCmd) -> Result<(), Failure> {
    match cmd {
        SessionsCmd::List {
            filters,
            search,
            sort,
            limit,
            offset,
            json,
        } => {
            let mut q = filters.query();
            q.extend([
                ("q", search.unwrap_or_default()),
                ("sort", sort),
                ("limit", limit.to_string()),
                ("offset", offset.to_string()),
            ]);
            let body = client
                .get("sessions list", "/api/admin/sessions/list", &q)
                .await?;
            if json {
                print_json(&body);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = body["rows"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    vec![
                        time(&r["started_at"]),
                        cell(&r["username"]),
                        cell(&r["tool_calls"]),
                        cell(&r["tool_errors"]),
                        cell(&r["total_tokens"]),
                        format!("{:.2}", r["cost_usd"].as_f64().unwrap_or(0.0)),
                        cell(&r["primary_model"]),
                        format!(
                            "{}/{}",
                            cell(&r["session_dir"]),
                            cell(&r["session_file"]).rsplit('/').next().unwrap_or("")
                        ),
                    ]
                })
                .collect();
            print!(
                "{}",
                render(
                    &[
                        "STARTED", "USER", "CALLS", "ERRORS", "TOKENS", "COST $", "MODEL",
                        "SESSION"
                    ],
                    &rows
                )
            );
            println!("{} of {} sessions", rows.len(), cell(&body["total"]));
            Ok(())
        }
        SessionsCmd::Kpis { filters, json } => {
            let body = client
                .get(
                    "sessions kpis",
                    "/api/admin/sessions/kpis",
                    &filters.query(),
                )
                .await?;
            if json {
                print_json(&body);
                return Ok(());
            }
            let keys = [
                ("sessions", "sessions_total"),
                ("users", "distinct_users"),
                ("sessions with errors", "error_sessions"),
                ("tool calls", "tool_calls_total"),
                ("tool errors", "tool_errors_total"),
                ("tool error rate", "tool_error_rate"),
                ("tokens", "total_tokens"),
                ("cost $", "cost_usd"),
                ("sessions with findings", "sessions_with_findings"),
            ];
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|(label, k)| vec![label.to_string(), cell(&body[*k])])
                .collect();
            print!("{}", render(&["FIGURE", "VALUE"], &rows));
            Ok(())
        }
        SessionsCmd::Show {
            user_dir,
            file,
            json,
        } => {
            let body = client
                .get(
                    "sessions show",
                    &format!("/api/admin/sessions/{user_dir}/{file}/transcript"),
                    &[],
                )
                .await?;
            if json {
                print_json(&body);
                return Ok(());
            }
            let s = &body["summary"];
            if s.get("started_at").is_some() {
                println!(
                    "{user_dir}/{file}: started {}, {} tool calls, {} errors, model {}",
                    time(&s["started_at"]),
                    cell(&s["tool_calls"]),
                    cell(&s["tool_errors"]),
                    cell(&s["primary_model"])
                );
            }
            for e in body["events"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                println!("{}", event_line(e));
            }
            Ok(())
        }
        SessionsCmd::Download {
            user_dir,
            file,
            output,
        } => {
            let out = output.unwrap_or_else(|| std::path::PathBuf::from(&file));
            let n = client
                .download(
                    "sessions download",
                    &format!("/api/admin/sessions/{user_dir}/{file}/download"),
                    &out,
                )
                .await?;
            eprintln!("wrote {} ({n} bytes)", out.display());
            Ok(())
        }
    }
}

/// `HH:MM:SS #line kind …` for one transcript event.
fn event_line(e: &Value) -> String {
    let ts = e["ts"].as_str().unwrap_or("");
    let clock = ts.get(11..19).unwrap_or("        ");
    let text = |v: &Value| {
        let s = cell(v);
        match s.char_indices().nth(160) {
            Some((i, _)) => format!("{}…", &s[..i]),
            None => s,
        }
    };
    let body = match e["kind"].as_str().unwrap_or("") {
        "tool_use" => format!("→ {} {}", cell(&e["tool_name"]), text(&e["input"])),
        "tool_result" if e["is_error"] == true => format!("✗ {}", text(&e["text"])),
        "tool_result" => format!("← {}", text(&e["text"])),
        "thinking" => "(thinking)".to_string(),
        _ => format!("{}: {}", cell(&e["role"]), text(&e["text"])),
    };
    format!("{clock} #{} {body}", cell(&e["line"]))
}
