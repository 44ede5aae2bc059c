//! The one HTTP client of the admin commands: GET a path with a query,
//! answer JSON, or a one-line failure in Agnes's wording.

use std::process::ExitCode;

use serde_json::Value;

use crate::cli::remote::{self, Remote};

/// Why a command stopped; `report` prints it and gives the exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Nothing to talk to (no server or token, a bad config file, a
    /// redirect): exit 2, with a hint.
    Usage(String),
    /// The server said no or failed, or could not be reached: exit 1.
    Failed(String),
}

impl Failure {
    pub(crate) fn report(self) -> ExitCode {
        match self {
            Failure::Usage(msg) => {
                eprintln!("{msg}");
                ExitCode::from(2)
            }
            Failure::Failed(msg) => {
                eprintln!("{msg}");
                ExitCode::from(1)
            }
        }
    }
}

pub(crate) struct Client {
    remote: Remote,
}

impl Client {
    pub(crate) fn from_env() -> Result<Client, Failure> {
        Remote::from_env()
            .map(|remote| Client { remote })
            .map_err(|e| Failure::Usage(format!("[err] {e:#}")))
    }

    /// `GET path?query` → the JSON answer. `ctx` names the command in
    /// messages (`activity health`). Empty query values are left out.
    pub(crate) async fn get(
        &self,
        ctx: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, Failure> {
        let resp = self.send(ctx, reqwest::Method::GET, path, query).await?;
        resp.json::<Value>().await.map_err(|e| {
            Failure::Failed(format!(
                "[err] {ctx}: the server's answer is not JSON ({e})"
            ))
        })
    }

    /// `METHOD path?query` → the successful response, body unread (an
    /// export streams it); anything else → a failure in Agnes's wording.
    pub(crate) async fn send(
        &self,
        ctx: &str,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, Failure> {
        self.send_body(ctx, method, path, query, None).await
    }

    /// `POST path` with a JSON body → the JSON answer (Ask).
    pub(crate) async fn post_json(
        &self,
        ctx: &str,
        path: &str,
        body: &Value,
    ) -> Result<Value, Failure> {
        let resp = self
            .send_body(ctx, reqwest::Method::POST, path, &[], Some(body))
            .await?;
        resp.json::<Value>().await.map_err(|e| {
            Failure::Failed(format!(
                "[err] {ctx}: the server's answer is not JSON ({e})"
            ))
        })
    }

    /// [`Client::send`] with an optional JSON body.
    pub(crate) async fn send_body(
        &self,
        ctx: &str,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<reqwest::Response, Failure> {
        let mut url = self.remote.url(path);
        let mut qs = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query.iter().filter(|(_, v)| !v.is_empty()) {
            qs.append_pair(k, v);
        }
        let qs = qs.finish();
        if !qs.is_empty() {
            url.push('?');
            url.push_str(&qs);
        }
        let mut req = self.remote.client.request(method, &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .bearer_auth(&self.remote.token)
            .send()
            .await
            .map_err(|e| {
                Failure::Failed(format!(
                    "[err] cannot reach {} ({}): is GLASSBOX_URL right and the server running?",
                    self.remote.base,
                    root_cause(&e)
                ))
            })?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(Failure::Usage(format!(
                "[err] server moved ({status}): GLASSBOX_URL should be the server's address, like https://glassbox.example.com"
            )));
        }
        if status.is_success() {
            return Ok(resp);
        }
        let detail = remote::detail(resp).await;
        Err(Failure::Failed(match status.as_u16() {
            401 => "[err] authentication required — create a token on your /me page and set GLASSBOX_TOKEN".to_string(),
            403 => format!("[err] admin only — {}", one_line(&detail)),
            500.. => format!("[err] server error on {ctx}: {}", one_line(&detail)),
            _ => format!("[err] {ctx}: {}", one_line(&detail)),
        }))
    }
}

impl Client {
    /// `GET path` → its body written to `out` as it arrives; the bytes
    /// written. Failures as [`Client::get`]'s.
    pub(crate) async fn download(
        &self,
        ctx: &str,
        path: &str,
        out: &std::path::Path,
    ) -> Result<u64, Failure> {
        use tokio::io::AsyncWriteExt;
        let mut resp = self
            .remote
            .client
            .get(self.remote.url(path))
            .bearer_auth(&self.remote.token)
            .send()
            .await
            .map_err(|e| {
                Failure::Failed(format!(
                    "[err] cannot reach {} ({}): is GLASSBOX_URL right and the server running?",
                    self.remote.base,
                    root_cause(&e)
                ))
            })?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(Failure::Usage(format!("[err] server moved ({status})")));
        }
        if !status.is_success() {
            let detail = remote::detail(resp).await;
            return Err(Failure::Failed(match status.as_u16() {
                401 => "[err] authentication required — create a token on your /me page and set GLASSBOX_TOKEN".to_string(),
                403 => format!("[err] admin only — {}", one_line(&detail)),
                _ => format!("[err] {ctx}: {}", one_line(&detail)),
            }));
        }
        let failed = |e: &dyn std::fmt::Display| Failure::Failed(format!("[err] {ctx}: {e}"));
        let mut file = tokio::fs::File::create(out).await.map_err(|e| failed(&e))?;
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|e| failed(&e))? {
            file.write_all(&chunk).await.map_err(|e| failed(&e))?;
            n += chunk.len() as u64;
        }
        file.flush().await.map_err(|e| failed(&e))?;
        Ok(n)
    }
}

/// The innermost error: reqwest's own top line says only "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Newlines and runs of spaces folded, so every failure is one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `--json`: the server's JSON, pretty-printed, as scripts expect.
pub(crate) fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn details_become_one_line() {
        assert_eq!(super::one_line(" a\n  b\tc "), "a b c");
    }
}
