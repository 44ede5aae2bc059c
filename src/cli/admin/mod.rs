//! `glassbox admin …`: the admin APIs over HTTP, for people (tables) and
//! scripts (`--json` prints the server's JSON as is).
//!
//! The server and token come from `GLASSBOX_URL` + `GLASSBOX_TOKEN`, else
//! `~/.config/glassbox/config.toml` (see `cli::remote`). Exit codes: 0 ok,
//! 1 the server refused or failed, 2 no server or token configured (or a
//! usage error, from clap).
//!
//! A new command is one file: a clap `Args`/`Subcommand` type and an
//! `async fn run(&Client, args) -> Result<(), Failure>`, plus its variant
//! and match arm below.

mod activity;
mod ask;
mod client;
mod sessions;
mod table;
mod telemetry;

use std::process::ExitCode;

use clap::Subcommand;

use client::{Client, Failure};

#[derive(Subcommand)]
pub(crate) enum AdminCmd {
    /// The Audit log: recent rows (default), `health` or `sync`.
    Activity(activity::ActivityArgs),
    /// Ask a question about telemetry in plain language (the model writes SQL).
    Ask(ask::AskArgs),
    /// Telemetry: `summary`, `export`, `reprocess` or `prune`.
    #[command(subcommand)]
    Telemetry(telemetry::TelemetryCmd),
    /// Sessions: `list`, `show`, `download`, `kpis`.
    #[command(subcommand)]
    Sessions(sessions::SessionsCmd),
}

pub(crate) fn run(cmd: AdminCmd) -> ExitCode {
    let outcome = Client::from_env().and_then(|client| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::Failed(format!("[err] cannot start: {e}")))?;
        rt.block_on(async {
            match cmd {
                AdminCmd::Activity(args) => activity::run(&client, args).await,
                AdminCmd::Ask(args) => ask::run(&client, args).await,
                AdminCmd::Telemetry(cmd) => telemetry::run(&client, cmd).await,
                AdminCmd::Sessions(cmd) => sessions::run(&client, cmd).await,
            }
        })
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}
