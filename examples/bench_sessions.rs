//! Sessions latencies and memory (run by `make bench`; scale knobs below).
//!
//! `glassbox synth --sessions N` is being built on another branch; until it
//! lands this bench fills its own data dir with a tiny generator: N summary
//! rows over 30 days (set-based SQL, a third with findings), one large
//! transcript, and a user directory of transcripts for the ZIP. It then
//! times, over real HTTP against an in-process server: list, KPIs, facets and
//! heatmap (p50/p95), the time to first byte and to the first screen of the
//! large transcript, and the peak RSS growth while a ZIP of the user's files
//! streams.
//!
//! Usage: bench_sessions DATA_DIR [SESSIONS=100000] [TRANSCRIPT_MB=50] [ZIP_MB=1024] [ITER=60]

use std::io::Write;
use std::time::Instant;

use glassbox::auth::Role;
use glassbox::{AppState, Config};

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

async fn time_gets(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 2 {
        let t = Instant::now();
        let resp = http.get(url).bearer_auth(token).send().await?;
        anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
        let _ = resp.bytes().await?;
        if i >= 2 {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times)
}

/// N summary rows over the last 30 days and findings for a third of them.
fn generate_summaries(conn: &duckdb::Connection, n: i64) -> anyhow::Result<()> {
    let have: i64 = conn.query_row("SELECT count(*) FROM usage_session_summary", [], |r| {
        r.get(0)
    })?;
    if have >= n {
        return Ok(());
    }
    conn.execute_batch("DELETE FROM usage_session_summary; DELETE FROM session_findings;")?;
    conn.execute(
        "INSERT INTO usage_session_summary (session_file, session_id, username, started_at, ended_at,
            active_seconds, wall_seconds, user_messages, assistant_messages, tool_calls, tool_errors,
            primary_model, processor_version, uploaded_at, input_tokens, output_tokens,
            cache_read_tokens, cache_creation_tokens, user_id, cost_usd, bytes)
         SELECT format('user{:03d}/s{:07d}.jsonl', i % 200, i), format('s{:07d}', i),
                format('user{:03d}@example.com', i % 200),
                now()::TIMESTAMP - INTERVAL 30 DAY + (i * (30 * 86400 / ?)) * INTERVAL 1 SECOND AS st,
                st + INTERVAL 20 MINUTE, 600 + i % 900, 1200, 5 + i % 20, 20 + i % 50, 10 + i % 90,
                CASE WHEN i % 5 = 0 THEN i % 7 ELSE 0 END,
                ['claude-opus-4-7', 'claude-sonnet-4-5', 'claude-haiku-4-5'][1 + i % 3],
                1, st + INTERVAL 1 HOUR, 1000 + i % 5000, 20000 + i % 9000, 300000 + i % 70000,
                40000 + i % 3000, NULL, 1.5 + (i % 100) / 50.0, 100000
         FROM range(?) t(i)",
        duckdb::params![n, n],
    )?;
    conn.execute(
        "INSERT INTO session_findings
         SELECT uuid()::VARCHAR, format('user{:03d}/s{:07d}.jsonl', i % 200, i), format('user{:03d}@example.com', i % 200),
                ['tool_error', 'permission_denied', 'user_rejection', 'loop', 'abrupt_end'][1 + (i // 3) % 5],
                i % 40, 'warning', 'bench finding', now()::TIMESTAMP
         FROM range(?) t(i) WHERE i % 3 = 0",
        duckdb::params![n],
    )?;
    Ok(())
}

/// A realistic-looking transcript of about `mb` MB: prompts, tool calls,
/// long tool outputs (some errors), thinking.
fn write_transcript(path: &std::path::Path, mb: u64) -> anyhow::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() >= mb << 20) {
        return Ok(());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let out = "x".repeat(20_000);
    let mut i = 0u64;
    let mut written = 0u64;
    while written < mb << 20 {
        let ts = format!("2026-11-01T10:{:02}:{:02}.000Z", (i / 60) % 60, i % 60);
        let lines = [
            format!(
                r#"{{"type":"user","timestamp":"{ts}","uuid":"u{i}","message":{{"role":"user","content":"step {i}: run the checks"}}}}"#
            ),
            format!(
                r#"{{"type":"assistant","timestamp":"{ts}","uuid":"a{i}","requestId":"r{i}","message":{{"id":"m{i}","model":"claude-opus-4-7","role":"assistant","content":[{{"type":"thinking","thinking":"considering step {i}"}},{{"type":"tool_use","id":"t{i}","name":"Bash","input":{{"command":"make check {i}"}}}}],"usage":{{"input_tokens":5,"output_tokens":300,"cache_read_input_tokens":20000,"cache_creation_input_tokens":1000}}}}}}"#
            ),
            format!(
                r#"{{"type":"user","timestamp":"{ts}","uuid":"r{i}","message":{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t{i}","is_error":{},"content":"{out}"}}]}}}}"#,
                i % 17 == 0
            ),
        ];
        for l in lines {
            f.write_all(l.as_bytes())?;
            f.write_all(b"\n")?;
            written += l.len() as u64 + 1;
        }
        i += 1;
    }
    f.flush()?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).ok_or_else(|| {
        anyhow::anyhow!("usage: bench_sessions DATA_DIR [SESSIONS] [TRANSCRIPT_MB] [ZIP_MB] [ITER]")
    })?;
    let arg = |i: usize, d: u64| -> anyhow::Result<u64> {
        Ok(args.get(i).map(|s| s.parse()).transpose()?.unwrap_or(d))
    };
    let (sessions, transcript_mb, zip_mb, n) = (
        arg(2, 100_000)?,
        arg(3, 50)?,
        arg(4, 1024)?,
        arg(5, 60)? as usize,
    );
    std::fs::create_dir_all(dir)?;
    let mut config = Config::from_env().map_err(|e| anyhow::anyhow!("{e}"))?;
    config.data_dir = dir.into();
    config.session_data_dir = config.data_dir.join("user_sessions");
    let root = config.session_data_dir.clone();
    let state = AppState::open(config)?;
    let conn = state.db.connect()?;
    generate_summaries(&conn, sessions as i64)?;
    let admin = match glassbox::repo::users::by_email(&conn, "bench-admin@example.com")? {
        Some(u) => u,
        None => glassbox::accounts::create_user(
            &conn,
            glassbox::accounts::CreateUser {
                email: "bench-admin@example.com".into(),
                name: None,
                password: None,
                role: Role::Admin,
            },
        )?,
    };
    let token = glassbox::accounts::issue_token(
        &conn,
        state.auth.secret(),
        &admin,
        "bench",
        "pat",
        chrono::Duration::days(1),
        None,
    )?
    .token;
    std::fs::create_dir_all(root.join("bench"))?;
    write_transcript(&root.join("bench/big.jsonl"), transcript_mb)?;
    // The ZIP user's directory: copies of one 32 MB transcript up to ZIP_MB.
    let zip_dir = root.join(&admin.id);
    std::fs::create_dir_all(&zip_dir)?;
    let piece = zip_dir.join("part-000.jsonl");
    write_transcript(&piece, zip_mb.min(32))?;
    let piece_mb = std::fs::metadata(&piece)?.len() >> 20;
    for k in 1..zip_mb.div_ceil(piece_mb.max(1)) {
        let p = zip_dir.join(format!("part-{k:03}.jsonl"));
        if !p.exists() {
            std::fs::copy(&piece, p)?;
        }
    }
    drop(conn);
    let (base, _server) = glassbox::app::serve_on_loopback(&state).await?;
    let http = reqwest::Client::new();
    println!("sessions bench: {sessions} sessions, {n} requests per figure, sequential");
    println!(
        "{:<44} {:>9} {:>9}   target p95",
        "request", "p50 ms", "p95 ms"
    );
    for (name, path, target) in [
        (
            "list (7 d, started_at:desc)",
            "/api/admin/sessions/list?since_minutes=10080",
            50.0,
        ),
        (
            "list (7 d, sort tool_errors)",
            "/api/admin/sessions/list?since_minutes=10080&sort=tool_errors:desc",
            50.0,
        ),
        (
            "list (30 d, finding_type=loop)",
            "/api/admin/sessions/list?since_minutes=43200&finding_type=loop",
            50.0,
        ),
        (
            "kpis (7 d, + previous window)",
            "/api/admin/sessions/kpis?since_minutes=10080",
            50.0,
        ),
        (
            "facets (7 d)",
            "/api/admin/sessions/facets?since_minutes=10080",
            50.0,
        ),
        (
            "heatmap (30 d)",
            "/api/admin/sessions/heatmap?since_minutes=43200",
            250.0,
        ),
    ] {
        let t = time_gets(&http, &format!("{base}{path}"), &token, n).await?;
        println!(
            "{name:<44} {:>9.1} {:>9.1}   < {target}",
            pct(&t, 0.5),
            pct(&t, 0.95)
        );
    }
    let size = std::fs::metadata(root.join("bench/big.jsonl"))?.len();
    let first = format!(
        "{base}/api/admin/sessions/bench/big.jsonl/transcript?offset=0&limit=50&max_text=2000&marks=false"
    );
    let (mut ttfb, mut screen) = (Vec::new(), Vec::new());
    for i in 0..n.min(30) + 2 {
        let t = Instant::now();
        let resp = http.get(&first).bearer_auth(&token).send().await?;
        let a = t.elapsed().as_secs_f64() * 1000.0;
        let _ = resp.bytes().await?;
        let b = t.elapsed().as_secs_f64() * 1000.0;
        if i >= 2 {
            ttfb.push(a);
            screen.push(b);
        }
    }
    ttfb.sort_by(|a, b| a.total_cmp(b));
    screen.sort_by(|a, b| a.total_cmp(b));
    println!(
        "transcript of {} MB, first page: TTFB p50 {:.1} / p95 {:.1} ms, first screen p95 {:.1} ms (target < 300)",
        size >> 20,
        pct(&ttfb, 0.5),
        pct(&ttfb, 0.95),
        pct(&screen, 0.95)
    );
    // Reset the peak (Linux: clear_refs 5) so it measures the ZIP alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let marks = time_gets(
        &http,
        &format!(
            "{base}/api/admin/sessions/bench/big.jsonl/transcript?offset=0&limit=1&marks=true"
        ),
        &token,
        n.min(10),
    )
    .await?;
    println!(
        "transcript marks (error and finding lines; parsed, the file not ingested): p95 {:.1} ms",
        pct(&marks, 0.95)
    );
    let rss0 = status_kb("VmRSS:");
    let t = Instant::now();
    let mut resp = http
        .get(format!(
            "{base}/api/admin/users/{}/sessions/download-all",
            admin.id
        ))
        .bearer_auth(&token)
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "download-all: {}",
        resp.status()
    );
    let mut zipped = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        zipped += chunk.len() as u64;
    }
    let hwm = status_kb("VmHWM:");
    println!(
        "ZIP of {} MB of transcripts: {} KB sent in {:.1} s; peak RSS {} MB, {} MB over the {} MB before it (target growth < 100 MB)",
        zip_mb,
        zipped >> 10,
        t.elapsed().as_secs_f64(),
        hwm >> 10,
        hwm.saturating_sub(rss0) >> 10,
        rss0 >> 10
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let audit: (Option<String>, Option<String>) = state.db.connect()?.query_row(
        "SELECT result, CAST(params AS VARCHAR) FROM audit_log WHERE action = 'session_bulk_download'
         ORDER BY timestamp DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    println!("ZIP audit row: {audit:?}");
    Ok(())
}
