//! The feedback inbox's rules (SPEC §7, §11 "Feedback"): what a report may
//! hold, how duplicates are recognised (the fingerprint), and the statuses a
//! report moves through. Storage is `repo::feedback`; HTTP is `web::feedback`.

pub mod demo;
pub mod excerpt;
pub mod notify;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A report's message: 1–10 000 characters.
pub const MAX_MESSAGE_CHARS: usize = 10_000;
/// The excerpt: at most the last 50 JSONL lines of a transcript…
pub const MAX_EXCERPT_LINES: usize = 50;
/// …and at most 2 MiB.
pub const MAX_EXCERPT_BYTES: usize = 2 * 1024 * 1024;
/// The whole `POST /api/feedback` body (SPEC §11 "Body limits").
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The error text that goes into the fingerprint is cut at this many characters.
pub const FINGERPRINT_ERROR_CHARS: usize = 200;
/// Environment: keys and values are short facts (versions, OS).
pub const MAX_ENV_KEYS: usize = 50;
pub const MAX_ENV_VALUE_CHARS: usize = 1_000;

/// The statuses, in the inbox's order.
pub const STATUSES: [&str; 4] = ["open", "triaged", "resolved", "wontfix"];

/// True for a status that closes a report (it gets `resolved_at`).
pub fn is_closed(status: &str) -> bool {
    matches!(status, "resolved" | "wontfix")
}

/// A report as sent, after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReport {
    pub message: String,
    pub session_excerpt: Option<String>,
    pub session_file: Option<String>,
    pub environment: Option<Map<String, Value>>,
}

/// Why a report was refused: the field and what is wrong with it (a 422).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid(pub String);

impl NewReport {
    /// Checks each field's bounds; the error names the field.
    pub fn validate(
        message: String,
        session_excerpt: Option<String>,
        session_file: Option<String>,
        environment: Option<Value>,
    ) -> Result<NewReport, Invalid> {
        let chars = message.trim().chars().count();
        if chars == 0 {
            return Err(Invalid("message: must not be empty".into()));
        }
        if message.chars().count() > MAX_MESSAGE_CHARS {
            return Err(Invalid(format!(
                "message: at most {MAX_MESSAGE_CHARS} characters"
            )));
        }
        let session_excerpt = session_excerpt.filter(|e| !e.trim().is_empty());
        if let Some(e) = &session_excerpt {
            if e.len() > MAX_EXCERPT_BYTES {
                return Err(Invalid(
                    "session_excerpt: at most 2 MiB (send the last lines only)".into(),
                ));
            }
            let lines = excerpt::lines(e).count();
            if lines > MAX_EXCERPT_LINES {
                return Err(Invalid(format!(
                    "session_excerpt: at most {MAX_EXCERPT_LINES} JSONL lines, got {lines}"
                )));
            }
        }
        let session_file = session_file.filter(|f| !f.trim().is_empty());
        if let Some(f) = &session_file {
            if !valid_file_name(f) {
                return Err(Invalid(
                    "session_file: must be a transcript file name like `abc.jsonl` \
                     (letters, digits, `.`, `_`, `-`)"
                        .into(),
                ));
            }
        }
        let environment = match environment {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                if m.len() > MAX_ENV_KEYS {
                    return Err(Invalid(format!("environment: at most {MAX_ENV_KEYS} keys")));
                }
                for (k, v) in &m {
                    match v {
                        Value::String(s) if s.chars().count() <= MAX_ENV_VALUE_CHARS => {}
                        Value::String(_) => {
                            return Err(Invalid(format!(
                                "environment.{k}: at most {MAX_ENV_VALUE_CHARS} characters"
                            )))
                        }
                        _ => {
                            return Err(Invalid(format!(
                                "environment.{k}: must be a string (environment is a flat object of strings)"
                            )))
                        }
                    }
                }
                Some(m)
            }
            Some(_) => {
                return Err(Invalid(
                    "environment: must be a flat object of strings".into(),
                ))
            }
        };
        Ok(NewReport {
            message,
            session_excerpt,
            session_file,
            environment,
        })
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.message, self.session_excerpt.as_deref())
    }
}

/// SPEC §6 transcript names: `^[A-Za-z0-9._-]+\.jsonl$`, no path.
pub fn valid_file_name(f: &str) -> bool {
    f.len() <= 255
        && f.ends_with(".jsonl")
        && f.len() > ".jsonl".len()
        && f.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !f.starts_with('.')
}

