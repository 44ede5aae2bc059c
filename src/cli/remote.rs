//! Talking to a running glassbox: where it is and which token to use.
//! `GLASSBOX_URL` + `GLASSBOX_TOKEN`, else `~/.config/glassbox/config.toml`
//! (`url = "…"`, `token = "…"`).

use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

pub struct Remote {
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
}

#[derive(Deserialize, Default)]
struct FileConfig {
    url: Option<String>,
    token: Option<String>,
}

pub fn config_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("glassbox")
}

impl Remote {
    pub fn from_env() -> anyhow::Result<Remote> {
        let path = config_dir().join("config.toml");
        let file: FileConfig = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("{} is not valid TOML", path.display()))?,
            Err(_) => FileConfig::default(),
        };
        let base = std::env::var("GLASSBOX_URL").ok().or(file.url).ok_or_else(|| {
            anyhow::anyhow!("GLASSBOX_URL: set it (e.g. https://glassbox.example.com) or put url = \"…\" in {}", path.display())
        })?;
        let token = std::env::var("GLASSBOX_TOKEN").ok().or(file.token).ok_or_else(|| {
            anyhow::anyhow!("GLASSBOX_TOKEN: create a token on your /me page and set it, or put token = \"…\" in {}", path.display())
        })?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("glassbox/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Remote {
            base: base.trim_end_matches('/').to_string(),
            token,
            client,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// The server's `{"detail"}`, or the body, or the status.
pub async fn detail(resp: reqwest::Response) -> String {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_string))
        .unwrap_or(if text.is_empty() {
            status.to_string()
        } else {
            text
        })
}
