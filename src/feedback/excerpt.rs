//! Reading a report's session excerpt (JSONL lines of a Claude Code
//! transcript): the last error `tool_result`'s text for the fingerprint, and
//! the lines as turns for the report page. The excerpt is small (≤ 50 lines),
//! so it is read with `serde_json` rather than the ingest's streaming scanner;
//! "result text" follows the same definition (SPEC: the content string, or
//! its text blocks joined with newlines).

use serde::Serialize;
use serde_json::Value;

/// The non-blank lines of an excerpt.
pub fn lines(excerpt: &str) -> impl Iterator<Item = &str> {
    excerpt.lines().filter(|l| !l.trim().is_empty())
}

/// A `tool_result`'s result text.
pub fn result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn blocks(line: &Value) -> &[Value] {
    line.get("message")
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn is_error_result(b: &Value) -> bool {
    b.get("type").and_then(Value::as_str) == Some("tool_result")
        && b.get("is_error").and_then(Value::as_bool) == Some(true)
}

/// The result text of the last `tool_result` with `is_error: true`; lines
/// that are not JSON objects are skipped.
pub fn last_error_text(excerpt: &str) -> Option<String> {
    lines(excerpt)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .flat_map(|v| {
            blocks(&v)
                .iter()
                .filter(|b| is_error_result(b))
                .map(|b| result_text(b.get("content").unwrap_or(&Value::Null)))
                .collect::<Vec<_>>()
        })
        .last()
}

/// The newest `version` field (Claude Code's version) in the lines.
pub fn claude_code_version(excerpt: &str) -> Option<String> {
    lines(excerpt)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("version").and_then(Value::as_str).map(String::from))
        .last()
}

/// One piece of a turn as the report page shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Piece {
    /// `text`, `tool_use`, `tool_result` or `raw`.
    pub kind: &'static str,
    /// The tool's name (tool_use).
    pub name: Option<String>,
    pub text: String,
    pub is_error: bool,
}

/// One line of the excerpt as a turn.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Turn {
    pub index: usize,
    /// The line's `type` (user, assistant, system…), `unreadable` when not JSON.
    pub role: String,
    pub timestamp: Option<String>,
    pub pieces: Vec<Piece>,
    pub has_error: bool,
}

/// Longest text a piece shows (the excerpt is stored whole).
const PIECE_CHARS: usize = 4_000;

fn piece(kind: &'static str, name: Option<String>, text: String, is_error: bool) -> Piece {
    Piece {
        kind,
        name,
        text: crate::audit::cut(&text, PIECE_CHARS),
        is_error,
    }
}

/// The excerpt's lines as turns, in order.
pub fn turns(excerpt: &str) -> Vec<Turn> {
    lines(excerpt)
        .enumerate()
        .map(|(index, l)| {
            let Ok(v) = serde_json::from_str::<Value>(l) else {
                return Turn {
                    index,
                    role: "unreadable".into(),
                    timestamp: None,
                    pieces: vec![piece("raw", None, l.to_string(), false)],
                    has_error: false,
                };
            };
            let role = v
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("line")
                .to_string();
            let timestamp = v.get("timestamp").and_then(Value::as_str).map(String::from);
            let content = v.get("message").and_then(|m| m.get("content"));
            let pieces: Vec<Piece> = match content {
                Some(Value::String(s)) => vec![piece("text", None, s.clone(), false)],
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|b| match b.get("type").and_then(Value::as_str) {
                        Some("text") => piece(
                            "text",
                            None,
                            b.get("text").and_then(Value::as_str).unwrap_or("").into(),
                            false,
                        ),
                        Some("tool_use") => piece(
                            "tool_use",
                            b.get("name").and_then(Value::as_str).map(String::from),
                            b.get("input").map(Value::to_string).unwrap_or_default(),
                            false,
                        ),
                        Some("tool_result") => piece(
                            "tool_result",
                            None,
                            result_text(b.get("content").unwrap_or(&Value::Null)),
                            is_error_result(b),
                        ),
                        _ => piece("raw", None, b.to_string(), false),
                    })
                    .collect(),
                _ => vec![],
            };
            let has_error = pieces.iter().any(|p| p.is_error);
            Turn {
                index,
                role,
                timestamp,
                pieces,
                has_error,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_last_error_result_text_joins_text_blocks() {
        let l1 = json!({"type":"user","message":{"content":[{"type":"tool_result","content":"first","is_error":true}]}});
        let l2 = json!({"type":"user","message":{"content":[{"type":"tool_result","content":[{"type":"text","text":"a"},{"type":"image"},{"type":"text","text":"b"}],"is_error":true}]}});
        let l3 = json!({"type":"user","message":{"content":[{"type":"tool_result","content":"fine","is_error":false}]}});
        let ex = format!("{l1}\nnot json\n{l2}\n{l3}\n");
        assert_eq!(last_error_text(&ex).as_deref(), Some("a\nb"));
        assert_eq!(last_error_text(&format!("{l3}")), None);
    }

    #[test]
    fn turns_mark_errors_and_keep_unreadable_lines() {
        let l1 = json!({"type":"assistant","version":"2.0.1","message":{"content":[{"type":"tool_use","name":"Bash","input":{"command":"ls"}}]}});
        let l2 = json!({"type":"user","message":{"content":[{"type":"tool_result","content":"boom","is_error":true}]}});
        let t = turns(&format!("{l1}\n{l2}\n{{oops\n"));
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].pieces[0].name.as_deref(), Some("Bash"));
        assert!(!t[0].has_error && t[1].has_error);
        assert_eq!(t[2].role, "unreadable");
        assert_eq!(
            claude_code_version(&format!("{l1}\n{l2}")).as_deref(),
            Some("2.0.1")
        );
    }
}
