//! `glassbox admin ask "<question>"`: Ask over HTTP (`POST
//! /api/admin/telemetry/ask`, as `agnes admin ask` sends it). Prints the SQL,
//! the model's rationale and the rows as a table; a rejected SQL prints the
//! reason and exits 1 (no rows came back).

use clap::Args;
use serde_json::{json, Value};

use super::client::{print_json, Client, Failure};
use super::table::{cell, render};

#[derive(Args)]
pub(crate) struct AskArgs {
    /// The question, in plain language.
    question: String,
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(client: &Client, args: AskArgs) -> Result<(), Failure> {
    let body = client
        .post_json(
            "ask",
            "/api/admin/telemetry/ask",
            &json!({ "question": args.question }),
        )
        .await?;
    if args.json {
        print_json(&body);
        return Ok(());
    }
    println!("SQL:\n  {}\n", cell(&body["sql"]));
    if let Some(r) = body["rationale"].as_str().filter(|r| !r.is_empty()) {
        println!("{}\n", cell(&Value::String(r.into())));
    }
    if let Some(reason) = body["rejected"].as_str() {
        return Err(Failure::Failed(format!(
            "[rejected] the SQL was not run: {reason}"
        )));
    }
    let columns: Vec<&str> = body["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = body["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| columns.iter().map(|c| cell(&r[*c])).collect())
                .collect()
        })
        .unwrap_or_default();
    if !columns.is_empty() {
        print!("{}", render(&columns, &rows));
    }
    let more = if body["truncated"] == true {
        " (more rows exist: narrow the question)"
    } else {
        ""
    };
    println!(
        "\n{} rows{more}; model {} ms, query {} ms",
        cell(&body["row_count"]),
        cell(&body["llm_ms"]),
        cell(&body["exec_ms"])
    );
    Ok(())
}
