//! The binary itself: configuration errors, offline commands, the lock message.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn glassbox(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_glassbox"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GLASSBOX_DATA_DIR", dir)
        .env("RUST_LOG", "warn");
    c
}

#[test]
fn malformed_configuration_stops_start_up_with_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("GLASSBOX_BIND", "not-an-address"),
        ("GLASSBOX_UPLOAD_MAX_MB", "big"),
        ("USAGE_PROCESSOR_CRON", "* * *"),
    ] {
        let out = glassbox(dir.path())
            .env(var, value)
            .arg("serve")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("error: {var}:")), "{err}");
    }
    let out = glassbox(dir.path())
        .arg("no-such-command")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn offline_user_and_token_commands_work_and_a_running_server_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut add = glassbox(dir.path())
        .args([
            "user",
            "add",
            "--email",
            "ops@example.com",
            "--admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"offline-pass-1\n")
        .unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = glassbox(dir.path())
        .args([
            "token",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "ci",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(token.split('.').count(), 3);
    let out = glassbox(dir.path())
        .args(["user", "list", "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["users"][0]["email"], "ops@example.com");

    // With a server holding the file, the offline command says so and names the API.
    let mut server = glassbox(dir.path())
        .env("GLASSBOX_BIND", "127.0.0.1:0")
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("glassbox listening on http://127.0.0.1:"),
        "{line}"
    );
    let out = glassbox(dir.path())
        .args(["user", "list"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("in use by another glassbox process") && err.contains("GET /api/admin/users"),
        "{err}"
    );

    // The token made offline works against the server.
    let url = line
        .trim()
        .trim_start_matches("glassbox listening on ")
        .to_string();
    let status = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("{url}/api/admin/users"),
        ])
        .output();
    if let Ok(o) = status {
        assert_eq!(String::from_utf8_lossy(&o.stdout), "200");
    }
    // SIGTERM: a graceful stop with exit 0.
    unsafe_kill_term(server.id());
    let code = server.wait().unwrap();
    assert!(code.success(), "graceful shutdown exits 0, got {code:?}");
}

fn unsafe_kill_term(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

#[test]
fn demo_and_synth_refuse_a_directory_with_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let out = glassbox(dir.path())
        .args([
            "synth",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--audit-rows",
            "10",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not make"));
    assert!(dir.path().join("notes.txt").exists());
}

#[test]
fn synth_fills_a_data_dir_and_can_run_again_on_its_own_output() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("bench");
    for _ in 0..2 {
        let out = glassbox(dir.path())
            .args([
                "synth",
                "--data-dir",
                target.to_str().unwrap(),
                "--audit-rows",
                "20000",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("20000 audit rows"));
    }
}

#[test]
fn a_server_killed_right_after_creating_its_database_leaves_one_that_opens() {
    // DuckDB 1.5.6 cannot replay schema DDL from its WAL after a crash; the
    // migrations are checkpointed at once so a SIGKILL never bricks the file.
    let dir = tempfile::tempdir().unwrap();
    let mut server = glassbox(dir.path())
        .env("GLASSBOX_BIND", "127.0.0.1:0")
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let out = glassbox(dir.path())
        .args(["user", "list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn demo_fills_its_dir_with_users_audit_rows_and_ingested_transcripts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut server = glassbox(dir.path())
        .args([
            "demo",
            "--data-dir",
            data.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let (mut listening, mut summary, mut login) = (String::new(), String::new(), String::new());
    out.read_line(&mut listening).unwrap();
    out.read_line(&mut summary).unwrap();
    out.read_line(&mut login).unwrap();
    unsafe_kill_term(server.id());
    assert!(server.wait().unwrap().success());
    assert!(
        listening.starts_with("glassbox listening on http://127.0.0.1:"),
        "{listening}"
    );
    assert!(
        summary.contains("60000 audit rows")
            && summary.contains("12 feedback reports")
            && summary.contains("transcripts"),
        "{summary}"
    );
    assert!(
        login.contains("admin@example.com / glassbox-demo"),
        "{login}"
    );
    let tx = std::fs::read_dir(data.join("user_sessions/alice.novak"))
        .unwrap()
        .count();
    assert!(tx >= 8, "alice has a month of transcripts ({tx})");
}

fn users_in(dir: &std::path::Path) -> Vec<String> {
    let out = glassbox(dir)
        .args(["user", "list", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn synth_writes_where_glassbox_data_dir_says_and_ignores_the_bootstrap_admin() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("data");
    // The caller's bootstrap admin is the demo admin's address: no collision.
    let out = glassbox(&target)
        .env("GLASSBOX_ADMIN_EMAIL", "admin@example.com")
        .env("GLASSBOX_ADMIN_PASSWORD", "caller-pass-1")
        .args(["synth", "--audit-rows", "10"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `serve`, `user list`… read the same dir.
    let users = users_in(&target);
    assert!(
        users.contains(&"admin@example.com".to_string()),
        "{users:?}"
    );
    assert!(users.contains(&"alice.novak@example.com".to_string()));

    // The flag wins over the variable.
    let flagged = dir.path().join("flagged");
    let out = glassbox(&target)
        .args([
            "synth",
            "--data-dir",
            flagged.to_str().unwrap(),
            "--audit-rows",
            "10",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(flagged.join("glassbox.duckdb").is_file());
}

#[test]
fn demo_and_synth_refuse_a_data_dir_a_running_server_holds_and_leave_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("live");
    let out = glassbox(&target)
        .args(["synth", "--audit-rows", "10"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut server = glassbox(&target)
        .env("GLASSBOX_BIND", "127.0.0.1:0")
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("glassbox listening on"), "{line}");
    let db = target.join("glassbox.duckdb");
    let inode =
        |p: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let before = inode(&db);
    for args in [
        vec!["synth", "--audit-rows", "10"],
        vec!["demo", "--bind", "127.0.0.1:0"],
    ] {
        let out = glassbox(&target).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("in use by another glassbox process")
                && err.contains(&format!("PID {}", server.id())),
            "{err}"
        );
        assert_eq!(inode(&db), before, "{args:?} left the live database alone");
        assert!(target.join(".glassbox-generated").exists());
    }
    unsafe_kill_term(server.id());
    assert!(server.wait().unwrap().success());
}

/// `glassbox admin …` with a clean environment: HOME is `home` (no config
/// file unless the test writes one), plus the given variables.
fn admin(home: &std::path::Path, vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_glassbox"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .arg("admin")
        .args(args);
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().unwrap()
}

pub(crate) async fn admin_async(
    home: &std::path::Path,
    vars: &[(&str, &str)],
    args: &[&str],
) -> (Option<i32>, String, String) {
    let home = home.to_path_buf();
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = admin(&home, &vars, &args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_activity_shows_rows_health_and_sync_runs_as_tables_or_json() {
    use glassbox::auth::Role;
    let app = crate::helpers::TestApp::spawn().await;
    let service = app.api_as(Role::Service).await;
    let resp = service
        .post(
            "/api/v1/audit/events",
            serde_json::json!({"action": "table.read", "resource": "table:orders", "result": "success"}),
        )
        .await;
    assert_eq!(resp.status(), reqwest::StatusCode::ACCEPTED);
    let resp = service
        .post(
            "/api/v1/sync-runs",
            serde_json::json!({"table_id": "orders", "rows": 120, "status": "ok"}),
        )
        .await;
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
    let token = app.token_for(crate::helpers::ADMIN_EMAIL).await;
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("GLASSBOX_URL", app.url.as_str()),
        ("GLASSBOX_TOKEN", token.as_str()),
    ];

    let (code, out, err) = admin_async(home.path(), &env, &["activity"]).await;
    assert_eq!(code, Some(0), "{err}");
    let header = out.lines().next().unwrap_or_default();
    for col in ["TIME (UTC)", "ACTION", "USER", "RESULT", "RESOURCE"] {
        assert!(header.contains(col), "{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.contains("table.read") && l.contains("table:orders")),
        "{out}"
    );

    let (code, out, _) = admin_async(
        home.path(),
        &env,
        &["activity", "--json", "--action", "table."],
    )
    .await;
    assert_eq!(code, Some(0));
    let body: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["rows"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(body["filter"]["action_prefix"], "table.");

    let (code, out, err) = admin_async(home.path(), &env, &["activity", "health"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("CHECK") && out.contains("scheduler"), "{out}");
    let (_, out, _) = admin_async(home.path(), &env, &["activity", "health", "--json"]).await;
    let body: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(body["status"].is_string() && body["fields"].is_array());

    let (code, out, err) =
        admin_async(home.path(), &env, &["activity", "sync", "--since", "1h"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("TABLE")
            && out
                .lines()
                .any(|l| l.contains("orders") && l.contains("120")),
        "{out}"
    );
    let (_, out, _) = admin_async(home.path(), &env, &["activity", "sync", "--json"]).await;
    let body: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["rows"][0]["table_id"], "orders");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_commands_read_the_config_file_and_say_what_went_wrong_in_one_line() {
    use glassbox::auth::Role;
    let app = crate::helpers::TestApp::spawn().await;
    let home = tempfile::tempdir().unwrap();

    // Nothing configured: exit 2 and a hint naming what to set.
    let (code, _, err) = admin_async(home.path(), &[], &["activity"]).await;
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with("[err] GLASSBOX_URL:") && err.contains("config.toml"),
        "{err}"
    );
    let (code, _, err) = admin_async(
        home.path(),
        &[("GLASSBOX_URL", app.url.as_str())],
        &["activity"],
    )
    .await;
    assert_eq!(code, Some(2));
    assert!(
        err.contains("GLASSBOX_TOKEN") && err.contains("/me"),
        "{err}"
    );
    let (code, _, _) = admin_async(home.path(), &[], &["activity", "--since", "soon"]).await;
    assert_eq!(code, Some(2), "a usage error");

    // The config file: an analyst's token is refused by the server.
    app.api_as(Role::Analyst).await;
    let analyst = app.token_for("analyst@example.com").await;
    let conf = home.path().join(".config/glassbox");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("config.toml"),
        format!("url = \"{}\"\ntoken = \"{analyst}\"\n", app.url),
    )
    .unwrap();
    let (code, out, err) = admin_async(home.path(), &[], &["activity", "health"]).await;
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("[err] admin only"), "{err}");

    // The variables win over the file; a refused parameter names itself.
    let admin_token = app.token_for(crate::helpers::ADMIN_EMAIL).await;
    let (code, _, err) = admin_async(
        home.path(),
        &[("GLASSBOX_TOKEN", admin_token.as_str())],
        &["activity", "--result-class", "bogus"],
    )
    .await;
    assert_eq!(code, Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("[err] activity: result_class:"), "{err}");
    let (code, _, err) = admin_async(
        home.path(),
        &[("GLASSBOX_TOKEN", "not-a-token")],
        &["activity", "sync"],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.starts_with("[err] authentication required"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_telemetry_summarises_exports_reprocesses_and_prunes_over_http() {
    use glassbox::auth::Role;
    let app = crate::helpers::TestApp::spawn().await;
    let analyst = app.create_user("ann@example.com", Role::Analyst).await;
    let people = vec![(analyst.id.clone(), analyst.email.clone())];
    app.state
        .db
        .run(move |c| {
            glassbox::synth_usage::make_usage(c, &people, 900, 6, 5)?;
            Ok(())
        })
        .await
        .unwrap();
    let token = app.token_for(crate::helpers::ADMIN_EMAIL).await;
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("GLASSBOX_URL", app.url.as_str()),
        ("GLASSBOX_TOKEN", token.as_str()),
    ];

    let (code, out, err) = admin_async(home.path(), &env, &["telemetry", "summary"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("TOOL") && out.contains("Bash"), "{out}");
    assert!(out.contains("glm-4.6") && out.contains("no price"), "{out}");
    let (_, out, _) = admin_async(
        home.path(),
        &env,
        &["telemetry", "summary", "--window", "all", "--json"],
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["query_telemetry"]["total_scan_bytes"], 0);

    let file = home.path().join("events.csv");
    let (code, _, err) = admin_async(
        home.path(),
        &env,
        &["telemetry", "export", "--out", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 901, "header and every event");
    let (code, out, _) = admin_async(
        home.path(),
        &env,
        &[
            "telemetry",
            "export",
            "--format",
            "json",
            "--source",
            "curated",
        ],
    )
    .await;
    assert_eq!(code, Some(0));
    let curated = app
        .query_i64("SELECT count(*) FROM usage_events WHERE source = 'curated'")
        .await;
    assert_eq!(out.lines().count() as i64, curated);
    let (code, _, err) = admin_async(
        home.path(),
        &env,
        &["telemetry", "export", "--source", "marketplace"],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.contains("source"), "{err}");

    let (code, out, err) =
        admin_async(home.path(), &env, &["telemetry", "reprocess", "--dry-run"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("Would delete") && out.contains("900"), "{out}");
    let (code, out, _) = admin_async(home.path(), &env, &["telemetry", "prune"]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("Skipped"), "{out}");
    assert_eq!(
        app.query_i64("SELECT count(*) FROM usage_events").await,
        900
    );
}
#[tokio::test(flavor = "multi_thread")]
async fn admin_sessions_lists_shows_downloads_and_counts_over_http() {
    let app = crate::helpers::TestApp::spawn().await;
    crate::sessions::copy_fixtures(&app, "fixture.user", &[]);
    crate::sessions::ingest(&app).await;
    let token = app.token_for(crate::helpers::ADMIN_EMAIL).await;
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("GLASSBOX_URL", app.url.as_str()),
        ("GLASSBOX_TOKEN", token.as_str()),
    ];
    let window = ["--since", "365d", "--anchor", "started"];
    let args: Vec<&str> = ["sessions", "list"]
        .iter()
        .copied()
        .chain(window)
        .chain(["--sort", "tool_errors:desc"])
        .collect();
    let (code, out, err) = admin_async(home.path(), &env, &args).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("STARTED") && out.contains("fixture.user/"),
        "{out}"
    );
    let args: Vec<&str> = ["sessions", "kpis"]
        .iter()
        .copied()
        .chain(window)
        .chain(["--json"])
        .collect();
    let (code, out, err) = admin_async(home.path(), &env, &args).await;
    assert_eq!(code, Some(0), "{err}");
    let kpis: serde_json::Value = serde_json::from_str(&out).unwrap();
    let listed = app
        .query_i64("SELECT count(*) FROM usage_session_summary WHERE started_at IS NOT NULL")
        .await;
    assert_eq!(kpis["sessions_total"], listed);
    let (code, out, err) = admin_async(
        home.path(),
        &env,
        &["sessions", "show", "fixture.user", "tool_error.jsonl"],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("✗"), "an error result is shown: {out}");
    let target = home.path().join("copy.jsonl");
    let (code, _, err) = admin_async(
        home.path(),
        &env,
        &[
            "sessions",
            "download",
            "fixture.user",
            "tool_error.jsonl",
            "-o",
            target.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(
            app.state
                .config
                .session_data_dir
                .join("fixture.user/tool_error.jsonl")
        )
        .unwrap()
    );
    let (code, _, err) = admin_async(
        home.path(),
        &env,
        &["sessions", "show", "fixture.user", "nope.jsonl"],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.starts_with("[err] sessions show:"), "{err}");
}
