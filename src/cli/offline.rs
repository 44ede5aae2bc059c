//! `glassbox user …` and `glassbox token …`: direct database access, for the
//! first admin and for scripts, while no server holds the file.

use std::io::BufRead;

use serde_json::json;

use super::{TokenCmd, UserCmd};
use crate::accounts::{self, CreateUser};
use crate::audit::AuditEvent;
use crate::auth::Role;
use crate::config::Config;
use crate::db::{Db, DbLocked, DbOptions};
use crate::repo::{audit, tokens, users};

/// Opens the database, or explains which HTTP call does the same while a server runs.
fn open(config: &Config, http_way: &str) -> anyhow::Result<Db> {
    let opts = DbOptions {
        memory_limit: config.duckdb_memory_limit.clone(),
        threads: config.duckdb_threads,
        ..DbOptions::default()
    };
    open_with(config, &opts, http_way)
}

fn open_with(config: &Config, opts: &DbOptions, http_way: &str) -> anyhow::Result<Db> {
    Db::open(&config.db_path(), opts).map_err(|e| {
        if e.downcast_ref::<DbLocked>().is_some() {
            anyhow::anyhow!(
                "{e}. A running server holds the database; do the same over HTTP with an admin token: {http_way}"
            )
        } else {
            e
        }
    })
}

fn cli_audit(action: &str) -> AuditEvent {
    AuditEvent::new(action).client_kind("cli")
}

pub fn user(config: Config, cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add {
            email,
            name,
            password_stdin,
            admin,
            service,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                let pw = line.trim_end_matches(['\n', '\r']).to_string();
                anyhow::ensure!(
                    !pw.is_empty(),
                    "--password-stdin: standard input held no password"
                );
                Some(pw)
            } else {
                None
            };
            let role = if admin {
                Role::Admin
            } else if service {
                Role::Service
            } else {
                Role::Analyst
            };
            let db = open(
                &config,
                "POST /api/admin/users {\"email\", \"name\", \"password\", \"role\"}",
            )?;
            let conn = db.connect()?;
            let u = accounts::create_user(
                &conn,
                CreateUser {
                    email,
                    name,
                    password,
                    role,
                },
            )?;
            audit::log(
                &conn,
                &cli_audit("user.create")
                    .resource(format!("user:{}", u.id))
                    .params(json!({"email": u.email, "role": u.role.as_str()}))
                    .success(),
            )?;
            println!("created {} {} ({})", u.role, u.email, u.id);
            Ok(())
        }
        UserCmd::List { json: as_json } => {
            let db = open(&config, "GET /api/admin/users")?;
            let rows = users::list(&db.connect()?)?;
            if as_json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "users": rows }))?
                );
                return Ok(());
            }
            print_table(
                &["ID", "EMAIL", "NAME", "ROLE", "ACTIVE", "TOKENS"],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.user.id.clone(),
                            r.user.email.clone(),
                            r.user.name.clone().unwrap_or_default(),
                            r.user.role.to_string(),
                            if r.user.active {
                                "yes".into()
                            } else {
                                "no".into()
                            },
                            r.active_tokens.to_string(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
    }
}

pub fn token(config: Config, cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create { email, name, days } => {
            let db = open(
                &config,
                "POST /api/admin/users/{id}/tokens {\"name\", \"days\"}",
            )?;
            let conn = db.connect()?;
            let user = users::by_email(&conn, &email)?
                .ok_or_else(|| anyhow::anyhow!("--email: no user {email}"))?;
            anyhow::ensure!(user.active, "--email: {email} is deactivated");
            let secret =
                crate::auth::load_or_create_secret(config.jwt_secret.as_deref(), &config.data_dir)?;
            let issued = accounts::issue_token(
                &conn,
                &secret,
                &user,
                &name,
                "pat",
                chrono::Duration::days(days),
                None,
            )?;
            audit::log(
                &conn,
                &cli_audit("token.create")
                    .resource(format!("token:{}", issued.row.id))
                    .params(json!({"name": issued.row.name, "for_user": user.id, "days": days}))
                    .success(),
            )?;
            eprintln!(
                "token {} for {} (expires {}); shown once, store it now:",
                issued.row.id, user.email, issued.row.expires_at
            );
            println!("{}", issued.token);
            Ok(())
        }
        TokenCmd::List { json: as_json } => {
            let db = open(&config, "GET /api/admin/users/{id}/tokens")?;
            let conn = db.connect()?;
            let rows = tokens::list(&conn, None)?;
            let emails: std::collections::HashMap<String, String> = users::list(&conn)?
                .into_iter()
                .map(|r| (r.user.id, r.user.email))
                .collect();
            if as_json {
                let list: Vec<_> = rows
                    .iter()
                    .map(crate::repo::tokens::TokenView::from)
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "tokens": list }))?
                );
                return Ok(());
            }
            let now = chrono::Utc::now().naive_utc();
            print_table(
                &[
                    "ID",
                    "USER",
                    "NAME",
                    "CREATED",
                    "EXPIRES",
                    "LAST USED",
                    "STATE",
                ],
                rows.iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            emails
                                .get(&t.user_id)
                                .cloned()
                                .unwrap_or_else(|| t.user_id.clone()),
                            t.name.clone(),
                            t.created_at.format("%Y-%m-%d").to_string(),
                            t.expires_at.format("%Y-%m-%d").to_string(),
                            t.last_used_at
                                .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                                .unwrap_or_else(|| "never".into()),
                            if t.revoked_at.is_some() {
                                "revoked".into()
                            } else if t.is_active(now) {
                                "active".into()
                            } else {
                                "expired".into()
                            },
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        TokenCmd::Revoke { id } => {
            let db = open(&config, "DELETE /api/admin/tokens/{id}")?;
            let conn = db.connect()?;
            anyhow::ensure!(tokens::get(&conn, &id)?.is_some(), "no token {id}");
            if tokens::revoke(&conn, &id, None)? {
                audit::log(
                    &conn,
                    &cli_audit("token.revoke")
                        .resource(format!("token:{id}"))
                        .success(),
                )?;
                println!("revoked {id}");
            } else {
                println!("{id} was already revoked");
            }
            Ok(())
        }
    }
}

