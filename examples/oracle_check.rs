//! The oracle check (run by `scripts/oracle-check`): ingest a generated corpus
//! the way production gets it — half uploaded over HTTP with each user's own
//! token, half copied by hand under the email local-part — then compare every
//! stored figure with the generator's MANIFEST.json, and, when given,
//! `usage_tokens_daily` per day with ccusage's daily JSON. Exit 1 on any
//! difference.
//!
//! Usage: oracle_check CORPUS_DIR [CCUSAGE_DAILY_JSON]
//!        oracle_check --compare-data-dir DATA_DIR CORPUS_DIR
//! The second form only compares a data dir that `glassbox ingest` filled from
//! the corpus copied under `user_sessions/<username>/` (the durability check).

#[path = "../tests/api/manifest_check.rs"]
mod manifest_check;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use glassbox::{AppState, Config};
use serde_json::{json, Value};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--compare-data-dir") {
        let (data, corpus) = (PathBuf::from(&args[2]), PathBuf::from(&args[3]));
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(corpus.join("MANIFEST.json"))?)?;
        let db = glassbox::db::Db::open(
            &data.join("glassbox.duckdb"),
            &glassbox::db::DbOptions::default(),
        )?;
        let failures = manifest_check::compare(&db.connect()?, &manifest, |f| {
            f["path"].as_str().unwrap().to_string()
        });
        return report(failures);
    }
    let corpus = PathBuf::from(
        args.get(1)
            .ok_or_else(|| anyhow::anyhow!("usage: oracle_check CORPUS_DIR [CCUSAGE_JSON]"))?,
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("MANIFEST.json"))?)?;
    let data = tempfile::tempdir()?;
    let mut config = Config::for_data_dir(data.path());
    config.admin_email = Some("oracle-admin@example.org".into());
    config.admin_password = Some("oracle-password".into());
    let state = AppState::open(config)?;
    let (base, _server) = glassbox::app::serve_on_loopback(&state).await?;
    let http = reqwest::Client::new();
    let admin_token = http
        .post(format!("{base}/auth/token"))
        .json(&json!({"email": "oracle-admin@example.org", "password": "oracle-password"}))
        .send()
        .await?
        .json::<Value>()
        .await?["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // One user per corpus user, each with a token of their own.
    let mut users: HashMap<String, (String, String)> = HashMap::new();
    for f in manifest["files"].as_array().unwrap() {
        let u = f["username"].as_str().unwrap().to_string();
        if users.contains_key(&u) {
            continue;
        }
        let created: Value = http
            .post(format!("{base}/api/admin/users"))
            .bearer_auth(&admin_token)
            .json(&json!({"email": format!("{u}@example.com"), "role": "analyst"}))
            .send()
            .await?
            .json()
            .await?;
        let id = created["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("user create failed: {created}"))?
            .to_string();
        let tok: Value = http
            .post(format!("{base}/api/admin/users/{id}/tokens"))
            .bearer_auth(&admin_token)
            .json(&json!({"name": "oracle"}))
            .send()
            .await?
            .json()
            .await?;
        users.insert(u, (id, tok["token"].as_str().unwrap().to_string()));
    }
    // Half uploaded, half copied by hand under the local-part.
    let mut expected_file: HashMap<String, String> = HashMap::new();
    let (mut uploaded, mut copied) = (0, 0);
    for (i, f) in manifest["files"].as_array().unwrap().iter().enumerate() {
        let path = f["path"].as_str().unwrap();
        let user = f["username"].as_str().unwrap();
        let name = Path::new(path)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let (id, token) = &users[user];
        if i % 2 == 0 {
            let resp = http
                .post(format!("{base}/api/upload/sessions?filename={name}"))
                .bearer_auth(token)
                .body(std::fs::read(corpus.join(path))?)
                .send()
                .await?;
            anyhow::ensure!(
                resp.status() == 201,
                "upload of {path}: {}",
                resp.text().await?
            );
            expected_file.insert(path.to_string(), format!("{id}/{name}"));
            uploaded += 1;
        } else {
            let dir = state.config.session_data_dir.join(user);
            std::fs::create_dir_all(&dir)?;
            std::fs::copy(corpus.join(path), dir.join(&name))?;
            expected_file.insert(path.to_string(), format!("{user}/{name}"));
            copied += 1;
        }
    }
    for p in ["usage", "failure_scan"] {
        let resp = http
            .post(format!(
                "{base}/api/admin/run-session-processor?processor={p}"
            ))
            .bearer_auth(&admin_token)
            .send()
            .await?;
        let body: Value = resp.json().await?;
        println!("processor {p}: {}", body["report"]);
    }
    let conn = state.db.connect()?;
    let mut failures = manifest_check::compare(&conn, &manifest, |f| {
        expected_file[f["path"].as_str().unwrap()].clone()
    });
    let files = manifest["files"].as_array().unwrap().len();
    println!(
        "oracle: {files} files ({uploaded} uploaded, {copied} copied by hand), {} users",
        users.len()
    );

    if let Some(cc) = args.get(2) {
        let cc: Value = serde_json::from_str(&std::fs::read_to_string(cc)?)?;
        let mut stmt = conn.prepare(
            "SELECT strftime(day, '%Y-%m-%d'), sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens), sum(cache_read_tokens)
             FROM usage_tokens_daily GROUP BY 1",
        )?;
        let ours: BTreeMap<String, [i64; 4]> = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
            })?
            .collect::<Result<_, _>>()?;
        let days = cc["daily"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("ccusage JSON has no daily array"))?;
        let mut compared = 0;
        for d in days {
            let day = d["period"]
                .as_str()
                .or(d["date"].as_str())
                .unwrap_or_default()
                .to_string();
            let theirs = [
                "inputTokens",
                "outputTokens",
                "cacheCreationTokens",
                "cacheReadTokens",
            ]
            .map(|k| d[k].as_i64().unwrap_or(-1));
            if ours.get(&day) != Some(&theirs) {
                failures.push(format!(
                    "ccusage {day}: glassbox {:?}, ccusage {theirs:?}",
                    ours.get(&day)
                ));
            }
            compared += 1;
        }
        if compared != ours.len() {
            failures.push(format!(
                "ccusage reports {compared} days, glassbox {}",
                ours.len()
            ));
        }
        println!("ccusage: {compared} days compared");
    }
    report(failures)
}

fn report(failures: Vec<String>) -> anyhow::Result<()> {
    if failures.is_empty() {
        println!("oracle: zero differences");
        Ok(())
    } else {
        for f in failures.iter().take(50) {
            eprintln!("{f}");
        }
        anyhow::bail!("{} differences from the oracle", failures.len())
    }
}
