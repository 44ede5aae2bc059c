//! One usage event as a producer sends it, and the rules it must meet
//! (SPEC §9): `event_type` 1–64 of `[a-z0-9_.:-]`, `metadata` a flat object
//! of strings (≤ 64 keys, ≤ 8 KiB encoded), `source` ≤ 64 characters.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::AppError;

pub const MAX_EVENT_TYPE: usize = 64;
pub const MAX_SOURCE: usize = 64;
pub const MAX_METADATA_KEYS: usize = 64;
pub const MAX_METADATA_BYTES: usize = 8 * 1024;
/// Most events in one batch request.
pub const MAX_BATCH: usize = 1000;
/// Largest body of the batch endpoint (SPEC §11 body limits).
pub const MAX_BATCH_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A validated event, not yet stamped: the writer gives it its id and
/// `created_at` when it stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAppEvent {
    pub user_id: String,
    pub event_type: String,
    /// The metadata object, encoded.
    pub metadata: String,
    pub source: Option<String>,
}

/// What the body holds before validation; `user_id` is checked by the handler,
/// which knows who is asking.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    pub event_type: Option<Value>,
    pub metadata: Option<Value>,
    pub source: Option<Value>,
    pub user_id: Option<Value>,
}

/// A checked event and the `user_id` it names, if any.
#[derive(Debug)]
pub struct Checked {
    pub event_type: String,
    pub metadata: String,
    pub source: Option<String>,
    pub user_id: Option<String>,
}

/// `events[3].metadata: …`, or `metadata: …` for a lone event.
pub fn at(pos: &str, field: &str, msg: impl std::fmt::Display) -> AppError {
    if pos.is_empty() {
        AppError::unprocessable(format!("{field}: {msg}"))
    } else {
        AppError::unprocessable(format!("{pos}.{field}: {msg}"))
    }
}

fn string(pos: &str, field: &str, v: Option<Value>) -> Result<Option<String>, AppError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(at(pos, field, "must be a string")),
    }
}

pub fn valid_event_type(s: &str) -> bool {
    (1..=MAX_EVENT_TYPE).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b':' | b'-')
        })
}

/// Checks one event given as JSON; `pos` names its place in a batch.
pub fn check(pos: &str, v: Value) -> Result<Checked, AppError> {
    if !v.is_object() {
        return Err(if pos.is_empty() {
            AppError::unprocessable("body: expected a JSON object")
        } else {
            AppError::unprocessable(format!("{pos}: expected a JSON object"))
        });
    }
    let e: EventIn = serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.inner().to_string();
        if pos.is_empty() {
            AppError::unprocessable(format!("body: {inner}"))
        } else {
            AppError::unprocessable(format!("{pos}: {inner}"))
        }
    })?;
    let event_type = string(pos, "event_type", e.event_type)?
        .ok_or_else(|| at(pos, "event_type", "required"))?;
    if !valid_event_type(&event_type) {
        return Err(at(
            pos,
            "event_type",
            format!("1 to {MAX_EVENT_TYPE} characters of a-z, 0-9, _ . : -, got {event_type:?}"),
        ));
    }
    let metadata = match e.metadata {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(at(pos, "metadata", "must be an object of strings")),
    };
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(at(
            pos,
            "metadata",
            format!("at most {MAX_METADATA_KEYS} keys, got {}", metadata.len()),
        ));
    }
    if let Some((k, _)) = metadata.iter().find(|(_, v)| !v.is_string()) {
        return Err(at(
            pos,
            &format!("metadata.{k}"),
            "must be a string (metadata is a flat object of strings)",
        ));
    }
    let metadata = Value::Object(metadata).to_string();
    if metadata.len() > MAX_METADATA_BYTES {
        return Err(at(
            pos,
            "metadata",
            format!(
                "larger than {} KiB once encoded ({} bytes)",
                MAX_METADATA_BYTES / 1024,
                metadata.len()
            ),
        ));
    }
    let source = string(pos, "source", e.source)?;
    if source
        .as_deref()
        .is_some_and(|s| s.chars().count() > MAX_SOURCE)
    {
        return Err(at(
            pos,
            "source",
            format!("at most {MAX_SOURCE} characters"),
        ));
    }
    let user_id = string(pos, "user_id", e.user_id)?.filter(|u| !u.is_empty());
    Ok(Checked {
        event_type,
        metadata,
        source: source.filter(|s| !s.is_empty()),
        user_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detail(v: Value) -> String {
        check("", v).unwrap_err().to_string()
    }

    #[test]
    fn event_types_are_short_lowercase_words() {
        for ok in ["sql_generation", "a", "ui.click:button-1", &"x".repeat(64)] {
            assert!(valid_event_type(ok), "{ok}");
        }
        for bad in ["", "SQL", "has space", "emoji😀", &"x".repeat(65), "a/b"] {
            assert!(!valid_event_type(bad), "{bad}");
        }
    }

    #[test]
    fn each_rule_names_its_field() {
        assert!(detail(json!({})).starts_with("event_type: required"));
        assert!(detail(json!({"event_type": 3})).starts_with("event_type:"));
        assert!(detail(json!({"event_type": "x", "metadata": []})).starts_with("metadata:"));
        assert!(detail(json!({"event_type": "x", "metadata": {"rows": 3}}))
            .starts_with("metadata.rows: must be a string"));
        assert!(
            detail(json!({"event_type": "x", "metadata": {"a": {"b": "c"}}}))
                .starts_with("metadata.a:")
        );
        let many: Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(detail(json!({"event_type": "x", "metadata": many})).contains("at most 64 keys"));
        assert!(
            detail(json!({"event_type": "x", "metadata": {"q": "y".repeat(8200)}}))
                .contains("8 KiB")
        );
        assert!(detail(json!({"event_type": "x", "source": "s".repeat(65)})).starts_with("source:"));
        assert!(detail(json!({"event_type": "x", "extra": 1})).contains("unknown field `extra`"));
        assert!(check("events[2]", json!({"event_type": "BAD"}))
            .unwrap_err()
            .to_string()
            .starts_with("events[2].event_type:"));
    }

    #[test]
    fn a_good_event_keeps_its_metadata_encoded() {
        let c = check(
            "",
            json!({"event_type": "sql_execution", "metadata": {"rows": "12"}, "source": "sql"}),
        )
        .unwrap();
        assert_eq!(c.metadata, r#"{"rows":"12"}"#);
        assert_eq!(c.source.as_deref(), Some("sql"));
        assert_eq!(
            check("", json!({"event_type": "x"})).unwrap().metadata,
            "{}"
        );
    }
}