/// A `glassbox ingest` commit that brings the WAL to this many MB
/// checkpoints instead of writing the WAL: the process checkpoints at exit
/// anyway, so a big commit (a first backfill is one, ~55 MB for 1 GB of
/// transcripts) is written to the file once, compressed, instead of twice.
/// Smaller commits still go through the WAL and the checkpoint at exit.
const INGEST_CHECKPOINT_MB: u64 = 32;

/// `glassbox ingest`: the processors once, with the figures an operator wants.
pub fn ingest(config: Config, processor: &str, as_json: bool) -> anyhow::Result<()> {
    use crate::ingest::runner::{self, Processors, RunOptions};
    let which = Processors::parse(processor).ok_or_else(|| {
        anyhow::anyhow!("--processor: expected usage, failure_scan or all, got {processor:?}")
    })?;
    use crate::ingest::profile::{self, Phase};
    let t_open = profile::time(Phase::Open);
    // This process only ingests: DuckDB gets one thread (its appends and the
    // final checkpoint are serial; a second thread only spins beside the
    // parsers) and a small memory limit, past which committed rows wait in
    // `<db>.tmp` for the checkpoint at exit instead of in memory
    // (docs/performance.md). The parsers still use GLASSBOX_DUCKDB_THREADS.
    let db = open_with(
        &config,
        &DbOptions {
            memory_limit: config.ingest_memory_limit.clone(),
            threads: 1,
            checkpoint_threshold: INGEST_CHECKPOINT_MB.to_string() + "MB",
            skip_wal_bytes: Some(INGEST_CHECKPOINT_MB << 20),
        },
        "POST /api/admin/run-session-processor?processor=usage (and ?processor=failure_scan)",
    )?;
    drop(t_open);
    let prices = crate::ingest::pricing::Prices::load(config.prices_file.as_deref())?;
    let mut conn = db.connect()?;
    let report = runner::run(
        &mut conn,
        &RunOptions {
            session_dir: &config.session_data_dir,
            batch_bytes: (config.ingest_batch_mb as i64) << 20,
            one_batch_backfill: config.ingest_one_batch_backfill,
            prices: &prices,
            retention_days: config.usage_events_retention_days,
            processors: which,
            threads: config.duckdb_threads.max(1),
        },
    )?;
    let t_audit = profile::time(Phase::Audit);
    for (enabled, name) in [(which.usage, "usage"), (which.failure_scan, "failure_scan")] {
        if enabled {
            let e = cli_audit(&format!("run_session_processor:{name}"))
                .duration_ms((report.seconds * 1000.0) as i64)
                .params(json!({"files_changed": report.files_changed, "events": report.events, "bytes": report.bytes}));
            let e = if report.files_failed == 0 {
                e.success()
            } else {
                e.error("files_failed", &report.errors.join("; "))
            };
            audit::log(&conn, &e)?;
        }
    }
    drop(t_audit);
    {
        // The last connection closing checkpoints the WAL into the file.
        let _t = profile::time(Phase::Close);
        drop(conn);
        drop(db);
    }
    tracing::debug!(target: "glassbox::ingest::profile", "phases:\n{}", profile::summary());
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "files: {} seen, {} changed, {} failed\nlines: {} ({} skipped as malformed, {} of unknown type)\nevents: {}  responses: {}  findings: {}\n{:.1} MB in {:.2} s = {:.0} MB/s",
            report.files_seen,
            report.files_changed,
            report.files_failed,
            report.lines,
            report.malformed_lines,
            report.unknown_type_lines,
            report.events,
            report.responses,
            report.findings,
            report.bytes as f64 / 1e6,
            report.seconds,
            report.mb_per_s()
        );
        if !report.unknown_models.is_empty() {
            println!(
                "unknown models (cost 0): {}",
                report
                    .unknown_models
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for e in &report.errors {
            eprintln!("error: {e}");
        }
    }
    anyhow::ensure!(
        report.files_failed == 0,
        "{} files could not be read; they are retried on the next run",
        report.files_failed
    );
    Ok(())
}

/// A plain aligned table for people (`--json` is for scripts).
fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(headers.iter().map(|h| h.to_string()).collect()));
    for r in rows {
        println!("{}", line(r));
    }
}
