//! The `glassbox` command line: the server, demo and scale data, and the offline
//! user and token commands. Exit codes: 0 ok, 1 failure, 2 usage error.

mod admin;
mod offline;
mod push;
pub mod remote;
mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::app::AppState;
use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "glassbox",
    version,
    about = "Observability for AI-analyst platforms: audit log, telemetry, sessions, feedback"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server (GLASSBOX_BIND, GLASSBOX_DATA_DIR, …; see README).
    Serve(ServeArgs),
    /// Run the server on a fresh data dir filled with realistic demo data.
    Demo {
        /// Where to put the demo data (re-created on every run); default
        /// GLASSBOX_DATA_DIR, else ./data.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        bind: Option<SocketAddr>,
    },
    /// Fill a data dir with synthetic data at scale (for benchmarks).
    Synth {
        /// Default GLASSBOX_DATA_DIR, else ./data.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Audit rows to generate, spread over the last `--days` days.
        #[arg(long, default_value_t = 0)]
        audit_rows: u64,
        /// Usage API events (`app_events`) to generate over the same days.
        #[arg(long, default_value_t = 0)]
        app_events: u64,
        /// Telemetry tool events (with responses, summaries and rollups).
        #[arg(long, default_value_t = 0)]
        usage_events: u64,
        /// Sessions the usage events belong to (0: one per ~150 events).
        #[arg(long, default_value_t = 0)]
        sessions: u64,
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Run the session processors once over SESSION_DATA_DIR and print figures.
    Ingest {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Which processors: usage, failure_scan or all.
        #[arg(long, default_value = "all")]
        processor: String,
        #[arg(long)]
        json: bool,
    },
    /// Upload new or changed Claude Code transcripts to a glassbox server
    /// (GLASSBOX_URL + GLASSBOX_TOKEN, or ~/.config/glassbox/config.toml).
    PushSessions {
        /// Folder of project folders holding the transcripts.
        #[arg(long)]
        claude_dir: Option<PathBuf>,
        /// Only say what would be sent.
        #[arg(long)]
        dry_run: bool,
    },
    /// Admin commands over HTTP (GLASSBOX_URL + GLASSBOX_TOKEN, or
    /// ~/.config/glassbox/config.toml).
    #[command(subcommand)]
    Admin(admin::AdminCmd),
    /// Report a problem to the admins with the end of the current session
    /// (shows exactly what will be sent and asks first).
    Report(report::ReportArgs),
    /// Manage users offline (while no server holds the database).
    #[command(subcommand)]
    User(UserCmd),
    /// Manage access tokens offline (while no server holds the database).
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long)]
    bind: Option<SocketAddr>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user (an analyst unless --admin or --service).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, conflicts_with = "service")]
        admin: bool,
        /// A machine account: cannot sign in, sends producer events with tokens.
        #[arg(long)]
        service: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a token for a user and print it once.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "cli")]
        name: String,
        #[arg(long, default_value_t = crate::auth::DEFAULT_TOKEN_DAYS)]
        days: i64,
    },
    /// List tokens (never their text).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Over HTTP: no local configuration, its own exit codes.
    if let Cmd::Admin(cmd) = cli.cmd {
        return admin::run(cmd);
    }
    if let Cmd::Report(args) = cli.cmd {
        return report::run(args);
    }
    let config = match &cli.cmd {
        Cmd::Demo { .. } | Cmd::Synth { .. } => Config::from_lookup(generated_env),
        _ => Config::from_env(),
    };
    let mut config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    crate::logging::init(config.log_format);
    let result = match cli.cmd {
        Cmd::Serve(args) => {
            if let Some(d) = args.data_dir {
                config.session_data_dir = reroot(&config, &d);
                config.data_dir = d;
            }
            if let Some(b) = args.bind {
                config.bind = b;
            }
            run_server(config, None)
        }
        Cmd::Demo { data_dir, bind } => {
            let data_dir = data_dir.unwrap_or_else(|| config.data_dir.clone());
            config.session_data_dir = data_dir.join("user_sessions");
            config.data_dir = data_dir;
            if let Some(b) = bind {
                config.bind = b;
            }
            demo(config)
        }
        Cmd::Synth {
            data_dir,
            audit_rows,
            app_events,
            usage_events,
            sessions,
            days,
        } => {
            let data_dir = data_dir.unwrap_or_else(|| config.data_dir.clone());
            config.session_data_dir = data_dir.join("user_sessions");
            config.data_dir = data_dir;
            synth(
                config,
                audit_rows,
                app_events,
                (usage_events, sessions),
                days,
            )
        }
        Cmd::Ingest {
            data_dir,
            processor,
            json,
        } => {
            if let Some(d) = data_dir {
                config.session_data_dir = reroot(&config, &d);
                config.data_dir = d;
            }
            offline::ingest(config, &processor, json)
        }
        Cmd::PushSessions {
            claude_dir,
            dry_run,
        } => push::run(claude_dir, dry_run),
        Cmd::Admin(_) | Cmd::Report(_) => {
            unreachable!("handled before the configuration is read")
        }
        Cmd::User(cmd) => offline::user(config, cmd),
        Cmd::Token(cmd) => offline::token(config, cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// What `demo` and `synth` read from the environment: where the data goes,
/// how to run and which outside services to talk to (so Ask and Telegram can
/// be tried on demo data), never what goes in it (a bootstrap admin,
/// retention, prices, SESSION_DATA_DIR…), so generated data is the same
/// whoever runs them.
fn generated_env(var: &str) -> Option<String> {
    const READ: &[&str] = &[
        "GLASSBOX_DATA_DIR",
        "GLASSBOX_BIND",
        "GLASSBOX_LOG_FORMAT",
        "GLASSBOX_DUCKDB_MEMORY_LIMIT",
        "GLASSBOX_DUCKDB_THREADS",
        "GLASSBOX_QUERY_TIMEOUT_SECS",
        "GLASSBOX_PUBLIC_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "USAGE_ASK_MODEL",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_BASE",
    ];
    READ.contains(&var)
        .then(|| std::env::var(var).ok())
        .flatten()
}

/// Before `demo` or `synth` empties a data dir: refuse one whose database a
/// running glassbox holds (a second `make run` must not wipe the first's).
fn ensure_free(config: &Config) -> anyhow::Result<()> {
    crate::db::ensure_not_held(&config.db_path())
}

/// SESSION_DATA_DIR follows a --data-dir flag unless set explicitly.
fn reroot(config: &Config, new_data_dir: &std::path::Path) -> PathBuf {
    if std::env::var_os("SESSION_DATA_DIR").is_some() {
        config.session_data_dir.clone()
    } else {
        new_data_dir.join("user_sessions")
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run_server(config: Config, banner: Option<String>) -> anyhow::Result<()> {
    let bind = config.bind;
    let state = AppState::open(config)?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| anyhow::anyhow!("GLASSBOX_BIND: cannot listen on {bind}: {e}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "listening");
        // Tests and scripts read the first line to find a port chosen by the OS.
        let mut ready = format!("glassbox listening on http://{addr}");
        if let Some(b) = banner {
            ready.push('\n');
            ready.push_str(&b);
        }
        crate::app::serve(state, listener, &ready).await
    })
}

/// Usage API events in the demo data: a few a day per person.
const DEMO_APP_EVENTS: u64 = 2_400;

fn demo(config: Config) -> anyhow::Result<()> {
    ensure_free(&config)?;
    crate::synth::prepare_dir(&config.data_dir, crate::synth::DirKind::Demo)?;
    let state = AppState::open(config.clone())?;
    let mut summary = crate::synth::demo(&state.db, &state.config.session_data_dir, &state.prices)?;
    // The Product usage tab's data: what the platform's clients would have
    // reported to the usage API over the same month.
    let app = crate::synth::app_events(&state.db, DEMO_APP_EVENTS, 30)?;
    summary.push_str(&format!(", {app}"));
    drop(state);
    let banner = format!(
        "demo data: {}\nsign in as {} / {} (admin) or {} / {} (analyst)",
        summary,
        crate::synth::DEMO_ADMIN_EMAIL,
        crate::synth::DEMO_PASSWORD,
        crate::synth::DEMO_ANALYST_EMAIL,
        crate::synth::DEMO_PASSWORD
    );
    run_server(config, Some(banner))
}

fn synth(
    config: Config,
    audit_rows: u64,
    app_events: u64,
    usage: (u64, u64),
    days: u32,
) -> anyhow::Result<()> {
    ensure_free(&config)?;
    crate::synth::prepare_dir(&config.data_dir, crate::synth::DirKind::Synth)?;
    let state = AppState::open(config)?;
    let started = std::time::Instant::now();
    let summary = crate::synth::scale(&state.db, audit_rows, days)?;
    let usage = crate::synth_usage::scale(&state.db, usage.0, usage.1, days)?;
    println!(
        "{summary}{usage} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if app_events > 0 {
        let started = std::time::Instant::now();
        let summary = crate::synth::app_events(&state.db, app_events, days)?;
        println!("{summary} in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}
