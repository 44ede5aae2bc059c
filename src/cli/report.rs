//! `glassbox report`: send a feedback report with the end of the current
//! session. It shows exactly what will be sent and asks first (seeds/004
//! §7.4: the preview is a hard requirement); `--yes` skips the question,
//! and without a terminal to ask on and without `--yes` nothing is sent.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Map, Value};

use super::remote::Remote;
use crate::feedback::{excerpt, MAX_EXCERPT_BYTES, MAX_EXCERPT_LINES, MAX_MESSAGE_CHARS};

#[derive(clap::Args)]
pub struct ReportArgs {
    /// What went wrong, in your words.
    #[arg(long)]
    message: String,
    /// The transcript to take the excerpt from (default: the newest of the
    /// current project under ~/.claude/projects).
    #[arg(long)]
    session: Option<PathBuf>,
    /// Send without asking (after checking the preview yourself).
    #[arg(long)]
    yes: bool,
    /// Print the server's answer as JSON.
    #[arg(long)]
    json: bool,
}

/// Claude Code's folder for a project: its path with every character other
/// than ASCII letters and digits replaced by `-`.
pub fn project_dir_name(cwd: &Path) -> String {
    cwd.to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The newest `.jsonl` in `dir`, by modification time.
fn newest_transcript(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, p)| p)
}

/// The last 50 lines of a transcript, fewer if they exceed 2 MiB.
pub fn tail_excerpt(text: &str) -> String {
    let lines: Vec<&str> = excerpt::lines(text).collect();
    let mut tail: Vec<&str> = lines[lines.len().saturating_sub(MAX_EXCERPT_LINES)..].to_vec();
    while !tail.is_empty() && tail.iter().map(|l| l.len() + 1).sum::<usize>() > MAX_EXCERPT_BYTES {
        tail.remove(0);
    }
    tail.iter().map(|l| format!("{l}\n")).collect()
}

/// The request body: message, excerpt, file name, environment.
pub fn payload(message: &str, session: Option<(&Path, String)>) -> Value {
    let mut env = Map::new();
    env.insert("glassbox_version".into(), json!(env!("CARGO_PKG_VERSION")));
    env.insert(
        "os".into(),
        json!(format!(
            "{} {}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )),
    );
    let mut body = json!({ "message": message, "environment": {}, "ack_preview": true });
    if let Some((path, text)) = session {
        let ex = tail_excerpt(&text);
        if let Some(v) = excerpt::claude_code_version(&ex) {
            env.insert("claude_code_version".into(), json!(v));
        }
        body["session_file"] = json!(path.file_name().map(|n| n.to_string_lossy().into_owned()));
        body["session_excerpt"] = json!(ex);
    }
    body["environment"] = Value::Object(env);
    body
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub fn run(args: ReportArgs) -> ExitCode {
    let chars = args.message.trim().chars().count();
    if chars == 0 || args.message.chars().count() > MAX_MESSAGE_CHARS {
        return usage(&format!(
            "--message: say what went wrong in 1 to {MAX_MESSAGE_CHARS} characters"
        ));
    }
    let path = match &args.session {
        Some(p) => Some(p.clone()),
        None => std::env::var_os("HOME").and_then(|home| {
            let cwd = std::env::current_dir().ok()?;
            newest_transcript(
                &PathBuf::from(home)
                    .join(".claude/projects")
                    .join(project_dir_name(&cwd)),
            )
        }),
    };
    let session = match &path {
        Some(p) => match std::fs::read(p) {
            Ok(bytes) => Some((p.as_path(), String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) => return usage(&format!("--session: cannot read {}: {e}", p.display())),
        },
        None => None,
    };
    let body = payload(&args.message, session);
    let remote = match Remote::from_env() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    // The preview: exactly the body that will be sent.
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "This report will be sent to {} (POST /api/feedback):",
        remote.base
    );
    match &path {
        Some(p) => {
            let _ = writeln!(err, "session: {}", p.display());
        }
        None => {
            let _ = writeln!(
                err,
                "session: none found for this project (pass --session FILE)"
            );
        }
    }
    let _ = writeln!(
        err,
        "{}",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    );
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return usage(
                "no terminal to confirm on: nothing sent (check the preview, then pass --yes)",
            );
        }
        let _ = write!(err, "Send this report? [y/N] ");
        let _ = err.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            eprintln!("Nothing sent.");
            return ExitCode::from(1);
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let sent: anyhow::Result<Value> = rt.block_on(async {
        let resp = remote
            .client
            .post(remote.url("/api/feedback"))
            .bearer_auth(&remote.token)
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["detail"].as_str().map(String::from))
                .unwrap_or(text);
            anyhow::bail!("the server answered {status}: {detail}");
        }
        Ok(serde_json::from_str(&text)?)
    });
    match sent {
        Ok(v) if args.json => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(v) => {
            println!(
                "Sent: report {} ({} earlier report{} like it).",
                v["id"].as_str().unwrap_or("?"),
                v["duplicates"],
                if v["duplicates"] == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_folder_replaces_every_non_alphanumeric_character() {
        assert_eq!(
            project_dir_name(Path::new("/home/ann/my.project_x")),
            "-home-ann-my-project-x"
        );
    }

    #[test]
    fn the_excerpt_is_the_last_50_lines() {
        let text: String = (0..80).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        let ex = tail_excerpt(&text);
        assert_eq!(ex.lines().count(), 50);
        assert!(ex.starts_with("{\"n\":30}"));
    }
}
