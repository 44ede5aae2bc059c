//! `glassbox push-sessions`: uploads the top-level transcripts of each project
//! folder under `~/.claude/projects` that are new or changed since the last
//! push to this server. What was sent is remembered after each file, so an
//! interrupted push resumes where it stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::remote::{self, Remote};

#[derive(Serialize, Deserialize, Default, Clone, Copy, PartialEq, Eq, Debug)]
struct Sent {
    size: u64,
    mtime_ns: i64,
}

/// server URL → transcript path → what was sent.
#[derive(Serialize, Deserialize, Default)]
struct PushState {
    servers: BTreeMap<String, BTreeMap<String, Sent>>,
}

fn state_path() -> PathBuf {
    remote::config_dir().join("push-state.json")
}

fn load_state() -> PushState {
    std::fs::read_to_string(state_path())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn save_state(state: &PushState) -> anyhow::Result<()> {
    let path = state_path();
    std::fs::create_dir_all(path.parent().expect("state path has a parent"))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)?;
    std::fs::rename(&tmp, &path).with_context(|| format!("while writing {}", path.display()))?;
    Ok(())
}

/// (path, size, mtime) of `dir/*/*.jsonl`, sorted.
fn transcripts(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Sent)>> {
    let mut out = Vec::new();
    for project in std::fs::read_dir(dir)
        .with_context(|| format!("--claude-dir: cannot read {}", dir.display()))?
    {
        let project = project?.path();
        if !project.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&project)? {
            let p = f?.path();
            let is_jsonl = p.extension().is_some_and(|e| e == "jsonl");
            let meta = std::fs::symlink_metadata(&p)?;
            if !is_jsonl || !meta.is_file() {
                continue;
            }
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            out.push((
                p,
                Sent {
                    size: meta.len(),
                    mtime_ns,
                },
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

pub fn run(claude_dir: Option<PathBuf>, dry_run: bool) -> anyhow::Result<()> {
    let dir = match claude_dir {
        Some(d) => d,
        None => PathBuf::from(
            std::env::var_os("HOME")
                .ok_or_else(|| anyhow::anyhow!("HOME is not set; pass --claude-dir"))?,
        )
        .join(".claude/projects"),
    };
    let remote = Remote::from_env()?;
    let mut state = load_state();
    let all = transcripts(&dir)?;
    let sent = state
        .servers
        .entry(remote.base.clone())
        .or_default()
        .clone();
    let todo: Vec<&(PathBuf, Sent)> = all
        .iter()
        .filter(|(p, now)| {
            sent.get(&p.to_string_lossy().to_string())
                .is_none_or(|s| s != now)
        })
        .collect();
    let total_bytes: u64 = todo.iter().map(|(_, s)| s.size).sum();
    println!(
        "{} transcripts in {}, {} new or changed ({:.1} MB) for {}",
        all.len(),
        dir.display(),
        todo.len(),
        total_bytes as f64 / 1e6,
        remote.base
    );
    if dry_run || todo.is_empty() {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut failed = 0;
    for (i, (path, meta)) in todo.iter().enumerate() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        print!(
            "[{}/{}] {} ({:.1} MB) … ",
            i + 1,
            todo.len(),
            name,
            meta.size as f64 / 1e6
        );
        let result: anyhow::Result<()> = rt.block_on(async {
            let file = tokio::fs::File::open(path).await?;
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
            let resp = remote
                .client
                .post(remote.url(&format!(
                    "/api/upload/sessions?filename={}",
                    form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
                )))
                .bearer_auth(&remote.token)
                .header(reqwest::header::CONTENT_LENGTH, meta.size)
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let why = remote::detail(resp).await;
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN
            {
                anyhow::bail!("STOP {status}: {why}");
            }
            anyhow::bail!("{status}: {why}")
        });
        match result {
            Ok(()) => {
                println!("ok");
                state
                    .servers
                    .entry(remote.base.clone())
                    .or_default()
                    .insert(path.to_string_lossy().to_string(), *meta);
                save_state(&state)?;
            }
            Err(e) if e.to_string().starts_with("STOP") => {
                println!("refused");
                anyhow::bail!(
                    "the server refused the token ({}); nothing more was sent",
                    e.to_string().trim_start_matches("STOP ")
                );
            }
            Err(e) => {
                println!("failed: {e:#}");
                failed += 1;
            }
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} transcripts failed; run push-sessions again to retry them"
    );
    Ok(())
}
