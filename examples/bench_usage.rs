//! Usage API figures (run by `make bench` on a `glassbox synth --app-events N`
//! data dir): intake events/s and request p50/p99 under a loopback load of
//! single events and of batches, the writer keeping up, and the summary's
//! p50/p95 over 30 days.
//!
//! Usage: bench_usage DATA_DIR [ITERATIONS] [INTAKE_EVENTS] [CLIENTS]

use std::sync::Arc;
use std::time::{Duration, Instant};

use glassbox::{AppState, Config};
use serde_json::{json, Value};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `clients` concurrent loops posting `requests` bodies in all to `path`;
/// returns each accepted request's time in ms (sorted), the wall time and
/// how many 503s (queue full) were answered: a client waits the
/// `Retry-After` it is given and sends again, as a real one would.
///
/// Each client is one keep-alive HTTP/1.1 connection writing a request it
/// serialised once (headers, bearer token and body) and reading the answer's
/// status line, headers and `Content-Length` body, as wrk or h2load do. The
/// server parses, authenticates, validates and queues every request as it
/// would from any producer; only the client's own per-request work (URL
/// parsing, header maps, a connection pool) is left out, which on two shared
/// cores took about a third of the CPU when the client was reqwest.
async fn load(
    base: &str,
    path: &str,
    token: &str,
    body: Value,
    requests: usize,
    clients: usize,
) -> anyhow::Result<(Vec<f64>, Duration, usize)> {
    let addr = base
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("{base}: not an http:// URL"))?
        .to_string();
    let body = serde_json::to_vec(&body)?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let request = Arc::new(request);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (addr, request, path) = (addr.clone(), request.clone(), path.to_string());
        let mine = requests / clients + usize::from(c < requests % clients);
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await?;
            let mut times = Vec::with_capacity(mine);
            let mut refused = 0usize;
            let mut sent = 0;
            while sent < mine {
                let t = Instant::now();
                let (status, retry_after) = conn.send(&request).await?;
                if status == 503 {
                    refused += 1;
                    tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1))).await;
                    continue;
                }
                anyhow::ensure!(status == 202, "{path}: {status}");
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                sent += 1;
            }
            Ok::<_, anyhow::Error>((times, refused))
        }));
    }
    let mut all = Vec::with_capacity(requests);
    let mut refused = 0;
    for t in tasks {
        let (times, r) = t.await??;
        all.extend(times);
        refused += r;
    }
    let wall = started.elapsed();
    all.sort_by(|a, b| a.total_cmp(b));
    Ok((all, wall, refused))
}

/// One keep-alive HTTP/1.1 connection of the load client.
struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Writes the request and reads its whole answer: the status and the
    /// `Retry-After` seconds, if any.
    async fn send(&mut self, request: &[u8]) -> anyhow::Result<(u16, Option<u64>)> {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(request).await?;
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.read_more().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])?;
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("not an HTTP answer: {head:?}"))?;
        let mut length = None;
        let mut retry_after = None;
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("retry-after") {
                retry_after = value.trim().parse::<u64>().ok();
            }
        }
        let length =
            length.ok_or_else(|| anyhow::anyhow!("an answer without Content-Length: {head:?}"))?;
        while self.buf.len() < head_end + length {
            self.read_more().await?;
        }
        anyhow::ensure!(
            self.buf.len() == head_end + length,
            "more bytes than the answer"
        );
        Ok((status, retry_after))
    }

    async fn read_more(&mut self) -> anyhow::Result<()> {
        use tokio::io::AsyncReadExt;
        let n = self.stream.read_buf(&mut self.buf).await?;
        anyhow::ensure!(n > 0, "the server closed the connection");
        Ok(())
    }
}

async fn drained(state: &AppState) -> Duration {
    let t = Instant::now();
    while state.usage.depth() > 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    t.elapsed()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).ok_or_else(|| {
        anyhow::anyhow!("usage: bench_usage DATA_DIR [ITERATIONS] [INTAKE_EVENTS] [CLIENTS]")
    })?;
    let n: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(60);
    let events: usize = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let clients: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(16);
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
    let stored: i64 = state
        .db
        .run(|c| glassbox::repo::app_events::count(c))
        .await?;

    // Summary over the stored events, before intake adds any.
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 2 {
        let t = Instant::now();
        let resp = http
            .get(format!("{base}/api/v1/usage/summary?days=30"))
            .bearer_auth(&token)
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "summary: {}", resp.status());
        let _ = resp.bytes().await?;
        if i >= 2 {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "usage summary, 30 days over {stored} app_events: p50 {:.1} ms, p95 {:.1} ms (target p95 < 50 ms)",
        pct(&times, 0.5),
        pct(&times, 0.95)
    );

    let one = json!({"event_type": "sql_execution", "metadata": {"rows": "42", "table": "orders"}, "source": "bench"});
    let (t, wall, refused) = load(
        &base,
        "/api/v1/usage/events",
        &token,
        one.clone(),
        events,
        clients,
    )
    .await?;
    let drain = drained(&state).await;
    println!(
        "intake, single events, {clients} clients: {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms (targets >= 20000/s, p99 < 5 ms); {refused} answered 503 and sent again; writer caught up {:.0} ms after the last answer",
        events as f64 / wall.as_secs_f64(),
        pct(&t, 0.5),
        pct(&t, 0.99),
        drain.as_secs_f64() * 1000.0
    );

    let per = 100;
    let batch = json!({"events": vec![one; per]});
    let requests = (events / per).max(1);
    let (t, wall, refused) = load(
        &base,
        "/api/v1/usage/events/batch",
        &token,
        batch,
        requests,
        clients,
    )
    .await?;
    let drain = drained(&state).await;
    println!(
        "intake, batches of {per}, {clients} clients: {:.0} events/s, request p50 {:.2} ms, p99 {:.2} ms; {refused} answered 503 (queue full) and sent again; writer caught up {:.0} ms after the last answer",
        (requests * per) as f64 / wall.as_secs_f64(),
        pct(&t, 0.5),
        pct(&t, 0.99),
        drain.as_secs_f64() * 1000.0
    );
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    if let Some(line) = metrics
        .lines()
        .find(|l| l.starts_with("usage_writer_batch_seconds_count"))
    {
        let batches: f64 = line
            .rsplit(' ')
            .next()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0.0);
        let written = (events + requests * per) as f64;
        println!(
            "writer: {batches:.0} batches for {written:.0} events ({:.0} events per batch on average)",
            written / batches.max(1.0)
        );
    }
    state.shutdown.cancel();
    Ok(())
}
