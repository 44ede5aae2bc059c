//! The one call Ask makes: the Anthropic Messages API through reqwest (rustls).
//! The model is made to answer through a tool whose input schema is
//! `{sql, rationale}`, so its answer arrives as JSON; a plain-text JSON answer
//! (fenced or not) is accepted too, anything else is a bad answer.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

/// The JSON Ask asks for (Agnes's RESPONSE_SCHEMA).
pub fn response_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "sql": {"type": "string", "description": "one DuckDB SELECT statement"},
            "rationale": {"type": "string", "description": "one or two sentences on how the SQL answers the question"}
        },
        "required": ["sql", "rationale"]
    })
}

const TOOL: &str = "answer";
const API_VERSION: &str = "2023-06-01";
const MAX_TOKENS: u32 = 1024;

/// Where and how to call the model.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub base_url: String,
    pub api_key: String,
    pub model: String,
}

/// The model's proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub sql: String,
    pub rationale: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// Unreachable, timed out, overloaded, rate-limited or refusing our key (503).
    #[error("the Ask model is unavailable: {0}")]
    Unavailable(String),
    /// The model declined to answer (400).
    #[error("the model declined to answer: {0}")]
    Refused(String),
    /// It answered, but not with the JSON asked for (502).
    #[error("the model's answer was not the JSON asked for ({{sql, rationale}}): {0}")]
    BadAnswer(String),
    /// Any other failure of the call (502).
    #[error("LLM call failed: {0}")]
    Failed(String),
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("the HTTP client builds")
    })
}

/// Asks the model for SQL answering `question`.
pub async fn draft(cfg: &ModelConfig, system: &str, question: &str) -> Result<Draft, LlmError> {
    let url = format!("{}/v1/messages", cfg.base_url.trim_end_matches('/'));
    let body = json!({
        "model": cfg.model,
        "max_tokens": MAX_TOKENS,
        "system": system,
        "messages": [{
            "role": "user",
            "content": format!("Question: {question}\n\nReturn the SQL + rationale as JSON."),
        }],
        "tools": [{
            "name": TOOL,
            "description": "Return the DuckDB SELECT that answers the question, and why.",
            "input_schema": response_schema(),
        }],
        "tool_choice": {"type": "tool", "name": TOOL},
    });
    let resp = client()
        .post(&url)
        .header("x-api-key", &cfg.api_key)
        .header("anthropic-version", API_VERSION)
        .json(&body)
        .send()
        .await
        .map_err(|e| LlmError::Unavailable(describe_send_error(&e)))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| LlmError::Unavailable(format!("reading the answer: {e}")))?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| crate::audit::cut(text.trim(), 200));
        let what = format!("HTTP {}: {message}", status.as_u16());
        return Err(match status.as_u16() {
            401 | 403 | 408 | 429 | 500..=599 => LlmError::Unavailable(what),
            _ => LlmError::Failed(what),
        });
    }
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| LlmError::BadAnswer(format!("the response is not JSON ({e})")))?;
    parse_answer(&value)
}

fn describe_send_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the call timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        e.to_string()
    }
}

/// The `{sql, rationale}` in a Messages API response.
pub fn parse_answer(message: &Value) -> Result<Draft, LlmError> {
    if message["stop_reason"] == "refusal" {
        return Err(LlmError::Refused("stop_reason refusal".into()));
    }
    let blocks = message["content"]
        .as_array()
        .ok_or_else(|| LlmError::BadAnswer("no content".into()))?;
    let tool_input = blocks
        .iter()
        .find(|b| b["type"] == "tool_use" && b["name"] == TOOL)
        .map(|b| b["input"].clone());
    let candidate = match tool_input {
        Some(input) => input,
        None => {
            let text: String = blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n");
            serde_json::from_str(strip_fence(&text)).map_err(|_| {
                LlmError::BadAnswer(format!(
                    "expected a JSON object, got {:?}",
                    crate::audit::cut(text.trim(), 120)
                ))
            })?
        }
    };
    let sql = candidate["sql"].as_str().map(str::trim).unwrap_or("");
    let rationale = candidate["rationale"].as_str().map(str::trim);
    match (sql, rationale) {
        ("", _) => Err(LlmError::BadAnswer("no sql in the answer".into())),
        (_, None) => Err(LlmError::BadAnswer("no rationale in the answer".into())),
        (sql, Some(rationale)) => Ok(Draft {
            sql: sql.to_string(),
            rationale: rationale.to_string(),
        }),
    }
}

/// `{…}` from "```json\n{…}\n```" (models like to fence their JSON).
fn strip_fence(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_answer_a_plain_json_answer_and_a_fenced_one_are_read() {
        let tool = json!({"content": [{"type": "tool_use", "name": "answer", "input": {"sql": " SELECT 1 ", "rationale": "one"}}]});
        let plain = json!({"content": [{"type": "text", "text": "{\"sql\": \"SELECT 1\", \"rationale\": \"one\"}"}]});
        let fenced = json!({"content": [{"type": "text", "text": "```json\n{\"sql\": \"SELECT 1\", \"rationale\": \"one\"}\n```"}]});
        for m in [tool, plain, fenced] {
            assert_eq!(
                parse_answer(&m).unwrap(),
                Draft {
                    sql: "SELECT 1".into(),
                    rationale: "one".into()
                }
            );
        }
    }

    #[test]
    fn prose_missing_fields_and_refusals_are_told_apart() {
        let prose = json!({"content": [{"type": "text", "text": "Sure! SELECT 1"}]});
        assert!(matches!(parse_answer(&prose), Err(LlmError::BadAnswer(_))));
        let no_sql = json!({"content": [{"type": "tool_use", "name": "answer", "input": {"rationale": "x"}}]});
        assert!(matches!(parse_answer(&no_sql), Err(LlmError::BadAnswer(_))));
        let refusal = json!({"stop_reason": "refusal", "content": []});
        assert!(matches!(parse_answer(&refusal), Err(LlmError::Refused(_))));
    }
}
