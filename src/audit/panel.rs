//! The side panel's view of an audit row (SPEC §4): SQL literals masked,
//! long strings cut, and the change from `params_before` to `params`.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::isotime;
use crate::repo::audit::AuditRow;

/// Strings longer than this are cut in the side panel.
pub const PANEL_MAX_CHARS: usize = 128;

#[derive(Debug, Serialize, PartialEq)]
pub struct Change {
    pub key: String,
    /// "added", "removed" or "changed".
    pub kind: &'static str,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PanelView {
    pub id: String,
    pub action: String,
    pub timestamp: String,
    pub json: String,
    pub diff: Option<Vec<Change>>,
    /// The page of the thing the row is about (a feedback report), if any.
    pub related: Option<Related>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Related {
    pub href: String,
    pub label: &'static str,
}

/// The page a row links to: a `feedback.*` row on `feedback:<id>` opens the
/// report (ids are UUIDs; anything else gets no link).
pub fn related(action: &str, resource: Option<&str>) -> Option<Related> {
    let id = resource?.strip_prefix("feedback:")?;
    let safe = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    (action.starts_with("feedback.") && safe).then(|| Related {
        href: format!("/admin/feedback/{id}"),
        label: if action == "feedback.report" {
            "Open the report"
        } else {
            "Open the report it changed"
        },
    })
}

/// The row as the side panel shows it: SQL literals masked, long strings
/// cut, and the change from `params_before` to `params`.
pub fn panel_view(row: &AuditRow) -> PanelView {
    let params = row.params.clone().map(mask_params);
    let before = row.params_before.clone().map(mask_params);
    let diff = before
        .as_ref()
        .map(|b| diff(b, params.as_ref().unwrap_or(&Value::Null)));
    let mut v = serde_json::to_value(row).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("params".into(), params.unwrap_or(Value::Null));
        o.insert("params_before".into(), before.unwrap_or(Value::Null));
    }
    let v = cut_strings(v, PANEL_MAX_CHARS);
    PanelView {
        id: row.id.clone(),
        action: row.action.clone(),
        timestamp: isotime::format(&row.timestamp),
        json: serde_json::to_string_pretty(&v).unwrap_or_default(),
        diff,
        related: related(&row.action, row.resource.as_deref()),
    }
}

/// Keys whose string values hold SQL in the platform's rows (`sql`,
/// `query`, `statement`, `…_sql`, `…_query`), in any case.
fn holds_sql(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["sql", "query", "statement"].contains(&k.as_str())
        || k.ends_with("_sql")
        || k.ends_with("_query")
}

/// Every SQL string of the params (see [`holds_sql`]), however deep, with its
/// literals masked.
fn mask_params(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) if holds_sql(&k) => Value::String(mask_sql(&s)),
                        other => mask_params(other),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(mask_params).collect()),
        other => other,
    }
}

/// Replaces string literals (`'…'`, `''` escapes included) and number
/// literals with `?`; identifiers (`t1`, `"col 2"`) are kept.
pub fn mask_sql(sql: &str) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push('?');
        } else if c == '"' {
            // A quoted identifier: copied as is.
            out.push(c);
            i += 1;
            while i < chars.len() {
                out.push(chars[i]);
                i += 1;
                if chars[i - 1] == '"' {
                    break;
                }
            }
        } else if c.is_ascii_digit() && (i == 0 || !ident(chars[i - 1])) {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            out.push('?');
        } else if ident(c) {
            while i < chars.len() && ident(chars[i]) {
                out.push(chars[i]);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every string over `max` characters cut to `max` and "…".
pub fn cut_strings(v: Value, max: usize) -> Value {
    match v {
        Value::String(s) if s.chars().count() > max => {
            Value::String(format!("{}…", s.chars().take(max).collect::<String>()))
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|v| cut_strings(v, max)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, cut_strings(v, max)))
                .collect(),
        ),
        other => other,
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match cut_strings(Value::String(s), PANEL_MAX_CHARS) {
        Value::String(s) => s,
        _ => String::new(),
    }
}

/// Added, removed and changed top-level keys from `before` to `after`
/// (a non-object is compared as one value).
pub fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let empty = Map::new();
    match (before, after) {
        (Value::Object(b), a) => {
            let a = a.as_object().unwrap_or(&empty);
            let mut out = Vec::new();
            for (k, bv) in b {
                match a.get(k) {
                    None => out.push(Change {
                        key: k.clone(),
                        kind: "removed",
                        before: Some(short(bv)),
                        after: None,
                    }),
                    Some(av) if av != bv => out.push(Change {
                        key: k.clone(),
                        kind: "changed",
                        before: Some(short(bv)),
                        after: Some(short(av)),
                    }),
                    _ => {}
                }
            }
            for (k, av) in a {
                if !b.contains_key(k) {
                    out.push(Change {
                        key: k.clone(),
                        kind: "added",
                        before: None,
                        after: Some(short(av)),
                    });
                }
            }
            out.sort_by(|x, y| x.key.cmp(&y.key));
            out
        }
        (b, a) if b != a => vec![Change {
            key: "(value)".into(),
            kind: "changed",
            before: Some(short(b)),
            after: Some(short(a)),
        }],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_feedback_row_links_to_its_report_and_others_do_not() {
        assert_eq!(
            related("feedback.report", Some("feedback:0190-ab")).map(|r| r.href),
            Some("/admin/feedback/0190-ab".to_string())
        );
        assert_eq!(related("table.read", Some("feedback:0190-ab")), None);
        assert_eq!(related("feedback.report", Some("feedback:../x")), None);
        assert_eq!(related("feedback.report", None), None);
    }

    #[test]
    fn sql_string_and_number_literals_are_masked() {
        assert_eq!(
            mask_sql("SELECT a1, \"col 2\" FROM t9 WHERE x = 'it''s' AND y >= 42.5 LIMIT 10"),
            "SELECT a1, \"col 2\" FROM t9 WHERE x = ? AND y >= ? LIMIT ?"
        );
    }

    #[test]
    fn sql_under_any_sql_holding_key_is_masked_and_other_strings_are_not() {
        let v = mask_params(json!({
            "sql": "SELECT 1",
            "Query": "SELECT * FROM t WHERE id = 7",
            "nested": [{"count_sql": "SELECT 'x'", "statement": "DELETE FROM t WHERE a = 'b'"}],
            "note": "row 7 of 'orders'",
        }));
        assert_eq!(v["sql"], "SELECT ?");
        assert_eq!(v["Query"], "SELECT * FROM t WHERE id = ?");
        assert_eq!(v["nested"][0]["count_sql"], "SELECT ?");
        assert_eq!(v["nested"][0]["statement"], "DELETE FROM t WHERE a = ?");
        assert_eq!(v["note"], "row 7 of 'orders'");
    }

    #[test]
    fn long_strings_are_cut_with_an_ellipsis() {
        let v = cut_strings(json!({"a": "x".repeat(200), "b": "short"}), 128);
        assert_eq!(v["a"].as_str().unwrap().chars().count(), 129);
        assert!(v["a"].as_str().unwrap().ends_with('…'));
        assert_eq!(v["b"], "short");
    }

    #[test]
    fn diff_lists_added_removed_and_changed_keys() {
        let d = diff(
            &json!({"role": "analyst", "name": "A", "gone": 1}),
            &json!({"role": "admin", "name": "A", "new": true}),
        );
        let kinds: Vec<_> = d.iter().map(|c| (c.key.as_str(), c.kind)).collect();
        assert_eq!(
            kinds,
            vec![("gone", "removed"), ("new", "added"), ("role", "changed")]
        );
    }
}
