//! The SQL guard's cost per statement (parse + walk + print back; target
//! < 1 ms), and Ask's end-to-end overhead beside a local stub of the Messages
//! API (run by `make bench`).
//!
//! Usage: bench_guard [ITERATIONS]

use std::time::Instant;

use glassbox::repo::query_source::TELEMETRY_RELATIONS;
use glassbox::{sqlguard, AppState, Config};
use serde_json::{json, Value};

const STATEMENTS: &[(&str, &str)] = &[
    ("simple", "SELECT tool_name, count(*) AS n FROM usage_events GROUP BY tool_name ORDER BY n DESC LIMIT 10"),
    ("window + qualify", "SELECT username, tool_name, count(*) AS n, rank() OVER (PARTITION BY username ORDER BY count(*) DESC) AS r FROM usage_events GROUP BY username, tool_name QUALIFY r <= 3"),
    ("CTEs + join", "WITH daily AS (SELECT day, sum(cost_usd) AS cost FROM usage_tokens_daily GROUP BY day), s AS (SELECT CAST(started_at AS DATE) AS day, count(*) AS sessions FROM usage_session_summary GROUP BY 1) SELECT d.day, d.cost, s.sessions, avg(d.cost) OVER (ORDER BY d.day ROWS 6 PRECEDING) AS avg7 FROM daily d LEFT JOIN s USING (day) ORDER BY d.day"),
    ("subqueries", "SELECT s.username, (SELECT count(*) FROM session_findings f WHERE f.username = s.username) AS findings FROM usage_session_summary s WHERE EXISTS (SELECT 1 FROM usage_events e WHERE e.session_file = s.session_file AND e.is_error) AND s.session_file IN (SELECT session_file FROM session_findings WHERE finding_type = 'loop')"),
    ("hostile: table function", "SELECT * FROM usage_events, LATERAL (SELECT * FROM read_csv('/etc/passwd'))"),
    ("hostile: other table", "WITH a AS (SELECT * FROM users), users AS (SELECT 1) SELECT * FROM a"),
];

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn bench_guard(n: usize) {
    println!("guard (parse + walk + print), {n} runs each:");
    let mut worst: f64 = 0.0;
    for (name, sql) in STATEMENTS {
        let mut times = Vec::with_capacity(n);
        for i in 0..n + 50 {
            let t = Instant::now();
            let r = sqlguard::check(sql, TELEMETRY_RELATIONS);
            let us = t.elapsed().as_secs_f64() * 1e6;
            std::hint::black_box(&r);
            if i >= 50 {
                times.push(us);
            }
        }
        times.sort_by(|a, b| a.total_cmp(b));
        worst = worst.max(pct(&times, 0.95));
        println!(
            "  {name:<24} p50 {:>7.1} us  p95 {:>7.1} us  ({} chars)",
            pct(&times, 0.5),
            pct(&times, 0.95),
            sql.len()
        );
    }
    println!(
        "guard: worst p95 {:.3} ms per statement (target < 1 ms)",
        worst / 1000.0
    );
}

/// A Messages API stand-in that answers at once with a fixed SQL.
async fn stub() -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/v1/messages",
        axum::routing::post(|| async {
            axum::Json(json!({
                "type": "message", "stop_reason": "tool_use",
                "content": [{"type": "tool_use", "id": "t", "name": "answer", "input": {
                    "sql": STATEMENTS[0].1, "rationale": "Top tools."}}]
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

async fn time_posts(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 3 {
        let t = Instant::now();
        let mut req = http.post(url).json(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await?;
        anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
        let _ = resp.bytes().await?;
        if i >= 3 {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times)
}

async fn bench_ask(n: usize) -> anyhow::Result<()> {
    let stub_url = stub().await?;
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_data_dir(dir.path());
    config.anthropic_api_key = Some("bench".into());
    config.anthropic_base_url = stub_url.clone();
    let state = AppState::open(config)?;
    let secret = state.auth.secret().to_vec();
    let token = state
        .db
        .run(move |c| {
            c.execute_batch(
                "INSERT INTO usage_events (id, session_id, session_file, username, event_type, tool_name, source, occurred_at, processor_version)
                 SELECT 'e' || i, 's' || (i % 50), 'u/' || (i % 50) || '.jsonl', 'user' || (i % 7) || '@example.com', 'tool_use',
                        'Tool' || (i % 20), 'builtin', TIMESTAMP '2026-11-01' + INTERVAL (i) SECOND, 1 FROM range(10000) t(i)",
            )?;
            let admin = glassbox::accounts::create_user(
                c,
                glassbox::accounts::CreateUser {
                    email: "bench@example.com".into(),
                    name: None,
                    password: Some("bench-password-1".into()),
                    role: glassbox::auth::Role::Admin,
                },
            )?;
            Ok(glassbox::accounts::issue_token(c, &secret, &admin, "bench", "pat", chrono::Duration::days(1), None)?.token)
        })
        .await?;
    let (base, _server) = glassbox::app::serve_on_loopback(&state).await?;
    let http = reqwest::Client::new();
    let direct = time_posts(
        &http,
        &format!("{stub_url}/v1/messages"),
        None,
        &json!({}),
        n,
    )
    .await?;
    let ask = time_posts(
        &http,
        &format!("{base}/api/admin/telemetry/ask"),
        Some(&token),
        &json!({"question": "Which tools are used most?"}),
        n,
    )
    .await?;
    println!("ask, {n} runs over 10 000 events (the stub answers at once):");
    println!(
        "  stub alone       p50 {:>6.2} ms  p95 {:>6.2} ms",
        pct(&direct, 0.5),
        pct(&direct, 0.95)
    );
    println!(
        "  ask end to end   p50 {:>6.2} ms  p95 {:>6.2} ms",
        pct(&ask, 0.5),
        pct(&ask, 0.95)
    );
    println!(
        "ask: overhead beside the stub p50 {:.2} ms (prompt schema, guard, run, audit)",
        pct(&ask, 0.5) - pct(&direct, 0.5)
    );
    state.shutdown.cancel();
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2000);
    bench_guard(n);
    bench_ask((n / 20).clamp(20, 200)).await
}