/// The message as the fingerprint sees it: trimmed, runs of whitespace
/// collapsed to one space, lowercased.
pub fn normalise_message(m: &str) -> String {
    m.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// sha256 (hex) of the normalised message, a newline, and the result text of
/// the excerpt's last error `tool_result` cut at 200 characters (empty when
/// there is none). Two reports with the same fingerprint are duplicates.
pub fn fingerprint(message: &str, excerpt: Option<&str>) -> String {
    let error = excerpt
        .and_then(excerpt::last_error_text)
        .map(|t| t.chars().take(FINGERPRINT_ERROR_CHARS).collect::<String>())
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(normalise_message(message).as_bytes());
    h.update(b"\n");
    h.update(error.as_bytes());
    hex::encode(h.finalize())
}

/// The first line of the message (for lists and notifications), cut.
pub fn first_line(message: &str, max: usize) -> String {
    let line = message.trim().lines().next().unwrap_or("").trim();
    crate::audit::cut(line, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error_line(text: &str) -> String {
        json!({"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": text, "is_error": true}
        ]}})
        .to_string()
    }

    fn excerpt_with_error(text: &str) -> String {
        let ok = json!({"type": "assistant", "message": {"content": [{"type": "text", "text": "Running it"}]}});
        format!("{ok}\n{}\n", error_line(text))
    }

    #[test]
    fn a_duplicate_with_other_spacing_and_case_groups_with_the_first_report() {
        let a = fingerprint(
            "The query  tool\tfails on big tables",
            Some(&excerpt_with_error("Error: relation orders does not exist")),
        );
        let b = fingerprint(
            "  the QUERY tool fails on big   tables\n",
            Some(&excerpt_with_error("Error: relation orders does not exist")),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn a_near_miss_in_the_message_or_the_error_does_not_group() {
        let base = fingerprint(
            "The query tool fails",
            Some(&excerpt_with_error("Error: relation orders does not exist")),
        );
        let other_message = fingerprint(
            "The query tool fails!",
            Some(&excerpt_with_error("Error: relation orders does not exist")),
        );
        let other_error = fingerprint(
            "The query tool fails",
            Some(&excerpt_with_error("Error: relation order does not exist")),
        );
        let no_error = fingerprint("The query tool fails", None);
        assert_ne!(base, other_message);
        assert_ne!(base, other_error);
        assert_ne!(base, no_error);
    }

    #[test]
    fn only_the_last_error_and_its_first_200_characters_count() {
        let long = "x".repeat(200);
        let a = format!(
            "{}\n{}",
            error_line("an earlier error"),
            error_line(&format!("{long}-tail one"))
        );
        let b = format!(
            "{}\n{}",
            error_line("another earlier error"),
            error_line(&format!("{long}-tail two"))
        );
        assert_eq!(fingerprint("m", Some(&a)), fingerprint("m", Some(&b)));
    }

    #[test]
    fn the_fingerprint_is_sha256_of_message_newline_error() {
        let expected = hex::encode(Sha256::digest(b"hello world\nboom"));
        assert_eq!(
            fingerprint(" Hello   World ", Some(&error_line("boom"))),
            expected
        );
        let no_error = hex::encode(Sha256::digest(b"hello\n"));
        assert_eq!(fingerprint("hello", None), no_error);
    }

    #[test]
    fn each_field_is_checked_and_named() {
        let v = |m: &str, e: Option<&str>, f: Option<&str>, env: Option<Value>| {
            NewReport::validate(m.into(), e.map(Into::into), f.map(Into::into), env)
        };
        assert!(v("ok", None, None, None).is_ok());
        assert!(v("  ", None, None, None)
            .unwrap_err()
            .0
            .starts_with("message"));
        assert!(v(&"a".repeat(10_001), None, None, None)
            .unwrap_err()
            .0
            .starts_with("message"));
        assert!(v(&"a".repeat(10_000), None, None, None).is_ok());
        let many = "{}\n".repeat(51);
        assert!(v("m", Some(&many), None, None)
            .unwrap_err()
            .0
            .starts_with("session_excerpt"));
        assert!(v("m", Some(&"{}\n".repeat(50)), None, None).is_ok());
        assert!(v("m", None, Some("../x.jsonl"), None)
            .unwrap_err()
            .0
            .starts_with("session_file"));
        assert!(v("m", None, Some("abc-1.jsonl"), None).is_ok());
        assert!(v("m", None, None, Some(json!({"os": {"name": "linux"}})))
            .unwrap_err()
            .0
            .starts_with("environment.os"));
        assert!(v("m", None, None, Some(json!(["linux"])))
            .unwrap_err()
            .0
            .starts_with("environment"));
        assert!(v("m", None, None, Some(json!({"os": "linux"}))).is_ok());
    }
}
