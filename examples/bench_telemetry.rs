//! Telemetry latencies and export throughput (run by `make bench` on a
//! `glassbox synth --usage-events N` data dir): p50/p95 of KPIs, facets and
//! each group-by over real HTTP for the default 7-day window and 30 days;
//! then rows/s of each export format and the process's memory growth over
//! its idle baseline (run with `GLASSBOX_DUCKDB_MEMORY_LIMIT=256MB` for the
//! SPEC §10 figure). Prints figures; never asserts on time.
//!
//! Usage: bench_telemetry DATA_DIR [ITERATIONS]
//! `BENCH_ONLY=export` runs the exports only, `BENCH_ONLY=latency` the rest;
//! `BENCH_FORMATS=csv,parquet` picks the export formats.

use std::time::Instant;

use glassbox::{AppState, Config};
use serde_json::{json, Value};

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The process's resident and peak resident memory in MB (Linux).
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The CPU time the process has used, user + system, in seconds (Linux):
/// on a shared machine the wall time depends on the other processes, the
/// CPU time per row much less.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses: utime and
    // stime are the 12th and 13th of them, in clock ticks (100 a second).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
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

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or_else(|| anyhow::anyhow!("usage: bench_telemetry DATA_DIR [ITERATIONS]"))?;
    let n: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(30);
    let mut config = Config::from_env().map_err(|e| anyhow::anyhow!("{e}"))?;
    config.data_dir = dir.into();
    config.session_data_dir = config.data_dir.join("user_sessions");
    let state = AppState::open(config)?;
    let (base, _server) = glassbox::app::serve_on_loopback(&state).await?;
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{base}/auth/token"))
        .json(&json!({"email": glassbox::synth::DEMO_ADMIN_EMAIL, "password": glassbox::synth::DEMO_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no token: {token}"))?
        .to_string();
    let events: i64 =
        state
            .db
            .connect()?
            .query_row("SELECT count(*) FROM usage_events", [], |r| r.get(0))?;
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    println!("telemetry bench: {events} events, {n} requests per figure, sequential");
    if only != "export" {
        latencies(&http, &base, &token, n).await?;
    }
    if only != "latency" {
        exports(&state, &http, &base, &token).await?;
    }
    Ok(())
}

/// p50/p95 of each fragment over 7 and 30 days.
async fn latencies(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    n: usize,
) -> anyhow::Result<()> {
    println!(
        "{:<44} {:>9} {:>9}   target p95",
        "fragment", "p50 ms", "p95 ms"
    );
    for (window, q, target) in [
        ("7d", "since_minutes=10080", 50.0),
        ("30d", "since_minutes=43200", 250.0),
    ] {
        let mut paths = vec![
            ("kpis (+ previous window)".to_string(), format!("kpis?{q}")),
            ("facets".to_string(), format!("facets?{q}")),
            (
                "raw events, newest 100".to_string(),
                format!("query?{q}&limit=100"),
            ),
        ];
        for by in [
            "day",
            "username",
            "tool_name",
            "source",
            "ref_id",
            "model",
            "session_id",
        ] {
            paths.push((format!("group by {by}"), format!("query?{q}&group_by={by}")));
        }
        for (name, path) in paths {
            let url = format!("{base}/api/admin/telemetry/{path}");
            let times = time_gets(http, &url, token, n).await?;
            // SPEC §11: a session group-by aims at < 250 ms on 7 days, and
            // has no target on 30.
            let target = match (name.ends_with("session_id"), window) {
                (false, _) => format!("< {target:.0}"),
                (true, "7d") => "< 250".to_string(),
                (true, _) => "(none)".to_string(),
            };
            println!(
                "{:<44} {:>9.1} {:>9.1}   {target}",
                format!("{window} {name}"),
                pct(&times, 0.5),
                pct(&times, 0.95)
            );
        }
    }
    Ok(())
}

/// Rows/s of each export format and the memory growth over the idle RSS.
async fn exports(
    state: &AppState,
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> anyhow::Result<()> {
    let (idle, _) = rss_mb();
    // Six of the 30 days: ~10 M rows at full scale (issue 10's figure).
    println!("export (6 days, every row of the window); idle RSS {idle:.0} MB");
    let formats = std::env::var("BENCH_FORMATS").unwrap_or_else(|_| "csv,ndjson,parquet".into());
    for format in formats.split(',') {
        // Each format's own peak: "5" resets VmHWM to the current RSS (Linux).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let (t, cpu) = (Instant::now(), cpu_secs());
        let mut resp = http
            .get(format!(
                "{base}/api/admin/telemetry/export?format={format}&since_minutes=8640"
            ))
            .bearer_auth(token)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "export {format}: {}",
            resp.status()
        );
        let mut bytes = 0u64;
        while let Some(chunk) = resp.chunk().await? {
            bytes += chunk.len() as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu_secs() - cpu;
        let rows: i64 = state.db.connect()?.query_row(
            "SELECT (params->>'row_count')::BIGINT FROM audit_log WHERE action = 'usage.export'
             ORDER BY timestamp DESC LIMIT 1",
            [],
            |r| r.get(0),
        )?;
        let (_, peak) = rss_mb();
        println!(
            "export {format:<8} {rows} rows, {:.0} MB in {secs:.2} s = {:.0} rows/s (target >= 1 M), CPU {cpu:.1} s = {:.2} µs/row; peak RSS {peak:.0} MB, growth {:.0} MB (target < 400)",
            bytes as f64 / 1e6,
            rows as f64 / secs,
            cpu * 1e6 / rows as f64,
            peak - idle
        );
    }
    Ok(())
}
